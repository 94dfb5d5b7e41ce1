package s3_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/duckread"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	s3sink "github.com/kinesis-ingest/kinesis-ingest/sinks/s3"
)

// An object of more rows than the encoder hands its writer at once holds
// every row with its own values, nulls where they were, in stream order:
// values built for one part of the object do not leak into another.
func TestParquetLargeObject(t *testing.T) {
	s := server(t)
	bucket := s.CreateBucket(t)
	cols := []schema.Column{
		{Name: "id", Type: typ("int")}, {Name: "note", Type: typ("optional[str]")}, {Name: "dec", Type: typ("optional[decimal[2]]")},
		{Name: "e", Type: typ("optional[embedding[2]]")}, {Name: "m", Type: typ("optional[map[int]]")}, {Name: "by", Type: typ("optional[bytes]")},
	}
	const n = 2500
	rows := make([]record.Row, n)
	for i := range rows {
		f := []record.Field{{Name: "id", Value: int64(i)}, {Name: "note", Value: nil}, {Name: "dec", Value: nil}, {Name: "e", Value: nil},
			{Name: "m", Value: nil}, {Name: "by", Value: []byte(nil)}}
		if i%3 != 0 {
			f[1].Value = fmt.Sprintf("note %d", i)
			f[2].Value = record.Decimal(fmt.Sprintf("%d.%02d", i, i%100))
			f[3].Value = []float64{float64(i), -float64(i)}
			f[4].Value = map[string]any{"i": int64(i)}
			f[5].Value = []byte{byte(i), byte(i >> 8)}
		}
		rows[i] = record.Row{Dataset: "big", Fields: f,
			Origin: record.Origin{Source: "src", ShardID: "shardId-000000000000", SequenceNumber: seq(i), ArrivalTime: time.Unix(1_700_000_000, 0)}}
	}
	rs, err := s3sink.New(s3sink.Config{Client: s.Client(), Bucket: bucket, Prefix: "lake", Dataset: "big", Columns: cols}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Close() })
	write(t, rs, rows, n)

	agg := duckread.Query(t, `SELECT count(*) AS n, count(DISTINCT filename) AS objects, count(note) AS notes, count(e) AS es,
		bool_and(note IS NULL OR note = 'note ' || id) AS notes_ok,
		bool_and(dec IS NULL OR dec = CAST(id AS DECIMAL(38,2)) + CAST(id % 100 AS DECIMAL(38,2)) / 100) AS decs_ok,
		bool_and(e IS NULL OR (e[1] = id AND e[2] = -id)) AS es_ok,
		bool_and(m IS NULL OR CAST(m->>'$.i' AS BIGINT) = id) AS ms_ok,
		bool_and("by" IS NULL OR "by" = from_hex(printf('%02X%02X', id % 256, id // 256))) AS bys_ok,
		bool_and((id % 3 = 0) = (note IS NULL AND dec IS NULL AND e IS NULL AND m IS NULL AND "by" IS NULL)) AS nulls_ok,
		bool_and(_sequence_number = printf('49590338271490256608559692538361571095921575989%09d', id)) AS seqs_ok,
		bool_and(file_row_number = id) AS order_ok
		FROM read_parquet(`+duckread.Quote(s.BucketDir(bucket)+"/lake/**/*.parquet")+`, filename = true, file_row_number = true)`)
	want := map[string]string{"n": fmt.Sprint(n), "objects": "1", "notes": fmt.Sprint(n - (n+2)/3), "es": fmt.Sprint(n - (n+2)/3),
		"notes_ok": "true", "decs_ok": "true", "es_ok": "true", "ms_ok": "true", "bys_ok": "true", "nulls_ok": "true", "seqs_ok": "true", "order_ok": "true"}
	for k, w := range want {
		if g := fmt.Sprint(agg[0][k]); g != w {
			t.Errorf("%s = %s, want %s", k, g, w)
		}
	}
}

// A keyed dataset's objects say of each row whether it is an upsert or a
// delete (_op), and a delete carries its key with the other fields null.
func TestParquetChangelog(t *testing.T) {
	s := server(t)
	bucket := s.CreateBucket(t)
	cols := []schema.Column{{Name: "id", Type: typ("int"), Key: true}, {Name: "note", Type: typ("str")}}
	at := time.Unix(1_700_000_000, 0)
	rows := []record.Row{
		{Dataset: "keyed", Fields: []record.Field{{Name: "id", Value: int64(1)}, {Name: "note", Value: "first"}},
			Origin: record.Origin{Source: "src", ShardID: "shardId-000000000000", SequenceNumber: seq(1), ArrivalTime: at}},
		{Dataset: "keyed", Delete: true, Fields: []record.Field{{Name: "id", Value: int64(1)}, {Name: "note", Value: nil}},
			Origin: record.Origin{Source: "src", ShardID: "shardId-000000000000", SequenceNumber: seq(2), ArrivalTime: at}},
		{Dataset: "keyed", Fields: []record.Field{{Name: "id", Value: int64(2)}, {Name: "note", Value: "second"}},
			Origin: record.Origin{Source: "src", ShardID: "shardId-000000000000", SequenceNumber: seq(3), ArrivalTime: at}},
	}
	rs, err := s3sink.New(s3sink.Config{Client: s.Client(), Bucket: bucket, Prefix: "lake", Dataset: "keyed", Columns: cols, Changelog: true}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Close() })
	write(t, rs, rows, len(rows))

	got := duckread.Query(t, `SELECT id, note, _op FROM read_parquet(`+duckread.Quote(s.BucketDir(bucket)+"/lake/**/*.parquet")+`) ORDER BY _sequence_number`)
	want := []string{"1 first upsert", "1 <nil> delete", "2 second upsert"}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if g := fmt.Sprint(got[i]["id"], " ", got[i]["note"], " ", got[i]["_op"]); g != w {
			t.Errorf("row %d: %s, want %s", i, g, w)
		}
	}
}
