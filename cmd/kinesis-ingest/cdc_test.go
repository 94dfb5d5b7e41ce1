package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
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

// streamRecord is a record as read back from the stream: where it landed and
// when Kinesis says it arrived, what the tie rule orders by.
type streamRecord struct {
	shard, seq string
	arrival    time.Time
	data       []byte
}

// readStream reads every record of the test's stream, from every shard.
func (e *env) readStream() []streamRecord {
	e.t.Helper()
	ctx := e.t.Context()
	ls, err := e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
	if err != nil {
		e.t.Fatalf("list shards: %v", err)
	}
	var out []streamRecord
	for _, sh := range ls.Shards {
		it, err := e.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(e.stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			e.t.Fatalf("shard iterator of %s: %v", aws.ToString(sh.ShardId), err)
		}
		for iter := it.ShardIterator; iter != nil; {
			r, err := e.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				e.t.Fatalf("get records of %s: %v", aws.ToString(sh.ShardId), err)
			}
			for _, rec := range r.Records {
				out = append(out, streamRecord{shard: aws.ToString(sh.ShardId), seq: aws.ToString(rec.SequenceNumber), arrival: aws.ToTime(rec.ApproximateArrivalTimestamp), data: rec.Data})
			}
			if len(r.Records) == 0 && aws.ToInt64(r.MillisBehindLatest) == 0 {
				break
			}
			iter = r.NextShardIterator
		}
	}
	return out
}

// tieRule is the order of one key's changes, as the README states it: the
// greater timestamp at a microsecond's precision (a datetime's digits below
// it are dropped when read), then the later Kinesis arrival, then the
// greater shard id, then the greater sequence number. It returns > 0 when a
// wins, and which part decided.
func tieRule(a, b streamRecord, aTS, bTS time.Time) (int, string) {
	if c := aTS.Truncate(time.Microsecond).Compare(bTS.Truncate(time.Microsecond)); c != 0 {
		return c, "timestamp"
	}
	if c := a.arrival.Truncate(time.Microsecond).Compare(b.arrival.Truncate(time.Microsecond)); c != 0 {
		return c, "arrival"
	}
	if c := strings.Compare(a.shard, b.shard); c != 0 {
		return c, "shard"
	}
	if seqLess(a.seq, b.seq) {
		return -1, "sequence"
	}
	if seqLess(b.seq, a.seq) {
		return 1, "sequence"
	}
	return 0, "sequence"
}

// TestUpsertsByEventTime is the upsert proof: 5,500 changes of 500 keys, each
// key's timestamps shuffled against the order the changes arrive in, spread
// over 4 shards at random (so a key's changes are on several shards), read by
// 2 workers, one of them killed with SIGKILL mid-run (its uncheckpointed
// batches are read again by the other); then a second application replays the
// whole stream from trim_horizon into the same table. In every fifth key the
// two newest changes tie: their timestamps differ by 800 ns, below a
// datetime's microsecond, so the tie rule decides (arrival, then shard id,
// then sequence number). With cdc: debezium a quarter of the changes are
// deletes, so deletes and upserts of one key race across shards. The table
// must hold, for every key, the winner by that rule, computed here from what
// the stream holds; the replay must change no row (not even the origin
// columns) and count every change as older.
func TestUpsertsByEventTime(t *testing.T) {
	t.Parallel()
	for _, cdc := range []string{"upsert", "debezium"} {
		t.Run(cdc, func(t *testing.T) {
			t.Parallel()
			upsertsByEventTime(t, cdc)
		})
	}
}

func upsertsByEventTime(t *testing.T, cdcMode string) {
	const keys, perKey = 500, 10
	e := newPGEnv(t, 4)
	rng := rand.New(rand.NewPCG(14, 5000))
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	type change struct {
		id, version int64
		ts          time.Time
		deleted     bool
	}
	var changes []change
	for k := range int64(keys) {
		// Distinct timestamps per key, in an order unrelated to arrival, on
		// whole microseconds plus 100 ns (dropped when read).
		for v, slot := range rng.Perm(perKey) {
			ts := base.Add(time.Duration(slot)*time.Minute + time.Duration(k)*time.Millisecond + 100)
			changes = append(changes, change{id: k, version: int64(v), ts: ts, deleted: cdcMode == "debezium" && rng.IntN(4) == 0})
			if slot == perKey-1 && k%5 == 0 {
				// The newest change's twin: 800 ns later, the same
				// microsecond.
				changes = append(changes, change{id: k, version: perKey, ts: ts.Add(800), deleted: cdcMode == "debezium" && rng.IntN(2) == 0})
			}
		}
	}
	rng.Shuffle(len(changes), func(i, j int) { changes[i], changes[j] = changes[j], changes[i] })
	data := make([][]byte, len(changes))
	pkeys := make([]string, len(changes))
	for i, c := range changes {
		switch {
		case cdcMode == "upsert":
			data[i] = fmt.Appendf(nil, `{"id":%d,"version":%d,"name":"user %d v%d","ts":%q}`, c.id, c.version, c.id, c.version, c.ts.Format(time.RFC3339Nano))
		case c.deleted: // Debezium's delete: the key in before, the time in ts_ns
			data[i] = fmt.Appendf(nil, `{"op":"d","before":{"id":%d},"after":null,"ts_ns":%d,"source":{"connector":"postgresql"}}`, c.id, c.ts.UnixNano())
		default:
			data[i] = fmt.Appendf(nil, `{"op":"u","before":null,"after":{"id":%d,"version":%d,"name":"user %d v%d"},"ts_ns":%d,"source":{"connector":"postgresql"}}`, c.id, c.version, c.id, c.version, c.ts.UnixNano())
		}
		pkeys[i] = fmt.Sprintf("p-%d", rng.IntN(1<<20)) // not the key: a key's changes go to several shards
	}
	format, fields := "json", `      - {name: id, type: int, key: true}
      - {name: version, type: int}
      - {name: name, type: str}
      - {name: ts, type: datetime}`
	if cdcMode == "debezium" {
		fields = `      - {name: id, type: int, key: true}
      - {name: version, type: "optional[int]"}
      - {name: name, type: "optional[str]"}
      - {name: ts, type: datetime, ref: $ts_ns}`
	}

	start := time.Now()
	phase := func(what string) { t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond)) }
	e.put(data[:len(data)/2], pkeys[:len(data)/2])
	cfg := e.cdcConfig("users-ingest", format, cdcMode, fields)
	w1 := e.start(cfg, "w1")
	w2 := e.start(cfg, "w2")
	waitFor(t, 60*time.Second, "the first upserts", func() bool { return len(e.users()) >= 100 })
	w1.kill()
	phase("w1 killed")
	e.put(data[len(data)/2:], pkeys[len(data)/2:])

	// The winner of every key by the tie rule, from the records as the
	// stream holds them (shard, sequence number, arrival).
	byChange := map[string]change{}
	for _, c := range changes {
		byChange[fmt.Sprintf("%d/%d", c.id, c.ts.UnixNano())] = c
	}
	type landed struct {
		change
		rec streamRecord
	}
	newest := map[int64]landed{}
	ties := map[string]int{}
	var deletedWins, lateOlderDeletes int
	var seen []landed
	for _, r := range e.readStream() {
		var v struct {
			ID     *int64              `json:"id"`
			TS     string              `json:"ts"`
			TSNS   int64               `json:"ts_ns"`
			Before *struct{ ID int64 } `json:"before"`
			After  *struct{ ID int64 } `json:"after"`
		}
		if err := json.Unmarshal(r.data, &v); err != nil {
			t.Fatalf("a record of the stream: %v: %s", err, r.data)
		}
		var id, ns int64
		switch {
		case v.ID != nil:
			ts, err := time.Parse(time.RFC3339Nano, v.TS)
			if err != nil {
				t.Fatal(err)
			}
			id, ns = *v.ID, ts.UnixNano()
		case v.After != nil:
			id, ns = v.After.ID, v.TSNS
		case v.Before != nil:
			id, ns = v.Before.ID, v.TSNS
		}
		c, ok := byChange[fmt.Sprintf("%d/%d", id, ns)]
		if !ok {
			t.Fatalf("the stream holds a change the test did not put: %s", r.data)
		}
		l := landed{c, r}
		seen = append(seen, l)
		if n, ok := newest[id]; !ok {
			newest[id] = l
		} else if w, by := tieRule(l.rec, n.rec, l.ts, n.ts); w > 0 {
			newest[id] = l
			if by != "timestamp" {
				ties[by]++
			}
		} else if by != "timestamp" {
			ties[by]++
		}
	}
	if len(seen) != len(changes) {
		t.Fatalf("the stream holds %d records, %d were put", len(seen), len(changes))
	}
	for _, l := range seen {
		n := newest[l.id]
		if n.deleted && l.rec.shard == n.rec.shard && l.rec.seq == n.rec.seq {
			deletedWins++
		}
		// A delete older than the winner that arrived after it: it must not
		// delete the key.
		if l.deleted && !n.deleted && l.rec.arrival.After(n.rec.arrival) {
			lateOlderDeletes++
		}
	}
	t.Logf("ties at the microsecond decided by arrival %d, by shard id %d, by sequence number %d; deleted keys %d; deletes older than their key's winner arriving after it %d",
		ties["arrival"], ties["shard"], ties["sequence"], deletedWins, lateOlderDeletes)
	if ties["arrival"]+ties["shard"] == 0 {
		t.Fatal("no tie between changes on different shards: the test proves nothing about ties")
	}
	if cdcMode == "debezium" && (deletedWins == 0 || lateOlderDeletes == 0) {
		t.Fatalf("deleted keys %d, late older deletes %d: the test proves nothing about deletes across shards", deletedWins, lateOlderDeletes)
	}

	matches := func(table map[int64]userState) (bad []string) {
		for k, c := range newest {
			s, ok := table[k]
			origin := c.rec.shard + "/" + c.rec.seq + "/"
			switch {
			case !ok:
				bad = append(bad, fmt.Sprintf("key %d missing", k))
			case !s.ts.Equal(c.ts.Truncate(time.Microsecond)) || !strings.HasPrefix(s.origin, origin):
				bad = append(bad, fmt.Sprintf("key %d: ts %s from %s, want the winner: ts %s from %s (version %d, deleted %v)", k, s.ts, s.origin, c.ts, origin, c.version, c.deleted))
			case c.deleted && (!s.deleted || s.liveView):
				bad = append(bad, fmt.Sprintf("key %d: deleted %v, in users_live %v; want a tombstone", k, s.deleted, s.liveView))
			case !c.deleted && s.version != c.version:
				bad = append(bad, fmt.Sprintf("key %d: version %d, want the winner's, %d", k, s.version, c.version))
			case !c.deleted && (s.deleted || !s.liveView):
				bad = append(bad, fmt.Sprintf("key %d: deleted %v, in users_live %v; want a live row", k, s.deleted, s.liveView))
			}
		}
		if len(table) != len(newest) {
			bad = append(bad, fmt.Sprintf("%d keys, want %d", len(table), len(newest)))
		}
		return bad
	}
	var final map[int64]userState
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		final = e.users()
		bad := matches(final)
		if final != nil && len(bad) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 2 minutes, %d keys are not at their winner by the tie rule; first: %s", len(bad), strings.Join(bad[:min(3, len(bad))], "; "))
		}
	}
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
	w3 := e.start(e.cdcConfig("users-replay", format, cdcMode, fields), "w3")
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
