package postgres

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// deadLetter is the i-th letter of the reader's tests: arrival t0+i minutes,
// partition key k-<a+i>.
func deadLetter(i int, shard string, reason record.Reason, dataset, errMsg string, data []byte) record.DeadLetter {
	return record.DeadLetter{
		Origin: record.Origin{Source: "orders", StreamARN: "arn:aws:kinesis:us-east-1:000000000000:stream/orders", ShardID: shard,
			SequenceNumber: "4960000000000000000" + string(rune('0'+i)), PartitionKey: "k-" + string(rune('a'+i)),
			ArrivalTime: t0.Add(time.Duration(i) * time.Minute)},
		Dataset: dataset, Reason: reason, Error: errMsg, Data: data,
	}
}

func writeLetters(t *testing.T, dsn, table string, letters []record.DeadLetter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := NewDeadLetterSink(ctx, Config{DSN: dsn, Table: table, CreateTable: true}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Write(ctx, letters); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReaderDeadLetters reads back what the dead-letter sink wrote, with the
// filters, the order and the limit applied by the server.
func TestReaderDeadLetters(t *testing.T) {
	dsn := server(t).CreateDatabase(t)
	ctx := context.Background()
	if _, err := connect(t, dsn).Exec(ctx, "CREATE SCHEMA ops"); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", 40) // 2 bytes a character
	written := []record.DeadLetter{
		deadLetter(0, "shardId-000000000000", record.ReasonDecode, "", "invalid JSON at byte 12: unexpected EOF", []byte(`{"id":1,`)),
		deadLetter(1, "shardId-000000000000", record.ReasonSchema, "orders", "amount: missing", []byte(`{"id":2}`)),
		deadLetter(2, "shardId-000000000001", record.ReasonSchema, "orders", `items[2].price: want float, got null`, []byte(`{"id":3}`)),
		deadLetter(3, "shardId-000000000001", record.ReasonSchema, "orders", `amount: want float, got string "x"`, []byte("\xff\x00binary")),
		deadLetter(4, "shardId-000000000001", record.ReasonNoRoute, "", long, []byte(`{"id":5}`)),
	}
	writeLetters(t, dsn, "ops.Dead_Letters", written)
	r := Reader{DSN: dsn, Table: "ops.Dead_Letters"}

	// Every letter, newest first, whole.
	var all []record.DeadLetter
	st, err := r.DeadLetters(ctx, LetterQuery{}, -1, func(l *Letter) error {
		if l.Size != len(l.Data) {
			t.Errorf("letter %s: size %d, data of %d bytes", l.PartitionKey, l.Size, len(l.Data))
		}
		d := l.DeadLetter
		d.Data = bytes.Clone(d.Data)
		all = append(all, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(written)
	slices.Reverse(want)
	if st.Rows != len(want) || st.Skipped != 0 || len(all) != len(want) {
		t.Fatalf("read %d letters (stats %+v), want %d", len(all), st, len(want))
	}
	for i := range want {
		if got := all[i]; !got.ArrivalTime.Equal(want[i].ArrivalTime) || got.Error != want[i].Error || !bytes.Equal(got.Data, want[i].Data) {
			t.Errorf("letter %d: got %+v, want %+v", i, got, want[i])
		}
		got, w := all[i], want[i]
		got.ArrivalTime, w.ArrivalTime = time.Time{}, time.Time{}
		if got.Origin != w.Origin || got.Dataset != w.Dataset || got.Reason != w.Reason {
			t.Errorf("letter %d: got %+v, want %+v", i, all[i], want[i])
		}
	}

	for _, tt := range []struct {
		name  string
		q     LetterQuery
		head  int
		keys  []string // partition keys, in the order read
		data  []int    // bytes of data read, per letter
		error []int    // characters of error read, per letter
	}{
		{name: "filters", q: LetterQuery{Reasons: []string{"schema_error"}, Shard: "shardId-000000000001", Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)},
			head: -1, keys: []string{"k-c"}, data: []int{8}, error: []int{36}},
		{name: "reasons", q: LetterQuery{Reasons: []string{"decode_error", "no_route"}},
			head: -1, keys: []string{"k-e", "k-a"}, data: []int{8, 8}, error: []int{40, 39}},
		{name: "since is inclusive, until exclusive", q: LetterQuery{Since: t0.Add(time.Minute), Until: t0.Add(2 * time.Minute)},
			head: -1, keys: []string{"k-b"}, data: []int{8}, error: []int{15}},
		{name: "newest", q: LetterQuery{Newest: 2}, head: -1, keys: []string{"k-e", "k-d"}, data: []int{8, 8}, error: []int{40, 34}},
		{name: "heads", q: LetterQuery{Newest: 2, ErrorChars: 10}, head: 3, keys: []string{"k-e", "k-d"}, data: []int{3, 3}, error: []int{10, 10}},
		{name: "no data", q: LetterQuery{Shard: "shardId-000000000000"}, head: 0, keys: []string{"k-b", "k-a"}, data: []int{0, 0}, error: []int{15, 39}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var keys []string
			var data, errs []int
			_, err := r.DeadLetters(ctx, tt.q, tt.head, func(l *Letter) error {
				w := written[l.PartitionKey[2]-'a']
				if !bytes.HasPrefix(w.Data, l.Data) || !strings.HasPrefix(w.Error, l.Error) || l.Size != len(w.Data) {
					t.Errorf("%s: data %q (size %d) and error %q are not the start of %q and %q", l.PartitionKey, l.Data, l.Size, l.Error, w.Data, w.Error)
				}
				keys, data, errs = append(keys, l.PartitionKey), append(data, len(l.Data)), append(errs, len([]rune(l.Error)))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(keys, tt.keys) || !slices.Equal(data, tt.data) || !slices.Equal(errs, tt.error) {
				t.Errorf("read %v with %v bytes of data and %v characters of error, want %v, %v and %v", keys, data, errs, tt.keys, tt.data, tt.error)
			}
		})
	}

	// Counts: schema errors by the start of their error, the others by
	// reason and dataset alone; the filter applies.
	countAll := func(q LetterQuery) map[LetterCount]bool {
		got := map[LetterCount]bool{}
		if err := r.CountDeadLetters(ctx, q, []record.Reason{record.ReasonSchema}, func(c LetterCount) error {
			got[c] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	wantCounts := map[LetterCount]bool{
		{Reason: record.ReasonDecode, N: 1}:                                       true,
		{Reason: record.ReasonNoRoute, N: 1}:                                      true,
		{Reason: record.ReasonSchema, Dataset: "orders", Error: "amount: ", N: 2}: true,
		{Reason: record.ReasonSchema, Dataset: "orders", Error: "items[2]", N: 1}: true,
	}
	if got := countAll(LetterQuery{ErrorChars: 8}); len(got) != 4 {
		t.Errorf("counts %v, want %v", got, wantCounts)
	} else {
		for c := range got {
			if !wantCounts[c] {
				t.Errorf("count %+v, want one of %v", c, wantCounts)
			}
		}
	}
	if got, want := countAll(LetterQuery{Reasons: []string{"schema_error"}, Shard: "shardId-000000000001", Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}),
		(LetterCount{Reason: record.ReasonSchema, Dataset: "orders", Error: written[2].Error, N: 1}); len(got) != 1 || !got[want] {
		t.Errorf("filtered counts %v, want only %+v", got, want)
	}

	_, err = Reader{DSN: dsn, Table: "missing_table"}.DeadLetters(ctx, LetterQuery{}, -1, func(*Letter) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "missing_table") {
		t.Errorf("missing table: %v", err)
	}
	err = Reader{DSN: dsn, Table: "missing_table"}.CountDeadLetters(ctx, LetterQuery{}, nil, func(LetterCount) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "missing_table") {
		t.Errorf("missing table: %v", err)
	}
}

// TestReaderRows reads a row sink's table back in origin order.
func TestReaderRows(t *testing.T) {
	dsn := server(t).CreateDatabase(t)
	ctx := context.Background()
	s := newRowSink(t, Config{DSN: dsn, Table: "orders", CreateTable: true})
	// Sequence numbers of different lengths: 9 < 10 as numbers, not as text.
	rows := append(orderRows("shardId-1", 9, 2), orderRows("shardId-0", 5, 1)...)
	rows[1].Origin.SequenceNumber = "1" + rows[1].Origin.SequenceNumber
	rows[2].Fields[3].Value = "a note"
	if err := s.Write(ctx, rows); err != nil {
		t.Fatal(err)
	}
	want := []record.Row{rows[2], rows[0], rows[1]}
	var i int
	st, err := Reader{DSN: dsn, Table: "orders"}.Rows(ctx, func(o record.Origin, fields map[string]any) error {
		if i >= len(want) {
			t.Fatalf("row %d: more rows than written", i)
		}
		w := want[i]
		i++
		if o.ShardID != w.Origin.ShardID || o.SequenceNumber != w.Origin.SequenceNumber || o.Source != w.Origin.Source || o.SubSequence != w.Origin.SubSequence || !o.ArrivalTime.Equal(w.Origin.ArrivalTime) {
			t.Errorf("row %d: origin %+v, want %+v", i-1, o, w.Origin)
		}
		if len(fields) != len(w.Fields) {
			t.Errorf("row %d: fields %v, want %v", i-1, fields, w.Fields)
		}
		for _, f := range w.Fields {
			got := fields[f.Name]
			if tm, ok := f.Value.(time.Time); ok {
				if g, ok := got.(time.Time); !ok || !g.Equal(tm) {
					t.Errorf("row %d: %s = %v, want %v", i-1, f.Name, got, tm)
				}
			} else if got != f.Value {
				t.Errorf("row %d: %s = %#v, want %#v", i-1, f.Name, got, f.Value)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if i != len(want) || st.Rows != len(want) || st.Skipped != 0 {
		t.Errorf("read %d rows (stats %+v), want %d", i, st, len(want))
	}
}
