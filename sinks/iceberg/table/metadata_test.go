package table

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeJSON decodes with numbers kept exact (snapshot ids exceed 2^53).
func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return v
}

// TestParseOtherEngineMetadata reads a v2 metadata file shaped as Java
// writes it, with keys this package does not model, and writes it back:
// nothing another engine put there may be lost by a commit here.
func TestParseOtherEngineMetadata(t *testing.T) {
	in := readTestdata(t, "v2-other-engine.metadata.json")
	m, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	s := m.CurrentSchema()
	if s.ID != 1 || len(s.Fields) != 11 || !reflect.DeepEqual(s.IdentifierFieldIDs, []int{1, 2}) {
		t.Fatalf("current schema = %+v", s)
	}
	wantTypes := map[string]string{"x": "long", "y": "int", "z": "float", "ts": "timestamp", "u": "uuid", "f": "fixed[16]",
		"t": "time", "amount": "decimal(9,2)", "tags": "list<string>", "attrs": "map<string, double>", "loc": "struct<>"}
	for name, want := range wantTypes {
		f, ok := s.FieldByName(name)
		if !ok || f.Type.String() != want {
			t.Errorf("field %s: %v %q, want %q", name, ok, f.Type.String(), want)
		}
	}
	if f, _ := s.FieldByID(13); f.Name != "value" || !f.Required || f.Type.Primitive != TypeDouble {
		t.Errorf("map value field 13 = %+v", f)
	}
	if p, sc, ok := Decimal(9, 2).DecimalParams(); !ok || p != 9 || sc != 2 {
		t.Error("decimal params")
	}
	cur := m.CurrentSnapshot()
	if cur == nil || cur.ID != 3055729675574597004 || cur.ParentID == nil || *cur.ParentID != 3051729675574597004 ||
		cur.SequenceNumber != 34 || cur.Summary["operation"] != "append" {
		t.Fatalf("current snapshot = %+v", cur)
	}
	if m.DefaultSpec().Fields[2].Transform != "truncate[10]" || m.Refs["main"].MinSnapshotsToKeep == nil {
		t.Errorf("spec %+v refs %+v", m.DefaultSpec(), m.Refs)
	}

	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Everything comes back, but the decimal type in its canonical spelling.
	want := decodeJSON(t, bytes.Replace(in, []byte("decimal(9, 2)"), []byte("decimal(9,2)"), 1))
	if got := decodeJSON(t, out); !reflect.DeepEqual(got, want) {
		t.Errorf("Marshal(Parse(x)) != x\n got %s\nwant %s", out, in)
	}

	// A commit keeps them too, and applies the table's own settings.
	next, err := m.Append(Append{SnapshotID: 42, ManifestList: "s3://bucket/warehouse/db.db/events/metadata/snap-42.avro",
		PreviousLocation: "s3://bucket/warehouse/db.db/events/metadata/00002-c.metadata.json", Now: time.UnixMilli(1602638600000)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := next.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got := decodeJSON(t, b).(map[string]any)
	orig := want.(map[string]any)
	for _, k := range []string{"statistics", "partition-statistics", "sort-orders", "default-sort-order-id", "table-uuid"} {
		if !reflect.DeepEqual(got[k], orig[k]) {
			t.Errorf("after Append, %s = %v, want %v", k, got[k], orig[k])
		}
	}
	if !strings.Contains(string(b), `"x-engine-snapshot-note":{"kept":true}`) {
		t.Errorf("a snapshot's unknown key is lost after Append:\n%s", b)
	}
	if len(next.MetadataLog) != 2 || next.MetadataLog[1].MetadataFile != "s3://bucket/warehouse/db.db/events/metadata/00002-c.metadata.json" ||
		next.MetadataLog[1].TimestampMS != m.LastUpdatedMS {
		t.Errorf("metadata-log = %+v, want the last 2 (write.metadata.previous-versions-max=2)", next.MetadataLog)
	}
	if main := next.Refs["main"]; main.SnapshotID != 42 || main.MinSnapshotsToKeep == nil || *main.MinSnapshotsToKeep != 5 {
		t.Errorf("main = %+v, want snapshot 42 keeping min-snapshots-to-keep 5", main)
	}
	if next.Refs["audit"] != m.Refs["audit"] {
		t.Errorf("tag audit changed: %+v", next.Refs["audit"])
	}
	if m.CurrentSnapshot().ID != 3055729675574597004 || len(m.MetadataLog) != 2 || m.MetadataLog[1].MetadataFile != "s3://bucket/warehouse/db.db/events/metadata/00001-b.metadata.json" {
		t.Error("Append changed the metadata it was called on")
	}
}

func newTestMetadata(t *testing.T, props map[string]string) *Metadata {
	t.Helper()
	schema, spec := testTable(t)
	m, err := New("s3://bucket/wh/db/t/", schema, spec, props)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNew(t *testing.T) {
	m := newTestMetadata(t, map[string]string{"owner": "kinesis-ingest"})
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(m.TableUUID) {
		t.Errorf("table-uuid %q is not a random UUID", m.TableUUID)
	}
	if m.Location != "s3://bucket/wh/db/t" || m.LastColumnID != 8 || m.LastPartitionID != 1005 ||
		m.LastSequenceNumber != 0 || m.CurrentSnapshot() != nil || m.NextSequenceNumber() != 1 {
		t.Errorf("new metadata = %+v", m)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got := decodeJSON(t, b).(map[string]any)
	for k, want := range map[string]string{"current-snapshot-id": "-1", "format-version": "2", "default-sort-order-id": "0"} {
		if n, ok := got[k].(json.Number); !ok || n.String() != want {
			t.Errorf("%s = %v, want %s", k, got[k], want)
		}
	}
	if orders, _ := json.Marshal(got["sort-orders"]); string(orders) != `[{"fields":[],"order-id":0}]` {
		t.Errorf("sort-orders = %s, want the unsorted order 0", orders)
	}
	if _, err := Parse(b); err != nil {
		t.Errorf("Parse(New().Marshal()): %v", err)
	}

	// Unpartitioned, with ids and names assigned.
	schema := Schema{Fields: []Field{{ID: 1, Name: "ts", Type: Primitive(TypeTimestampTZ)},
		{ID: 2, Name: "m", Type: MapOf(3, Primitive(TypeString), 4, ListOf(5, Primitive(TypeLong), true), false)}}}
	u, err := New("file:///tmp/t", schema, Spec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u.LastPartitionID != 999 || u.LastColumnID != 5 || len(u.DefaultSpec().Fields) != 0 {
		t.Errorf("unpartitioned: last-partition-id %d last-column-id %d", u.LastPartitionID, u.LastColumnID)
	}
	d, err := New("file:///tmp/t", schema, Spec{Fields: []PartitionField{{SourceID: 1, Transform: "hour"}, {SourceID: 1, Transform: "day"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []PartitionField{{1, 1000, "ts_hour", "hour"}, {1, 1001, "ts_day", "day"}}; !reflect.DeepEqual(d.DefaultSpec().Fields, want) {
		t.Errorf("assigned spec = %+v, want %+v", d.DefaultSpec().Fields, want)
	}
}

func TestNewErrors(t *testing.T) {
	long := Primitive(TypeLong)
	tests := []struct {
		name        string
		location    string
		schema      Schema
		spec        Spec
		props       map[string]string
		errContains string
	}{
		{"empty location", "", Schema{Fields: []Field{{ID: 1, Name: "a", Type: long}}}, Spec{}, nil, "empty location"},
		{"duplicate id", "s3://b/t", Schema{Fields: []Field{{ID: 1, Name: "a", Type: long}, {ID: 1, Name: "b", Type: long}}}, Spec{}, nil, "already the id"},
		{"nested duplicate id", "s3://b/t", Schema{Fields: []Field{{ID: 1, Name: "a", Type: ListOf(1, long, true)}}}, Spec{}, nil, "already the id"},
		{"zero id", "s3://b/t", Schema{Fields: []Field{{ID: 0, Name: "a", Type: long}}}, Spec{}, nil, "positive id"},
		{"duplicate name", "s3://b/t", Schema{Fields: []Field{{ID: 1, Name: "a", Type: long}, {ID: 2, Name: "a", Type: long}}}, Spec{}, nil, "used twice"},
		{"unknown source", "s3://b/t", Schema{Fields: []Field{{ID: 1, Name: "a", Type: long}}},
			Spec{Fields: []PartitionField{{SourceID: 9, Transform: "identity", Name: "p"}}}, nil, "source column id 9"},
		{"bucket of double", "s3://b/t", Schema{Fields: []Field{{ID: 1, Name: "a", Type: Primitive(TypeDouble)}}},
			Spec{Fields: []PartitionField{{SourceID: 1, Transform: "bucket[4]"}}}, nil, "defines buckets of"},
		{"name shadows a column", "s3://b/t", Schema{Fields: []Field{{ID: 1, Name: "a", Type: long}, {ID: 2, Name: "b", Type: long}}},
			Spec{Fields: []PartitionField{{SourceID: 1, Transform: "bucket[4]", Name: "b"}}}, nil, "only that column's identity"},
		{"bad previous-versions-max", "s3://b/t", Schema{Fields: []Field{{ID: 1, Name: "a", Type: long}}}, Spec{},
			map[string]string{PropPreviousVersionsMax: "lots"}, PropPreviousVersionsMax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.location, tt.schema, tt.spec, tt.props)
			if err == nil || !strings.Contains(err.Error(), tt.errContains) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.errContains)
			}
		})
	}
}

// TestAppendChain commits several snapshots in a row, through Marshal and
// Parse as a catalog would, and checks the lineage readers follow.
func TestAppendChain(t *testing.T) {
	m := newTestMetadata(t, map[string]string{PropPreviousVersionsMax: "2"})
	created := m.LastUpdatedMS
	start := time.UnixMilli(created).Add(time.Second)
	var ids []int64
	for i := range 4 {
		id := NewSnapshotID()
		ids = append(ids, id)
		now := start.Add(time.Duration(i) * time.Second)
		if i == 3 {
			now = start.Add(-time.Hour) // a writer whose clock is behind
		}
		next, err := m.Append(Append{
			SnapshotID: id, ManifestList: "s3://bucket/wh/db/t/metadata/snap-" + string(rune('a'+i)) + ".avro",
			Summary:          map[string]string{"added-data-files": "1"},
			Properties:       map[string]string{"kinesis-ingest.seq.app.src.shard-0": string(rune('0' + i))},
			PreviousLocation: "s3://bucket/wh/db/t/metadata/0000" + string(rune('0'+i)) + ".metadata.json",
			Now:              now,
		})
		if err != nil {
			t.Fatal(err)
		}
		b, err := next.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if m, err = Parse(b); err != nil {
			t.Fatalf("commit %d: %v\n%s", i, err, b)
		}
		s := m.CurrentSnapshot()
		if s == nil || s.ID != id || s.SequenceNumber != int64(i+1) || m.LastSequenceNumber != int64(i+1) {
			t.Fatalf("commit %d: current snapshot %+v, last-sequence-number %d", i, s, m.LastSequenceNumber)
		}
		if i == 0 && s.ParentID != nil {
			t.Errorf("first snapshot has parent %d", *s.ParentID)
		}
		if i > 0 && (s.ParentID == nil || *s.ParentID != ids[i-1]) {
			t.Errorf("commit %d: parent %v, want %d", i, s.ParentID, ids[i-1])
		}
		if s.Summary["operation"] != "append" || s.Summary["added-data-files"] != "1" || s.SchemaID != m.CurrentSchemaID {
			t.Errorf("commit %d: summary %v schema %d", i, s.Summary, s.SchemaID)
		}
		if m.Refs[MainBranch].SnapshotID != id || m.Refs[MainBranch].Type != "branch" {
			t.Errorf("commit %d: main = %+v", i, m.Refs[MainBranch])
		}
		if got := m.Properties["kinesis-ingest.seq.app.src.shard-0"]; got != string(rune('0'+i)) {
			t.Errorf("commit %d: property = %q", i, got)
		}
		if len(m.SnapshotLog) != i+1 || m.SnapshotLog[i] != (SnapshotLogEntry{TimestampMS: s.TimestampMS, SnapshotID: id}) {
			t.Errorf("commit %d: snapshot-log %+v", i, m.SnapshotLog)
		}
		if s.TimestampMS != m.LastUpdatedMS {
			t.Errorf("commit %d: snapshot at %d, table updated at %d", i, s.TimestampMS, m.LastUpdatedMS)
		}
	}
	// metadata-log keeps the newest 2 previous files; time never went back.
	if want := []string{"s3://bucket/wh/db/t/metadata/00002.metadata.json", "s3://bucket/wh/db/t/metadata/00003.metadata.json"}; len(m.MetadataLog) != 2 ||
		m.MetadataLog[0].MetadataFile != want[0] || m.MetadataLog[1].MetadataFile != want[1] {
		t.Errorf("metadata-log = %+v, want %v", m.MetadataLog, want)
	}
	for i := 1; i < len(m.SnapshotLog); i++ {
		if m.SnapshotLog[i].TimestampMS < m.SnapshotLog[i-1].TimestampMS {
			t.Errorf("snapshot-log goes back in time: %+v", m.SnapshotLog)
		}
	}
	if len(m.Properties) != 2 || m.Properties[PropPreviousVersionsMax] != "2" {
		t.Errorf("properties = %v", m.Properties)
	}

	if _, err := m.Append(Append{SnapshotID: ids[0], ManifestList: "x"}); err == nil {
		t.Error("Append reused a snapshot id")
	}
	if _, err := m.Append(Append{SnapshotID: -1, ManifestList: "x"}); err == nil {
		t.Error("Append took a negative snapshot id")
	}
}

func TestMetadataLogDefaultCap(t *testing.T) {
	m := newTestMetadata(t, nil)
	for i := range 105 {
		var err error
		if m, err = m.Append(Append{SnapshotID: int64(i + 1), ManifestList: "l", PreviousLocation: "p" + string(rune('A'+i%26))}); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.MetadataLog) != 100 || len(m.Snapshots) != 105 {
		t.Errorf("metadata-log %d entries, snapshots %d; want 100 (the default cap) and 105", len(m.MetadataLog), len(m.Snapshots))
	}
}

func TestAddFields(t *testing.T) {
	m := newTestMetadata(t, nil)
	n, err := m.AddFields([]Field{
		{Name: "note", Type: Primitive(TypeString)},
		{Name: "scores", Type: ListOf(0, Primitive(TypeDouble), false)},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := n.CurrentSchema()
	if s.ID != 1 || n.CurrentSchemaID != 1 || len(n.Schemas) != 2 || n.LastColumnID != 11 {
		t.Fatalf("schema %d of %d, last-column-id %d", s.ID, len(n.Schemas), n.LastColumnID)
	}
	note, _ := s.FieldByName("note")
	scores, _ := s.FieldByName("scores")
	if note.ID != 9 || scores.ID != 10 || scores.Type.Element.ID != 11 || note.Required {
		t.Errorf("assigned ids: note %d scores %d element %d", note.ID, scores.ID, scores.Type.Element.ID)
	}
	if len(m.Schemas) != 1 || m.CurrentSchemaID != 0 {
		t.Error("AddFields changed the metadata it was called on")
	}
	b, _ := n.Marshal()
	if _, err := Parse(b); err != nil {
		t.Errorf("Parse after AddFields: %v", err)
	}
	// A snapshot after the change records the new schema.
	a, err := n.Append(Append{SnapshotID: 1, ManifestList: "l"})
	if err != nil || a.CurrentSnapshot().SchemaID != 1 {
		t.Errorf("snapshot schema-id after AddFields: %v %v", a, err)
	}

	for _, tt := range []struct {
		name        string
		fields      []Field
		errContains string
	}{
		{"required", []Field{{Name: "r", Required: true, Type: Primitive(TypeLong)}}, "must be optional"},
		{"existing name", []Field{{Name: "id", Type: Primitive(TypeLong)}}, "used twice"},
		{"twice", []Field{{Name: "x", Type: Primitive(TypeLong)}, {Name: "x", Type: Primitive(TypeLong)}}, "used twice"},
		{"unknown type", []Field{{Name: "v", Type: Primitive("variant")}}, "unsupported type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.AddFields(tt.fields)
			if err == nil || !strings.Contains(err.Error(), tt.errContains) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.errContains)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	good := string(readTestdata(t, "v2-other-engine.metadata.json"))
	tests := []struct {
		name        string
		json        string
		errContains string
		formatErr   bool
	}{
		{"v1", strings.Replace(good, `"format-version" : 2`, `"format-version" : 1`, 1), "ALTER TABLE", true},
		{"v3", strings.Replace(good, `"format-version" : 2`, `"format-version" : 3`, 1), "format version 2 only", true},
		{"no version", strings.Replace(good, `"format-version" : 2,`, ``, 1), "no format-version", false},
		{"no sequence number", strings.Replace(good, `"last-sequence-number" : 34,`, ``, 1), "requires last-sequence-number", false},
		{"unknown current schema", strings.Replace(good, `"current-schema-id" : 1`, `"current-schema-id" : 7`, 1), "current-schema-id 7", false},
		{"unknown current snapshot", strings.Replace(good, `"current-snapshot-id" : 3055729675574597004`, `"current-snapshot-id" : 5`, 1), "current-snapshot-id 5", false},
		{"column id above last", strings.Replace(good, `"last-column-id" : 14`, `"last-column-id" : 3`, 1), "above last-column-id", false},
		{"v3 type", strings.Replace(good, `"type" : "time"`, `"type" : "variant"`, 1), `"variant"`, false},
		{"not json", `{"format-version": 2,`, "parse table metadata", false},
		{"array", `[]`, "parse table metadata", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.errContains) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.errContains)
			}
			if errors.Is(err, ErrFormatVersion) != tt.formatErr {
				t.Errorf("errors.Is(err, ErrFormatVersion) = %v, want %v", !tt.formatErr, tt.formatErr)
			}
		})
	}
}

func TestParseGzip(t *testing.T) {
	in := readTestdata(t, "v2-other-engine.metadata.json")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(in)
	_ = zw.Close()
	m, err := Parse(buf.Bytes())
	if err != nil || m.TableUUID != "9c12d441-03fe-4693-9a96-a0705ddf69c1" {
		t.Fatalf("gzip'd metadata: %v", err)
	}
}

// FuzzParseMetadata: a metadata JSON comes from outside (another engine,
// a user's catalog); whatever it holds must not panic the worker, and what
// Parse accepts must survive Marshal and Parse, and a commit.
func FuzzParseMetadata(f *testing.F) {
	f.Add(readTestdata(f, "v2-other-engine.metadata.json"))
	schema := Schema{Fields: []Field{{ID: 1, Name: "ts", Type: Primitive(TypeTimestampTZ)}}}
	m, err := New("s3://b/t", schema, Spec{Fields: []PartitionField{{SourceID: 1, Transform: "day"}}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	b, _ := m.Marshal()
	f.Add(b)
	f.Add([]byte(`{"format-version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		_ = m.CurrentSchema()
		_ = m.DefaultSpec()
		_ = m.CurrentSnapshot()
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal of parsed metadata: %v", err)
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("Parse(Marshal(Parse(x))): %v\n%s", err, out)
		}
		if _, err := m.Append(Append{SnapshotID: NewSnapshotID(), ManifestList: "l", PreviousLocation: "p"}); err != nil &&
			!strings.Contains(err.Error(), PropPreviousVersionsMax) {
			t.Fatalf("Append: %v", err)
		}
	})
}
