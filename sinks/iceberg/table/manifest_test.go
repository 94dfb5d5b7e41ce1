package table

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// testTable is a schema and spec using every transform the sink writes.
func testTable(t *testing.T) (Schema, Spec) {
	t.Helper()
	schema := Schema{ID: 0, Fields: []Field{
		{ID: 1, Name: "id", Required: true, Type: Primitive(TypeLong)},
		{ID: 2, Name: "ts", Required: true, Type: Primitive(TypeTimestampTZ)},
		{ID: 3, Name: "name", Type: Primitive(TypeString)},
		{ID: 4, Name: "amount", Type: Decimal(38, 2)},
		{ID: 5, Name: "tags", Type: ListOf(6, Primitive(TypeString), false)},
		{ID: 7, Name: "day", Type: Primitive(TypeDate)},
		{ID: 8, Name: "price", Type: Primitive(TypeDouble)},
	}}
	spec := Spec{ID: 0, Fields: []PartitionField{
		{SourceID: 2, FieldID: 1000, Name: "ts_day", Transform: "day"},
		{SourceID: 1, FieldID: 1001, Name: "id_bucket", Transform: "bucket[16]"},
		{SourceID: 3, FieldID: 1002, Name: "name", Transform: "identity"},
		{SourceID: 4, FieldID: 1003, Name: "amount", Transform: "identity"},
		{SourceID: 7, FieldID: 1004, Name: "day", Transform: "identity"},
		{SourceID: 2, FieldID: 1005, Name: "ts_hour", Transform: "hour"},
	}}
	if err := spec.validate(schema); err != nil {
		t.Fatal(err)
	}
	return schema, spec
}

// partitionOf applies spec's transforms to a row given as column id → value.
func partitionOf(t *testing.T, spec Spec, row map[int]any) []any {
	t.Helper()
	trs, err := spec.Transforms()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]any, len(trs))
	for i, tr := range trs {
		if out[i], err = tr.Apply(row[spec.Fields[i].SourceID]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func testFiles(t *testing.T, spec Spec) []DataFile {
	ts1 := time.Date(2026, 12, 7, 13, 45, 0, 0, time.UTC)
	ts2 := time.Date(2026, 12, 8, 1, 2, 3, 4000, time.UTC)
	lo, _ := SerializeValue(Primitive(TypeLong), int64(7))
	hi, _ := SerializeValue(Primitive(TypeLong), int64(34))
	sortOrder := 0
	return []DataFile{
		{
			Path: "s3://bucket/wh/db/t/data/ts_day=2026-12-07/a.parquet", RecordCount: 3, FileSizeBytes: 1234,
			Partition:   partitionOf(t, spec, map[int]any{1: int64(34), 2: ts1, 3: "alpha", 4: record.Decimal("-12.50"), 7: record.Date{Year: 2026, Month: 12, Day: 7}}),
			ColumnSizes: map[int]int64{1: 40, 2: 48}, ValueCounts: map[int]int64{1: 3, 2: 3, 3: 3},
			NullValueCounts: map[int]int64{1: 0, 2: 0, 3: 1}, NaNValueCounts: map[int]int64{8: 0},
			LowerBounds: map[int][]byte{1: lo}, UpperBounds: map[int][]byte{1: hi},
			SplitOffsets: []int64{4}, SortOrderID: &sortOrder,
		},
		{
			Path: "s3://bucket/wh/db/t/data/ts_day=2026-12-08/b.parquet", RecordCount: 5, FileSizeBytes: 999,
			Partition: partitionOf(t, spec, map[int]any{1: int64(7), 2: ts2, 3: nil, 4: record.Decimal("1.05"), 7: nil}),
		},
	}
}

func TestManifestRoundTrip(t *testing.T) {
	schema, spec := testTable(t)
	files := testFiles(t, spec)
	var buf bytes.Buffer
	mf, err := WriteManifest(&buf, schema, spec, files)
	if err != nil {
		t.Fatal(err)
	}
	if mf.Length != int64(buf.Len()) || mf.AddedFiles != 2 || mf.AddedRows != 8 || mf.SpecID != 0 ||
		mf.SequenceNumber != UnassignedSequenceNumber || mf.AddedSnapshotID != 0 {
		t.Errorf("manifest file = %+v", mf)
	}
	entries, err := ReadManifest(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(files) {
		t.Fatalf("%d entries, want %d", len(entries), len(files))
	}
	for i, e := range entries {
		if e.Status != StatusAdded || e.SnapshotID != nil || e.SequenceNumber != nil || e.FileSequenceNumber != nil {
			t.Errorf("entry %d: status %d snapshot %v seq %v fileseq %v, want ADDED with nulls (inherited)", i, e.Status, e.SnapshotID, e.SequenceNumber, e.FileSequenceNumber)
		}
		want := files[i]
		want.Format = "parquet"
		got := e.File
		gotPart, wantPart := got.Partition, want.Partition
		got.Partition, want.Partition = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, got, want)
		}
		for j := range wantPart {
			if !equalValue(gotPart[j], wantPart[j]) {
				t.Errorf("entry %d partition %s = %#v, want %#v", i, spec.Fields[j].Name, gotPart[j], wantPart[j])
			}
		}
	}
	// The summaries: day bounds are dates (4 bytes), name has a null.
	day := func(s string) []byte {
		d, _ := time.Parse("2006-01-02", s)
		b, _ := SerializeValue(Primitive(TypeDate), d)
		return b
	}
	if s := mf.Partitions[0]; s.ContainsNull || !bytes.Equal(s.LowerBound, day("2026-12-07")) || !bytes.Equal(s.UpperBound, day("2026-12-08")) {
		t.Errorf("ts_day summary = %+v", s)
	}
	if s := mf.Partitions[2]; !s.ContainsNull || string(s.LowerBound) != "alpha" || string(s.UpperBound) != "alpha" {
		t.Errorf("name summary = %+v", s)
	}
	// decimal(38,2): -12.50 is unscaled -1250 = 0xfb1e, 1.05 is 105 = 0x69.
	if s := mf.Partitions[3]; hex.EncodeToString(s.LowerBound) != "fb1e" || hex.EncodeToString(s.UpperBound) != "69" {
		t.Errorf("amount summary = %+v", s)
	}
}

func TestManifestListRoundTrip(t *testing.T) {
	parent := int64(111)
	nan := false
	carried := ManifestFile{Path: "s3://b/m0.avro", Length: 500, SpecID: 0, SequenceNumber: 3, MinSequenceNumber: 2,
		AddedSnapshotID: 111, AddedFiles: 1, ExistingFiles: 2, AddedRows: 10, ExistingRows: 20,
		Partitions: []FieldSummary{{ContainsNull: true, ContainsNaN: &nan, LowerBound: []byte{1}, UpperBound: []byte{9}}}}
	fresh := ManifestFile{Path: "s3://b/m1.avro", Length: 700, SpecID: 0, SequenceNumber: UnassignedSequenceNumber,
		MinSequenceNumber: UnassignedSequenceNumber, AddedFiles: 2, AddedRows: 8}
	var buf bytes.Buffer
	if err := WriteManifestList(&buf, 222, &parent, 4, []ManifestFile{carried, fresh}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifestList(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	wantFresh := fresh
	wantFresh.SequenceNumber, wantFresh.MinSequenceNumber, wantFresh.AddedSnapshotID = 4, 4, 222
	if want := []ManifestFile{carried, wantFresh}; !reflect.DeepEqual(got, want) {
		t.Errorf("read back\n got %+v\nwant %+v", got, want)
	}
}

func TestWriteManifestErrors(t *testing.T) {
	schema, spec := testTable(t)
	good := testFiles(t, spec)[0]
	tests := []struct {
		name        string
		mutate      func(*DataFile)
		errContains string
	}{
		{"no path", func(f *DataFile) { f.Path = "" }, "empty path"},
		{"short partition", func(f *DataFile) { f.Partition = f.Partition[:2] }, "2 partition values"},
		{"wrong partition type", func(f *DataFile) { f.Partition[1] = "x" }, `"id_bucket"`},
		{"negative count", func(f *DataFile) { f.RecordCount = -1 }, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := good
			f.Partition = append([]any(nil), good.Partition...)
			tt.mutate(&f)
			_, err := WriteManifest(&bytes.Buffer{}, schema, spec, []DataFile{f})
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.errContains)) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.errContains)
			}
		})
	}
}

// avscRead decodes an Avro container file with npm avsc (testdata/readavro.js).
func avscRead(t *testing.T, file string) (meta map[string]string, schema any, records []map[string]any) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node not found (Node.js 20+ is a prerequisite, see README): %v", err)
		}
		t.Skipf("node not found (Node.js 20+ is a prerequisite, see README): the independent avsc read of manifests is skipped: %v", err)
	}
	avsc := filepath.Join("..", "..", "..", "decoders", "avrodec", "testdata", "js", "node_modules", "avsc")
	if _, err := os.Stat(avsc); err != nil {
		t.Fatalf("npm avsc is not installed at %s: run `make deps`: %v", avsc, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, filepath.Join("testdata", "readavro.js"), file).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node readavro.js %s: %v\n%s", file, err, stderr)
	}
	var res struct {
		Meta    map[string]string `json:"meta"`
		Schema  any               `json:"schema"`
		Records []map[string]any  `json:"records"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("readavro.js output: %v\n%s", err, out)
	}
	return res.Meta, res.Schema, res.Records
}

// fieldIDs maps each record field of an Avro schema, by dotted path, to its
// "field-id" (-1 when it has none), and arrays to their "element-id".
func fieldIDs(schema any) map[string]int {
	out := map[string]int{}
	var walk func(prefix string, s any)
	walk = func(prefix string, s any) {
		switch x := s.(type) {
		case []any:
			for _, b := range x {
				walk(prefix, b)
			}
		case map[string]any:
			switch x["type"] {
			case "record":
				for _, f := range x["fields"].([]any) {
					fm := f.(map[string]any)
					path := fm["name"].(string)
					if prefix != "" {
						path = prefix + "." + path
					}
					id := -1
					if n, ok := fm["field-id"].(float64); ok {
						id = int(n)
					}
					out[path] = id
					walk(path, fm["type"])
				}
			case "array":
				if n, ok := x["element-id"].(float64); ok {
					out[prefix+"[]"] = int(n)
				}
				walk(prefix, x["items"])
			}
		}
	}
	walk("", schema)
	return out
}

// TestManifestReadByAvsc writes a manifest and a manifest list and reads
// them with npm avsc, not goavro: what another engine's Avro library sees
// is what Iceberg readers get: the field ids in the writer schema (readers
// project by id), the metadata keys, the paths, counts, partition values
// and the null snapshot ids and sequence numbers an ADDED entry inherits.
func TestManifestReadByAvsc(t *testing.T) {
	schema, spec := testTable(t)
	files := testFiles(t, spec)
	dir := t.TempDir()
	manifestPath := filepath.Join(dir, "m.avro")
	f, err := os.Create(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	mf, err := WriteManifest(f, schema, spec, files)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	meta, avroSchema, records := avscRead(t, manifestPath)

	wantIDs := map[string]int{
		"status": 0, "snapshot_id": 1, "sequence_number": 3, "file_sequence_number": 4, "data_file": 2,
		"data_file.content": 134, "data_file.file_path": 100, "data_file.file_format": 101, "data_file.partition": 102,
		"data_file.partition.ts_day": 1000, "data_file.partition.id_bucket": 1001, "data_file.partition.name": 1002,
		"data_file.partition.amount": 1003, "data_file.partition.day": 1004, "data_file.partition.ts_hour": 1005,
		"data_file.record_count": 103, "data_file.file_size_in_bytes": 104,
		"data_file.column_sizes": 108, "data_file.column_sizes.key": 117, "data_file.column_sizes.value": 118,
		"data_file.value_counts": 109, "data_file.value_counts.key": 119, "data_file.value_counts.value": 120,
		"data_file.null_value_counts": 110, "data_file.null_value_counts.key": 121, "data_file.null_value_counts.value": 122,
		"data_file.nan_value_counts": 137, "data_file.nan_value_counts.key": 138, "data_file.nan_value_counts.value": 139,
		"data_file.lower_bounds": 125, "data_file.lower_bounds.key": 126, "data_file.lower_bounds.value": 127,
		"data_file.upper_bounds": 128, "data_file.upper_bounds.key": 129, "data_file.upper_bounds.value": 130,
		"data_file.key_metadata": 131, "data_file.split_offsets": 132, "data_file.split_offsets[]": 133,
		"data_file.equality_ids": 135, "data_file.equality_ids[]": 136, "data_file.sort_order_id": 140,
	}
	if got := fieldIDs(avroSchema); !reflect.DeepEqual(got, wantIDs) {
		t.Errorf("manifest field ids\n got %v\nwant %v", got, wantIDs)
	}
	for k, want := range map[string]string{"format-version": "2", "content": "data", "schema-id": "0", "partition-spec-id": "0"} {
		if meta[k] != want {
			t.Errorf("manifest metadata %q = %q, want %q", k, meta[k], want)
		}
	}
	var gotSchema Schema
	if err := json.Unmarshal([]byte(meta["schema"]), &gotSchema); err != nil || !reflect.DeepEqual(gotSchema, schema) {
		t.Errorf("manifest metadata schema = %s (%v), want the table schema", meta["schema"], err)
	}
	var gotSpec []PartitionField
	if err := json.Unmarshal([]byte(meta["partition-spec"]), &gotSpec); err != nil || !reflect.DeepEqual(gotSpec, spec.Fields) {
		t.Errorf("manifest metadata partition-spec = %s (%v), want the spec's fields", meta["partition-spec"], err)
	}
	if len(records) != 2 {
		t.Fatalf("avsc read %d entries, want 2", len(records))
	}
	e := records[0]
	if e["status"] != 1.0 || e["snapshot_id"] != nil || e["sequence_number"] != nil || e["file_sequence_number"] != nil {
		t.Errorf("entry 0 header: status %v snapshot_id %v sequence_number %v file_sequence_number %v, want 1 and nulls",
			e["status"], e["snapshot_id"], e["sequence_number"], e["file_sequence_number"])
	}
	df := e["data_file"].(map[string]any)
	want := map[string]any{
		"content": 0.0, "file_path": files[0].Path, "file_format": "parquet", "record_count": "3", "file_size_in_bytes": "1234",
		"partition": map[string]any{
			"ts_day":    float64(files[0].Partition[0].(int32)),
			"id_bucket": float64(2017239379 % 16),
			"name":      "alpha",
			"amount":    "ffffffffffffffffffffffffffffffb1e"[1:], // -1250 in decimal(38,2)'s 16 bytes
			"day":       float64(20794),
			"ts_hour":   float64(files[0].Partition[5].(int32)),
		},
		"value_counts":  []any{map[string]any{"key": 1.0, "value": "3"}, map[string]any{"key": 2.0, "value": "3"}, map[string]any{"key": 3.0, "value": "3"}},
		"lower_bounds":  []any{map[string]any{"key": 1.0, "value": "0700000000000000"}},
		"upper_bounds":  []any{map[string]any{"key": 1.0, "value": "2200000000000000"}},
		"split_offsets": []any{"4"},
		"sort_order_id": 0.0,
		"key_metadata":  nil,
		"equality_ids":  nil,
	}
	for k, w := range want {
		if !reflect.DeepEqual(df[k], w) {
			t.Errorf("entry 0 data_file.%s = %#v, want %#v", k, df[k], w)
		}
	}
	p1 := records[1]["data_file"].(map[string]any)["partition"].(map[string]any)
	if p1["name"] != nil || p1["day"] != nil || p1["amount"] != "00000000000000000000000000000069" {
		t.Errorf("entry 1 partition = %v, want null name and day, amount 1.05", p1)
	}

	// The manifest list: a manifest carried from the parent and the new one.
	listPath := filepath.Join(dir, "snap.avro")
	mf.Path = "s3://bucket/wh/db/t/metadata/m.avro"
	parent := int64(5_000_000_000_000_000_001) // beyond 2^53: must survive as a long
	carried := ManifestFile{Path: "s3://bucket/wh/db/t/metadata/old.avro", Length: 42, SequenceNumber: 1, MinSequenceNumber: 1,
		AddedSnapshotID: parent, AddedFiles: 1, AddedRows: 4}
	lf, err := os.Create(listPath)
	if err != nil {
		t.Fatal(err)
	}
	const snap = int64(7_000_000_000_000_000_003)
	if err := WriteManifestList(lf, snap, &parent, 2, []ManifestFile{carried, mf}); err != nil {
		t.Fatal(err)
	}
	if err := lf.Close(); err != nil {
		t.Fatal(err)
	}
	meta, avroSchema, records = avscRead(t, listPath)
	wantListIDs := map[string]int{
		"manifest_path": 500, "manifest_length": 501, "partition_spec_id": 502, "content": 517,
		"sequence_number": 515, "min_sequence_number": 516, "added_snapshot_id": 503,
		"added_files_count": 504, "existing_files_count": 505, "deleted_files_count": 506,
		"added_rows_count": 512, "existing_rows_count": 513, "deleted_rows_count": 514,
		"partitions": 507, "partitions[]": 508, "partitions.contains_null": 509, "partitions.contains_nan": 518,
		"partitions.lower_bound": 510, "partitions.upper_bound": 511, "key_metadata": 519,
	}
	if got := fieldIDs(avroSchema); !reflect.DeepEqual(got, wantListIDs) {
		t.Errorf("manifest list field ids\n got %v\nwant %v", got, wantListIDs)
	}
	for k, want := range map[string]string{"snapshot-id": strconv.FormatInt(snap, 10), "parent-snapshot-id": strconv.FormatInt(parent, 10),
		"sequence-number": "2", "format-version": "2"} {
		if meta[k] != want {
			t.Errorf("manifest list metadata %q = %q, want %q", k, meta[k], want)
		}
	}
	if len(records) != 2 {
		t.Fatalf("avsc read %d manifests, want 2", len(records))
	}
	for i, w := range []map[string]any{
		{"manifest_path": carried.Path, "manifest_length": "42", "sequence_number": "1", "min_sequence_number": "1",
			"added_snapshot_id": strconv.FormatInt(parent, 10), "added_files_count": 1.0, "added_rows_count": "4", "partitions": nil},
		{"manifest_path": mf.Path, "manifest_length": strconv.FormatInt(mf.Length, 10), "sequence_number": "2", "min_sequence_number": "2",
			"added_snapshot_id": strconv.FormatInt(snap, 10), "added_files_count": 2.0, "added_rows_count": "8", "content": 0.0,
			"existing_files_count": 0.0, "deleted_files_count": 0.0, "partition_spec_id": 0.0},
	} {
		for k, v := range w {
			if !reflect.DeepEqual(records[i][k], v) {
				t.Errorf("manifest %d %s = %#v, want %#v", i, k, records[i][k], v)
			}
		}
	}
	parts := records[1]["partitions"].([]any)
	if len(parts) != len(spec.Fields) {
		t.Fatalf("%d partition summaries, want %d", len(parts), len(spec.Fields))
	}
	name := parts[2].(map[string]any)
	if name["contains_null"] != true || name["contains_nan"] != false || name["lower_bound"] != hex.EncodeToString([]byte("alpha")) {
		t.Errorf("name summary = %v", name)
	}
}

func TestSerializeValue(t *testing.T) {
	ts := time.Date(2017, 11, 16, 22, 31, 8, 1000, time.UTC)
	tests := []struct {
		typ  Type
		v    any
		want string
	}{
		{Primitive(TypeBoolean), true, "01"},
		{Primitive(TypeBoolean), false, "00"},
		{Primitive(TypeInt), int32(34), "22000000"},
		{Primitive(TypeLong), int64(-2), "feffffffffffffff"},
		{Primitive(TypeDouble), 1.0, "000000000000f03f"},
		{Primitive(TypeFloat), float32(1), "0000803f"},
		{Primitive(TypeString), "iceberg", hex.EncodeToString([]byte("iceberg"))},
		{Primitive(TypeBinary), []byte{0, 1, 0xff}, "0001ff"},
		{Primitive(TypeDate), record.Date{Year: 2017, Month: 11, Day: 16}, "4e440000"}, // 17486 days
		{Primitive(TypeDate), int32(17486), "4e440000"},
		{Primitive(TypeTimestampTZ), ts, hex.EncodeToString(le64(ts.UnixMicro()))},
		{Decimal(9, 2), record.Decimal("14.20"), "058c"},
		{Decimal(9, 2), record.Decimal("-0.01"), "ff"},
		{Decimal(9, 2), big.NewRat(142, 10), "058c"},
	}
	for _, tt := range tests {
		got, err := SerializeValue(tt.typ, tt.v)
		if err != nil {
			t.Errorf("%s %v: %v", tt.typ, tt.v, err)
			continue
		}
		if hex.EncodeToString(got) != tt.want {
			t.Errorf("%s %v = %x, want %s", tt.typ, tt.v, got, tt.want)
		}
	}
	if _, err := SerializeValue(Decimal(9, 2), record.Decimal("1.234")); err == nil {
		t.Error("decimal with more digits than the scale: no error")
	}
	if _, err := SerializeValue(Primitive(TypeLong), "x"); err == nil {
		t.Error("string as long: no error")
	}
}

func le64(n int64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(uint64(n) >> (8 * i))
	}
	return b
}
