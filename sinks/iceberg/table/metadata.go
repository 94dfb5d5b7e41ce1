package table

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Metadata is a table's metadata JSON, format version 2 (spec "Table
// Metadata"). Keys this package does not model (statistics,
// partition-statistics, whatever an engine adds) are kept as read and
// written back by Marshal, so a commit here does not drop another engine's
// state. Methods that change the table return a changed copy; a Metadata is
// not modified after Parse or New.
type Metadata struct {
	FormatVersion      int
	TableUUID          string
	Location           string
	LastSequenceNumber int64
	LastUpdatedMS      int64
	LastColumnID       int
	Schemas            []Schema
	CurrentSchemaID    int
	PartitionSpecs     []Spec
	DefaultSpecID      int
	LastPartitionID    int
	Properties         map[string]string
	CurrentSnapshotID  *int64 // nil: no snapshot (written as -1, as Java does for v2)
	Snapshots          []Snapshot
	SnapshotLog        []SnapshotLogEntry
	MetadataLog        []MetadataLogEntry
	SortOrders         []json.RawMessage // kept as read; New writes the unsorted order 0
	DefaultSortOrderID int
	Refs               map[string]Ref

	extra map[string]json.RawMessage
}

// Snapshot is one snapshot of the table (spec "Snapshots").
type Snapshot struct {
	ID             int64
	ParentID       *int64
	SequenceNumber int64
	TimestampMS    int64
	ManifestList   string
	Summary        map[string]string // "operation" is required
	SchemaID       int

	noSchemaID bool // read without "schema-id" (optional): write it back without
	extra      map[string]json.RawMessage
}

// SnapshotLogEntry records when a snapshot became current.
type SnapshotLogEntry struct {
	TimestampMS int64 `json:"timestamp-ms"`
	SnapshotID  int64 `json:"snapshot-id"`
}

// MetadataLogEntry records a previous metadata file.
type MetadataLogEntry struct {
	TimestampMS  int64  `json:"timestamp-ms"`
	MetadataFile string `json:"metadata-file"`
}

// Ref is a named branch or tag (spec "Snapshot References").
type Ref struct {
	SnapshotID         int64  `json:"snapshot-id"`
	Type               string `json:"type"` // "branch" or "tag"
	MinSnapshotsToKeep *int   `json:"min-snapshots-to-keep,omitempty"`
	MaxSnapshotAgeMS   *int64 `json:"max-snapshot-age-ms,omitempty"`
	MaxRefAgeMS        *int64 `json:"max-ref-age-ms,omitempty"`
}

const (
	// MainBranch is the branch current-snapshot-id mirrors.
	MainBranch = "main"
	// PropPreviousVersionsMax caps the metadata-log (Java's property).
	PropPreviousVersionsMax    = "write.metadata.previous-versions-max"
	defaultPreviousVersionsMax = 100
	// maxMetadataBytes bounds a gzip'd metadata file once inflated: a
	// metadata JSON from elsewhere must not exhaust the worker's memory.
	maxMetadataBytes = 512 << 20
)

// ErrFormatVersion is returned by Parse for a table this package cannot
// write: format version 1 (upgrade it) or a version above 2.
var ErrFormatVersion = errors.New("unsupported Iceberg format version")

type metadataJSON struct {
	FormatVersion      *int               `json:"format-version"`
	TableUUID          *string            `json:"table-uuid"`
	Location           *string            `json:"location"`
	LastSequenceNumber *int64             `json:"last-sequence-number"`
	LastUpdatedMS      *int64             `json:"last-updated-ms"`
	LastColumnID       *int               `json:"last-column-id"`
	Schemas            []Schema           `json:"schemas"`
	CurrentSchemaID    *int               `json:"current-schema-id"`
	PartitionSpecs     []Spec             `json:"partition-specs"`
	DefaultSpecID      *int               `json:"default-spec-id"`
	LastPartitionID    *int               `json:"last-partition-id"`
	Properties         map[string]string  `json:"properties"`
	CurrentSnapshotID  *int64             `json:"current-snapshot-id"`
	Snapshots          []Snapshot         `json:"snapshots"`
	SnapshotLog        []SnapshotLogEntry `json:"snapshot-log"`
	MetadataLog        []MetadataLogEntry `json:"metadata-log"`
	SortOrders         []json.RawMessage  `json:"sort-orders"`
	DefaultSortOrderID *int               `json:"default-sort-order-id"`
	Refs               map[string]Ref     `json:"refs"`
}

var metadataKeys = []string{"format-version", "table-uuid", "location", "last-sequence-number",
	"last-updated-ms", "last-column-id", "schemas", "current-schema-id", "partition-specs",
	"default-spec-id", "last-partition-id", "properties", "current-snapshot-id", "snapshots",
	"snapshot-log", "metadata-log", "sort-orders", "default-sort-order-id", "refs"}

// Parse reads a metadata JSON file (gzip'd or not). Format version 1 is
// refused with what to do, as is any version above 2; a v2 file missing a
// required field or naming a schema, spec or snapshot it lacks is refused.
func Parse(b []byte) (*Metadata, error) {
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b { // the spec allows gzip'd metadata
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("parse table metadata: gzip: %w", err)
		}
		if b, err = io.ReadAll(io.LimitReader(zr, maxMetadataBytes+1)); err != nil {
			return nil, fmt.Errorf("parse table metadata: gzip: %w", err)
		}
		if len(b) > maxMetadataBytes {
			return nil, fmt.Errorf("parse table metadata: more than %d bytes inflated", maxMetadataBytes)
		}
	}
	var version struct {
		FormatVersion *int `json:"format-version"`
	}
	if err := json.Unmarshal(b, &version); err != nil {
		return nil, fmt.Errorf("parse table metadata: %w", err)
	}
	switch {
	case version.FormatVersion == nil:
		return nil, errors.New("parse table metadata: no format-version")
	case *version.FormatVersion == 1:
		return nil, fmt.Errorf("%w 1: this writer needs format version 2; upgrade the table, e.g. in Spark: ALTER TABLE <table> SET TBLPROPERTIES ('format-version'='2')", ErrFormatVersion)
	case *version.FormatVersion != 2:
		return nil, fmt.Errorf("%w %d: this writer supports format version 2 only", ErrFormatVersion, *version.FormatVersion)
	}
	var j metadataJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("parse table metadata: %w", err)
	}
	var missing []string
	need := func(ok bool, key string) {
		if !ok {
			missing = append(missing, key)
		}
	}
	need(j.TableUUID != nil, "table-uuid")
	need(j.Location != nil, "location")
	need(j.LastSequenceNumber != nil, "last-sequence-number")
	need(j.LastUpdatedMS != nil, "last-updated-ms")
	need(j.LastColumnID != nil, "last-column-id")
	need(j.Schemas != nil, "schemas")
	need(j.CurrentSchemaID != nil, "current-schema-id")
	need(j.PartitionSpecs != nil, "partition-specs")
	need(j.DefaultSpecID != nil, "default-spec-id")
	need(j.LastPartitionID != nil, "last-partition-id")
	need(j.SortOrders != nil, "sort-orders")
	need(j.DefaultSortOrderID != nil, "default-sort-order-id")
	if len(missing) > 0 {
		return nil, fmt.Errorf("parse table metadata: format version 2 requires %s", strings.Join(missing, ", "))
	}
	extra, err := unknownMembers(b, metadataKeys)
	if err != nil {
		return nil, fmt.Errorf("parse table metadata: %w", err)
	}
	m := &Metadata{
		FormatVersion:      2,
		TableUUID:          *j.TableUUID,
		Location:           *j.Location,
		LastSequenceNumber: *j.LastSequenceNumber,
		LastUpdatedMS:      *j.LastUpdatedMS,
		LastColumnID:       *j.LastColumnID,
		Schemas:            j.Schemas,
		CurrentSchemaID:    *j.CurrentSchemaID,
		PartitionSpecs:     j.PartitionSpecs,
		DefaultSpecID:      *j.DefaultSpecID,
		LastPartitionID:    *j.LastPartitionID,
		Properties:         j.Properties,
		CurrentSnapshotID:  j.CurrentSnapshotID,
		Snapshots:          j.Snapshots,
		SnapshotLog:        j.SnapshotLog,
		MetadataLog:        j.MetadataLog,
		SortOrders:         j.SortOrders,
		DefaultSortOrderID: *j.DefaultSortOrderID,
		Refs:               j.Refs,
		extra:              extra,
	}
	if m.CurrentSnapshotID != nil && *m.CurrentSnapshotID == -1 {
		m.CurrentSnapshotID = nil // Java's v2 "no snapshot"
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("parse table metadata: %w", err)
	}
	return m, nil
}

// check is what every method relies on: the current schema, default spec
// and current snapshot exist, and ids the table will hand out are above
// those in use.
func (m *Metadata) check() error {
	var errs []error
	if _, ok := m.schema(m.CurrentSchemaID); !ok {
		errs = append(errs, fmt.Errorf("current-schema-id %d is not in schemas", m.CurrentSchemaID))
	}
	if _, ok := m.spec(m.DefaultSpecID); !ok {
		errs = append(errs, fmt.Errorf("default-spec-id %d is not in partition-specs", m.DefaultSpecID))
	}
	if m.CurrentSnapshotID != nil && m.SnapshotByID(*m.CurrentSnapshotID) == nil {
		errs = append(errs, fmt.Errorf("current-snapshot-id %d is not in snapshots", *m.CurrentSnapshotID))
	}
	for _, s := range m.Schemas {
		if h := s.HighestFieldID(); h > m.LastColumnID {
			errs = append(errs, fmt.Errorf("schema %d has field id %d above last-column-id %d", s.ID, h, m.LastColumnID))
		}
	}
	for _, sp := range m.PartitionSpecs {
		for _, f := range sp.Fields {
			if f.FieldID > m.LastPartitionID {
				errs = append(errs, fmt.Errorf("partition spec %d has field id %d above last-partition-id %d", sp.ID, f.FieldID, m.LastPartitionID))
			}
		}
	}
	for _, s := range m.Snapshots {
		if s.SequenceNumber > m.LastSequenceNumber {
			errs = append(errs, fmt.Errorf("snapshot %d has sequence number %d above last-sequence-number %d", s.ID, s.SequenceNumber, m.LastSequenceNumber))
		}
	}
	return errors.Join(errs...)
}

// Marshal writes the metadata JSON, the keys this package models in the
// spec's order, then those it kept from the file it parsed.
func (m *Metadata) Marshal() ([]byte, error) {
	current := int64(-1)
	if m.CurrentSnapshotID != nil {
		current = *m.CurrentSnapshotID
	}
	props := m.Properties
	if props == nil {
		props = map[string]string{}
	}
	refs := m.Refs
	if refs == nil {
		refs = map[string]Ref{}
	}
	nonNil := func(s []json.RawMessage) []json.RawMessage {
		if s == nil {
			return []json.RawMessage{}
		}
		return s
	}
	out := struct {
		FormatVersion      int                `json:"format-version"`
		TableUUID          string             `json:"table-uuid"`
		Location           string             `json:"location"`
		LastSequenceNumber int64              `json:"last-sequence-number"`
		LastUpdatedMS      int64              `json:"last-updated-ms"`
		LastColumnID       int                `json:"last-column-id"`
		CurrentSchemaID    int                `json:"current-schema-id"`
		Schemas            []Schema           `json:"schemas"`
		DefaultSpecID      int                `json:"default-spec-id"`
		PartitionSpecs     []Spec             `json:"partition-specs"`
		LastPartitionID    int                `json:"last-partition-id"`
		DefaultSortOrderID int                `json:"default-sort-order-id"`
		SortOrders         []json.RawMessage  `json:"sort-orders"`
		Properties         map[string]string  `json:"properties"`
		CurrentSnapshotID  int64              `json:"current-snapshot-id"`
		Refs               map[string]Ref     `json:"refs"`
		Snapshots          []Snapshot         `json:"snapshots"`
		SnapshotLog        []SnapshotLogEntry `json:"snapshot-log"`
		MetadataLog        []MetadataLogEntry `json:"metadata-log"`
	}{
		FormatVersion: 2, TableUUID: m.TableUUID, Location: m.Location,
		LastSequenceNumber: m.LastSequenceNumber, LastUpdatedMS: m.LastUpdatedMS, LastColumnID: m.LastColumnID,
		CurrentSchemaID: m.CurrentSchemaID, Schemas: orEmpty(m.Schemas),
		DefaultSpecID: m.DefaultSpecID, PartitionSpecs: orEmpty(m.PartitionSpecs), LastPartitionID: m.LastPartitionID,
		DefaultSortOrderID: m.DefaultSortOrderID, SortOrders: nonNil(m.SortOrders),
		Properties: props, CurrentSnapshotID: current, Refs: refs,
		Snapshots: orEmpty(m.Snapshots), SnapshotLog: orEmpty(m.SnapshotLog), MetadataLog: orEmpty(m.MetadataLog),
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("marshal table metadata: %w", err)
	}
	return appendMembers(b, m.extra), nil
}

var snapshotKeys = []string{"snapshot-id", "parent-snapshot-id", "sequence-number", "timestamp-ms",
	"manifest-list", "summary", "schema-id"}

type snapshotJSON struct {
	ID             int64             `json:"snapshot-id"`
	ParentID       *int64            `json:"parent-snapshot-id,omitempty"`
	SequenceNumber int64             `json:"sequence-number"`
	TimestampMS    int64             `json:"timestamp-ms"`
	ManifestList   string            `json:"manifest-list"`
	Summary        map[string]string `json:"summary"`
	SchemaID       *int              `json:"schema-id,omitempty"`
}

// MarshalJSON writes the spec's snapshot object, with the members kept
// from the file it was read from.
func (s Snapshot) MarshalJSON() ([]byte, error) {
	j := snapshotJSON{ID: s.ID, ParentID: s.ParentID, SequenceNumber: s.SequenceNumber,
		TimestampMS: s.TimestampMS, ManifestList: s.ManifestList, Summary: s.Summary}
	if !s.noSchemaID {
		j.SchemaID = &s.SchemaID
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	return appendMembers(b, s.extra), nil
}

// UnmarshalJSON reads the spec's snapshot object.
func (s *Snapshot) UnmarshalJSON(b []byte) error {
	var j snapshotJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	extra, err := unknownMembers(b, snapshotKeys)
	if err != nil {
		return err
	}
	*s = Snapshot{ID: j.ID, ParentID: j.ParentID, SequenceNumber: j.SequenceNumber, TimestampMS: j.TimestampMS,
		ManifestList: j.ManifestList, Summary: j.Summary, noSchemaID: j.SchemaID == nil, extra: extra}
	if j.SchemaID != nil {
		s.SchemaID = *j.SchemaID
	}
	return nil
}

// unknownMembers returns the members of the JSON object b not named in known.
func unknownMembers(b []byte, known []string) (map[string]json.RawMessage, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	for _, k := range known {
		delete(all, k)
	}
	if len(all) == 0 {
		return nil, nil
	}
	return all, nil
}

// appendMembers adds extra's members (sorted, for stable output) to the JSON
// object b.
func appendMembers(b []byte, extra map[string]json.RawMessage) []byte {
	if len(extra) == 0 {
		return b
	}
	b = b[:len(b)-1] // the closing brace
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		kb, _ := json.Marshal(k)
		b = append(b, kb...)
		b = append(b, ':')
		b = append(b, extra[k]...)
	}
	return append(b, '}')
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// New returns the metadata of a new, empty table at location (no trailing
// slash needed). Partition fields with FieldID 0 get ids from 1000 up and,
// without a Name, the spec's conventional name ("ts_day").
func New(location string, schema Schema, spec Spec, props map[string]string) (*Metadata, error) {
	location = strings.TrimRight(location, "/")
	if location == "" {
		return nil, errors.New("new table: empty location")
	}
	if err := schema.validate(); err != nil {
		return nil, fmt.Errorf("new table: schema: %w", err)
	}
	spec.ID = 0
	spec.Fields = slices.Clone(spec.Fields)
	last := firstPartitionFieldID - 1
	for _, f := range spec.Fields {
		last = max(last, f.FieldID)
	}
	for i := range spec.Fields {
		f := &spec.Fields[i]
		if f.FieldID == 0 {
			last++
			f.FieldID = last
		}
		if f.Name == "" {
			src, ok := schema.FieldByID(f.SourceID)
			t, err := ParseTransform(f.Transform)
			if ok && err == nil {
				f.Name = DefaultPartitionName(src.Name, t)
			}
		}
	}
	if err := spec.validate(schema); err != nil {
		return nil, fmt.Errorf("new table: partition spec: %w", err)
	}
	if _, err := previousVersionsMax(props); err != nil {
		return nil, fmt.Errorf("new table: %w", err)
	}
	m := &Metadata{
		FormatVersion:   2,
		TableUUID:       NewUUID(),
		Location:        location,
		LastUpdatedMS:   time.Now().UnixMilli(),
		LastColumnID:    schema.HighestFieldID(),
		Schemas:         []Schema{schema},
		CurrentSchemaID: schema.ID,
		PartitionSpecs:  []Spec{spec},
		LastPartitionID: last,
		Properties:      maps.Clone(props),
		SortOrders:      []json.RawMessage{json.RawMessage(`{"order-id":0,"fields":[]}`)},
		Refs:            map[string]Ref{},
	}
	if m.Properties == nil {
		m.Properties = map[string]string{}
	}
	return m, nil
}

// CurrentSchema is the schema writers use.
func (m *Metadata) CurrentSchema() Schema {
	s, _ := m.schema(m.CurrentSchemaID)
	return s
}

// DefaultSpec is the partition spec writers use.
func (m *Metadata) DefaultSpec() Spec {
	s, _ := m.spec(m.DefaultSpecID)
	return s
}

// CurrentSnapshot is the main branch's snapshot, nil for an empty table.
func (m *Metadata) CurrentSnapshot() *Snapshot {
	if m.CurrentSnapshotID == nil {
		return nil
	}
	return m.SnapshotByID(*m.CurrentSnapshotID)
}

// SnapshotByID returns the snapshot with id, nil if none.
func (m *Metadata) SnapshotByID(id int64) *Snapshot {
	for i := range m.Snapshots {
		if m.Snapshots[i].ID == id {
			return &m.Snapshots[i]
		}
	}
	return nil
}

// SpecByID returns the partition spec with id: a manifest names its spec
// by id, and old manifests may use a spec that is no longer the default.
func (m *Metadata) SpecByID(id int) (Spec, bool) { return m.spec(id) }

// SchemaByID returns the schema with id.
func (m *Metadata) SchemaByID(id int) (Schema, bool) { return m.schema(id) }

func (m *Metadata) schema(id int) (Schema, bool) {
	for _, s := range m.Schemas {
		if s.ID == id {
			return s, true
		}
	}
	return Schema{}, false
}

func (m *Metadata) spec(id int) (Spec, bool) {
	for _, s := range m.PartitionSpecs {
		if s.ID == id {
			return s, true
		}
	}
	return Spec{}, false
}

// NextSequenceNumber is the sequence number the next snapshot gets.
func (m *Metadata) NextSequenceNumber() int64 { return m.LastSequenceNumber + 1 }

// Append describes an append commit: the new snapshot's id and manifest
// list, its summary ("operation" defaults to "append"), table properties to
// set in the same commit, the location of the metadata file this one
// replaces (for the metadata-log) and the commit time (zero: now).
type Append struct {
	SnapshotID       int64
	ManifestList     string
	Summary          map[string]string
	Properties       map[string]string
	PreviousLocation string
	Now              time.Time
}

// Append returns the metadata after an append commit: a snapshot with the
// next sequence number whose parent is the current snapshot, made current
// on the main branch, logged in snapshot-log; the previous metadata file
// logged in metadata-log (keeping write.metadata.previous-versions-max
// entries, 100 by default); properties merged.
func (m *Metadata) Append(a Append) (*Metadata, error) {
	switch {
	case a.SnapshotID <= 0:
		return nil, fmt.Errorf("append: snapshot id %d, want a positive id (NewSnapshotID)", a.SnapshotID)
	case m.SnapshotByID(a.SnapshotID) != nil:
		return nil, fmt.Errorf("append: snapshot id %d is already in the table; draw a new one", a.SnapshotID)
	case a.ManifestList == "":
		return nil, errors.New("append: empty manifest list location")
	}
	n := m.clone()
	maps.Copy(n.Properties, a.Properties)
	keep, err := previousVersionsMax(n.Properties)
	if err != nil {
		return nil, fmt.Errorf("append: %w", err)
	}
	now := a.Now
	if now.IsZero() {
		now = time.Now()
	}
	// Java refuses metadata whose last-updated-ms is over a minute before
	// its last log entry; a writer with a slow clock must not make the
	// table unreadable, so time never goes back here.
	ts := max(now.UnixMilli(), m.LastUpdatedMS)
	summary := maps.Clone(a.Summary)
	if summary == nil {
		summary = map[string]string{}
	}
	if summary["operation"] == "" {
		summary["operation"] = "append"
	}
	var parent *int64
	if m.CurrentSnapshotID != nil {
		p := *m.CurrentSnapshotID
		parent = &p
	}
	n.LastSequenceNumber = m.NextSequenceNumber()
	n.Snapshots = append(n.Snapshots, Snapshot{
		ID: a.SnapshotID, ParentID: parent, SequenceNumber: n.LastSequenceNumber, TimestampMS: ts,
		ManifestList: a.ManifestList, Summary: summary, SchemaID: m.CurrentSchemaID,
	})
	id := a.SnapshotID
	n.CurrentSnapshotID = &id
	main := n.Refs[MainBranch] // keeps the branch's retention settings
	main.SnapshotID, main.Type = id, "branch"
	n.Refs[MainBranch] = main
	n.SnapshotLog = append(n.SnapshotLog, SnapshotLogEntry{TimestampMS: ts, SnapshotID: id})
	if a.PreviousLocation != "" {
		n.MetadataLog = append(n.MetadataLog, MetadataLogEntry{TimestampMS: m.LastUpdatedMS, MetadataFile: a.PreviousLocation})
	}
	if len(n.MetadataLog) > keep {
		n.MetadataLog = slices.Clone(n.MetadataLog[len(n.MetadataLog)-keep:])
	}
	n.LastUpdatedMS = ts
	return n, nil
}

// AddFields returns the metadata with fields appended to the current schema
// as a new schema, made current. New columns must be optional (rows already
// written have no value); their ids, nested ones included, are assigned
// from last-column-id up, whatever the caller set.
func (m *Metadata) AddFields(fields []Field) (*Metadata, error) {
	cur := m.CurrentSchema()
	n := m.clone()
	if len(fields) == 0 {
		return n, nil
	}
	next := m.LastColumnID
	var assign func(f *Field)
	assign = func(f *Field) {
		next++
		f.ID = next
		t := &f.Type
		switch {
		case t.IsList():
			el := *t.Element
			assign(&el)
			t.Element = &el
		case t.IsMap():
			k, v := *t.Key, *t.Value
			assign(&k)
			assign(&v)
			t.Key, t.Value = &k, &v
		case t.IsStruct():
			t.Fields = slices.Clone(t.Fields)
			for i := range t.Fields {
				assign(&t.Fields[i])
			}
		}
	}
	added := make([]Field, len(fields))
	for i, f := range fields {
		if f.Required {
			return nil, fmt.Errorf("add column %q: a new column must be optional: rows already in the table have no value for it", f.Name)
		}
		if f.Type.IsMap() && f.Type.Value == nil {
			return nil, fmt.Errorf("add column %q: map without a value", f.Name)
		}
		assign(&f)
		added[i] = f
	}
	schemaID := 0
	for _, s := range m.Schemas {
		schemaID = max(schemaID, s.ID+1)
	}
	s := Schema{ID: schemaID, IdentifierFieldIDs: cur.IdentifierFieldIDs, Fields: append(slices.Clone(cur.Fields), added...)}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("add columns: %w", err)
	}
	n.Schemas = append(n.Schemas, s)
	n.CurrentSchemaID = schemaID
	n.LastColumnID = next
	n.LastUpdatedMS = max(time.Now().UnixMilli(), m.LastUpdatedMS)
	return n, nil
}

// clone copies what Append and AddFields change; the elements of slices
// (schemas, snapshots) are never modified in place, so they are shared.
func (m *Metadata) clone() *Metadata {
	n := *m
	n.Schemas = slices.Clone(m.Schemas)
	n.Snapshots = slices.Clone(m.Snapshots)
	n.SnapshotLog = slices.Clone(m.SnapshotLog)
	n.MetadataLog = slices.Clone(m.MetadataLog)
	n.Properties = maps.Clone(m.Properties)
	if n.Properties == nil {
		n.Properties = map[string]string{}
	}
	n.Refs = maps.Clone(m.Refs)
	if n.Refs == nil {
		n.Refs = map[string]Ref{}
	}
	return &n
}

func previousVersionsMax(props map[string]string) (int, error) {
	v, ok := props[PropPreviousVersionsMax]
	if !ok {
		return defaultPreviousVersionsMax, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("table property %s=%q: want a positive integer", PropPreviousVersionsMax, v)
	}
	return n, nil
}

// NewSnapshotID returns a random positive snapshot id.
func NewSnapshotID() int64 {
	for {
		var b [8]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail (Go 1.24+)
		if id := int64(binary.BigEndian.Uint64(b[:]) >> 1); id > 0 {
			return id
		}
	}
}

// NewUUID returns a random (version 4) UUID, as table-uuid and file names
// use.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
