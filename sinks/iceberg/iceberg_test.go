package iceberg_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/duckread"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/icebergread"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/pgtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/s3test"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/iceberg"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/iceberg/catalog"
)

// The package's tests share one S3 server and one PostgreSQL server; each
// test gets a bucket and a catalog database of its own.
var (
	s3Once sync.Once
	s3Srv  *s3test.Server
	s3Err  error
	pgOnce sync.Once
	pgSrv  *pgtest.Server
	pgErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if s3Srv != nil {
		_ = s3Srv.Close()
	}
	if pgSrv != nil {
		_ = pgSrv.Close()
	}
	os.Exit(code)
}

// lake is one test's warehouse bucket and catalog database.
type lake struct {
	s3     *s3test.Server
	bucket string
	dsn    string
}

func newLake(t testing.TB) *lake {
	t.Helper()
	if pgtest.BinDir() == "" {
		pgtest.Start(t) // skips, or fails under CI
	}
	s3Once.Do(func() { s3Srv, s3Err = s3test.New(context.Background()) })
	if s3Err != nil {
		t.Fatal(s3Err)
	}
	pgOnce.Do(func() { pgSrv, pgErr = pgtest.New(context.Background()) })
	if pgErr != nil {
		t.Fatal(pgErr)
	}
	return &lake{s3: s3Srv, bucket: s3Srv.CreateBucket(t), dsn: pgSrv.CreateDatabase(t)}
}

func typ(s string) schema.Type {
	t, err := schema.ParseType(s)
	if err != nil {
		panic(err)
	}
	return t
}

var columns = []schema.Column{
	{Name: "id", Type: typ("int")},
	{Name: "country", Type: typ("str")},
	{Name: "ts", Type: typ("datetime")},
	{Name: "amount", Type: typ("optional[decimal[2]]")},
	{Name: "tags", Type: typ("optional[list[str]]")},
	{Name: "e", Type: typ("optional[embedding[2]]")},
}

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func seq(n int) string { return fmt.Sprintf("49590338271490256608559692538361571095921575989%09d", n) }

// rows are records from..to-1 of one shard over 3 countries and 2 days.
func rows(shard string, from, to int) []record.Row {
	var out []record.Row
	for i := from; i < to; i++ {
		out = append(out, record.Row{Dataset: "orders",
			Origin: record.Origin{Source: "orders", ShardID: shard, SequenceNumber: seq(i), ArrivalTime: t0},
			Fields: []record.Field{
				{Name: "id", Value: int64(i)},
				{Name: "country", Value: []string{"DE", "FR", "NL"}[i%3]},
				{Name: "ts", Value: t0.Add(time.Duration(i%2) * 24 * time.Hour)},
				{Name: "amount", Value: record.Decimal(fmt.Sprintf("%d.25", i))},
				{Name: "tags", Value: []any{"a", fmt.Sprint(i)}},
				{Name: "e", Value: []float64{float64(i), 0.5}},
			}})
	}
	return out
}

type counter struct {
	commits, conflicts, skipped atomic.Int64
}

func (c *counter) Committed(_ string, _, _ int, conflicts int, _ time.Duration) {
	c.commits.Add(1)
	c.conflicts.Add(int64(conflicts))
}
func (c *counter) CommitFailed(string)        {}
func (c *counter) Skipped(_ string, rows int) { c.skipped.Add(int64(rows)) }

func (l *lake) config(t testing.TB, mod ...func(*iceberg.Config)) iceberg.Config {
	t.Helper()
	cat, err := catalog.OpenSQL(t.Context(), catalog.SQLConfig{DSN: l.dsn, Name: "test", Init: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cat.Close)
	cfg := iceberg.Config{Catalog: cat, Files: iceberg.S3Files{Client: l.s3.Client()}, Warehouse: "s3://" + l.bucket + "/warehouse",
		Namespace: []string{"lake"}, Table: "orders", CreateTable: true, PartitionBy: []string{"day(ts)", "country"},
		CommitInterval: time.Hour, Application: "app", Dataset: "orders", Columns: columns}
	for _, m := range mod {
		m(&cfg)
	}
	return cfg
}

func open(t testing.TB, cfg iceberg.Config) *iceberg.Sink {
	t.Helper()
	s, err := iceberg.New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func write(t *testing.T, s *iceberg.Sink, rs []record.Row) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Write(ctx, rs); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func (l *lake) read(t *testing.T) icebergread.Table {
	t.Helper()
	return icebergread.Read(t, icebergread.Source{DSN: l.dsn, Catalog: "test", Namespace: []string{"lake"}, Table: "orders",
		Locate: icebergread.S3Files(l.s3.BucketDir)})
}

// exactlyOnce fails unless the table's current snapshot holds ids
// [0, n) once each, as an independent reader counts them.
func exactlyOnce(t *testing.T, tbl icebergread.Table, n int) {
	t.Helper()
	got := icebergread.CountByID(t, tbl, "id")
	var missing, doubled []string
	for i := range n {
		switch c := got[fmt.Sprint(i)]; {
		case c == 0:
			missing = append(missing, fmt.Sprint(i))
		case c > 1:
			doubled = append(doubled, fmt.Sprintf("%d×%d", i, c))
		}
	}
	if len(missing) > 0 || len(doubled) > 0 || len(got) != n {
		t.Fatalf("table holds %d ids, want %d; missing %v, more than once %v", len(got), n, first(missing), first(doubled))
	}
}

func first(s []string) []string { return s[:min(len(s), 10)] }

// A created table holds every row once, in data files partitioned as
// asked, with each shard's last position as a table property, and every
// value as written (read back by DuckDB from the files the manifests list).
func TestCreateAndWrite(t *testing.T) {
	l := newLake(t)
	s := open(t, l.config(t))
	write(t, s, rows("shardId-000000000000", 0, 40))
	write(t, s, rows("shardId-000000000001", 40, 70))
	write(t, s, rows("shardId-000000000000", 70, 100))

	tbl := l.read(t)
	exactlyOnce(t, tbl, 100)
	if tbl.Snapshots != 3 {
		t.Errorf("%d snapshots, want 3 (one per Write)", tbl.Snapshots)
	}
	for shard, last := range map[string]int{"shardId-000000000000": 99, "shardId-000000000001": 69} {
		key := iceberg.PropertyPrefix + "app.orders." + shard
		if got, want := tbl.Properties[key], strings.TrimLeft(seq(last), "0")+"/0"; got != want {
			t.Errorf("property %s = %q, want %q", key, got, want)
		}
	}
	for _, f := range tbl.Files {
		if !strings.Contains(f.Path, "/data/ts_day=2026-12-0") || !strings.Contains(f.Path, "/country=") {
			t.Errorf("data file %s is not under ts_day=…/country=…", f.Path)
		}
	}
	got := icebergread.Rows(t, tbl, "id, country, CAST(amount AS VARCHAR) AS amount, tags, e[1] AS e1, _shard_id, epoch(ts) AS ts", "id")
	for _, r := range got[:5] {
		id := r["id"]
		if fmt.Sprint(r["amount"]) != fmt.Sprintf("%v.25", id) || fmt.Sprint(r["tags"]) != fmt.Sprintf(`["a","%v"]`, id) || fmt.Sprint(r["e1"]) != fmt.Sprint(id) {
			t.Errorf("row %v read back as %v", id, r)
		}
	}
}

// A replay (a restarted worker, a reset to trim_horizon) adds nothing the
// table holds: the second sink finds the rows by the shards' positions.
func TestReplayAddsNothing(t *testing.T) {
	l := newLake(t)
	c := &counter{}
	cfg := l.config(t, func(c2 *iceberg.Config) { c2.Observer = c })
	s := open(t, cfg)
	write(t, s, rows("shardId-000000000000", 0, 50))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again := open(t, cfg)
	write(t, again, rows("shardId-000000000000", 0, 80)) // 50 replayed, 30 new
	write(t, again, rows("shardId-000000000000", 0, 80)) // all replayed
	tbl := l.read(t)
	exactlyOnce(t, tbl, 80)
	if got := c.skipped.Load(); got != 130 {
		t.Errorf("skipped %d rows, want 130", got)
	}
	if tbl.Snapshots != 2 {
		t.Errorf("%d snapshots, want 2: a replay of held rows commits nothing", tbl.Snapshots)
	}
}

// Several workers commit to one table at once: refused swaps reload and
// retry, and a zombie writing a shard its successor also writes adds each
// row once.
func TestConcurrentWriters(t *testing.T) {
	l := newLake(t)
	c := &counter{}
	const writers, per = 3, 60
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for w := range writers {
		s := open(t, l.config(t, func(cfg *iceberg.Config) { cfg.Observer = c }))
		wg.Add(1)
		go func() {
			defer wg.Done()
			shard := fmt.Sprintf("shardId-%012d", w)
			for b := 0; b < per; b += 10 {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				err := s.Write(ctx, rows(shard, w*per+b, w*per+b+10))
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// A zombie of worker 0 writes worker 0's rows again, interleaved.
	zombie := open(t, l.config(t, func(cfg *iceberg.Config) { cfg.Observer = c }))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := 0; b < per; b += 15 {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			err := zombie.Write(ctx, rows("shardId-000000000000", b, b+15))
			cancel()
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	tbl := l.read(t)
	exactlyOnce(t, tbl, writers*per)
	if int64(tbl.Snapshots) != c.commits.Load() {
		t.Errorf("%d snapshots, but the sinks reported %d commits", tbl.Snapshots, c.commits.Load())
	}
	t.Logf("%d commits, %d conflicts retried, %d rows skipped", c.commits.Load(), c.conflicts.Load(), c.skipped.Load())
}

// A dataset that gains an optional field evolves the table: the column is
// added (a new schema), older rows read as null, newer ones hold values.
func TestSchemaEvolves(t *testing.T) {
	l := newLake(t)
	s := open(t, l.config(t))
	write(t, s, rows("shardId-000000000000", 0, 10))
	_ = s.Close()

	wider := append(append([]schema.Column{}, columns...), schema.Column{Name: "note", Type: typ("optional[str]")})
	s2 := open(t, l.config(t, func(c *iceberg.Config) { c.Columns = wider }))
	more := rows("shardId-000000000000", 10, 20)
	for i := range more {
		more[i].Fields = append(more[i].Fields, record.Field{Name: "note", Value: fmt.Sprint("n", 10+i)})
	}
	write(t, s2, more)
	tbl := l.read(t)
	exactlyOnce(t, tbl, 20)
	got := icebergread.Rows(t, tbl, "id, note", "id")
	for _, r := range got {
		id, _ := strconv.Atoi(fmt.Sprint(r["id"]))
		if want := fmt.Sprint("n", id); (id < 10 && r["note"] != nil) || (id >= 10 && fmt.Sprint(r["note"]) != want) {
			t.Errorf("row %d: note %v", id, r["note"])
		}
	}
	schemas, _ := tbl.Metadata["schemas"].([]any)
	if len(schemas) != 2 {
		t.Errorf("%d schemas, want 2 (created, then evolved)", len(schemas))
	}
}

// A table that cannot hold the dataset stops the sink at start, with
// every problem and its fix.
func TestTableDoesNotFit(t *testing.T) {
	l := newLake(t)
	open(t, l.config(t)).Close()
	changed := append([]schema.Column{}, columns...)
	changed[1] = schema.Column{Name: "country", Type: typ("int")}
	_, err := iceberg.New(t.Context(), l.config(t, func(c *iceberg.Config) { c.Columns = changed }), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), `column "country" of table lake.orders is string, but the sink writes long`) {
		t.Fatalf("New: %v, want the country column's type problem", err)
	}
	_, err = iceberg.New(t.Context(), l.config(t, func(c *iceberg.Config) { c.PartitionBy = []string{"hour(ts)"} }), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "is partitioned by day(ts_day), identity(country), the sink by hour(ts_hour)") {
		t.Fatalf("New: %v, want the partition spec's problem", err)
	}
	_, err = iceberg.New(t.Context(), l.config(t, func(c *iceberg.Config) { c.Table, c.CreateTable = "missing", false }), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if !errors.Is(err, catalog.ErrNoSuchTable) {
		t.Fatalf("New on a missing table without create_table: %v", err)
	}
}

// A keyed dataset's table is a changelog: each row says whether it
// upserts or deletes its key, and the newest event per key is the state.
func TestChangelog(t *testing.T) {
	l := newLake(t)
	keyed := []schema.Column{{Name: "id", Type: typ("int"), Key: true}, {Name: "ts", Type: typ("datetime")}, {Name: "note", Type: typ("str")}}
	s := open(t, l.config(t, func(c *iceberg.Config) { c.Columns, c.Changelog, c.PartitionBy = keyed, true, nil }))
	at := func(i int) record.Origin {
		return record.Origin{Source: "orders", ShardID: "shardId-000000000000", SequenceNumber: seq(i), ArrivalTime: t0}
	}
	write(t, s, []record.Row{
		{Origin: at(1), Fields: []record.Field{{Name: "id", Value: int64(1)}, {Name: "ts", Value: t0}, {Name: "note", Value: "first"}}},
		{Origin: at(2), Fields: []record.Field{{Name: "id", Value: int64(2)}, {Name: "ts", Value: t0}, {Name: "note", Value: "two"}}},
		{Origin: at(3), Delete: true, Fields: []record.Field{{Name: "id", Value: int64(1)}, {Name: "ts", Value: t0.Add(time.Second)}, {Name: "note", Value: nil}}},
	})
	got := duckread.Query(t, "SELECT id, note FROM "+l.read(t).ReadParquet(t)+
		" QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts DESC, _sequence_number DESC) = 1 AND _op = 'upsert' ORDER BY id")
	if len(got) != 1 || fmt.Sprint(got[0]["id"], got[0]["note"]) != "2two" {
		t.Fatalf("current state %v, want only id 2", got)
	}
}

// Every commit adds a manifest; past the merge count the carried ones
// become one, each file keeping its snapshot and sequence numbers, so a
// reader plans over a bounded list and still finds every row once.
func TestManifestsMerge(t *testing.T) {
	l := newLake(t)
	s := open(t, l.config(t, func(c *iceberg.Config) { c.MergeManifestsAt = 4 }))
	for b := range 10 {
		write(t, s, rows("shardId-000000000000", b*10, b*10+10))
	}
	tbl := l.read(t)
	exactlyOnce(t, tbl, 100)
	if len(tbl.Manifests) > 4 {
		t.Errorf("the current snapshot lists %d manifests, want at most 4", len(tbl.Manifests))
	}
	seqs := map[int64]bool{}
	for _, f := range tbl.Files {
		seqs[f.SequenceNumber] = true
	}
	if len(seqs) != 10 {
		t.Errorf("data files carry %d distinct sequence numbers, want 10 (one per commit, kept by merges): %v", len(seqs), seqs)
	}
}

// Rows only accepted (as the pipeline gives them, with no Write or Flush)
// are committed once the oldest has waited commit_interval, and each
// snapshot names the worker that committed it.
func TestCommitsOnItsOwn(t *testing.T) {
	l := newLake(t)
	s := open(t, l.config(t, func(c *iceberg.Config) { c.CommitInterval, c.Worker = 100*time.Millisecond, "w7" }))
	done := make(chan error, 2)
	for b := range 2 {
		if err := s.Accept(t.Context(), rows("shardId-000000000000", b*5, b*5+5), func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("accepted rows not committed within 30 s at commit_interval 100ms")
		}
	}
	tbl := l.read(t)
	exactlyOnce(t, tbl, 10)
	if w := tbl.Snapshot.Summary["kinesis-ingest.worker"]; w != "w7" {
		t.Errorf("snapshot summary names worker %q, want w7", w)
	}
}
