package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// cdcConfig is a worker config with one keyed dataset, users, written to the
// PostgreSQL table users. cdc is upsert or debezium; fields are the dataset's
// fields (YAML list items).
const cdcConfig = `
sources:
  - name: users
    kinesis:
      stream_arn: %s
      init_position: trim_horizon
      format: %s
datasets:
  - name: users
    source: users
    cdc: %s
    timestamp: ts
    fields:
%s
    sink: warehouse
sinks:
  - name: warehouse
    postgres: {dsn: "${PG_DSN}", table: users, create_table: true, batch_rows: 200}
dead_letter:
  postgres: {dsn: "${PG_DSN}", table: kinesis_ingest_dead_letters}
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

func (e *pgEnv) cdcConfig(application, format, cdc, fields string) string {
	e.t.Helper()
	path := filepath.Join(e.dir, application+".yaml")
	body := fmt.Sprintf(cdcConfig, e.arn, format, cdc, fields, application)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// userState is a key's row as the test reads it from PostgreSQL.
type userState struct {
	version  int64
	ts       time.Time
	deleted  bool
	origin   string // shard/sequence/arrival: what a replay must not touch
	liveView bool
}

func (e *pgEnv) users() map[int64]userState {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT u.id, coalesce(u.version, -1), u.ts, u._deleted_at IS NOT NULL,
		u._shard_id || '/' || u._sequence_number || '/' || u._arrival_time::text, l.id IS NOT NULL
		FROM users u LEFT JOIN users_live l ON l.id = u.id`)
	if err != nil {
		return nil // the table is not there yet
	}
	defer rows.Close()
	out := map[int64]userState{}
	for rows.Next() {
		var id int64
		var s userState
		if err := rows.Scan(&id, &s.version, &s.ts, &s.deleted, &s.origin, &s.liveView); err != nil {
			e.t.Fatal(err)
		}
		out[id] = s
	}
	return out
}

// TestUpsertsByEventTime is the upsert proof: 5,000 changes of 500 keys, each
// key's timestamps shuffled against the order the changes arrive in, spread
// over 4 shards at random (so a key's changes are on several shards), read by
// 2 workers, one of them killed with SIGKILL mid-run (its uncheckpointed
// batches are read again by the other); then a second application replays the
// whole stream from trim_horizon into the same table. The table must hold, for
// every key, the change with the greatest timestamp, computed here from what
// was put; the replay must change no row (not even the origin columns) and
// count every change as older.
func TestUpsertsByEventTime(t *testing.T) {
	t.Parallel()
	const keys, perKey = 500, 10
	e := newPGEnv(t, 4)
	rng := rand.New(rand.NewPCG(14, 5000))
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	type change struct {
		id, version int64
		ts          time.Time
	}
	var changes []change
	newest := map[int64]change{}
	for k := range int64(keys) {
		// Distinct timestamps per key, in an order unrelated to arrival.
		for v, slot := range rng.Perm(perKey) {
			c := change{id: k, version: int64(v), ts: base.Add(time.Duration(slot)*time.Minute + time.Duration(k)*time.Millisecond)}
			changes = append(changes, c)
			if n, ok := newest[k]; !ok || c.ts.After(n.ts) {
				newest[k] = c
			}
		}
	}
	rng.Shuffle(len(changes), func(i, j int) { changes[i], changes[j] = changes[j], changes[i] })
	data := make([][]byte, len(changes))
	pkeys := make([]string, len(changes))
	for i, c := range changes {
		data[i] = fmt.Appendf(nil, `{"id":%d,"version":%d,"name":"user %d v%d","ts":%q}`, c.id, c.version, c.id, c.version, c.ts.Format(time.RFC3339Nano))
		pkeys[i] = fmt.Sprintf("p-%d", rng.IntN(1<<20)) // not the key: a key's changes go to several shards
	}
	const fields = `      - {name: id, type: int, key: true}
      - {name: version, type: int}
      - {name: name, type: str}
      - {name: ts, type: datetime}`

	start := time.Now()
	phase := func(what string) { t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond)) }
	e.put(data[:len(data)/2], pkeys[:len(data)/2])
	cfg := e.cdcConfig("users-ingest", "json", "upsert", fields)
	w1 := e.start(cfg, "w1")
	w2 := e.start(cfg, "w2")
	waitFor(t, 60*time.Second, "the first upserts", func() bool { return len(e.users()) >= 100 })
	w1.kill()
	phase("w1 killed")
	e.put(data[len(data)/2:], pkeys[len(data)/2:])

	matches := func(table map[int64]userState) (bad []string) {
		for k, c := range newest {
			s, ok := table[k]
			switch {
			case !ok:
				bad = append(bad, fmt.Sprintf("key %d missing", k))
			case s.version != c.version || !s.ts.Equal(c.ts):
				bad = append(bad, fmt.Sprintf("key %d: version %d at %s, want the newest: version %d at %s", k, s.version, s.ts, c.version, c.ts))
			case s.deleted || !s.liveView:
				bad = append(bad, fmt.Sprintf("key %d: deleted %v, in users_live %v; want a live row", k, s.deleted, s.liveView))
			}
		}
		if len(table) != len(newest) {
			bad = append(bad, fmt.Sprintf("%d keys, want %d", len(table), len(newest)))
		}
		return bad
	}
	var final map[int64]userState
	waitFor(t, 120*time.Second, "every key at its newest change", func() bool {
		final = e.users()
		return final != nil && len(matches(final)) == 0
	})
	phase("every key at its newest change")
	addr := w2.metricsAddr()
	waitFor(t, 60*time.Second, "w2 to have committed every change it read", func() bool {
		m := scrape(t, addr)
		return metricValue(m, `kinesis_ingest_sink_changes_total{`) >= float64(len(changes))/2
	})
	w2.stop(30 * time.Second)
	if bad := matches(e.users()); len(bad) > 0 {
		t.Fatalf("after the run: %d keys wrong, first: %s", len(bad), bad[0])
	}
	final = e.users()

	// Another application (its own lease table) reads everything again.
	w3 := e.start(e.cdcConfig("users-replay", "json", "upsert", fields), "w3")
	addr3 := w3.metricsAddr()
	var older, upserted, deleted float64
	waitFor(t, 120*time.Second, "the replay of every change", func() bool {
		m := scrape(t, addr3)
		older = metricValue(m, `kinesis_ingest_sink_changes_total{result="older",sink="warehouse"}`)
		upserted = metricValue(m, `kinesis_ingest_sink_changes_total{result="upserted",sink="warehouse"}`)
		deleted = metricValue(m, `kinesis_ingest_sink_changes_total{result="deleted",sink="warehouse"}`)
		return older+upserted+deleted >= float64(len(changes))
	})
	w3.stop(30 * time.Second)
	phase("replay done")
	if upserted != 0 || deleted != 0 || older != float64(len(changes)) {
		t.Errorf("replay: upserted %v, deleted %v, older %v; want 0, 0, %d", upserted, deleted, older, len(changes))
	}
	after := e.users()
	changed := 0
	for k, s := range final {
		if after[k] != s {
			changed++
			if changed <= 3 {
				t.Errorf("the replay changed key %d: %+v -> %+v", k, s, after[k])
			}
		}
	}
	if changed > 0 || len(after) != len(final) {
		t.Errorf("the replay changed %d of %d rows (%d keys after)", changed, len(final), len(after))
	}
	if dl := e.mustQuery("SELECT count(*) FROM kinesis_ingest_dead_letters"); dl != 0 {
		t.Errorf("%d dead letters; every change was good", dl)
	}
	for _, w := range []*worker{w1, w2, w3} {
		if b, _ := os.ReadFile(w.log); strings.Contains(string(b), pgPassword) {
			t.Errorf("%s's log shows the PostgreSQL password", w.id)
		}
	}
}
