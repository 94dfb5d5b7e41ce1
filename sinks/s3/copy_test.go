package s3

import (
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/rowcopy"
)

// TestCopyItemsOwnsItsMemory: the copies keep every value of the rows as
// they were, after the caller reuses all of the rows' memory (their text
// aliasing one buffer, as the JSON scanner's strings alias the record).
func TestCopyItemsOwnsItsMemory(t *testing.T) {
	text := []byte("shardId-000000000001" + "49590338271490256608559692538361571095921575989000000007" + "DE" + "payload")
	alias := func(from, n int) string { return unsafe.String(&text[from], n) }
	ts := time.Date(2026, 12, 7, 10, 0, 0, 123000, time.UTC)
	mk := func() []record.Row {
		return []record.Row{{
			Dataset: "orders",
			Origin:  record.Origin{Source: "orders", ShardID: alias(0, 20), SequenceNumber: alias(20, 56), PartitionKey: "k", ArrivalTime: ts},
			Fields: []record.Field{
				{Name: "id", Value: int64(123456)}, {Name: "small", Value: int64(7)}, {Name: "amount", Value: 9.5},
				{Name: "country", Value: alias(76, 2)}, {Name: "raw", Value: text[78:85]}, {Name: "ts", Value: ts},
				{Name: "ok", Value: true}, {Name: "none", Value: nil}, {Name: "nullbytes", Value: []byte(nil)}, {Name: "price", Value: record.Decimal("12.50")},
				{Name: "tags", Value: []any{alias(76, 2), int64(1000)}}, {Name: "attrs", Value: map[string]any{"k": alias(78, 7)}},
			},
		}}
	}
	want := mk()
	// want must not alias text: copy its strings by value first.
	want[0].Origin.ShardID = string([]byte(want[0].Origin.ShardID))
	want[0].Origin.SequenceNumber = string([]byte(want[0].Origin.SequenceNumber))
	want[0].Fields[3].Value = "DE"
	want[0].Fields[4].Value = []byte("payload")
	want[0].Fields[10].Value = []any{"DE", int64(1000)}
	want[0].Fields[11].Value = map[string]any{"k": "payload"}

	rows := mk()
	p, err := posOf(&rows[0].Origin)
	if err != nil {
		t.Fatal(err)
	}
	got := copyItems([]item{{row: &rows[0], pos: p}})
	// The caller reuses everything.
	for i := range text {
		text[i] = 'x'
	}
	for i := range rows[0].Fields {
		rows[0].Fields[i] = record.Field{Name: "gone", Value: int64(-1)}
	}
	rows[0].Origin = record.Origin{}
	if !reflect.DeepEqual(*got[0].row, want[0]) {
		t.Errorf("copy changed with the caller's memory:\n got %+v\nwant %+v", *got[0].row, want[0])
	}
	if wantPos, _ := posOf(&want[0].Origin); got[0].pos != wantPos {
		t.Errorf("position %v, want %v", got[0].pos, wantPos)
	}
}

// BenchmarkCopyItems: a batch of 1,000 hot-path-like rows copied.
func BenchmarkCopyItems(b *testing.B) {
	ts := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	rows := make([]record.Row, 1000)
	items := make([]item, len(rows))
	for i := range rows {
		rows[i] = record.Row{Dataset: "orders",
			Origin: record.Origin{Source: "orders", StreamARN: "arn:aws:kinesis:us-east-1:000000000000:stream/orders", ShardID: "shardId-000000000001",
				SequenceNumber: "49590338271490256608559692538361571095921575989000001000", PartitionKey: "customer-42", ArrivalTime: ts},
			Fields: []record.Field{{Name: "id", Value: int64(100000 + i)}, {Name: "amount", Value: 12.5}, {Name: "ts", Value: ts},
				{Name: "country", Value: "DE"}, {Name: "note", Value: "a note of some length"}}}
		items[i] = item{row: &rows[i], pos: pos{seq: "1", sub: i}}
	}
	b.Run("arena", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = copyItems(items)
		}
	})
	b.Run("per-value", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range items {
				c := &record.Row{Dataset: items[i].row.Dataset, Origin: items[i].row.Origin}
				c.Fields = make([]record.Field, len(items[i].row.Fields))
				for j, f := range items[i].row.Fields {
					c.Fields[j] = record.Field{Name: f.Name, Value: rowcopy.Clone(f.Value)}
				}
			}
		}
	})
}
