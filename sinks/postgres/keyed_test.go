package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"log/slog"

	"github.com/jackc/pgx/v5"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

var userColumns = []schema.Column{
	{Name: "tenant", Type: typ("str"), Key: true},
	{Name: "id", Type: typ("int"), Key: true},
	{Name: "name", Type: typ("str")},
	{Name: "ts", Type: typ("datetime")},
}

// change is one version of a user, as a test writes and expects it.
type change struct {
	tenant string
	id     int64
	name   string
	ts     time.Time
	del    bool
	shard  string
	seq    int
	arrive time.Time
}

func (c change) row() record.Row {
	name := any(c.name)
	if c.del {
		name = nil
	}
	return record.Row{
		Dataset: "users",
		Origin:  record.Origin{Source: "users", ShardID: c.shard, SequenceNumber: fmt.Sprintf("%d", c.seq), ArrivalTime: c.arrive},
		Fields: []record.Field{
			{Name: "tenant", Value: c.tenant}, {Name: "id", Value: c.id}, {Name: "name", Value: name}, {Name: "ts", Value: c.ts},
		},
		Delete: c.del,
	}
}

// newer is the upsert rule, written independently of the SQL: the greater
// timestamp, then arrival, then shard, then sequence number.
func newer(a, b change) bool {
	if !a.ts.Equal(b.ts) {
		return a.ts.After(b.ts)
	}
	if !a.arrive.Equal(b.arrive) {
		return a.arrive.After(b.arrive)
	}
	if a.shard != b.shard {
		return a.shard > b.shard
	}
	return a.seq > b.seq
}

type userRow struct {
	name    *string
	ts      time.Time
	deleted *time.Time
	seq     string
}

func readUsers(t *testing.T, conn *pgx.Conn, table string) map[string]userRow {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT tenant, id, name, ts, _deleted_at, _sequence_number FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]userRow{}
	for rows.Next() {
		var tenant string
		var id int64
		var r userRow
		if err := rows.Scan(&tenant, &id, &r.name, &r.ts, &r.deleted, &r.seq); err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprintf("%s/%d", tenant, id)] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

type changeCounts struct {
	sync.Mutex
	upserted, deleted, older int
}

func (c *changeCounts) add(u, d, o int) {
	c.Lock()
	defer c.Unlock()
	c.upserted += u
	c.deleted += d
	c.older += o
}

// TestKeyedUpsertsByEventTime writes 3,000 changes (upserts and deletes) of 200
// keys over 3 shards in a shuffled order, in batches of several sizes and
// from concurrent writers, then all of them again (a replay): the table holds
// the newest change of every key by the rule, computed here independently,
// deleted keys are tombstones that older upserts did not resurrect, the live
// view holds the others, the replay changes no row, and the counters add up.
func TestKeyedUpsertsByEventTime(t *testing.T) {
	dsn := server(t).CreateDatabase(t)
	conn := connect(t, dsn)
	var got changeCounts
	s := newRowSink(t, Config{DSN: dsn, Table: "users", Columns: userColumns, Timestamp: "ts", CreateTable: true, BatchRows: 97, OnChanges: got.add})

	rng := rand.New(rand.NewPCG(1, 2))
	var all []change
	seq := map[string]int{}
	for i := range 3000 {
		shard := fmt.Sprintf("shardId-%d", rng.IntN(3))
		seq[shard]++
		c := change{
			tenant: []string{"a", "b"}[rng.IntN(2)], id: int64(rng.IntN(100)),
			name: fmt.Sprintf("v%d", i),
			// Few distinct timestamps, so ties fall to arrival, shard and sequence.
			ts:     t0.Add(time.Duration(rng.IntN(40)) * time.Second),
			arrive: t0.Add(time.Duration(rng.IntN(20)) * time.Millisecond),
			del:    rng.IntN(5) == 0,
			shard:  shard, seq: seq[shard] * 1000,
		}
		all = append(all, c)
	}
	want := map[string]change{}
	for _, c := range all {
		k := fmt.Sprintf("%s/%d", c.tenant, c.id)
		if w, ok := want[k]; !ok || newer(c, w) {
			want[k] = c
		}
	}

	write := func(cs []change) {
		var wg sync.WaitGroup
		for w := range 3 { // concurrent writers share transactions (group commit)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w * 50; i < len(cs); i += 150 {
					end := min(i+50, len(cs))
					rows := make([]record.Row, 0, end-i)
					for _, c := range cs[i:end] {
						rows = append(rows, c.row())
					}
					if err := s.Write(context.Background(), rows); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
	}
	write(all)
	first := readUsers(t, conn, "users")
	check := func(table map[string]userRow) {
		t.Helper()
		if len(table) != len(want) {
			t.Errorf("%d keys in the table, want %d", len(table), len(want))
		}
		for k, w := range want {
			r, ok := table[k]
			switch {
			case !ok:
				t.Errorf("key %s missing", k)
			case !r.ts.Equal(w.ts) || r.seq != fmt.Sprint(w.seq):
				t.Errorf("key %s: ts %v seq %s, want the newest change: ts %v seq %d", k, r.ts, r.seq, w.ts, w.seq)
			case w.del && (r.deleted == nil || !r.deleted.Equal(w.ts)):
				t.Errorf("key %s: _deleted_at %v, want the tombstone of the delete at %v", k, r.deleted, w.ts)
			case !w.del && (r.deleted != nil || r.name == nil || *r.name != w.name):
				t.Errorf("key %s: name %v deleted %v, want live %q", k, r.name, r.deleted, w.name)
			}
		}
	}
	check(first)
	live := 0
	for _, w := range want {
		if !w.del {
			live++
		}
	}
	if n := count(t, conn, "SELECT count(*) FROM users_live"); n != live {
		t.Errorf("users_live has %d rows, want the %d keys not deleted", n, live)
	}
	got.Lock()
	if got.upserted+got.deleted+got.older != len(all) || got.upserted == 0 || got.deleted == 0 || got.older == 0 {
		t.Errorf("counters upserted %d + deleted %d + older %d, want %d in all, each > 0", got.upserted, got.deleted, got.older, len(all))
	}
	got.upserted, got.deleted, got.older = 0, 0, 0
	got.Unlock()

	// A replay, in another order: nothing changes, every change is older.
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	write(all)
	check(readUsers(t, conn, "users"))
	got.Lock()
	if got.upserted != 0 || got.deleted != 0 || got.older != len(all) {
		t.Errorf("replay: upserted %d deleted %d older %d, want 0, 0, %d", got.upserted, got.deleted, got.older, len(all))
	}
	got.Unlock()
}

// TestKeyedTableDDLAndCheck: create_table makes the keys the primary key,
// non-key fields nullable (tombstones) and the live view; an existing table
// keyed otherwise, or with a NOT NULL value column, fails the check with the
// SQL that fixes it.
func TestKeyedTableDDLAndCheck(t *testing.T) {
	dsn := server(t).CreateDatabase(t)
	conn := connect(t, dsn)
	cfg := Config{DSN: dsn, Table: "users", Columns: userColumns, Timestamp: "ts", CreateTable: true}
	ddl, err := CreateTableSQL(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"tenant" text NOT NULL`, `"name" text,`, `"ts" timestamptz NOT NULL`, `"_deleted_at" timestamptz,`, `PRIMARY KEY ("tenant", "id")`, `CREATE OR REPLACE VIEW "users_live"`} {
		if !strings.Contains(ddl, want) {
			t.Errorf("DDL lacks %q:\n%s", want, ddl)
		}
	}
	newRowSink(t, cfg)
	if err := Check(context.Background(), cfg); err != nil {
		t.Errorf("check of the created table: %v", err)
	}

	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE TABLE old_users (tenant text NOT NULL, id bigint NOT NULL, name text NOT NULL, ts timestamptz NOT NULL,
		_source text NOT NULL, _shard_id text NOT NULL, _sequence_number text NOT NULL, _subsequence integer NOT NULL, _arrival_time timestamptz NOT NULL,
		PRIMARY KEY (_shard_id, _sequence_number, _subsequence))`); err != nil {
		t.Fatal(err)
	}
	cfg.Table, cfg.CreateTable = "old_users", false
	err = Check(ctx, cfg)
	for _, want := range []string{
		`column "_deleted_at" (origin column) is missing: ALTER TABLE "old_users" ADD COLUMN "_deleted_at" timestamptz`,
		`column "name" is NOT NULL but a tombstone of a key deleted before any of its rows arrived has no value for it: ALTER TABLE "old_users" ALTER COLUMN "name" DROP NOT NULL`,
		`no primary key or unique index on exactly the dataset's keys ("tenant", "id"), which the upsert (ON CONFLICT) needs: ALTER TABLE "old_users" ADD PRIMARY KEY ("tenant", "id")`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check of a table keyed by origin: %v\nwant %q", err, want)
		}
	}
}

// BenchmarkKeyedUpsert writes one shard's changes with one Write per
// transaction of the given size into a keyed table (the guarded upsert) and,
// in the same run, the same rows into a keyless table (plain inserts), the
// baseline. Keys repeat every 10,000 rows, so after the first pass every
// change updates an existing row; changes=newer has every change newer than
// the stored row, changes=older (a replay) has none.
func BenchmarkKeyedUpsert(b *testing.B) {
	dsn := server(b).CreateDatabase(b)
	const keys = 10000
	keyless := []schema.Column{{Name: "tenant", Type: typ("str")}, {Name: "id", Type: typ("int")}, {Name: "name", Type: typ("str")}, {Name: "ts", Type: typ("datetime")}}
	rows := func(seq, n int, older bool) []record.Row {
		out := make([]record.Row, n)
		for i := range out {
			s := seq + i
			ts := t0.Add(time.Duration(s) * time.Millisecond)
			if older {
				ts = t0.Add(-time.Duration(s) * time.Millisecond)
			}
			out[i] = change{tenant: "t", id: int64(s % keys), name: fmt.Sprintf("name %d", s), ts: ts,
				shard: "shardId-000000000000", seq: s + 1, arrive: t0}.row()
		}
		return out
	}
	for _, size := range []int{100, 500, 2000} {
		for _, kind := range []string{"keyless", "keyed-newer", "keyed-older"} {
			b.Run(fmt.Sprintf("rows=%d/%s", size, kind), func(b *testing.B) {
				cols := userColumns
				if kind == "keyless" {
					cols = keyless
				}
				s, err := NewRowSink(context.Background(), Config{DSN: dsn, Table: fmt.Sprintf("bench_keyed_%d", tableSeq.Add(1)), Columns: cols, Timestamp: "ts",
					CreateTable: true, BatchRows: size, BatchBytes: 1 << 30}, slog.New(slog.DiscardHandler))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				// Every key present first, so that both kinds update, not insert.
				for seq := 0; seq < keys && kind != "keyless"; seq += 1000 {
					if err := s.Write(context.Background(), rows(seq, 1000, false)); err != nil {
						b.Fatal(err)
					}
				}
				seq, n := keys, 0
				start := time.Now()
				for b.Loop() {
					if err := s.Write(context.Background(), rows(seq, size, kind == "keyed-older")); err != nil {
						b.Fatal(err)
					}
					seq += size
					n += size
				}
				b.ReportMetric(float64(n)/time.Since(start).Seconds(), "rows/s")
			})
		}
	}
}
