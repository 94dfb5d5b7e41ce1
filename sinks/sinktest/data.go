package sinktest

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

const (
	testSource    = "sinktest"
	testStreamARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/sinktest"
	testDataset   = "sinktest"
)

// seqNum returns a Kinesis-like sequence number (56 digits) for n.
func seqNum(n int) string {
	return fmt.Sprintf("4959033827149025660855969253836157109592157598%010d", n)
}

// before reports whether a precedes b in a shard: by sequence number (as a
// number), then sub-sequence.
func before(a, b key) bool {
	if c := compareNumeric(a.seq, b.seq); c != 0 {
		return c < 0
	}
	return a.sub < b.sub
}

func compareNumeric(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

var baseTime = time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC)

func origin(shard string, seq, sub int) record.Origin {
	return record.Origin{
		Source:         testSource,
		StreamARN:      testStreamARN,
		ShardID:        shard,
		SequenceNumber: seqNum(seq),
		SubSequence:    sub,
		PartitionKey:   fmt.Sprintf("pk-%d", seq%7),
		ArrivalTime:    baseTime.Add(time.Duration(seq) * time.Millisecond),
	}
}

// Columns are the fields of the rows the subtests write, for a sink typed
// by a dataset's columns (RowHarness.Typed): optional but for id, so that a
// harness's RoundTrip rows can hold nulls.
func Columns() []schema.Column {
	typ := func(s string) schema.Type {
		t, err := schema.ParseType(s)
		if err != nil {
			panic(err)
		}
		return t
	}
	return []schema.Column{{Name: "id", Type: typ("int")}, {Name: "shard", Type: typ("optional[str]")},
		{Name: "payload", Type: typ("optional[str]")}, {Name: "at", Type: typ("optional[datetime]")},
		// AcceptCopies' last row adds nulls of these kinds.
		{Name: "nil_bytes", Type: typ("optional[bytes]")}, {Name: "nil_embedding", Type: typ("optional[embedding[2]]")},
		{Name: "nil_list", Type: typ("optional[list[int]]")}, {Name: "nil_map", Type: typ("optional[map[int]]")},
		{Name: "nil_struct", Type: typ("optional[struct]")}}
}

// makeRow is the plain row used by every subtest but RoundTrip.
func makeRow(shard string, seq int) record.Row {
	return record.Row{
		Dataset: testDataset,
		Origin:  origin(shard, seq, 0),
		Fields: []record.Field{
			{Name: "id", Value: int64(seq)},
			{Name: "shard", Value: shard},
			{Name: "payload", Value: fmt.Sprintf("payload of record %d %s", seq, strings.Repeat("x", seq%50))},
			{Name: "at", Value: baseTime.Add(time.Duration(seq) * time.Second)},
		},
	}
}

func makeDeadLetter(shard string, seq int) record.DeadLetter {
	reasons := []record.Reason{record.ReasonDecode, record.ReasonSchema, record.ReasonNoRoute, record.ReasonSinkRejected}
	d := record.DeadLetter{
		Origin: origin(shard, seq, 0),
		Reason: reasons[seq%len(reasons)],
		Error:  fmt.Sprintf("record %d: something was wrong", seq),
		Data:   []byte(fmt.Sprintf(`{"id":%d,"broken":`, seq)),
	}
	if d.Reason != record.ReasonNoRoute {
		d.Dataset = testDataset
	}
	return d
}

// roundTripRows covers every value type of record.Field, nested and at the top
// level, with edge values, and a row of nulls.
func roundTripRows() []record.Row {
	cet := time.FixedZone("CET", 3600)
	all := []record.Field{
		{Name: "id", Value: int64(1)},
		{Name: "flag", Value: true},
		{Name: "flag_off", Value: false},
		{Name: "count", Value: int64(-42)},
		{Name: "max_int", Value: int64(math.MaxInt64)},
		{Name: "min_int", Value: int64(math.MinInt64)},
		{Name: "ratio", Value: 0.25},
		{Name: "whole_float", Value: 3.0},
		{Name: "negative_float", Value: -1234.5678},
		{Name: "tiny_float", Value: 1e-300},
		{Name: "huge_float", Value: math.MaxFloat64},
		{Name: "exp_float", Value: 1.5e-7},
		{Name: "name", Value: "plain text"},
		{Name: "escapes", Value: "quote\" backslash\\ slash/ newline\n cr\r tab\t bell\x07 unit-sep\x1f <tag> & amp"},
		{Name: "unicode", Value: "héllo wörld, 世界, 😀, \u2028\u2029, \u00a0"},
		{Name: "empty_string", Value: ""},
		{Name: "bytes", Value: []byte{0, 1, 2, 0x7f, 0x80, 0xfe, 0xff}},
		{Name: "empty_bytes", Value: []byte{}},
		{Name: "ts", Value: baseTime},
		{Name: "ts_whole_second", Value: time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Name: "ts_other_zone", Value: time.Date(2024, 6, 30, 23, 59, 59, 999999000, cet)},
		{Name: "day", Value: record.Date{Year: 2024, Month: time.February, Day: 29}},
		{Name: "early_day", Value: record.Date{Year: 1, Month: time.January, Day: 1}},
		{Name: "amount", Value: record.Decimal("-12.50")},
		{Name: "big_amount", Value: record.Decimal("123456789012345678901234567890.000000001")},
		{Name: "embedding", Value: []float64{0.5, -1, 1e-7, 12345.678, 0}},
		{Name: "empty_embedding", Value: []float64{}},
		{Name: "list", Value: []any{
			"a", int64(2), 3.5, true, nil, []byte("bin"), baseTime, record.Date{Year: 2000, Month: 1, Day: 1},
			record.Decimal("1.10"), []any{"nested", int64(-1)}, []float64{1, 2},
			map[string]any{"k": "v"}, []record.Field{{Name: "in", Value: "list"}},
		}},
		{Name: "empty_list", Value: []any{}},
		{Name: "map", Value: map[string]any{
			"zeta": int64(1), "alpha": "x", "mid": []any{int64(1), int64(2)}, "nil": nil,
			"struct": []record.Field{{Name: "b", Value: int64(1)}, {Name: "a", Value: int64(2)}},
			"when":   baseTime, "quote\"key": "v", "": "empty key",
		}},
		{Name: "empty_map", Value: map[string]any{}},
		{Name: "address", Value: []record.Field{
			{Name: "street", Value: "Main St"},
			{Name: "zip", Value: "01234"},
			{Name: "geo", Value: []record.Field{{Name: "lon", Value: 13.4}, {Name: "lat", Value: 52.5}}},
			{Name: "since", Value: record.Date{Year: 2019, Month: time.December, Day: 31}},
			{Name: "tags", Value: []any{"home"}},
			{Name: "photo", Value: []byte{0xff}},
			{Name: "none", Value: nil},
		}},
		{Name: "nothing", Value: nil},
	}
	// The same schema with every value but id null.
	nulls := make([]record.Field, len(all))
	for i, f := range all {
		nulls[i] = record.Field{Name: f.Name}
	}
	nulls[0].Value = int64(2)
	// A struct with no fields and a row with few.
	sparse := []record.Field{{Name: "id", Value: int64(3)}, {Name: "empty_struct", Value: []record.Field{}}}

	const shard = "shardId-000000000009"
	rows := []record.Row{
		{Dataset: testDataset, Origin: origin(shard, 1, 0), Fields: all},
		// Two sub-records of one KPL aggregate share a sequence number.
		{Dataset: testDataset, Origin: origin(shard, 2, 0), Fields: nulls},
		{Dataset: testDataset, Origin: origin(shard, 2, 1), Fields: sparse},
	}
	rows[2].Origin.Source = "other source with \"quotes\" and ünïcode"
	return rows
}

func roundTripDeadLetters() []record.DeadLetter {
	const shard = "shardId-000000000009"
	out := []record.DeadLetter{
		{Origin: origin(shard, 1, 0), Dataset: testDataset, Reason: record.ReasonDecode,
			Error: "invalid character 'x' looking for beginning of value", Data: []byte("x{\"a\":")},
		{Origin: origin(shard, 2, 0), Reason: record.ReasonNoRoute,
			Error: "no dataset matched", Data: []byte{0, 1, 2, 0xfe, 0xff}},
		{Origin: origin(shard, 2, 1), Dataset: "orders", Reason: record.ReasonSchema,
			Error: "field \"amount\": want decimal, got \"abc\"\nsecond line\ttab ünïcode 😀", Data: []byte{}},
		{Origin: origin(shard, 3, 0), Dataset: testDataset, Reason: record.ReasonSinkRejected,
			Error: "", Data: []byte(strings.Repeat("large payload ", 5000))},
	}
	out[1].PartitionKey = ""
	out[2].StreamARN = "arn:aws:kinesis:us-east-1:000000000000:stream/other"
	out[3].ArrivalTime = time.Date(2024, 6, 30, 23, 59, 59, 999999000, time.FixedZone("CET", 3600))
	return out
}
