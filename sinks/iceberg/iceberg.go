// Package iceberg implements sinks.DeferredRowSink as an Apache Iceberg
// table: rows become Parquet data files in the table's location on S3, and
// each commit adds them to the table together with, per (application,
// source, shard), the highest position they hold, as table properties in
// the same metadata: one atomic swap in the catalog.
//
// That is what makes the table exactly-once. A commit first loads the
// table and drops every row at or below its shard's committed position, so
// a replay after kill -9, a lease moved to another worker, a zombie and a
// reset to trim_horizon find their rows already there and add nothing; a
// refused swap (another worker committed first) reloads, filters again and
// retries. A shard's checkpoint in the lease table moves only after the
// commit that holds its rows (durable is called then), so nothing is lost
// either: data files written by a commit that never swapped are orphans no
// snapshot lists, and their rows are read again. docs/iceberg.md says why in
// each case.
//
// The table's files (metadata JSON, manifests, manifest lists) are written
// by package table; the catalog (package catalog: the SQL catalog on
// PostgreSQL) only names the current metadata file.
package iceberg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/iceberg/catalog"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/iceberg/table"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/parquetenc"
)

// Catalog names each table's current metadata file and swaps it atomically;
// *catalog.SQL has it. Its errors wrap catalog.ErrNoSuchTable,
// ErrTableExists and ErrConflict.
type Catalog interface {
	Load(ctx context.Context, ns []string, table string) (string, error)
	Create(ctx context.Context, ns []string, table, metadataLocation string) error
	Swap(ctx context.Context, ns []string, table, expected, next string) error
	CreateNamespace(ctx context.Context, ns []string) error
}

// Observer hears of commits (package metrics implements it); nil is fine.
type Observer interface {
	// Committed: one commit of files data files holding rows rows, after
	// conflicts refused swaps, took d from the first load to the swap.
	Committed(dataset string, files, rows int, conflicts int, d time.Duration)
	// CommitFailed: an attempt failed and will be retried.
	CommitFailed(dataset string)
	// Skipped: rows already in the table (a replay) were dropped.
	Skipped(dataset string, rows int)
}

// Defaults of Config.
const (
	DefaultCommitInterval       = time.Minute
	DefaultBufferBytes    int64 = 256 << 20
)

// Config is one sink: one dataset into one table.
type Config struct {
	Catalog Catalog
	Files   Files
	// Warehouse is the s3://bucket/prefix under which a created table's
	// location is <warehouse>/<namespace levels>/<table>.
	Warehouse string
	Namespace []string
	Table     string
	// CreateTable creates the namespace and the table when missing.
	CreateTable bool
	// PartitionBy: "day(f)", "hour(f)", "month(f)", "year(f)",
	// "bucket(N, f)", "identity(f)" or "f", of the dataset's fields.
	PartitionBy []string
	// CommitInterval is how long rows wait for their commit (and their
	// shards' checkpoints as long).
	CommitInterval time.Duration
	// BufferBytes bounds the rows held not yet committed (by their size in
	// memory): at half of it a commit starts early; past it Accept waits.
	BufferBytes int64
	// Application, with each row's source and shard, names the position
	// properties: two applications reading one stream into one table keep
	// their own.
	Application string
	// Worker names the committing worker in each snapshot's summary
	// (kinesis-ingest.worker), for operators reading the table's history.
	Worker  string
	Dataset string
	Columns []schema.Column
	// Changelog (a keyed dataset) adds _op: upsert or delete.
	Changelog   bool
	Compression string // of the Parquet files: zstd (default), snappy, gzip, none
	Observer    Observer
	// MergeManifestsAt is how many manifests a snapshot may list before
	// the carried ones are merged into one (DefaultMergeManifestsAt when
	// 0); the table property commit.manifest.min-count-to-merge overrides it.
	MergeManifestsAt int
}

// Sink is an Iceberg table's sink.
type Sink struct {
	cfg   Config
	log   *slog.Logger
	name  string // namespace.table, for logs and metrics
	parts []partField
	check *parquetenc.Encoder // Check only; safe for concurrent use

	mu        sync.Mutex
	pending   []*batch
	held      int64 // bytes of pending and committing rows
	oldest    time.Time
	accepted  uint64 // Accept calls so far
	committed uint64 // Accept calls whose rows are durable (or failed)
	changed   chan struct{}
	closed    bool
	closeErr  error // set by the committer before done closes

	kick chan struct{} // commit now
	arm  chan struct{} // the buffer is no longer empty: wait for its commit_interval
	stop chan struct{}
	done chan struct{}

	// The committer's own (one goroutine).
	state committerState
}

// batch is one Accept's rows, copied.
type batch struct {
	rows    []row
	bytes   int64
	durable func(error)
	gen     uint64
}

// New checks cfg and returns the sink; the table is loaded (created when
// allowed and missing) and checked against the dataset before it returns,
// and its schema evolved when the dataset adds optional fields.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Sink, error) {
	if cfg.Catalog == nil || cfg.Files == nil {
		return nil, errors.New("iceberg sink: a catalog and a file store are required")
	}
	if cfg.Table == "" || len(cfg.Namespace) == 0 {
		return nil, errors.New("iceberg sink: namespace and table are required")
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = DefaultCommitInterval
	}
	if cfg.BufferBytes <= 0 {
		cfg.BufferBytes = DefaultBufferBytes
	}
	if cfg.CreateTable && !strings.HasPrefix(cfg.Warehouse, "s3://") {
		return nil, fmt.Errorf("iceberg sink: warehouse %q is not an s3://bucket/prefix URI", cfg.Warehouse)
	}
	parts, err := parsePartitions(cfg.PartitionBy, cfg.Columns)
	if err != nil {
		return nil, fmt.Errorf("iceberg sink: %w", err)
	}
	chk, err := parquetenc.New(cfg.Columns, parquetenc.Options{Changelog: cfg.Changelog, Compression: cfg.Compression})
	if err != nil {
		return nil, fmt.Errorf("iceberg sink: %w", err)
	}
	s := &Sink{cfg: cfg, log: log, name: strings.Join(cfg.Namespace, ".") + "." + cfg.Table, parts: parts, check: chk,
		changed: make(chan struct{}), kick: make(chan struct{}, 1), arm: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.open(ctx); err != nil {
		return nil, err
	}
	go s.run()
	return s, nil
}

// Table is the table's name, namespace.table.
func (s *Sink) Table() string { return s.name }

// open loads the table, creating it when allowed, and checks it. A table
// that does not fit, or is missing when the sink may not create it, is an
// error; a catalog or S3 that does not answer is not (the commits retry,
// and validate says so).
func (s *Sink) open(ctx context.Context) error {
	m, _, err := s.load(ctx)
	if errors.Is(err, catalog.ErrNoSuchTable) || errors.Is(err, catalog.ErrNoCatalogTables) {
		return err
	}
	if err != nil {
		s.log.Warn("iceberg table not loaded at start; the first commit tries again", "table", s.name, "error", err)
		return nil
	}
	_, err = s.plan(m)
	return err
}

// Problems reports what stops a sink from writing the dataset to the table
// m as it is (for validate), each with its fix.
func Problems(m *table.Metadata, name string, cols []schema.Column, changelog bool, partitionBy []string) []string {
	parts, err := parsePartitions(partitionBy, cols)
	if err != nil {
		return []string{err.Error()}
	}
	_, problems, err := makePlan(m, name, cols, changelog, len(partitionBy) > 0, parts)
	if err != nil {
		return []string{err.Error()}
	}
	return problems
}
