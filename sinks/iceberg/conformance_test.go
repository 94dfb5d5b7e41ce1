package iceberg_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/duckread"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/icebergread"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/s3test"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/iceberg"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/sinktest"
)

// The conformance suite every sink runs, on a table per subtest, read back
// by the independent reader (avsc for the manifests, DuckDB for the data
// files). The S3 server is the suite's own: Break stops it. The sink also
// commits on its own (every 200 ms) while the suite accepts, flushes and
// breaks the storage; the integration tests run it at commit_interval 1s.
func TestConformance(t *testing.T) {
	const interval = 200 * time.Millisecond
	l := newLake(t)
	srv, err := s3test.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	l.s3, l.bucket = srv, srv.CreateBucket(t)
	n := 0
	var table string
	var cols []schema.Column
	openTable := func(t *testing.T) sinks.RowSink {
		return open(t, l.config(t, func(c *iceberg.Config) {
			c.Table, c.Columns, c.PartitionBy, c.CommitInterval = table, cols, nil, interval
		}))
	}
	sinktest.RunRowSink(t, sinktest.RowHarness{
		New: func(t *testing.T) sinks.RowSink {
			n++
			table, cols = fmt.Sprintf("t%d", n), sinktest.Columns()
			return openTable(t)
		},
		Reopen:  openTable,
		Read:    func(t *testing.T) []record.Row { return readTable(t, l, table, cols) },
		Dedupes: true,
		Break:   func(t *testing.T) { srv.Stop(t) },
		Heal:    func(t *testing.T) { srv.Start(t) },
		// A string where the table holds a long.
		Refuse: func(r record.Row) record.Row {
			f := append([]record.Field(nil), r.Fields...)
			f[0].Value = "not a number"
			r.Fields = f
			return r
		},
		RoundTrip: roundTripRows,
		Typed:     true,
	})
}

// roundTripRows are edge values of the suite's columns, nulls and two
// sub-records of one aggregate; TestCreateAndWrite and TestSchemaEvolves
// read back the other types.
func roundTripRows() []record.Row {
	at := time.Date(2024, 6, 30, 23, 59, 59, 999999000, time.FixedZone("CET", 3600))
	o := func(seq, sub int) record.Origin {
		return record.Origin{Source: "sinktest \"quoted\" ünïcode", ShardID: "shardId-000000000009", SequenceNumber: seq2(seq), SubSequence: sub, ArrivalTime: at}
	}
	return []record.Row{
		{Origin: o(1, 0), Fields: []record.Field{{Name: "id", Value: int64(-9223372036854775808)}, {Name: "shard", Value: "héllo \"wörld\"\n世界 😀\u2028"},
			{Name: "payload", Value: ""}, {Name: "at", Value: at}}},
		{Origin: o(2, 0), Fields: []record.Field{{Name: "id", Value: int64(9223372036854775807)}, {Name: "shard", Value: nil},
			{Name: "payload", Value: nil}, {Name: "at", Value: nil}}},
		{Origin: o(2, 1), Fields: []record.Field{{Name: "id", Value: int64(3)}, {Name: "shard", Value: "\x00nul"},
			{Name: "payload", Value: "x"}, {Name: "at", Value: time.Unix(0, 0).UTC()}}},
	}
}

func seq2(n int) string { return fmt.Sprintf("4959033827149025660855969253836157109592157598%010d", n) }

// readTable reads the table's current snapshot with DuckDB, each column
// as text, and types the values as the columns say.
func readTable(t *testing.T, l *lake, table string, cols []schema.Column) []record.Row {
	t.Helper()
	tbl := icebergread.Read(t, icebergread.Source{DSN: l.dsn, Catalog: "test", Namespace: []string{"lake"}, Table: table,
		Locate: icebergread.S3Files(l.s3.BucketDir)})
	if len(tbl.Files) == 0 {
		return nil
	}
	sel := "_source, _shard_id, _sequence_number, _subsequence, strftime(_arrival_time AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ') AS _arrival_time"
	for _, c := range cols {
		q := `"` + c.Name + `"`
		switch base(c.Type).Kind {
		case schema.KindDatetime:
			sel += fmt.Sprintf(", strftime(%s AT TIME ZONE 'UTC', '%%Y-%%m-%%dT%%H:%%M:%%S.%%fZ') AS %s", q, q)
		case schema.KindBytes:
			sel += fmt.Sprintf(", to_base64(%s) AS %s", q, q)
		case schema.KindEmbedding:
			sel += fmt.Sprintf(", to_json(%s)::VARCHAR AS %s", q, q)
		default:
			sel += fmt.Sprintf(", CAST(%s AS VARCHAR) AS %s", q, q)
		}
	}
	got := duckread.Query(t, "SELECT "+sel+" FROM "+tbl.ReadParquet(t)+
		" ORDER BY _shard_id, length(_sequence_number), _sequence_number, _subsequence")
	out := make([]record.Row, len(got))
	for i, g := range got {
		r := &out[i]
		r.Origin.Source, r.Origin.ShardID, r.Origin.SequenceNumber = str(g["_source"]), str(g["_shard_id"]), str(g["_sequence_number"])
		sub, _ := strconv.Atoi(str(g["_subsequence"]))
		r.Origin.SubSequence = sub
		at, err := time.Parse(time.RFC3339Nano, str(g["_arrival_time"]))
		if err != nil {
			t.Fatalf("_arrival_time %v: %v", g["_arrival_time"], err)
		}
		r.Origin.ArrivalTime = at
		for _, c := range cols {
			r.Fields = append(r.Fields, record.Field{Name: c.Name, Value: typed(t, base(c.Type), g[c.Name])})
		}
	}
	return out
}

func base(t schema.Type) schema.Type {
	if t.Kind == schema.KindOptional {
		return *t.Elem
	}
	return t
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func typed(t *testing.T, ty schema.Type, v any) any {
	t.Helper()
	if v == nil {
		return nil
	}
	s := fmt.Sprint(v)
	var out any
	var err error
	switch ty.Kind {
	case schema.KindInt:
		out, err = strconv.ParseInt(s, 10, 64)
	case schema.KindFloat:
		out, err = strconv.ParseFloat(s, 64)
	case schema.KindBool:
		out, err = strconv.ParseBool(s)
	case schema.KindStr:
		out = s
	case schema.KindBytes:
		out, err = base64.StdEncoding.DecodeString(s)
	case schema.KindDatetime:
		out, err = time.Parse(time.RFC3339Nano, s)
	case schema.KindDate:
		var d time.Time
		d, err = time.Parse(time.DateOnly, s)
		out = record.Date{Year: d.Year(), Month: d.Month(), Day: d.Day()}
		if s == "0001-01-01" {
			out, err = record.Date{Year: 1, Month: time.January, Day: 1}, nil
		}
	case schema.KindDecimal:
		out = record.Decimal(s)
	case schema.KindEmbedding:
		var fs []float64
		err = json.Unmarshal([]byte(s), &fs)
		out = fs
	case schema.KindList, schema.KindMap, schema.KindStruct:
		err = json.Unmarshal([]byte(s), &out) // stored as JSON text
	default:
		t.Fatalf("no reader for %s", ty)
	}
	if err != nil {
		t.Fatalf("value %q of a %s column: %v", s, ty, err)
	}
	return out
}
