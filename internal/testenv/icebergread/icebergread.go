// Package icebergread reads an Iceberg table the way another engine would,
// for the tests of the Iceberg sink: it shares no code with sinks/iceberg.
// It looks the table up in the SQL catalog with its own query, reads the
// current metadata JSON with encoding/json, follows the current snapshot to
// its manifest list and manifests, which it decodes with avsc (npm, not the
// goavro the sink writes with; avro.js here), and counts the rows of the live
// data files with DuckDB (internal/testenv/duckread).
//
// Locations in the table (s3://bucket/key) are mapped to files on disk by a
// Locator: S3Files maps them into a directory per bucket, as Versity Gateway
// (internal/testenv/s3test, Server.BucketDir) stores them.
package icebergread

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/duckread"
)

// Locator maps a location written in the table (metadata, manifest, data
// file) to a local file.
type Locator func(uri string) (string, error)

// S3Files maps s3://bucket/key (also s3a:// and s3n://) to
// bucketDir(bucket)/key, and file:// URIs and plain paths to themselves.
// Pass s3test.Server.BucketDir.
func S3Files(bucketDir func(bucket string) string) Locator {
	return func(uri string) (string, error) {
		u, err := url.Parse(uri)
		if err != nil {
			return "", fmt.Errorf("icebergread: location %q: %w", uri, err)
		}
		switch u.Scheme {
		case "s3", "s3a", "s3n":
			key := strings.TrimPrefix(u.Path, "/")
			if u.Host == "" || key == "" {
				return "", fmt.Errorf("icebergread: location %q: want s3://bucket/key", uri)
			}
			return filepath.Join(bucketDir(u.Host), filepath.FromSlash(key)), nil
		case "file":
			return u.Path, nil
		case "":
			return uri, nil
		}
		return "", fmt.Errorf("icebergread: location %q: scheme %q is not one the tests store locally", uri, u.Scheme)
	}
}

// Source names a table in a SQL catalog.
type Source struct {
	DSN       string   // the catalog database
	Catalog   string   // catalog_name; "" means "default"
	Namespace []string // its levels, joined with '.' in the catalog
	Table     string
	Locate    Locator
}

// Table is what a reader sees of a table at its current metadata.
type Table struct {
	MetadataLocation         string
	PreviousMetadataLocation string // "" when NULL
	// Metadata is the whole metadata JSON, numbers as json.Number.
	Metadata   map[string]any
	Properties map[string]string
	// Snapshot is the current snapshot; nil for a table without one.
	Snapshot  *Snapshot
	Snapshots int // how many the metadata lists
	// History is every snapshot the metadata lists, in its order (the
	// current one included): commits' times and summaries.
	History []Snapshot
	// Manifests are the current snapshot's manifest list's entries.
	Manifests []Manifest
	// Files are the live data files (status ADDED or EXISTING) of the
	// current snapshot's data manifests, in manifest order.
	Files []DataFile
	// DeleteFiles counts live delete files (position or equality): a table
	// with some cannot be counted by reading its data files alone.
	DeleteFiles int
	// DeletedEntries counts manifest entries with status DELETED.
	DeletedEntries int

	locate Locator
}

// Snapshot is one entry of the metadata's snapshots.
type Snapshot struct {
	ID             int64
	ParentID       *int64
	SequenceNumber int64
	TimestampMS    int64
	ManifestList   string
	Summary        map[string]string
}

// Manifest is one entry of a manifest list.
type Manifest struct {
	Path                                    string
	Length                                  int64
	SpecID                                  int
	Content                                 int // 0 data, 1 deletes
	SequenceNumber, MinSequenceNumber       int64
	AddedSnapshotID                         int64
	AddedFiles, ExistingFiles, DeletedFiles int64
	AddedRows, ExistingRows, DeletedRows    int64
	// Meta is the manifest's own Avro header (schema, partition-spec,
	// format-version, content...).
	Meta map[string]string
}

// DataFile is a live data file of the current snapshot.
type DataFile struct {
	Path        string // as written in the manifest
	Local       string // on disk
	Format      string // "PARQUET"
	RecordCount int64
	SizeBytes   int64
	// Partition is the partition tuple by partition field name, each value
	// as avsc decodes it (numbers as json.Number, bytes as base64 text, null
	// as nil).
	Partition map[string]any
	Status    int // 0 EXISTING, 1 ADDED
	// SnapshotID and SequenceNumber are the entry's, inherited from the
	// manifest list when the entry leaves them null.
	SnapshotID     int64
	SequenceNumber int64
}

// Read reads the table's current state; it fails the test when the table is
// missing or any of its files cannot be read.
func Read(t testing.TB, src Source) Table {
	t.Helper()
	tbl, err := read(t, src)
	if err != nil {
		t.Fatalf("icebergread: %s.%s: %v", strings.Join(src.Namespace, "."), src.Table, err)
	}
	return tbl
}

// Load is Read for a table that may not be there yet (or a catalog that may
// be down): the error says what could not be read.
func Load(t testing.TB, src Source) (Table, error) {
	t.Helper()
	return read(t, src)
}

func read(t testing.TB, src Source) (Table, error) {
	if src.Locate == nil {
		return Table{}, errors.New("Source.Locate is nil: say where the table's files are on disk (S3Files)")
	}
	catalog := src.Catalog
	if catalog == "" {
		catalog = "default"
	}
	tbl := Table{locate: src.Locate}
	loc, prev, err := lookup(t.Context(), src.DSN, catalog, strings.Join(src.Namespace, "."), src.Table)
	if err != nil {
		return tbl, err
	}
	tbl.MetadataLocation, tbl.PreviousMetadataLocation = loc, prev

	local, err := src.Locate(loc)
	if err != nil {
		return tbl, err
	}
	b, err := os.ReadFile(local)
	if err != nil {
		return tbl, fmt.Errorf("metadata %s: %w", loc, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&tbl.Metadata); err != nil {
		return tbl, fmt.Errorf("metadata %s: %w", loc, err)
	}
	if v := num(tbl.Metadata["format-version"]); v != 2 {
		return tbl, fmt.Errorf("metadata %s: format-version %v, this reader reads 2", loc, tbl.Metadata["format-version"])
	}
	tbl.Properties = strMap(tbl.Metadata["properties"])
	snaps, _ := tbl.Metadata["snapshots"].([]any)
	tbl.Snapshots = len(snaps)
	for _, s := range snaps {
		m, _ := s.(map[string]any)
		tbl.History = append(tbl.History, *snapshot(m))
	}
	cur, hasCur := tbl.Metadata["current-snapshot-id"].(json.Number)
	if !hasCur || cur == "-1" {
		return tbl, nil
	}
	curID, err := cur.Int64()
	if err != nil {
		return tbl, fmt.Errorf("metadata %s: current-snapshot-id %q: %w", loc, cur, err)
	}
	for _, s := range snaps {
		m, _ := s.(map[string]any)
		if id, err := m["snapshot-id"].(json.Number).Int64(); err == nil && id == curID {
			tbl.Snapshot = snapshot(m)
		}
	}
	if tbl.Snapshot == nil {
		return tbl, fmt.Errorf("metadata %s: current-snapshot-id %d is not among its %d snapshots", loc, curID, len(snaps))
	}

	lists, err := readAvro(t, src.Locate, tbl.Snapshot.ManifestList)
	if err != nil {
		return tbl, err
	}
	var paths []string
	for _, r := range lists[0].Records {
		m := manifest(r)
		tbl.Manifests = append(tbl.Manifests, m)
		paths = append(paths, m.Path)
	}
	if len(paths) == 0 {
		return tbl, nil
	}
	manifests, err := readAvro(t, src.Locate, paths...)
	if err != nil {
		return tbl, err
	}
	for i, mf := range manifests {
		m := &tbl.Manifests[i]
		m.Meta = mf.Meta
		for _, r := range mf.Records {
			status := int(num(r["status"]))
			if status == 2 {
				tbl.DeletedEntries++
				continue
			}
			df, _ := r["data_file"].(map[string]any)
			content := int(num(df["content"]))
			if m.Content != 0 || content != 0 {
				tbl.DeleteFiles++
				continue
			}
			f := DataFile{
				Path:        str(df["file_path"]),
				Format:      str(df["file_format"]),
				RecordCount: num(df["record_count"]),
				SizeBytes:   num(df["file_size_in_bytes"]),
				Status:      status,
				Partition:   map[string]any{},
			}
			if p, ok := df["partition"].(map[string]any); ok {
				f.Partition = p
			}
			// Null snapshot id and sequence number are inherited from the
			// manifest list's entry (spec: "Sequence Number Inheritance").
			f.SnapshotID, f.SequenceNumber = m.AddedSnapshotID, m.SequenceNumber
			if r["snapshot_id"] != nil {
				f.SnapshotID = num(r["snapshot_id"])
			}
			if r["sequence_number"] != nil {
				f.SequenceNumber = num(r["sequence_number"])
			}
			if f.Local, err = src.Locate(f.Path); err != nil {
				return tbl, err
			}
			tbl.Files = append(tbl.Files, f)
		}
	}
	return tbl, nil
}

// lookup reads the table's row, with the query every SQL catalog's reader
// runs.
func lookup(ctx context.Context, dsn, catalog, ns, table string) (loc, prev string, err error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", "", fmt.Errorf("connect to the catalog database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var l, p *string
	err = conn.QueryRow(ctx, `SELECT metadata_location, previous_metadata_location FROM iceberg_tables
WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3`, catalog, ns, table).Scan(&l, &p)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", fmt.Errorf("catalog %q has no table %s.%s", catalog, ns, table)
	}
	if err != nil {
		return "", "", fmt.Errorf("read the catalog: %w", err)
	}
	if l == nil {
		return "", "", fmt.Errorf("catalog %q: table %s.%s has no metadata_location", catalog, ns, table)
	}
	if p != nil {
		prev = *p
	}
	return *l, prev, nil
}

func snapshot(m map[string]any) *Snapshot {
	s := &Snapshot{
		ID:             num(m["snapshot-id"]),
		SequenceNumber: num(m["sequence-number"]),
		TimestampMS:    num(m["timestamp-ms"]),
		ManifestList:   str(m["manifest-list"]),
		Summary:        strMap(m["summary"]),
	}
	if p, ok := m["parent-snapshot-id"].(json.Number); ok {
		id, _ := p.Int64()
		s.ParentID = &id
	}
	return s
}

func manifest(r map[string]any) Manifest {
	return Manifest{
		Path:              str(r["manifest_path"]),
		Length:            num(r["manifest_length"]),
		SpecID:            int(num(r["partition_spec_id"])),
		Content:           int(num(r["content"])),
		SequenceNumber:    num(r["sequence_number"]),
		MinSequenceNumber: num(r["min_sequence_number"]),
		AddedSnapshotID:   num(r["added_snapshot_id"]),
		AddedFiles:        num(r["added_files_count"]),
		ExistingFiles:     num(r["existing_files_count"]),
		DeletedFiles:      num(r["deleted_files_count"]),
		AddedRows:         num(r["added_rows_count"]),
		ExistingRows:      num(r["existing_rows_count"]),
		DeletedRows:       num(r["deleted_rows_count"]),
	}
}

// num reads a JSON integer (0 if absent or not one).
func num(v any) int64 {
	n, _ := v.(json.Number)
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return 0
	}
	return i
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func strMap(v any) map[string]string {
	out := map[string]string{}
	m, _ := v.(map[string]any)
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// avroFile is one file as avro.js prints it.
type avroFile struct {
	Path    string            `json:"path"`
	Meta    map[string]string `json:"meta"`
	Records []map[string]any  `json:"records"`
}

// dir is this package's directory (avro.js).
func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// readAvro decodes the files at the given locations with avsc, in order.
func readAvro(t testing.TB, locate Locator, locations ...string) ([]avroFile, error) {
	avsc := filepath.Join(dir(), "..", "..", "..", "decoders", "avrodec", "testdata", "js", "node_modules", "avsc")
	if _, err := os.Stat(avsc); err != nil {
		return nil, fmt.Errorf("avsc is not installed: run `make deps` (npm ci in %s)", filepath.Dir(filepath.Dir(avsc)))
	}
	args := []string{"avro.js"}
	for _, l := range locations {
		p, err := locate(l)
		if err != nil {
			return nil, err
		}
		args = append(args, p)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = dir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("read Avro %v with avsc: %v\n%s", locations, err, stderr.String())
	}
	dec := json.NewDecoder(&stdout)
	dec.UseNumber()
	var files []avroFile
	if err := dec.Decode(&files); err != nil {
		return nil, fmt.Errorf("read Avro %v with avsc: output is not JSON: %w", locations, err)
	}
	if len(files) != len(locations) {
		return nil, fmt.Errorf("read Avro %v with avsc: %d files in its output", locations, len(files))
	}
	return files, nil
}

// ReadParquet is the DuckDB table expression over the table's live data
// files, for a query of one's own with duckread.Query: read_parquet([...],
// union_by_name = true). It fails the test on a table that has no data
// files (DuckDB refuses an empty list) or has delete files (which reading
// the data files alone would ignore).
func (tbl Table) ReadParquet(t testing.TB) string {
	t.Helper()
	if tbl.DeleteFiles > 0 {
		t.Fatalf("icebergread: the table has %d delete files; reading its data files alone would count deleted rows", tbl.DeleteFiles)
	}
	if len(tbl.Files) == 0 {
		t.Fatal("icebergread: the table has no data files")
	}
	paths := make([]string, len(tbl.Files))
	for i, f := range tbl.Files {
		if f.Format != "" && !strings.EqualFold(f.Format, "PARQUET") {
			t.Fatalf("icebergread: data file %s is %s, not Parquet", f.Path, f.Format)
		}
		paths[i] = duckread.Quote(f.Local)
	}
	return "read_parquet([" + strings.Join(paths, ", ") + "], union_by_name = true)"
}

// CountByID counts the rows of the table's live data files by the value of
// column idCol, read as text: each id's number of rows. A table without
// data files is an empty map.
func CountByID(t testing.TB, tbl Table, idCol string) map[string]int {
	t.Helper()
	out := map[string]int{}
	if len(tbl.Files) == 0 && tbl.DeleteFiles == 0 {
		return out
	}
	sql := fmt.Sprintf("SELECT CAST(%s AS VARCHAR) AS id, CAST(count(*) AS INTEGER) AS n FROM %s GROUP BY 1",
		quoteIdent(idCol), tbl.ReadParquet(t))
	for _, r := range duckread.Query(t, sql) {
		id, _ := r["id"].(string)
		n, err := r["n"].(json.Number).Int64()
		if err != nil {
			t.Fatalf("icebergread: count of %q: %v", id, err)
		}
		out[id] = int(n)
	}
	return out
}

// Rows returns the rows of the table's live data files, the columns of
// selectList (SQL: `id, CAST(at AS VARCHAR) AS at`), in the order of
// orderBy (SQL, "" for none), values in DuckDB's JSON form (duckread.Query).
func Rows(t testing.TB, tbl Table, selectList, orderBy string) []map[string]any {
	t.Helper()
	if len(tbl.Files) == 0 && tbl.DeleteFiles == 0 {
		return nil
	}
	sql := "SELECT " + selectList + " FROM " + tbl.ReadParquet(t)
	if orderBy != "" {
		sql += " ORDER BY " + orderBy
	}
	return duckread.Query(t, sql)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
