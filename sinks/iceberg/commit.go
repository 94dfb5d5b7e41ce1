package iceberg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/iceberg/catalog"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/iceberg/table"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/parquetenc"
)

// committerState is the committer goroutine's own.
type committerState struct {
	// list is the manifest list read last: the next commit's parent's, in
	// the common case that nobody else committed in between.
	listPath  string
	manifests []table.ManifestFile
	// enc is the Parquet encoder of the schema encSchema (field ids differ
	// between schemas).
	enc       *parquetenc.Encoder
	encSchema int
	encIDs    map[string]int
	// carried are the files of the last attempt at the batches carriedFor
	// that failed before its swap (S3 or the catalog down): the retry of
	// the same batches reuses them instead of writing another set.
	carried    *written
	carriedFor *batch
}

// load reads the table's current metadata, creating the table when it is
// missing and the sink may.
func (s *Sink) load(ctx context.Context) (*table.Metadata, string, error) {
	loc, err := s.cfg.Catalog.Load(ctx, s.cfg.Namespace, s.cfg.Table)
	if errors.Is(err, catalog.ErrNoSuchTable) {
		if !s.cfg.CreateTable {
			return nil, "", fmt.Errorf("iceberg sink: table %s does not exist: create it, or set create_table: true: %w", s.name, err)
		}
		return s.create(ctx)
	}
	if err != nil {
		return nil, "", fmt.Errorf("iceberg sink: load table %s: %w", s.name, err)
	}
	m, err := s.read(ctx, loc)
	return m, loc, err
}

func (s *Sink) read(ctx context.Context, loc string) (*table.Metadata, error) {
	b, err := s.cfg.Files.Get(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("iceberg sink: read metadata of table %s: %w", s.name, err)
	}
	m, err := table.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("iceberg sink: metadata %s of table %s: %w", loc, s.name, err)
	}
	return m, nil
}

// create makes the namespace and the table: the dataset's schema, the
// sink's partition spec, no snapshot. Another worker creating it at the
// same time wins or loses the catalog's insert; the loser loads.
func (s *Sink) create(ctx context.Context) (*table.Metadata, string, error) {
	if err := s.cfg.Catalog.CreateNamespace(ctx, s.cfg.Namespace); err != nil {
		return nil, "", fmt.Errorf("iceberg sink: create namespace %s: %w", strings.Join(s.cfg.Namespace, "."), err)
	}
	ts, err := newSchema(s.cfg.Columns, s.cfg.Changelog)
	if err != nil {
		return nil, "", fmt.Errorf("iceberg sink: %w", err)
	}
	sp, err := spec(s.parts, ts)
	if err != nil {
		return nil, "", fmt.Errorf("iceberg sink: %w", err)
	}
	location := strings.TrimSuffix(s.cfg.Warehouse, "/") + "/" + strings.Join(s.cfg.Namespace, "/") + "/" + s.cfg.Table
	codec := s.cfg.Compression
	if codec == "" {
		codec = "zstd"
	}
	m, err := table.New(location, ts, sp, map[string]string{
		"write.format.default":            "parquet",
		"write.parquet.compression-codec": codec,
		"created-by":                      "kinesis-ingest",
	})
	if err != nil {
		return nil, "", fmt.Errorf("iceberg sink: new table %s: %w", s.name, err)
	}
	b, err := m.Marshal()
	if err != nil {
		return nil, "", fmt.Errorf("iceberg sink: new table %s: %w", s.name, err)
	}
	loc := location + "/metadata/00000-" + uuid.NewString() + ".metadata.json"
	if err := s.cfg.Files.Put(ctx, loc, b); err != nil {
		return nil, "", fmt.Errorf("iceberg sink: create table %s: %w", s.name, err)
	}
	err = s.cfg.Catalog.Create(ctx, s.cfg.Namespace, s.cfg.Table, loc)
	if errors.Is(err, catalog.ErrTableExists) {
		_ = s.cfg.Files.Delete(ctx, loc) // never named by the catalog
		return s.load(ctx)
	}
	if err != nil {
		return nil, "", fmt.Errorf("iceberg sink: create table %s: %w", s.name, err)
	}
	s.log.Info("created iceberg table", "table", s.name, "location", location)
	return m, loc, nil
}

// tablePlan is how a commit writes to the table as it is now.
type tablePlan struct {
	base  *table.Metadata // the loaded metadata, with the dataset's new fields added
	spec  table.Spec
	parts []partField
	ids   map[string]int
}

// plan checks the table against the dataset (every problem with its fix)
// and adds the fields the table lacks.
func (s *Sink) plan(m *table.Metadata) (*tablePlan, error) {
	p, problems, err := makePlan(m, s.name, s.cfg.Columns, s.cfg.Changelog, len(s.cfg.PartitionBy) > 0, s.parts)
	if err != nil {
		return nil, fmt.Errorf("iceberg sink: %w", err)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("iceberg sink: table %s does not fit dataset %q:\n  - %s", s.name, s.cfg.Dataset, strings.Join(problems, "\n  - "))
	}
	s.mu.Lock()
	s.parts = p.parts // with partition_by empty, the table's spec decides Accept's checks too
	s.mu.Unlock()
	return p, nil
}

// makePlan is plan without a sink: configured says whether parts come
// from partition_by (else the table's spec decides).
func makePlan(m *table.Metadata, name string, cols []schema.Column, changelog, configured bool, parts []partField) (*tablePlan, []string, error) {
	ts := m.CurrentSchema()
	add, problems := checkSchema(ts, name, cols, changelog)
	sp := m.DefaultSpec()
	if !configured {
		var err error
		if parts, err = partsOfSpec(sp, ts, cols); err != nil {
			problems = append(problems, fmt.Sprintf("table %s: %v: partition the table by the dataset's fields, or write to another table", name, err))
		}
	} else if want, err := spec(parts, ts); err == nil && !sameSpec(sp, want) {
		problems = append(problems, fmt.Sprintf("table %s is partitioned by %s, the sink by %s: set partition_by to the table's, or leave it empty to follow the table",
			name, specString(sp), specString(want)))
	} else if err != nil {
		problems = append(problems, fmt.Sprintf("table %s: %v", name, err))
	}
	if len(problems) > 0 {
		return nil, problems, nil
	}
	base := m
	if len(add) > 0 {
		var err error
		if base, err = m.AddFields(add); err != nil {
			return nil, nil, fmt.Errorf("add columns to table %s: %w", name, err)
		}
	}
	ids, err := fieldIDs(base.CurrentSchema(), cols, changelog)
	if err != nil {
		return nil, nil, fmt.Errorf("table %s: %w", name, err)
	}
	return &tablePlan{base: base, spec: sp, parts: parts, ids: ids}, nil, nil
}

func specString(sp table.Spec) string {
	if len(sp.Fields) == 0 {
		return "nothing"
	}
	var parts []string
	for _, f := range sp.Fields {
		parts = append(parts, f.Transform+"("+f.Name+")")
	}
	return strings.Join(parts, ", ")
}

// written is a commit's data files and their manifest, reused while the
// rows to commit stay the same across refused swaps.
type written struct {
	rows     int
	schemaID int
	files    []table.DataFile
	manifest table.ManifestFile
	uris     []string // every object written, for removal if never committed
}

// commit adds the batches' rows that the table does not hold yet, and
// their shards' positions, in one swap.
func (s *Sink) commit(ctx context.Context, batches []*batch) error {
	start := time.Now()
	var rows []*row
	for _, b := range batches {
		for i := range b.rows {
			rows = append(rows, &b.rows[i])
		}
	}
	var w *written
	st := &s.state
	if st.carriedFor == batches[0] {
		w = st.carried
	}
	st.carried, st.carriedFor = nil, nil
	keepFiles := func() { st.carried, st.carriedFor = w, batches[0] }
	conflicts := 0
	for {
		m, loc, err := s.load(ctx)
		if err != nil {
			keepFiles()
			return err
		}
		p, err := s.plan(m)
		if err != nil {
			keepFiles()
			return err
		}
		keep, props, err := fresh(m.Properties, rows)
		if err != nil {
			return fmt.Errorf("iceberg sink: table %s: %w", s.name, err)
		}
		if skipped := len(rows) - len(keep); skipped > 0 && s.cfg.Observer != nil && w == nil {
			s.cfg.Observer.Skipped(s.cfg.Dataset, skipped)
		}
		if len(keep) == 0 {
			if w != nil {
				s.remove(ctx, w.uris) // another writer committed every row: no snapshot names these
			}
			return nil
		}
		if w != nil && (w.rows != len(keep) || w.schemaID != p.base.CurrentSchema().ID) {
			// Another writer committed some of these rows: this commit's
			// files hold them too, and no snapshot lists the files.
			s.remove(ctx, w.uris)
			w = nil
		}
		if w == nil {
			if w, err = s.writeFiles(ctx, p, keep); err != nil {
				return err
			}
		}
		next, metaURIs, err := s.next(ctx, p, loc, w, props)
		if err != nil {
			s.remove(ctx, metaURIs)
			keepFiles()
			return err
		}
		err = s.cfg.Catalog.Swap(ctx, s.cfg.Namespace, s.cfg.Table, loc, next)
		if err == nil {
			if s.cfg.Observer != nil {
				s.cfg.Observer.Committed(s.cfg.Dataset, len(w.files), len(keep), conflicts, time.Since(start))
			}
			return nil
		}
		if !errors.Is(err, catalog.ErrConflict) {
			// The swap may have happened (an answer lost): nothing is
			// removed; the retry's load finds out.
			return fmt.Errorf("iceberg sink: commit to table %s: %w", s.name, err)
		}
		conflicts++
		s.remove(ctx, metaURIs) // refused: no metadata names them
	}
}

// fresh drops the rows at or below their shard's committed position and
// returns the positions the commit sets.
func fresh(props map[string]string, rows []*row) ([]*row, map[string]string, error) {
	type shard struct {
		at  pos
		has bool
	}
	seen := map[string]*shard{}
	var keep []*row
	set := map[string]string{}
	for _, r := range rows {
		sh := seen[r.key]
		if sh == nil {
			at, has, err := committed(props, r.key)
			if err != nil {
				return nil, nil, err
			}
			sh = &shard{at: at, has: has}
			seen[r.key] = sh
		}
		if sh.has && !r.pos.after(sh.at) {
			continue
		}
		keep = append(keep, r)
		sh.at, sh.has = r.pos, true
		set[r.key] = r.pos.String()
	}
	return keep, set, nil
}

// writeFiles writes rows as one Parquet data file per partition, and their
// manifest.
func (s *Sink) writeFiles(ctx context.Context, p *tablePlan, rows []*row) (*written, error) {
	ts := p.base.CurrentSchema()
	st := &s.state
	if st.enc == nil || st.encSchema != ts.ID || !sameIDs(st.encIDs, p.ids) {
		enc, err := parquetenc.New(s.cfg.Columns, parquetenc.Options{Changelog: s.cfg.Changelog, Compression: s.cfg.Compression, FieldIDs: p.ids})
		if err != nil {
			return nil, fmt.Errorf("iceberg sink: table %s: %w", s.name, err)
		}
		st.enc, st.encSchema, st.encIDs = enc, ts.ID, p.ids
	}
	type group struct {
		vals []any
		rows []*record.Row
	}
	groups := map[string]*group{}
	var order []string
	for _, r := range rows {
		vals, srcs, err := partitionValues(p.parts, &r.r)
		if err != nil {
			return nil, fmt.Errorf("iceberg sink: table %s: %w", s.name, err)
		}
		dir := partitionPath(p.parts, p.spec, srcs)
		g := groups[dir]
		if g == nil {
			g = &group{vals: vals}
			groups[dir] = g
			order = append(order, dir)
		}
		g.rows = append(g.rows, &r.r)
	}
	w := &written{rows: len(rows), schemaID: ts.ID}
	location := strings.TrimSuffix(p.base.Location, "/")
	var buf bytes.Buffer
	for _, dir := range order {
		g := groups[dir]
		buf.Reset()
		if err := st.enc.Encode(&buf, g.rows); err != nil {
			return nil, fmt.Errorf("iceberg sink: table %s: encode data file: %w", s.name, err)
		}
		uri := location + "/data/" + path.Join(dir, uuid.NewString()+".parquet")
		if err := s.cfg.Files.Put(ctx, uri, buf.Bytes()); err != nil {
			s.remove(ctx, w.uris)
			return nil, fmt.Errorf("iceberg sink: table %s: write data file: %w", s.name, err)
		}
		w.uris = append(w.uris, uri)
		w.files = append(w.files, table.DataFile{Path: uri, RecordCount: int64(len(g.rows)), FileSizeBytes: int64(buf.Len()), Partition: g.vals})
	}
	buf.Reset()
	mf, err := table.WriteManifest(&buf, ts, p.spec, w.files)
	if err != nil {
		return nil, fmt.Errorf("iceberg sink: table %s: write manifest: %w", s.name, err)
	}
	uri := location + "/metadata/" + uuid.NewString() + "-m0.avro"
	if err := s.cfg.Files.Put(ctx, uri, buf.Bytes()); err != nil {
		s.remove(ctx, w.uris)
		return nil, fmt.Errorf("iceberg sink: table %s: write manifest: %w", s.name, err)
	}
	w.uris = append(w.uris, uri)
	mf.Path, mf.Length = uri, int64(buf.Len())
	w.manifest = mf
	return w, nil
}

func sameIDs(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// next writes the manifest list and the metadata of the commit on top of
// p.base, and returns the new metadata's URI and both files' URIs.
func (s *Sink) next(ctx context.Context, p *tablePlan, loc string, w *written, props map[string]string) (string, []string, error) {
	base := p.base
	location := strings.TrimSuffix(base.Location, "/")
	id := table.NewSnapshotID()
	seq := base.NextSequenceNumber()
	var prev []table.ManifestFile
	var parent *int64
	summary := map[string]string{
		"operation":              "append",
		"added-data-files":       strconv.Itoa(len(w.files)),
		"added-records":          strconv.Itoa(w.rows),
		"added-files-size":       strconv.FormatInt(sizeOf(w.files), 10),
		"kinesis-ingest.dataset": s.cfg.Dataset,
	}
	if s.cfg.Worker != "" {
		summary["kinesis-ingest.worker"] = s.cfg.Worker
	}
	if cur := base.CurrentSnapshot(); cur != nil {
		parent = &cur.ID
		var err error
		if prev, err = s.manifestList(ctx, cur.ManifestList); err != nil {
			return "", nil, err
		}
		addTotal(summary, cur.Summary, "total-records", int64(w.rows))
		addTotal(summary, cur.Summary, "total-data-files", int64(len(w.files)))
		addTotal(summary, cur.Summary, "total-files-size", sizeOf(w.files))
	} else {
		summary["total-records"] = strconv.Itoa(w.rows)
		summary["total-data-files"] = strconv.Itoa(len(w.files))
		summary["total-files-size"] = strconv.FormatInt(sizeOf(w.files), 10)
	}
	prev, merged, err := s.merge(ctx, p, prev)
	if err != nil {
		return "", nil, err
	}
	mf := w.manifest
	mf.SequenceNumber, mf.MinSequenceNumber, mf.AddedSnapshotID = seq, seq, id
	list := append([]table.ManifestFile{mf}, prev...)
	var buf bytes.Buffer
	if err := table.WriteManifestList(&buf, id, parent, seq, list); err != nil {
		return "", nil, fmt.Errorf("iceberg sink: table %s: write manifest list: %w", s.name, err)
	}
	listURI := location + "/metadata/snap-" + strconv.FormatInt(id, 10) + "-1-" + uuid.NewString() + ".avro"
	if err := s.cfg.Files.Put(ctx, listURI, buf.Bytes()); err != nil {
		return "", merged, fmt.Errorf("iceberg sink: table %s: write manifest list: %w", s.name, err)
	}
	made := append(merged, listURI)
	nm, err := base.Append(table.Append{SnapshotID: id, ManifestList: listURI, Summary: summary, Properties: props, PreviousLocation: loc, Now: time.Now()})
	if err != nil {
		return "", made, fmt.Errorf("iceberg sink: table %s: %w", s.name, err)
	}
	b, err := nm.Marshal()
	if err != nil {
		return "", made, fmt.Errorf("iceberg sink: table %s: %w", s.name, err)
	}
	metaURI := fmt.Sprintf("%s/metadata/%05d-%s.metadata.json", location, version(loc)+1, uuid.NewString())
	if err := s.cfg.Files.Put(ctx, metaURI, b); err != nil {
		return "", made, fmt.Errorf("iceberg sink: table %s: write metadata: %w", s.name, err)
	}
	return metaURI, append(made, metaURI), nil
}

// DefaultMergeManifestsAt is when the carried manifests are merged (Java's
// commit.manifest.min-count-to-merge default): a snapshot would list more.
const DefaultMergeManifestsAt = 100

// merge turns the carried data manifests of the table's spec into one when
// the snapshot would list more than the merge count of them (the table
// property commit.manifest.min-count-to-merge, else Config.MergeManifestsAt,
// else DefaultMergeManifestsAt; commit.manifest-merge.enabled=false turns it
// off), as Java's appends do: without it every commit adds a manifest, and
// every reader plans over all of them. Each file keeps its snapshot and
// sequence numbers (EXISTING entries); deleted entries are dropped. It
// returns the new list of carried manifests and the merged file's URI.
func (s *Sink) merge(ctx context.Context, p *tablePlan, prev []table.ManifestFile) ([]table.ManifestFile, []string, error) {
	props := p.base.Properties
	if props["commit.manifest-merge.enabled"] == "false" {
		return prev, nil, nil
	}
	at := DefaultMergeManifestsAt
	if s.cfg.MergeManifestsAt > 0 {
		at = s.cfg.MergeManifestsAt
	}
	if v, err := strconv.Atoi(props["commit.manifest.min-count-to-merge"]); err == nil && v > 0 {
		at = v
	}
	if len(prev)+1 <= at {
		return prev, nil, nil
	}
	var keep, old []table.ManifestFile
	for _, m := range prev {
		if m.Content == 0 && m.SpecID == p.spec.ID {
			old = append(old, m)
		} else {
			keep = append(keep, m)
		}
	}
	if len(old) < 2 {
		return prev, nil, nil
	}
	var entries []table.Entry
	for _, m := range old {
		b, err := s.cfg.Files.Get(ctx, m.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("iceberg sink: table %s: read manifest to merge: %w", s.name, err)
		}
		es, err := table.ReadManifest(bytes.NewReader(b))
		if err != nil {
			return nil, nil, fmt.Errorf("iceberg sink: table %s: manifest %s: %w", s.name, m.Path, err)
		}
		for _, e := range es {
			if e.Status == table.StatusDeleted {
				continue
			}
			// An entry without them inherits the manifest's.
			snap, seq, fseq := m.AddedSnapshotID, m.SequenceNumber, e.FileSequenceNumber
			if e.SnapshotID != nil {
				snap = *e.SnapshotID
			}
			if e.SequenceNumber != nil {
				seq = *e.SequenceNumber
			}
			if fseq == nil && e.Status == table.StatusAdded {
				fseq = &m.SequenceNumber
			}
			entries = append(entries, table.Entry{Status: table.StatusExisting, SnapshotID: &snap, SequenceNumber: &seq, FileSequenceNumber: fseq, File: e.File})
		}
	}
	var buf bytes.Buffer
	mf, err := table.WriteManifestEntries(&buf, p.base.CurrentSchema(), p.spec, entries)
	if err != nil {
		return nil, nil, fmt.Errorf("iceberg sink: table %s: merge manifests: %w", s.name, err)
	}
	uri := strings.TrimSuffix(p.base.Location, "/") + "/metadata/" + uuid.NewString() + "-m1.avro"
	if err := s.cfg.Files.Put(ctx, uri, buf.Bytes()); err != nil {
		return nil, nil, fmt.Errorf("iceberg sink: table %s: merge manifests: %w", s.name, err)
	}
	mf.Path = uri
	return append([]table.ManifestFile{mf}, keep...), []string{uri}, nil
}

// manifestList reads a snapshot's manifests, the last one read from memory.
func (s *Sink) manifestList(ctx context.Context, uri string) ([]table.ManifestFile, error) {
	st := &s.state
	if st.listPath == uri {
		return st.manifests, nil
	}
	b, err := s.cfg.Files.Get(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("iceberg sink: table %s: read manifest list: %w", s.name, err)
	}
	ms, err := table.ReadManifestList(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("iceberg sink: table %s: manifest list %s: %w", s.name, uri, err)
	}
	st.listPath, st.manifests = uri, ms
	return ms, nil
}

// version is the number a metadata file's name starts with (00012-….metadata.json).
func version(loc string) int {
	base := path.Base(loc)
	digits, _, _ := strings.Cut(base, "-")
	n, err := strconv.Atoi(digits)
	if err != nil {
		return 0
	}
	return n
}

func sizeOf(files []table.DataFile) int64 {
	var n int64
	for _, f := range files {
		n += f.FileSizeBytes
	}
	return n
}

func addTotal(summary, prev map[string]string, key string, added int64) {
	if v, err := strconv.ParseInt(prev[key], 10, 64); err == nil {
		summary[key] = strconv.FormatInt(v+added, 10)
	}
}

// remove deletes objects no metadata names (best effort: an orphan costs
// storage, not correctness; engines' remove_orphan_files finds the rest).
func (s *Sink) remove(ctx context.Context, uris []string) {
	for _, u := range uris {
		if err := s.cfg.Files.Delete(ctx, u); err != nil {
			s.log.Debug("iceberg sink: could not remove an uncommitted file", "uri", u, "error", err)
		}
	}
}
