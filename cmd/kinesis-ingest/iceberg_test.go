package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/duckread"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/icebergread"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/pgtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/s3fault"
)

// icebergEnv is lakeEnv with the rows going to an Iceberg table: its
// warehouse in the bucket, its SQL catalog in a throwaway PostgreSQL. Rows
// are counted by the tests' own reader (icebergread: the catalog row, the
// metadata JSON, the manifests read with avsc, DuckDB over the current
// snapshot's data files), never by the sink's code.
type icebergEnv struct {
	*lakeEnv
	pg  *pgtest.Server
	dsn string // the catalog database's, as the test reads it
	// name is the table in namespace lake: orders, the harness's dataset.
	name string
}

// The table the tests write: namespace lake, table orders.
const (
	icebergNamespace = "lake"
	icebergTable     = "orders"
)

func newIcebergEnv(t *testing.T, shards int) *icebergEnv {
	t.Helper()
	le := newLakeEnv(t, shards)
	pg := pgtest.Start(t)
	e := &icebergEnv{lakeEnv: le, pg: pg, dsn: pg.CreateDatabase(t), name: icebergTable}
	// The worker's DSN has a password (trust authentication ignores it),
	// which must never reach its log.
	e.extra = append(e.extra, "ICEBERG_CATALOG_DSN="+strings.Replace(e.dsn, "postgres@", "postgres:"+pgPassword+"@", 1))
	le.counts = func() map[string]int { return icebergread.CountByID(t, e.read(), "id") }
	return e
}

// icebergConfig is the harness config with the rows going to the table,
// partitioned by day, committed every second.
func (e *icebergEnv) icebergConfig() string {
	e.t.Helper()
	return e.lakeSinkConfig(fmt.Sprintf(`iceberg: {catalog: {type: sql, uri: "${ICEBERG_CATALOG_DSN}"}, warehouse: "s3://%s/warehouse", `+
		`namespace: %s, table: %s, create_table: true, partition_by: ["day(ts)"], commit_interval: 1s, force_path_style: true}`,
		e.bucket, icebergNamespace, icebergTable))
}

func (e *icebergEnv) source() icebergread.Source {
	return icebergread.Source{DSN: e.dsn, Namespace: []string{icebergNamespace}, Table: e.name, Locate: icebergread.S3Files(e.s3.BucketDir)}
}

// read reads the table's current state; it fails the test if it cannot.
func (e *icebergEnv) read() icebergread.Table {
	e.t.Helper()
	return icebergread.Read(e.t, e.source())
}

// committed reports whether the table exists and has a snapshot.
func (e *icebergEnv) committed() bool {
	tbl, err := icebergread.Load(e.t, e.source())
	return err == nil && tbl.Snapshot != nil
}

// What the sink shows of itself: the log line of a failed commit attempt,
// and the de-duplicating sinks' counter of rows found already written.
const (
	icebergCommitFailedLog = "iceberg commit failed"
	icebergSkippedMetric   = `kinesis_ingest_sink_duplicates_skipped_total{sink="lake"}`
)

// seqProperty is the table property holding the highest sequence number
// committed from a shard of the harness's source.
func (e *icebergEnv) seqProperty(shard string) string {
	return "kinesis-ingest.seq." + e.table + ".orders." + shard
}

// noPasswordInLogs fails the test if a worker's log holds the catalog
// DSN's password.
func (e *icebergEnv) noPasswordInLogs(ws ...*worker) {
	e.t.Helper()
	for _, w := range ws {
		b, err := os.ReadFile(w.log)
		if err != nil {
			e.t.Fatal(err)
		}
		if strings.Contains(string(b), pgPassword) {
			e.t.Errorf("worker %s logged the catalog's password", w.id)
		}
	}
}

// unlisted returns the data files (Parquet objects under the table's data/)
// among objs that are on disk and not in the table's current snapshot.
func (e *icebergEnv) unlisted(tbl icebergread.Table, objs []s3fault.Object) []string {
	listed := map[string]bool{}
	for _, f := range tbl.Files {
		listed[filepath.Clean(f.Local)] = true
	}
	var out []string
	for _, o := range objs {
		if !strings.Contains(o.Key, "/"+e.name+"/data/") || !strings.HasSuffix(o.Key, ".parquet") {
			continue
		}
		local := filepath.Join(e.s3.BucketDir(o.Bucket), filepath.FromSlash(o.Key))
		if _, err := os.Stat(local); err == nil && !listed[filepath.Clean(local)] {
			out = append(out, local)
		}
	}
	return out
}

// TestIcebergTwoWorkersOneKilledBeforeCommit: two workers commit to one
// table; one is killed with SIGKILL after it has written data files whose
// commit has not happened. The window is made certain, not timed: that
// worker reaches S3 through a proxy that refuses every PUT of a metadata
// JSON (S3's 503 SlowDown) from some point on, so its data files and
// manifests land and its commits cannot; it is killed once one of its data
// files is on disk unlisted and a commit of it was refused. The survivor
// takes its shards over: every good record is exactly one row of the
// current snapshot, and the dead worker's files stay out of it.
func TestIcebergTwoWorkersOneKilledBeforeCommit(t *testing.T) {
	t.Parallel()
	const n = 2000
	e := newIcebergEnv(t, 4)
	proxy := s3fault.New(t, e.s3.Endpoint)
	bad := map[string]string{}
	last := e.putOrders(0, n/2, bad)
	cfg := e.icebergConfig()
	w1 := e.startArgs(cfg, "w1", nil, []string{"AWS_ENDPOINT_URL_S3=" + proxy.URL})
	e.start(cfg, "w2")
	waitFor(t, 60*time.Second, "the table's first commit", e.committed)

	proxy.SetRules(s3fault.Rule{Method: "PUT", Key: "*.metadata.json"})
	last = maxSeqs(last, e.putOrders(n/2, n/4, bad))
	var orphans []string
	waitFor(t, 60*time.Second, "a data file of w1 on disk that no snapshot lists, and a refused commit of it", func() bool {
		orphans = e.unlisted(e.read(), proxy.Stored())
		return len(orphans) > 0 && proxy.Refused() > 0
	})
	w1.kill()
	proxy.SetRules()
	if still := e.unlisted(e.read(), proxy.Stored()); len(still) == 0 {
		t.Fatalf("w1's data files %v were committed before it was killed: the kill did not fall between data files and commit", orphans)
	}
	t.Logf("w1 killed with %d uncommitted data files on disk, %d metadata PUTs refused", len(orphans), proxy.Refused())

	last = maxSeqs(last, e.putOrders(3*n/4, n/4, bad))
	e.waitCheckpointed(120*time.Second, last)
	e.exactlyOnce(n, bad)
	final := e.read()
	listed := map[string]bool{}
	for _, f := range final.Files {
		listed[filepath.Clean(f.Local)] = true
	}
	for _, o := range orphans {
		if listed[o] {
			t.Errorf("the killed worker's uncommitted data file %s is in the current snapshot", o)
		}
	}
}

// TestIcebergThreeWorkersOneTable: three workers share six shards and one
// table while records arrive; their commits race on the catalog row and the
// refused ones are retried after a reload. Every good record is exactly one
// row; the snapshots come from more than one worker (each worker reaches S3
// through its own proxy, which names the manifest lists it stored); each
// shard's property in the table is its last sequence number.
func TestIcebergThreeWorkersOneTable(t *testing.T) {
	t.Parallel()
	const n = 3000
	e := newIcebergEnv(t, 6)
	cfg := e.icebergConfig()
	var ws []*worker
	byList := map[string]string{} // a manifest list's key: the worker that stored it
	var proxies []*s3fault.Proxy
	for _, id := range []string{"w1", "w2", "w3"} {
		p := s3fault.New(t, e.s3.Endpoint)
		proxies = append(proxies, p)
		ws = append(ws, e.startArgs(cfg, id, nil, []string{"AWS_ENDPOINT_URL_S3=" + p.URL}))
	}
	bad := map[string]string{}
	last := e.putOrders(0, n/3, bad)
	waitFor(t, 60*time.Second, "the table's first commit", e.committed)
	last = maxSeqs(last, e.putOrders(n/3, n/3, bad))
	// The last third is all good records, so that each shard's last record
	// is a row and its sequence number the table's property.
	data, keys, _ := orders(2*n/3, n/3, false)
	last = maxSeqs(last, e.put(data, keys))
	e.waitCheckpointed(120*time.Second, last)
	e.exactlyOnce(n, bad)

	tbl := e.read()
	for shard, seq := range last {
		got, _, _ := strings.Cut(tbl.Properties[e.seqProperty(shard)], "/")
		if got != seq {
			t.Errorf("table property %s = %q, want the shard's last sequence number %s", e.seqProperty(shard), tbl.Properties[e.seqProperty(shard)], seq)
		}
	}
	for i, p := range proxies {
		for _, o := range p.Stored() {
			byList["s3://"+o.Bucket+"/"+o.Key] = ws[i].id
		}
	}
	committers := map[string]int{}
	for _, s := range tbl.History {
		who := byList[s.ManifestList]
		if who == "" {
			t.Errorf("snapshot %d's manifest list %s was stored by none of the workers", s.ID, s.ManifestList)
		}
		committers[who]++
	}
	if len(committers) < 2 {
		t.Errorf("snapshots by worker = %v, want commits from more than one of the three workers", committers)
	}
	conflicts := 0.0
	for _, w := range ws {
		conflicts += metricValue(scrape(t, w.metricsAddr()), "kinesis_ingest_iceberg_commit_conflicts_total{")
	}
	if h := tbl.History; len(h) > 1 {
		span := time.Duration(h[len(h)-1].TimestampMS-h[0].TimestampMS) * time.Millisecond
		t.Logf("%d snapshots in %s, by worker %v, %v swaps refused and retried: %.0f commits per minute (commit_interval 1s, 3 workers)",
			len(h), span.Round(time.Millisecond), committers, conflicts, float64(len(h)-1)/span.Minutes())
	}
}

// TestIcebergCatalogDown: the catalog's PostgreSQL is down for 20 s while
// records arrive. No commit can happen, so no checkpoint may move past the
// rows committed before; after the restart every good record is exactly
// one row.
func TestIcebergCatalogDown(t *testing.T) {
	t.Parallel()
	const n, outage = 1500, 20 * time.Second
	e := newIcebergEnv(t, 2)
	bad := map[string]string{}
	before := e.putOrders(0, n/3, bad)
	w := e.start(e.icebergConfig(), "w1")
	e.waitCheckpointed(90*time.Second, before)

	e.pg.Stop(t)
	stopped := time.Now()
	last := maxSeqs(before, e.putOrders(n/3, 2*n/3, bad))
	waitFor(t, outage, "the worker to notice the catalog is down", func() bool {
		b, _ := os.ReadFile(w.log)
		return strings.Contains(string(b), icebergCommitFailedLog)
	})
	// The outage lasts its full length whatever the worker does meanwhile.
	time.Sleep(time.Until(stopped.Add(outage)))
	if off := e.notAt(before); len(off) != 0 {
		t.Errorf("checkpoints moved while the catalog was down, past rows no commit holds: %v", off)
	}
	e.pg.Start(t)
	e.waitCheckpointed(120*time.Second, last)
	e.exactlyOnce(n, bad)
	e.noPasswordInLogs(w)
}

// TestIcebergReplayAfterReset: after everything is committed, `reset --to
// trim_horizon` makes the next worker read the whole stream again, in
// batches cut where they fall this time; the table already holds every
// row, so the replay adds none and commits nothing.
func TestIcebergReplayAfterReset(t *testing.T) {
	t.Parallel()
	const n = 1000
	e := newIcebergEnv(t, 2)
	bad := map[string]string{}
	last := e.putOrders(0, n, bad)
	cfg := e.icebergConfig()
	w1 := e.start(cfg, "w1")
	e.waitCheckpointed(90*time.Second, last)
	w1.stop(30 * time.Second)
	e.exactlyOnce(n, bad)
	before := e.read()

	out, errOut, code := e.cli("reset", "--config", cfg, "--to", "trim_horizon", "--yes")
	if code != 0 {
		t.Fatalf("reset --to trim_horizon: exit %d, %s%s", code, out, errOut)
	}
	if off := e.notAt(last); len(off) != len(last) {
		t.Fatalf("reset left checkpoints at the end of their shards (%d of %d moved): nothing to replay", len(off), len(last))
	}
	w2 := e.start(cfg, "w2")
	addr := w2.metricsAddr()
	e.waitCheckpointed(90*time.Second, last)
	e.exactlyOnce(n, bad)
	after := e.read()
	if after.Snapshots != before.Snapshots || after.Snapshot.ID != before.Snapshot.ID {
		t.Errorf("the replay committed: %d snapshots (current %d) before, %d (current %d) after", before.Snapshots, before.Snapshot.ID, after.Snapshots, after.Snapshot.ID)
	}
	good := n - len(bad)
	if got := metricValue(scrape(t, addr), icebergSkippedMetric); int(got) != good {
		t.Errorf("the replay reported %v rows already in the table, want %d (every good record)", got, good)
	}
	w2.stop(30 * time.Second)
}

// changelogConfig is a worker config with one keyed dataset of Debezium
// change events, users, written to the Iceberg table lake.users.
const changelogConfig = `
sources:
  - name: users
    kinesis: {stream_arn: %s, init_position: trim_horizon, format: json}
datasets:
  - name: users
    source: users
    cdc: debezium
    timestamp: ts
    fields:
      - {name: id, type: int, key: true}
      - {name: version, type: "optional[int]"}
      - {name: ts, type: datetime, ref: $ts_ns}
    sink: lake
sinks:
  - name: lake
    iceberg: {catalog: {type: sql, uri: "${ICEBERG_CATALOG_DSN}"}, warehouse: "s3://%s/warehouse", namespace: lake, create_table: true, partition_by: ["day(ts)"], commit_interval: 1s, force_path_style: true}
dead_letter:
  file: {path: %s}
consumer:
  application: %s
  worker_id: ${WORKER_ID}
  shard_sync_interval: 500ms
  lease_duration: 4s
  lease_refresh: 1s
  idle_between_reads: 100ms
  max_records: 100
metrics:
  listen: 127.0.0.1:0
errors:
  listen: 127.0.0.1:0
log:
  level: info
`

// TestIcebergKeyedChangelog: a keyed dataset's table is a changelog, one
// row per change with _op upsert or delete; the documented query (the
// newest event time wins) gives each key's current state. 300 keys, four
// changes each at shuffled times, a quarter of them deletes, spread over
// two shards: every change is exactly one row, and the query's state is
// the newest change of each key, computed here from what was put.
func TestIcebergKeyedChangelog(t *testing.T) {
	t.Parallel()
	const keys, perKey = 300, 4
	e := newIcebergEnv(t, 2)
	e.name = "users"
	rng := rand.New(rand.NewPCG(29, 4))
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	type change struct {
		id, version int
		ts          time.Time
		deleted     bool
	}
	var changes []change
	newest := map[int]change{}
	for k := range keys {
		for v, slot := range rng.Perm(perKey) {
			c := change{id: k, version: v, ts: base.Add(time.Duration(slot)*time.Minute + time.Duration(k)*time.Millisecond), deleted: rng.IntN(4) == 0}
			changes = append(changes, c)
			if c.ts.After(newest[k].ts) {
				newest[k] = c
			}
		}
	}
	rng.Shuffle(len(changes), func(i, j int) { changes[i], changes[j] = changes[j], changes[i] })
	data, pkeys := make([][]byte, len(changes)), make([]string, len(changes))
	for i, c := range changes {
		if c.deleted {
			data[i] = fmt.Appendf(nil, `{"op":"d","before":{"id":%d},"after":null,"ts_ns":%d,"source":{"connector":"postgresql"}}`, c.id, c.ts.UnixNano())
		} else {
			data[i] = fmt.Appendf(nil, `{"op":"u","before":null,"after":{"id":%d,"version":%d},"ts_ns":%d,"source":{"connector":"postgresql"}}`, c.id, c.version, c.ts.UnixNano())
		}
		pkeys[i] = fmt.Sprintf("p-%d", rng.IntN(1<<20)) // a key's changes go to both shards
	}
	cfg := filepath.Join(e.dir, "users.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, changelogConfig, e.arn, e.bucket, e.lettersDir(), e.table), 0o644); err != nil {
		t.Fatal(err)
	}
	last := e.put(data, pkeys)
	e.start(cfg, "w1")
	e.waitCheckpointed(90*time.Second, last)

	tbl := e.read()
	perChange := map[string]int{}
	for _, r := range icebergread.Rows(t, tbl, "CAST(id AS VARCHAR) || '/' || CAST(epoch_us(ts) AS VARCHAR) || '/' || _op AS c", "") {
		perChange[r["c"].(string)]++
	}
	wrong := 0
	for _, c := range changes {
		op := "upsert"
		if c.deleted {
			op = "delete"
		}
		if key := fmt.Sprintf("%d/%d/%s", c.id, c.ts.UnixMicro(), op); perChange[key] != 1 {
			if wrong++; wrong <= 10 {
				t.Errorf("change %s: %d rows, want 1", key, perChange[key])
			}
		}
	}
	if len(perChange) != len(changes) {
		t.Errorf("%d distinct changes in the table, want the %d put", len(perChange), len(changes))
	}

	state := map[int]int{}
	for _, r := range duckread.Query(t, `SELECT CAST(id AS INTEGER) AS id, CAST(version AS INTEGER) AS version FROM (
  SELECT *, row_number() OVER (PARTITION BY id ORDER BY ts DESC, _sequence_number DESC) AS rn
  FROM `+tbl.ReadParquet(t)+`)
WHERE rn = 1 AND _op = 'upsert'`) {
		id, _ := r["id"].(json.Number).Int64()
		v, _ := r["version"].(json.Number).Int64()
		state[int(id)] = int(v)
	}
	live := 0
	for k, c := range newest {
		v, ok := state[k]
		switch {
		case c.deleted && ok:
			t.Errorf("key %d: the current state has version %d, want it deleted (its newest change)", k, v)
		case !c.deleted && (!ok || v != c.version):
			t.Errorf("key %d: the current state has version %d (present %v), want %d", k, v, ok, c.version)
		case !c.deleted:
			live++
		}
	}
	if len(state) != live {
		t.Errorf("the current state has %d keys, want %d", len(state), live)
	}
}
