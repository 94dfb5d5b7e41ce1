package table

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strconv"
	"time"

	"github.com/linkedin/goavro/v2"
)

// DataFile is a data file as a manifest lists it. Partition holds one value
// per partition field of the manifest's spec, in the spec's order, as
// Transform.Apply gives them (nil for null). Maps are keyed by column id;
// bounds are SerializeValue's bytes.
type DataFile struct {
	Content         int    // 0 data (all WriteManifest writes), 1 position deletes, 2 equality deletes
	Path            string // full URI, e.g. s3://bucket/table/data/....parquet
	Format          string // "parquet" when empty
	RecordCount     int64
	FileSizeBytes   int64
	Partition       []any
	ColumnSizes     map[int]int64
	ValueCounts     map[int]int64
	NullValueCounts map[int]int64
	NaNValueCounts  map[int]int64
	LowerBounds     map[int][]byte
	UpperBounds     map[int][]byte
	SplitOffsets    []int64
	SortOrderID     *int
}

// ManifestFile is a manifest as a manifest list lists it.
type ManifestFile struct {
	Path              string
	Length            int64
	SpecID            int
	Content           int // 0 data, 1 deletes
	SequenceNumber    int64
	MinSequenceNumber int64
	AddedSnapshotID   int64
	AddedFiles        int32
	ExistingFiles     int32
	DeletedFiles      int32
	AddedRows         int64
	ExistingRows      int64
	DeletedRows       int64
	Partitions        []FieldSummary
}

// FieldSummary summarises one partition field over a manifest's files.
type FieldSummary struct {
	ContainsNull bool
	ContainsNaN  *bool
	LowerBound   []byte
	UpperBound   []byte
}

// Entry is one manifest entry. SnapshotID and the sequence numbers are nil
// when the entry inherits them from the manifest list (an ADDED entry).
type Entry struct {
	Status             int // 0 existing, 1 added, 2 deleted
	SnapshotID         *int64
	SequenceNumber     *int64
	FileSequenceNumber *int64
	File               DataFile
}

// Manifest entry statuses.
const (
	StatusExisting = 0
	StatusAdded    = 1
	StatusDeleted  = 2
)

// UnassignedSequenceNumber marks a ManifestFile whose sequence numbers
// WriteManifestList assigns: the manifest is new in the snapshot the list
// belongs to (0 is a real value: v1 manifests carried into v2 have it).
const UnassignedSequenceNumber = -1

// countingWriter counts what goes to w. It also hides an *os.File from
// goavro, which would otherwise try to read an existing container from it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteManifest writes a data manifest of ADDED entries for files, whose
// partition values follow spec over schema. Entries carry no snapshot id
// and no sequence numbers: they inherit them from the manifest list, so the
// same manifest serves a retried commit with a new snapshot id. The result
// has the counts, the partition summaries, SpecID and Length (the bytes
// written); Path is the caller's, and the sequence numbers and
// AddedSnapshotID are left for WriteManifestList to assign.
func WriteManifest(w io.Writer, schema Schema, spec Spec, files []DataFile) (ManifestFile, error) {
	entries := make([]Entry, len(files))
	for i, f := range files {
		entries[i] = Entry{Status: StatusAdded, File: f}
	}
	return WriteManifestEntries(w, schema, spec, entries)
}

// WriteManifestEntries writes a data manifest of entries as given: ADDED
// ones without snapshot id and sequence numbers inherit them (as
// WriteManifest's), EXISTING ones carry theirs (a merge of older manifests
// keeps each file's snapshot and sequence numbers). The result is
// WriteManifest's; MinSequenceNumber is the least of the EXISTING entries'
// when any carry one.
func WriteManifestEntries(w io.Writer, schema Schema, spec Spec, es []Entry) (ManifestFile, error) {
	part, err := spec.PartitionType(schema)
	if err != nil {
		return ManifestFile{}, fmt.Errorf("write manifest: %w", err)
	}
	avroSchema, err := manifestEntrySchema(part)
	if err != nil {
		return ManifestFile{}, fmt.Errorf("write manifest: %w", err)
	}
	schemaJSON, err := json.Marshal(schema)
	if err != nil {
		return ManifestFile{}, fmt.Errorf("write manifest: %w", err)
	}
	specJSON, err := json.Marshal(orEmpty(spec.Fields))
	if err != nil {
		return ManifestFile{}, fmt.Errorf("write manifest: %w", err)
	}
	mf := ManifestFile{SpecID: spec.ID, SequenceNumber: UnassignedSequenceNumber, MinSequenceNumber: UnassignedSequenceNumber}
	sums := newSummaries(part)
	entries := make([]any, 0, len(es))
	long := func(p *int64) any {
		if p == nil {
			return nil
		}
		return map[string]any{"long": *p}
	}
	for _, e := range es {
		f := e.File
		if e.Status != StatusAdded && e.Status != StatusExisting {
			return ManifestFile{}, fmt.Errorf("write manifest: data file %s: status %d is not added or existing", f.Path, e.Status)
		}
		if e.Status == StatusExisting && (e.SnapshotID == nil || e.SequenceNumber == nil) {
			return ManifestFile{}, fmt.Errorf("write manifest: existing data file %s needs its snapshot id and sequence number", f.Path)
		}
		df, err := dataFileNative(part, f)
		if err != nil {
			return ManifestFile{}, fmt.Errorf("write manifest: data file %s: %w", f.Path, err)
		}
		if err := sums.add(f.Partition); err != nil {
			return ManifestFile{}, fmt.Errorf("write manifest: data file %s: %w", f.Path, err)
		}
		entries = append(entries, map[string]any{
			"status": int32(e.Status), "snapshot_id": long(e.SnapshotID), "sequence_number": long(e.SequenceNumber),
			"file_sequence_number": long(e.FileSequenceNumber), "data_file": df,
		})
		if e.Status == StatusAdded {
			mf.AddedFiles++
			mf.AddedRows += f.RecordCount
			continue
		}
		mf.ExistingFiles++
		mf.ExistingRows += f.RecordCount
		if mf.MinSequenceNumber == UnassignedSequenceNumber || *e.SequenceNumber < mf.MinSequenceNumber {
			mf.MinSequenceNumber = *e.SequenceNumber
		}
	}
	if mf.Partitions, err = sums.result(); err != nil {
		return ManifestFile{}, fmt.Errorf("write manifest: %w", err)
	}
	cw := &countingWriter{w: w}
	ocf, err := goavro.NewOCFWriter(goavro.OCFConfig{
		W: cw, Schema: avroSchema, CompressionName: goavro.CompressionDeflateLabel,
		MetaData: map[string][]byte{
			"schema":            schemaJSON,
			"schema-id":         []byte(strconv.Itoa(schema.ID)),
			"partition-spec":    specJSON,
			"partition-spec-id": []byte(strconv.Itoa(spec.ID)),
			"format-version":    []byte("2"),
			"content":           []byte("data"),
		},
	})
	if err != nil {
		return ManifestFile{}, fmt.Errorf("write manifest: %w", err)
	}
	if len(entries) > 0 {
		if err := ocf.Append(entries); err != nil {
			return ManifestFile{}, fmt.Errorf("write manifest: %w", err)
		}
	}
	mf.Length = cw.n
	return mf, nil
}

func dataFileNative(part []Field, f DataFile) (map[string]any, error) {
	switch {
	case f.Path == "":
		return nil, errors.New("empty path")
	case f.RecordCount < 0 || f.FileSizeBytes < 0:
		return nil, fmt.Errorf("negative record count %d or size %d", f.RecordCount, f.FileSizeBytes)
	case len(f.Partition) != len(part):
		return nil, fmt.Errorf("%d partition values, the spec has %d fields", len(f.Partition), len(part))
	}
	p := make(map[string]any, len(part))
	for i, pf := range part {
		v, err := avroValue(pf.Type, pf.ID, f.Partition[i])
		if err != nil {
			return nil, fmt.Errorf("partition field %q: %w", pf.Name, err)
		}
		name, _ := avroName(pf.Name)
		p[name] = v
	}
	format := f.Format
	if format == "" {
		format = "parquet"
	}
	var sortOrder any
	if f.SortOrderID != nil {
		sortOrder = map[string]any{"int": int32(*f.SortOrderID)}
	}
	return map[string]any{
		"content":            int32(f.Content),
		"file_path":          f.Path,
		"file_format":        format,
		"partition":          p,
		"record_count":       f.RecordCount,
		"file_size_in_bytes": f.FileSizeBytes,
		"column_sizes":       intMapNative(f.ColumnSizes),
		"value_counts":       intMapNative(f.ValueCounts),
		"null_value_counts":  intMapNative(f.NullValueCounts),
		"nan_value_counts":   intMapNative(f.NaNValueCounts),
		"lower_bounds":       intMapNative(f.LowerBounds),
		"upper_bounds":       intMapNative(f.UpperBounds),
		"key_metadata":       nil,
		"split_offsets":      listNative(f.SplitOffsets),
		"equality_ids":       nil,
		"sort_order_id":      sortOrder,
	}, nil
}

// intMapNative is a map keyed by column id as the union of null and the
// array of key/value records, sorted by key for stable files.
func intMapNative[V int64 | []byte](m map[int]V) any {
	if m == nil {
		return nil
	}
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	items := make([]any, len(keys))
	for i, k := range keys {
		items[i] = map[string]any{"key": int32(k), "value": m[k]}
	}
	return map[string]any{"array": items}
}

func listNative(s []int64) any {
	if s == nil {
		return nil
	}
	items := make([]any, len(s))
	for i, v := range s {
		items[i] = v
	}
	return map[string]any{"array": items}
}

// summaries accumulates a manifest's partition field summaries.
type summaries struct {
	part  []Field
	sums  []FieldSummary
	lower []any
	upper []any
}

func newSummaries(part []Field) *summaries {
	s := &summaries{part: part, sums: make([]FieldSummary, len(part)), lower: make([]any, len(part)), upper: make([]any, len(part))}
	for i := range s.sums {
		no := false
		s.sums[i].ContainsNaN = &no
	}
	return s
}

func (s *summaries) add(values []any) error {
	for i, v := range values {
		switch {
		case v == nil:
			s.sums[i].ContainsNull = true
		case isNaN(v):
			*s.sums[i].ContainsNaN = true
		default:
			if s.lower[i] == nil {
				s.lower[i], s.upper[i] = v, v
				continue
			}
			c, ok := compareValues(v, s.lower[i])
			if !ok {
				return fmt.Errorf("partition field %q: a %T among values of type %T", s.part[i].Name, v, s.lower[i])
			}
			if c < 0 {
				s.lower[i] = v
			}
			if c, _ := compareValues(v, s.upper[i]); c > 0 {
				s.upper[i] = v
			}
		}
	}
	return nil
}

func (s *summaries) result() ([]FieldSummary, error) {
	for i := range s.sums {
		if s.lower[i] == nil {
			continue
		}
		var err error
		if s.sums[i].LowerBound, err = SerializeValue(s.part[i].Type, s.lower[i]); err != nil {
			return nil, fmt.Errorf("partition field %q: %w", s.part[i].Name, err)
		}
		if s.sums[i].UpperBound, err = SerializeValue(s.part[i].Type, s.upper[i]); err != nil {
			return nil, fmt.Errorf("partition field %q: %w", s.part[i].Name, err)
		}
	}
	return s.sums, nil
}

// WriteManifestList writes the manifest list of snapshot snapshotID.
// Manifests new in this snapshot (SequenceNumber UnassignedSequenceNumber,
// AddedSnapshotID 0, as WriteManifest leaves them) get sequenceNumber and
// snapshotID; manifests carried from the parent keep theirs.
func WriteManifestList(w io.Writer, snapshotID int64, parentID *int64, sequenceNumber int64, manifests []ManifestFile) error {
	parent := "null" // what Java writes for a snapshot without a parent
	if parentID != nil {
		parent = strconv.FormatInt(*parentID, 10)
	}
	items := make([]any, 0, len(manifests))
	for _, m := range manifests {
		if m.Path == "" || m.Length <= 0 {
			return fmt.Errorf("write manifest list: manifest %q of length %d: want a path and a positive length", m.Path, m.Length)
		}
		if m.SequenceNumber == UnassignedSequenceNumber {
			m.SequenceNumber = sequenceNumber
		}
		if m.MinSequenceNumber == UnassignedSequenceNumber {
			m.MinSequenceNumber = sequenceNumber
		}
		if m.AddedSnapshotID == 0 {
			m.AddedSnapshotID = snapshotID
		}
		var parts any
		if m.Partitions != nil {
			ps := make([]any, len(m.Partitions))
			for i, p := range m.Partitions {
				var nan any
				if p.ContainsNaN != nil {
					nan = map[string]any{"boolean": *p.ContainsNaN}
				}
				ps[i] = map[string]any{"contains_null": p.ContainsNull, "contains_nan": nan,
					"lower_bound": bytesUnion(p.LowerBound), "upper_bound": bytesUnion(p.UpperBound)}
			}
			parts = map[string]any{"array": ps}
		}
		items = append(items, map[string]any{
			"manifest_path": m.Path, "manifest_length": m.Length, "partition_spec_id": int32(m.SpecID),
			"content": int32(m.Content), "sequence_number": m.SequenceNumber, "min_sequence_number": m.MinSequenceNumber,
			"added_snapshot_id": m.AddedSnapshotID,
			"added_files_count": m.AddedFiles, "existing_files_count": m.ExistingFiles, "deleted_files_count": m.DeletedFiles,
			"added_rows_count": m.AddedRows, "existing_rows_count": m.ExistingRows, "deleted_rows_count": m.DeletedRows,
			"partitions": parts, "key_metadata": nil,
		})
	}
	ocf, err := goavro.NewOCFWriter(goavro.OCFConfig{
		W: &countingWriter{w: w}, Schema: manifestFileSchema(), CompressionName: goavro.CompressionDeflateLabel,
		MetaData: map[string][]byte{
			"snapshot-id":        []byte(strconv.FormatInt(snapshotID, 10)),
			"parent-snapshot-id": []byte(parent),
			"sequence-number":    []byte(strconv.FormatInt(sequenceNumber, 10)),
			"format-version":     []byte("2"),
		},
	})
	if err != nil {
		return fmt.Errorf("write manifest list: %w", err)
	}
	if len(items) > 0 {
		if err := ocf.Append(items); err != nil {
			return fmt.Errorf("write manifest list: %w", err)
		}
	}
	return nil
}

func bytesUnion(b []byte) any {
	if b == nil {
		return nil
	}
	return map[string]any{"bytes": b}
}

// ReadManifestList reads a manifest list by field name, so lists written by
// Java, pyiceberg or iceberg-go read too. Fields a v1 list lacks read as the
// spec says: content, sequence numbers and counts 0.
func ReadManifestList(r io.Reader) ([]ManifestFile, error) {
	ocf, err := goavro.NewOCFReader(r)
	if err != nil {
		return nil, fmt.Errorf("read manifest list: %w", err)
	}
	var out []ManifestFile
	for ocf.Scan() {
		d, err := ocf.Read()
		if err != nil {
			return nil, fmt.Errorf("read manifest list: entry %d: %w", len(out), err)
		}
		rec, ok := d.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("read manifest list: entry %d is a %T, want a record", len(out), d)
		}
		g := getter{rec: rec}
		m := ManifestFile{
			Path: g.str("manifest_path"), Length: g.long("manifest_length"), SpecID: int(g.long("partition_spec_id")),
			Content: int(g.long("content")), SequenceNumber: g.long("sequence_number"), MinSequenceNumber: g.long("min_sequence_number"),
			AddedSnapshotID: g.long("added_snapshot_id"),
			AddedFiles:      int32(g.long("added_files_count")), ExistingFiles: int32(g.long("existing_files_count")),
			DeletedFiles: int32(g.long("deleted_files_count")),
			AddedRows:    g.long("added_rows_count"), ExistingRows: g.long("existing_rows_count"), DeletedRows: g.long("deleted_rows_count"),
		}
		if ps, ok := unwrap(rec["partitions"]).([]any); ok {
			m.Partitions = make([]FieldSummary, len(ps))
			for i, p := range ps {
				pr, _ := p.(map[string]any)
				pg := getter{rec: pr}
				m.Partitions[i] = FieldSummary{ContainsNull: pg.boolean("contains_null"),
					LowerBound: pg.bytes("lower_bound"), UpperBound: pg.bytes("upper_bound")}
				if b, ok := unwrap(pr["contains_nan"]).(bool); ok {
					m.Partitions[i].ContainsNaN = &b
				}
			}
		}
		if g.err != nil {
			return nil, fmt.Errorf("read manifest list: entry %d: %w", len(out), g.err)
		}
		out = append(out, m)
	}
	if err := ocf.Err(); err != nil {
		return nil, fmt.Errorf("read manifest list: %w", err)
	}
	return out, nil
}

// ReadManifest reads a manifest's entries by field name (Java, pyiceberg
// and iceberg-go manifests included). Partition values come in the order of
// the file's partition record, in Transform.Apply's forms: dates (day
// results included) as int32 days, timestamps as time.Time, decimals as
// *big.Rat.
func ReadManifest(r io.Reader) ([]Entry, error) {
	ocf, err := goavro.NewOCFReader(r)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	order, err := partitionOrder(ocf.Codec().Schema())
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var out []Entry
	for ocf.Scan() {
		d, err := ocf.Read()
		if err != nil {
			return nil, fmt.Errorf("read manifest: entry %d: %w", len(out), err)
		}
		rec, ok := d.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("read manifest: entry %d is a %T, want a record", len(out), d)
		}
		g := getter{rec: rec}
		e := Entry{Status: int(g.long("status")), SnapshotID: g.optLong("snapshot_id"),
			SequenceNumber: g.optLong("sequence_number"), FileSequenceNumber: g.optLong("file_sequence_number")}
		df, _ := rec["data_file"].(map[string]any)
		if df == nil {
			return nil, fmt.Errorf("read manifest: entry %d has no data_file record", len(out))
		}
		fg := getter{rec: df}
		e.File = DataFile{
			Content: int(fg.long("content")), Path: fg.str("file_path"), Format: fg.str("file_format"),
			RecordCount: fg.long("record_count"), FileSizeBytes: fg.long("file_size_in_bytes"),
			ColumnSizes: fg.longMap("column_sizes"), ValueCounts: fg.longMap("value_counts"),
			NullValueCounts: fg.longMap("null_value_counts"), NaNValueCounts: fg.longMap("nan_value_counts"),
			LowerBounds: fg.bytesMap("lower_bounds"), UpperBounds: fg.bytesMap("upper_bounds"),
		}
		if offs, ok := unwrap(df["split_offsets"]).([]any); ok {
			for _, o := range offs {
				if n, ok := o.(int64); ok {
					e.File.SplitOffsets = append(e.File.SplitOffsets, n)
				}
			}
		}
		if so := fg.optLong("sort_order_id"); so != nil {
			n := int(*so)
			e.File.SortOrderID = &n
		}
		p, _ := df["partition"].(map[string]any)
		e.File.Partition = make([]any, len(order))
		for i, name := range order {
			e.File.Partition[i] = partitionNative(unwrapUnion(p[name]))
		}
		if g.err != nil || fg.err != nil {
			return nil, fmt.Errorf("read manifest: entry %d: %w", len(out), errors.Join(g.err, fg.err))
		}
		out = append(out, e)
	}
	if err := ocf.Err(); err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	return out, nil
}

// partitionOrder lists the partition record's field names in the writer
// schema's order: goavro decodes records as maps, which lose it.
func partitionOrder(schema string) ([]string, error) {
	type field struct {
		Name string          `json:"name"`
		Type json.RawMessage `json:"type"`
	}
	type rec struct {
		Fields []field `json:"fields"`
	}
	var entry rec
	if err := json.Unmarshal([]byte(schema), &entry); err != nil {
		return nil, fmt.Errorf("manifest schema: %w", err)
	}
	for _, f := range entry.Fields {
		if f.Name != "data_file" {
			continue
		}
		var df rec
		if err := json.Unmarshal(f.Type, &df); err != nil {
			return nil, fmt.Errorf("manifest schema: data_file: %w", err)
		}
		for _, pf := range df.Fields {
			if pf.Name != "partition" {
				continue
			}
			var p rec
			if err := json.Unmarshal(pf.Type, &p); err != nil {
				return nil, fmt.Errorf("manifest schema: partition: %w", err)
			}
			names := make([]string, len(p.Fields))
			for i, x := range p.Fields {
				names[i] = x.Name
			}
			return names, nil
		}
		return nil, errors.New("manifest schema: data_file has no partition")
	}
	return nil, errors.New("manifest schema: no data_file field; not a manifest")
}

// partitionNative turns what goavro decodes into Apply's forms.
func partitionNative(v any, unionName string) any {
	if t, ok := v.(time.Time); ok && unionName == "int.date" {
		return int32(floorDiv(t.Unix(), 86400))
	}
	if t, ok := v.(time.Time); ok {
		return t.UTC()
	}
	if r, ok := v.(*big.Rat); ok {
		return r
	}
	return v
}

// unwrapUnion returns the value of a decoded union and its branch name.
func unwrapUnion(v any) (any, string) {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for k, x := range m {
			return x, k
		}
	}
	return v, ""
}

func unwrap(v any) any {
	x, _ := unwrapUnion(v)
	return x
}

// getter reads decoded record fields by name; the first field of a wrong
// type is kept in err, a missing one reads as zero (optional in v1).
type getter struct {
	rec map[string]any
	err error
}

func (g *getter) fail(name string, v any, want string) {
	if g.err == nil {
		g.err = fmt.Errorf("field %s is a %T, want %s", name, v, want)
	}
}

func (g *getter) long(name string) int64 {
	if p := g.optLong(name); p != nil {
		return *p
	}
	return 0
}

func (g *getter) optLong(name string) *int64 {
	v := unwrap(g.rec[name])
	var n int64
	switch x := v.(type) {
	case nil:
		return nil
	case int64:
		n = x
	case int32:
		n = int64(x)
	default:
		g.fail(name, v, "an integer")
		return nil
	}
	return &n
}

func (g *getter) str(name string) string {
	v := unwrap(g.rec[name])
	s, ok := v.(string)
	if !ok && v != nil {
		g.fail(name, v, "a string")
	}
	return s
}

func (g *getter) boolean(name string) bool {
	v := unwrap(g.rec[name])
	b, ok := v.(bool)
	if !ok && v != nil {
		g.fail(name, v, "a boolean")
	}
	return b
}

func (g *getter) bytes(name string) []byte {
	v := unwrap(g.rec[name])
	b, ok := v.([]byte)
	if !ok && v != nil {
		g.fail(name, v, "bytes")
	}
	return b
}

func (g *getter) kvs(name string) []map[string]any {
	v := unwrap(g.rec[name])
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		out := make([]map[string]any, 0, len(x))
		for _, it := range x {
			kv, ok := it.(map[string]any)
			if !ok {
				g.fail(name, it, "key/value records")
				return nil
			}
			out = append(out, kv)
		}
		return out
	}
	g.fail(name, v, "an array of key/value records")
	return nil
}

func (g *getter) longMap(name string) map[int]int64 {
	kvs := g.kvs(name)
	if kvs == nil {
		return nil
	}
	out := make(map[int]int64, len(kvs))
	for _, kv := range kvs {
		k, kok := kv["key"].(int32)
		v, vok := unwrap(kv["value"]).(int64)
		if !kok || !vok {
			g.fail(name, kv, "int → long entries")
			return nil
		}
		out[int(k)] = v
	}
	return out
}

func (g *getter) bytesMap(name string) map[int][]byte {
	kvs := g.kvs(name)
	if kvs == nil {
		return nil
	}
	out := make(map[int][]byte, len(kvs))
	for _, kv := range kvs {
		k, kok := kv["key"].(int32)
		v, vok := unwrap(kv["value"]).([]byte)
		if !kok || !vok {
			g.fail(name, kv, "int → bytes entries")
			return nil
		}
		out[int(k)] = v
	}
	return out
}
