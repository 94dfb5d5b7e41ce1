package icebergread

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/linkedin/goavro/v2"
	"github.com/parquet-go/parquet-go"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/pgtest"
)

// The table below is written by hand, as the Iceberg spec (format v2) lays
// it out: a catalog row, metadata JSON, a manifest list and two manifests
// (goavro, one deflate-compressed), Parquet data files (parquet-go). The
// reader under test decodes the Avro with avsc, so the two sides share no
// Avro code.

const (
	bucket = "wh"
	loc    = "s3://wh/lake/events/clicks"
	// Snapshot ids use all 63 bits: beyond a float64's (and JavaScript's)
	// exact range, so a reader that loses precision fails here.
	parentID  int64 = 4611686018427387903
	currentID int64 = 7363456789012345677
	dayA            = 20794 // 2026-12-07
	dayB            = 20795
)

type row struct {
	ID string `parquet:"id"`
	N  int64  `parquet:"n"`
}

const entrySchema = `{"type": "record", "name": "manifest_entry", "fields": [
  {"name": "status", "type": "int", "field-id": 0},
  {"name": "snapshot_id", "type": ["null", "long"], "default": null, "field-id": 1},
  {"name": "sequence_number", "type": ["null", "long"], "default": null, "field-id": 3},
  {"name": "file_sequence_number", "type": ["null", "long"], "default": null, "field-id": 4},
  {"name": "data_file", "field-id": 2, "type": {"type": "record", "name": "r2", "fields": [
    {"name": "content", "type": "int", "field-id": 134},
    {"name": "file_path", "type": "string", "field-id": 100},
    {"name": "file_format", "type": "string", "field-id": 101},
    {"name": "partition", "field-id": 102, "type": {"type": "record", "name": "r102", "fields": [
      {"name": "day", "type": ["null", {"type": "int", "logicalType": "date"}], "default": null, "field-id": 1000}]}},
    {"name": "record_count", "type": "long", "field-id": 103},
    {"name": "file_size_in_bytes", "type": "long", "field-id": 104}]}}]}`

const listSchema = `{"type": "record", "name": "manifest_file", "fields": [
  {"name": "manifest_path", "type": "string", "field-id": 500},
  {"name": "manifest_length", "type": "long", "field-id": 501},
  {"name": "partition_spec_id", "type": "int", "field-id": 502},
  {"name": "content", "type": "int", "field-id": 517},
  {"name": "sequence_number", "type": "long", "field-id": 515},
  {"name": "min_sequence_number", "type": "long", "field-id": 516},
  {"name": "added_snapshot_id", "type": "long", "field-id": 503},
  {"name": "added_files_count", "type": "int", "field-id": 504},
  {"name": "existing_files_count", "type": "int", "field-id": 505},
  {"name": "deleted_files_count", "type": "int", "field-id": 506},
  {"name": "added_rows_count", "type": "long", "field-id": 512},
  {"name": "existing_rows_count", "type": "long", "field-id": 513},
  {"name": "deleted_rows_count", "type": "long", "field-id": 514}]}`

// warehouse writes files under root/<bucket>/<key>.
type warehouse struct {
	t    *testing.T
	root string
}

func (w warehouse) bucketDir(b string) string { return filepath.Join(w.root, b) }

func (w warehouse) local(uri string) string {
	p, err := S3Files(w.bucketDir)(uri)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w warehouse) parquet(uri string, rows ...row) int64 {
	p := w.local(uri)
	if err := parquet.WriteFile(p, rows); err != nil {
		w.t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		w.t.Fatal(err)
	}
	return st.Size()
}

func (w warehouse) avro(uri, schema, codec string, meta map[string][]byte, records ...map[string]any) int64 {
	p := w.local(uri)
	f, err := os.Create(p)
	if err != nil {
		w.t.Fatal(err)
	}
	ocf, err := goavro.NewOCFWriter(goavro.OCFConfig{W: f, Schema: schema, CompressionName: codec, MetaData: meta})
	if err != nil {
		w.t.Fatal(err)
	}
	recs := make([]any, len(records))
	for i, r := range records {
		recs[i] = r
	}
	if err := ocf.Append(recs); err != nil {
		w.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		w.t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		w.t.Fatal(err)
	}
	return st.Size()
}

func (w warehouse) json(uri string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(w.local(uri), b, 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func long(v int64) map[string]any { return map[string]any{"long": v} }

func entry(status int, snapshotID, seq any, path string, day any, count, size int64) map[string]any {
	part := map[string]any{"day": nil}
	if day != nil {
		part["day"] = map[string]any{"int.date": time.Unix(int64(day.(int))*86400, 0).UTC()}
	}
	return map[string]any{
		"status": status, "snapshot_id": snapshotID, "sequence_number": seq, "file_sequence_number": seq,
		"data_file": map[string]any{
			"content": 0, "file_path": path, "file_format": "PARQUET", "partition": part,
			"record_count": count, "file_size_in_bytes": size,
		},
	}
}

// catalogDB creates the catalog tables (Java JdbcCatalog's DDL) and the
// table's row.
func catalogDB(t *testing.T, metadata, previous string) string {
	t.Helper()
	dsn := pgtest.Start(t).CreateDatabase(t)
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var prev any
	if previous != "" {
		prev = previous
	}
	for _, sql := range []string{
		`CREATE TABLE iceberg_tables (catalog_name VARCHAR(255) NOT NULL, table_namespace VARCHAR(255) NOT NULL,
  table_name VARCHAR(255) NOT NULL, metadata_location VARCHAR(1000), previous_metadata_location VARCHAR(1000),
  iceberg_type VARCHAR(5), PRIMARY KEY (catalog_name, table_namespace, table_name))`,
	} {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(t.Context(), `INSERT INTO iceberg_tables VALUES ('default', 'lake.events', 'clicks', $1, $2, 'TABLE'), ('default', 'lake.events', 'empty', $3, NULL, 'TABLE')`,
		metadata, prev, loc+"/metadata/empty.metadata.json"); err != nil {
		t.Fatal(err)
	}
	return dsn
}

// writeTable writes two snapshots: the parent added d.parquet; the current
// one added a and b (entries inheriting snapshot id and sequence number) and
// deleted c. An orphan file (a failed commit's) lies in the data folder.
func writeTable(t *testing.T) (warehouse, string, string) {
	w := warehouse{t: t, root: t.TempDir()}
	sizeA := w.parquet(loc+"/data/day=2026-12-07/a.parquet", row{"a1", 1}, row{"a2", 2}, row{"a3", 3})
	sizeB := w.parquet(loc+"/data/day=2026-12-08/b.parquet", row{"b1", 1}, row{"b2", 2})
	sizeC := w.parquet(loc+"/data/day=2026-12-08/c.parquet", row{"c1", 1})
	sizeD := w.parquet(loc+"/data/d.parquet", row{"d1", 1}, row{"d1", 2})
	w.parquet(loc+"/data/day=2026-12-07/orphan.parquet", row{"z1", 1})

	specMeta := map[string][]byte{
		"schema":            []byte(`{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","required":true,"type":"string"},{"id":2,"name":"n","required":true,"type":"long"}]}`),
		"partition-spec":    []byte(`[{"source-id":3,"field-id":1000,"name":"day","transform":"day"}]`),
		"partition-spec-id": []byte("0"),
		"format-version":    []byte("2"),
		"content":           []byte("data"),
	}
	m0 := loc + "/metadata/m0.avro"
	len0 := w.avro(m0, entrySchema, goavro.CompressionNullLabel, specMeta,
		entry(0, long(parentID), long(1), loc+"/data/d.parquet", nil, 2, sizeD))
	m1 := loc + "/metadata/m1.avro"
	len1 := w.avro(m1, entrySchema, goavro.CompressionDeflateLabel, specMeta,
		entry(1, nil, nil, loc+"/data/day=2026-12-07/a.parquet", dayA, 3, sizeA),
		entry(1, nil, nil, loc+"/data/day=2026-12-08/b.parquet", dayB, 2, sizeB),
		entry(2, long(currentID), long(2), loc+"/data/day=2026-12-08/c.parquet", dayB, 1, sizeC))

	listOf := func(seq, snap int64, added, existing, deleted int32, addedRows, existingRows, deletedRows int64) map[string]any {
		return map[string]any{"partition_spec_id": 0, "content": 0, "sequence_number": seq, "min_sequence_number": seq,
			"added_snapshot_id": snap, "added_files_count": added, "existing_files_count": existing, "deleted_files_count": deleted,
			"added_rows_count": addedRows, "existing_rows_count": existingRows, "deleted_rows_count": deletedRows}
	}
	with := func(m map[string]any, path string, length int64) map[string]any {
		m["manifest_path"], m["manifest_length"] = path, length
		return m
	}
	listMeta := map[string][]byte{"snapshot-id": []byte(fmt.Sprint(currentID)), "sequence-number": []byte("2"), "format-version": []byte("2")}
	list1 := loc + "/metadata/snap-1.avro"
	w.avro(list1, listSchema, goavro.CompressionNullLabel, listMeta, with(listOf(1, parentID, 1, 0, 0, 2, 0, 0), m0, len0))
	list2 := loc + "/metadata/snap-2.avro"
	w.avro(list2, listSchema, goavro.CompressionDeflateLabel, listMeta,
		with(listOf(2, currentID, 2, 0, 1, 5, 0, 1), m1, len1),
		with(listOf(1, parentID, 0, 1, 0, 0, 2, 0), m0, len0))

	schema := map[string]any{"type": "struct", "schema-id": 0, "fields": []any{
		map[string]any{"id": 1, "name": "id", "required": true, "type": "string"},
		map[string]any{"id": 2, "name": "n", "required": true, "type": "long"},
	}}
	base := func() map[string]any {
		return map[string]any{
			"format-version": 2, "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1", "location": loc,
			"last-sequence-number": 0, "last-updated-ms": 1765000000000, "last-column-id": 2,
			"current-schema-id": 0, "schemas": []any{schema},
			"default-spec-id": 0, "partition-specs": []any{map[string]any{"spec-id": 0, "fields": []any{}}},
			"last-partition-id": 999, "default-sort-order-id": 0, "sort-orders": []any{map[string]any{"order-id": 0, "fields": []any{}}},
			"properties": map[string]any{}, "snapshots": []any{}, "snapshot-log": []any{}, "metadata-log": []any{},
		}
	}
	w.json(loc+"/metadata/empty.metadata.json", base())

	snap1 := map[string]any{"snapshot-id": parentID, "sequence-number": 1, "timestamp-ms": 1765000001000,
		"manifest-list": list1, "summary": map[string]any{"operation": "append", "added-records": "2"}, "schema-id": 0}
	snap2 := map[string]any{"snapshot-id": currentID, "parent-snapshot-id": parentID, "sequence-number": 2, "timestamp-ms": 1765000002000,
		"manifest-list": list2, "summary": map[string]any{"operation": "overwrite", "added-records": "5", "deleted-records": "1"}, "schema-id": 0}
	previous := loc + "/metadata/00001-aaaa.metadata.json"
	md := base()
	md["last-sequence-number"], md["current-snapshot-id"], md["snapshots"] = 1, parentID, []any{snap1}
	w.json(previous, md)
	current := loc + "/metadata/00002-bbbb.metadata.json"
	md = base()
	md["last-sequence-number"], md["current-snapshot-id"], md["snapshots"] = 2, currentID, []any{snap1, snap2}
	md["properties"] = map[string]any{"kinesis-ingest.seq.app.src.shardId-000000000000": "49590338271490256608559692538361571095921575989136588898/0"}
	w.json(current, md)
	return w, current, previous
}

func TestReadFollowsTheCurrentSnapshot(t *testing.T) {
	w, current, previous := writeTable(t)
	dsn := catalogDB(t, current, previous)
	src := Source{DSN: dsn, Namespace: []string{"lake", "events"}, Table: "clicks", Locate: S3Files(w.bucketDir)}
	tbl := Read(t, src)

	if tbl.MetadataLocation != current || tbl.PreviousMetadataLocation != previous {
		t.Errorf("locations = %s, %s; want %s, %s", tbl.MetadataLocation, tbl.PreviousMetadataLocation, current, previous)
	}
	if got := tbl.Properties["kinesis-ingest.seq.app.src.shardId-000000000000"]; got != "49590338271490256608559692538361571095921575989136588898/0" {
		t.Errorf("property = %q", got)
	}
	if tbl.Snapshots != 2 {
		t.Errorf("Snapshots = %d, want 2", tbl.Snapshots)
	}
	if h := tbl.History; len(h) != 2 || h[0].ID != parentID || h[0].ParentID != nil || h[1].ID != currentID || h[1].SequenceNumber != 2 {
		t.Errorf("History = %+v, want the parent %d then the current %d", h, parentID, currentID)
	}
	s := tbl.Snapshot
	if s == nil || s.ID != currentID || s.SequenceNumber != 2 || s.ParentID == nil || *s.ParentID != parentID ||
		s.Summary["operation"] != "overwrite" || s.Summary["added-records"] != "5" {
		t.Fatalf("Snapshot = %+v, want id %d, sequence 2, parent %d, the summary", s, currentID, parentID)
	}

	if len(tbl.Manifests) != 2 || tbl.Manifests[0].AddedSnapshotID != currentID || tbl.Manifests[1].AddedSnapshotID != parentID ||
		tbl.Manifests[0].AddedRows != 5 || tbl.Manifests[0].DeletedFiles != 1 || tbl.Manifests[1].ExistingRows != 2 {
		t.Errorf("Manifests = %+v", tbl.Manifests)
	}
	if got := tbl.Manifests[0].Meta["partition-spec"]; !strings.Contains(got, `"transform":"day"`) {
		t.Errorf("manifest header partition-spec = %q", got)
	}

	type file struct {
		path          string
		count         int64
		day           any
		status        int
		snapshot, seq int64
	}
	var got []file
	for _, f := range tbl.Files {
		want, _ := S3Files(w.bucketDir)(f.Path)
		if f.Local != want {
			t.Errorf("%s: Local = %s, want %s", f.Path, f.Local, want)
		}
		if st, err := os.Stat(f.Local); err != nil || st.Size() != f.SizeBytes {
			t.Errorf("%s: size %d in the manifest, on disk %v %v", f.Path, f.SizeBytes, st, err)
		}
		got = append(got, file{strings.TrimPrefix(f.Path, loc+"/data/"), f.RecordCount, f.Partition["day"], f.Status, f.SnapshotID, f.SequenceNumber})
	}
	want := []file{
		{"day=2026-12-07/a.parquet", 3, json.Number(fmt.Sprint(dayA)), 1, currentID, 2}, // inherited
		{"day=2026-12-08/b.parquet", 2, json.Number(fmt.Sprint(dayB)), 1, currentID, 2},
		{"d.parquet", 2, nil, 0, parentID, 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Files =\n%+v\nwant\n%+v", got, want)
	}
	if tbl.DeletedEntries != 1 || tbl.DeleteFiles != 0 {
		t.Errorf("DeletedEntries, DeleteFiles = %d, %d; want 1, 0", tbl.DeletedEntries, tbl.DeleteFiles)
	}

	// The deleted file (c) and the orphan (z) are on disk but not in the table.
	counts := CountByID(t, tbl, "id")
	if wantCounts := map[string]int{"a1": 1, "a2": 1, "a3": 1, "b1": 1, "b2": 1, "d1": 2}; !reflect.DeepEqual(counts, wantCounts) {
		t.Errorf("CountByID = %v, want %v", counts, wantCounts)
	}
	rows := Rows(t, tbl, "id, n", "id, n")
	var ids []string
	for _, r := range rows {
		ids = append(ids, fmt.Sprintf("%v:%v", r["id"], r["n"]))
	}
	if got, want := strings.Join(ids, " "), "a1:1 a2:2 a3:3 b1:1 b2:2 d1:1 d1:2"; got != want {
		t.Errorf("Rows = %s, want %s", got, want)
	}
}

func TestReadEmptyAndMissing(t *testing.T) {
	w, current, _ := writeTable(t)
	dsn := catalogDB(t, current, "")
	locate := S3Files(w.bucketDir)
	tbl := Read(t, Source{DSN: dsn, Namespace: []string{"lake", "events"}, Table: "empty", Locate: locate})
	if tbl.Snapshot != nil || tbl.Snapshots != 0 || len(tbl.Files) != 0 {
		t.Fatalf("a table without snapshots: %+v", tbl)
	}
	if got := CountByID(t, tbl, "id"); len(got) != 0 {
		t.Fatalf("CountByID of an empty table = %v", got)
	}

	tests := []struct {
		name        string
		src         Source
		errContains string
	}{
		{"no such table", Source{DSN: dsn, Namespace: []string{"lake", "events"}, Table: "nope", Locate: locate}, `no table lake.events.nope`},
		{"another catalog", Source{DSN: dsn, Catalog: "spark", Namespace: []string{"lake", "events"}, Table: "clicks", Locate: locate}, `catalog "spark" has no table`},
		{"files elsewhere", Source{DSN: dsn, Namespace: []string{"lake", "events"}, Table: "clicks", Locate: S3Files(func(string) string { return t.TempDir() })}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(t, tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.errContains) {
				t.Fatalf("Load = %v, want an error containing %q", err, tt.errContains)
			}
		})
	}
}

func TestS3Files(t *testing.T) {
	locate := S3Files(func(b string) string { return "/data/" + b })
	tests := []struct {
		uri, want, errContains string
	}{
		{"s3://wh/a/b/c.parquet", "/data/wh/a/b/c.parquet", ""},
		{"s3a://wh/k", "/data/wh/k", ""},
		{"file:///tmp/x.json", "/tmp/x.json", ""},
		{"/tmp/x.json", "/tmp/x.json", ""},
		{"s3://wh/", "", "want s3://bucket/key"},
		{"gs://wh/k", "", `scheme "gs"`},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			got, err := locate(tt.uri)
			if tt.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errContains) {
					t.Fatalf("= %q, %v; want an error containing %q", got, err, tt.errContains)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
