package parquetenc_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/duckread"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/parquetenc"
)

func typ(t *testing.T, s string) schema.Type {
	t.Helper()
	ty, err := schema.ParseType(s)
	if err != nil {
		t.Fatal(err)
	}
	return ty
}

// Iceberg finds a data file's columns by field id: every column, an
// embedding's element included, carries the id it was given, as an
// independent reader (DuckDB's parquet_schema) sees them.
func TestFieldIDs(t *testing.T) {
	cols := []schema.Column{{Name: "id", Type: typ(t, "int")}, {Name: "e", Type: typ(t, "optional[embedding[2]]")}}
	ids := map[string]int{"id": 1, "e": 2, "e.element": 3}
	for i, name := range parquetenc.OriginColumns {
		ids[name] = 10 + i
	}
	enc, err := parquetenc.New(cols, parquetenc.Options{FieldIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	row := record.Row{Fields: []record.Field{{Name: "id", Value: int64(7)}, {Name: "e", Value: []float64{1, 2}}},
		Origin: record.Origin{Source: "s", ShardID: "shardId-000000000000", SequenceNumber: "1", ArrivalTime: time.Unix(1, 0)}}
	var buf bytes.Buffer
	if err := enc.Encode(&buf, []*record.Row{&row}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "f.parquet")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range duckread.Query(t, `SELECT name, field_id FROM parquet_schema(`+duckread.Quote(path)+`)`) {
		got[fmt.Sprint(r["name"])] = fmt.Sprint(r["field_id"])
	}
	for name, id := range ids {
		leaf := name
		if name == "e.element" {
			leaf = "element"
		}
		if got[leaf] != fmt.Sprint(id) {
			t.Errorf("column %s: field_id %s, want %d (schema: %v)", name, got[leaf], id, got)
		}
	}
}

// A column without an id is refused when ids are asked for: a data file
// whose column Iceberg cannot match would read as nulls.
func TestFieldIDMissing(t *testing.T) {
	_, err := parquetenc.New([]schema.Column{{Name: "id", Type: typ(t, "int")}}, parquetenc.Options{FieldIDs: map[string]int{"id": 1}})
	if err == nil {
		t.Fatal("no error for origin columns without ids")
	}
}
