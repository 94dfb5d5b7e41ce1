package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/faultproxy"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/pgtest"
)

// postgresSinks replaces the harness config's file sinks: rows and dead
// letters go to PostgreSQL.
const postgresSinks = `sinks:
  - name: warehouse
    postgres: {dsn: "${PG_DSN}", table: orders, create_table: true}
dead_letter:
  postgres: {dsn: "${PG_DSN}", table: kinesis_ingest_dead_letters}
consumer:
`

// pgEnv is env plus a throwaway PostgreSQL database the worker writes to.
type pgEnv struct {
	*env
	pg  *pgtest.Server
	dsn string
}

// pgPassword is in the DSN the worker gets (trust authentication ignores it):
// it must never reach a log line.
const pgPassword = "pg-password-must-not-leak"

func newPGEnv(t *testing.T, shards int) *pgEnv {
	t.Helper()
	pg := pgtest.Start(t)
	db := pg.CreateDatabase(t)
	dsn := strings.Replace(db, "postgres@", "postgres:"+pgPassword+"@", 1)
	e := &pgEnv{env: newEnv(t, shards), pg: pg, dsn: db}
	e.extra = append(e.extra, "PG_DSN="+dsn)
	return e
}

// pgConfig is the harness config (configTemplate) with PostgreSQL sinks,
// bigger batches and info logs (a 20,000-record run at debug writes a lot).
func (e *pgEnv) pgConfig(application string) string {
	e.t.Helper()
	body := fmt.Sprintf(configTemplate, e.arn, "trim_horizon", "", "", application)
	i, j := strings.Index(body, "sinks:\n"), strings.Index(body, "consumer:\n")
	if i < 0 || j < i {
		e.t.Fatal("configTemplate has no sinks: ... consumer: section")
	}
	body = body[:i] + postgresSinks + body[j+len("consumer:\n"):]
	body = strings.Replace(body, "    sink: orders_file\n", "    sink: warehouse\n", 1)
	body = strings.Replace(body, "max_records: 200", "max_records: 500", 1)
	body = strings.Replace(body, "level: debug", "level: info", 1)
	path := filepath.Join(e.dir, application+".yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// query runs a one-value query; ok is false while the server is down or the
// table does not exist yet.
func (e *pgEnv) query(sql string) (n int64, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		return 0, false
	}
	defer c.Close(ctx)
	if err := c.QueryRow(ctx, sql).Scan(&n); err != nil {
		return 0, false
	}
	return n, true
}

func (e *pgEnv) mustQuery(sql string) int64 {
	e.t.Helper()
	n, ok := e.query(sql)
	if !ok {
		e.t.Fatalf("query %q failed", sql)
	}
	return n
}

// skippedInLog sums the duplicates the postgres sink reported in a log.
func skippedInLog(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, m := range regexp.MustCompile(`already in the table.* skipped=(\d+)`).FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.Atoi(m[1])
		total += n
	}
	return total
}

func metricValue(metrics, prefix string) float64 {
	var sum float64
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, prefix) {
			v, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
			sum += v
		}
	}
	return sum
}

// TestPostgresOutageMidStream stops PostgreSQL for 10s while a worker is
// consuming an 8,000-record stream, then starts it again: every record must
// end up as exactly one row, and no good record as a dead letter. Then a
// second worker with a fresh lease table re-reads the whole stream (as after
// a lost checkpoint): it must add no row, and say how many it skipped.
func TestPostgresOutageMidStream(t *testing.T) {
	t.Parallel()
	const n, outage = 8000, 10 * time.Second
	e := newPGEnv(t, 4)
	testStart := time.Now()
	data, keys, _ := orders(0, n/4, false)
	e.put(data, keys)

	w := e.start(e.pgConfig("orders-pg"), "w1")
	addr := w.metricsAddr()
	waitFor(t, 60*time.Second, "the first rows in PostgreSQL", func() bool {
		c, _ := e.query("SELECT count(*) FROM orders")
		return c >= 500
	})
	before, _ := e.query("SELECT count(*) FROM orders")
	e.pg.Stop(t)
	stopped := time.Now()
	t.Logf("PostgreSQL stopped with %d rows in (%s after start)", before, stopped.Sub(testStart).Round(time.Millisecond))

	// Records keep arriving during the outage.
	data, keys, _ = orders(n/4, n/2, false)
	e.put(data, keys)
	waitFor(t, 30*time.Second, "the worker to notice the outage", func() bool {
		b, _ := os.ReadFile(w.log)
		return strings.Contains(string(b), "sink write failed; retrying")
	})
	waitFor(t, 30*time.Second, "/readyz 503 naming the PostgreSQL sinks", func() bool {
		r := httpGet(t, "http://"+addr+"/readyz", "")
		return r.code == 503 && strings.Contains(r.body, "sink:warehouse") && strings.Contains(r.body, "sink:dead_letter")
	})
	time.Sleep(time.Until(stopped.Add(outage)))
	e.pg.Start(t)
	restarted := time.Now()
	waitFor(t, 30*time.Second, "/readyz 200 once PostgreSQL is back", func() bool {
		return httpGet(t, "http://"+addr+"/readyz", "").code == 200
	})
	data, keys, _ = orders(3*n/4, n/4, false)
	e.put(data, keys)

	var firstAfter time.Time
	waitFor(t, 90*time.Second, fmt.Sprintf("all %d rows", n), func() bool {
		c, _ := e.query("SELECT count(*) FROM orders")
		if c > before && firstAfter.IsZero() {
			firstAfter = time.Now()
		}
		return c >= n
	})
	t.Logf("writes resumed %s after PostgreSQL came back; all %d rows in %s after it came back",
		firstAfter.Sub(restarted).Round(time.Millisecond), n, time.Since(restarted).Round(time.Millisecond))

	if c, d := e.mustQuery("SELECT count(*) FROM orders"), e.mustQuery("SELECT count(DISTINCT id) FROM orders"); c != n || d != n {
		t.Errorf("count(*) = %d, count(DISTINCT id) = %d, want %d and %d", c, d, n, n)
	}
	if lo, hi := e.mustQuery("SELECT min(id) FROM orders"), e.mustQuery("SELECT max(id) FROM orders"); lo != 0 || hi != n-1 {
		t.Errorf("ids %d..%d, want 0..%d", lo, hi, n-1)
	}
	if bad := e.mustQuery("SELECT count(*) FROM orders WHERE amount <> id + 0.25 OR _shard_id = '' OR _sequence_number = ''"); bad != 0 {
		t.Errorf("%d rows with a wrong amount or no origin", bad)
	}
	if dl := e.mustQuery("SELECT count(*) FROM kinesis_ingest_dead_letters"); dl != 0 {
		t.Errorf("%d dead letters; every record was good", dl)
	}
	m := scrape(t, addr)
	if v := metricValue(m, `kinesis_ingest_sink_write_errors_total{sink="warehouse"}`); v == 0 {
		t.Errorf("no sink write errors counted during a %s outage", outage)
	}
	if v := metricValue(m, `kinesis_ingest_dead_letters_total{`); v != 0 {
		t.Errorf("dead_letters_total = %v", v)
	}
	// Usually 0: a stop of PostgreSQL aborts the transaction in flight.
	// TestCrashBetweenCommitAndCheckpointAddsNoRow makes the replay certain.
	skipped := skippedInLog(t, w.log)
	t.Logf("the outage's retries replayed %d rows that were already committed (skipped)", skipped)
	w.stop(30 * time.Second)

	// A worker that lost every checkpoint (a fresh lease table) re-reads the
	// stream from the start: the table de-duplicates all of it.
	w2 := e.start(e.pgConfig("orders-pg-replay"), "w2")
	waitFor(t, 90*time.Second, "the replay of every record", func() bool { return skippedInLog(t, w2.log) >= n })
	if c := e.mustQuery("SELECT count(*) FROM orders"); c != n {
		t.Errorf("after a full replay, count(*) = %d, want %d", c, n)
	}
	if got := skippedInLog(t, w2.log); got != n {
		t.Errorf("the replay logged %d skipped rows, want %d", got, n)
	}
	if got := metricValue(scrape(t, w2.metricsAddr()), `kinesis_ingest_sink_duplicates_skipped_total{sink="warehouse"}`); got != float64(n) {
		t.Errorf("sink_duplicates_skipped_total = %v after a full replay, want %d", got, n)
	}
	w2.stop(30 * time.Second)

	for _, l := range []string{w.log, w2.log} {
		b, _ := os.ReadFile(l)
		if strings.Contains(string(b), pgPassword) {
			t.Errorf("%s shows the PostgreSQL password", filepath.Base(l))
		}
	}
	t.Logf("test body took %s", time.Since(testStart).Round(time.Millisecond))
}

// checkpointWrite is in the body of every checkpoint write to the lease table
// (consumers/leases CheckpointSequence) and of no other call.
const checkpointWrite = `"UpdateExpression":"SET #cp = :cp`

// checkpointsAt reports whether every shard of last is checkpointed at its
// sequence number in lease table table.
func (e *pgEnv) checkpointsAt(table string, last map[string]string) bool {
	cps := e.checkpointsOf(table)
	for shard, seq := range last {
		if cps[shard].Checkpoint != seq {
			return false
		}
	}
	return true
}

// TestCrashBetweenCommitAndCheckpointAddsNoRow: the lease table refuses
// (throttles) a worker's checkpoint writes while its rows are committed to
// PostgreSQL, and the worker is killed (SIGKILL) with every row committed and
// its checkpoints a whole batch of records behind. The next worker resumes
// from those checkpoints and so reads every record of that batch again: each
// must be counted as a skipped duplicate, and the table must still hold
// exactly one row per record.
func TestCrashBetweenCommitAndCheckpointAddsNoRow(t *testing.T) {
	t.Parallel()
	const before, lagging, after = 2000, 2000, 1000
	const app = "orders-pg-crash"
	e := newPGEnv(t, 4)
	dp := faultproxy.New(t, e.ddb.Endpoint)
	cfg := e.pgConfig(app)

	data, keys, _ := orders(0, before, false)
	lastBefore := e.put(data, keys)
	w1 := e.startArgs(cfg, "w1", nil, []string{"AWS_ENDPOINT_URL_DYNAMODB=" + dp.URL})
	waitFor(t, 90*time.Second, fmt.Sprintf("the first %d records checkpointed", before), func() bool {
		return e.checkpointsAt(app, lastBefore)
	})

	dp.SetRules(faultproxy.Rule{Operation: "UpdateItem", Every: 1, Code: "ProvisionedThroughputExceededException", BodyContains: checkpointWrite})
	data, keys, _ = orders(before, lagging, false)
	e.put(data, keys)
	waitFor(t, 90*time.Second, fmt.Sprintf("all %d rows committed and a checkpoint refused", before+lagging), func() bool {
		c, _ := e.query("SELECT count(*) FROM orders")
		return c >= before+lagging && dp.Throttled()["UpdateItem"] > 0
	})
	w1.kill()
	dp.SetRules()
	if !e.checkpointsAt(app, lastBefore) {
		t.Fatalf("checkpoints %v moved past %v while their writes were refused: nothing left to replay", e.checkpointsOf(app), lastBefore)
	}
	t.Logf("w1 killed with %d rows committed, checkpoints %d records behind (%d checkpoint writes refused); it skipped %d rows itself",
		e.mustQuery("SELECT count(*) FROM orders"), lagging, dp.Throttled()["UpdateItem"], skippedInLog(t, w1.log))

	// The successor reads the lagging batch again, then records it has not seen.
	w2 := e.start(cfg, "w2")
	data, keys, _ = orders(before+lagging, after, false)
	lastAfter := e.put(data, keys)
	const n = before + lagging + after
	waitFor(t, 90*time.Second, fmt.Sprintf("all %d rows, checkpointed", n), func() bool {
		c, _ := e.query("SELECT count(*) FROM orders")
		return c >= n && e.checkpointsAt(app, lastAfter)
	})
	if c, d := e.mustQuery("SELECT count(*) FROM orders"), e.mustQuery("SELECT count(DISTINCT id) FROM orders"); c != n || d != n {
		t.Errorf("count(*) = %d, count(DISTINCT id) = %d, want %d and %d: a replay added rows", c, d, n, n)
	}
	if lo, hi := e.mustQuery("SELECT min(id) FROM orders"), e.mustQuery("SELECT max(id) FROM orders"); lo != 0 || hi != n-1 {
		t.Errorf("ids %d..%d, want 0..%d", lo, hi, n-1)
	}
	if bad := e.mustQuery("SELECT count(*) FROM orders WHERE amount <> id + 0.25"); bad != 0 {
		t.Errorf("%d rows with a wrong amount", bad)
	}
	if dl := e.mustQuery("SELECT count(*) FROM kinesis_ingest_dead_letters"); dl != 0 {
		t.Errorf("%d dead letters; every record was good", dl)
	}
	m := scrape(t, w2.metricsAddr())
	if got := metricValue(m, `kinesis_ingest_sink_duplicates_skipped_total{sink="warehouse"}`); got != lagging {
		t.Errorf("sink_duplicates_skipped_total = %v after the crash, want %d (the records after the lagging checkpoints, all committed before it)", got, lagging)
	}
	if got := skippedInLog(t, w2.log); got != lagging {
		t.Errorf("the successor logged %d skipped rows, want %d", got, lagging)
	}
	w2.stop(30 * time.Second)
}
