package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// leaseTable opens table read-only for the test (its rows, its application
// row).
func (e *env) leaseTable(table string) *leases.Table {
	e.t.Helper()
	tbl, err := leases.New(leases.Config{Client: testaws.Dynamo(e.ddb.Endpoint), Table: table, WorkerID: "test-reader", LeaseDuration: time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	return tbl
}

// waitRegistered waits until the application of table has its start position
// stored (the first worker's first start) and returns it.
func (e *env) waitRegistered(table string) leases.Application {
	e.t.Helper()
	tbl := e.leaseTable(table)
	var app leases.Application
	waitFor(e.t, 60*time.Second, "the application row of "+table, func() bool {
		a, ok, err := tbl.Application(e.t.Context())
		app = a
		return err == nil && ok
	})
	return app
}

// phase checks that every id in [from, to) has a row in dir within timeout,
// and reports the loss as an error of the phase (the test goes on, so that
// each phase's loss is counted).
func phase(t *testing.T, dir, name string, from, to int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rows := readLines(t, dir, func(*rowLine, string) {})
		m := missing(idsOf(rows), from, to-from, nil)
		if len(m) == 0 {
			t.Logf("%s: all %d records put after the first start are rows", name, to-from)
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: %d of %d records put after the application's first start were skipped, e.g. %v", name, len(m), to-from, m[:min(5, len(m))])
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// putKeyed puts ids [from, to) over keyCount partition keys, so that every
// open shard gets some.
func (e *env) putKeyed(from, to int) int {
	data, keys, _ := keyedOrders(from, to-from)
	e.put(data, keys)
	return to
}

func (e *env) splitShard(s int) {
	e.t.Helper()
	open := e.openShards()
	p := open[s]
	mid := halfway(*p.HashKeyRange.StartingHashKey, *p.HashKeyRange.EndingHashKey)
	if _, err := e.kc.SplitShard(e.t.Context(), &kinesis.SplitShardInput{StreamName: aws.String(e.stream), ShardToSplit: p.ShardId, NewStartingHashKey: aws.String(mid)}); err != nil {
		e.t.Fatalf("split shard: %v", err)
	}
	e.waitActive()
}

// mergeShards merges the open shards s and s+1 (adjacent by hash key).
func (e *env) mergeShards(s int) {
	e.t.Helper()
	open := e.openShards()
	if _, err := e.kc.MergeShards(e.t.Context(), &kinesis.MergeShardsInput{StreamName: aws.String(e.stream),
		ShardToMerge: open[s].ShardId, AdjacentShardToMerge: open[s+1].ShardId}); err != nil {
		e.t.Fatalf("merge shards: %v", err)
	}
	e.waitActive()
}

// leasesTaken counts the shard consumers a worker started.
func (w *worker) leasesTaken() int {
	b, _ := os.ReadFile(w.log)
	return strings.Count(string(b), "shard lease taken")
}

// With init_position latest, every record put after the application's first
// start becomes a row, whatever happens to the workers and the shards after
// it: a graceful stop with records put while no worker runs (shards never
// checkpointed, because they were idle), a split while a worker runs and a
// kill -9 before the children's first checkpoint, a merge and a split while
// no worker runs, a split and a merge while a worker runs and records flow,
// and a steal of never-checkpointed shards. Counted by id, phase by phase.
func TestLatestSkipsNothingAfterTheFirstStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4)

	// A steal of never-checkpointed shards, in an application of its own on
	// the same stream: two workers, records put while a shard changes hands.
	stealDir := filepath.Join(e.dir, "steal")
	stealCfg := e.writeConfig(testConfig{InitPosition: "latest", Table: "steal-app", Dir: stealDir})
	s1 := e.start(stealCfg, "steal1")
	e.waitRegistered("steal-app")
	waitFor(t, 60*time.Second, "steal1 to read all 4 idle shards", func() bool { return s1.leasesTaken() >= 4 })
	// steal2 claims a never-checkpointed shard; steal1 releases it at a
	// batch boundary; records go in while it is free, before steal2 leases
	// it.
	s2 := e.start(stealCfg, "steal2")
	stealTable := e.leaseTable("steal-app")
	waitForEvery(t, 60*time.Second, 20*time.Millisecond, "steal1 to release a shard claimed by steal2", func() bool {
		rows, err := stealTable.Checkpoints(t.Context())
		for _, r := range rows {
			if r.ClaimRequest == "steal2" && r.Owner == "" {
				return err == nil
			}
		}
		return false
	})
	n := e.putKeyed(0, 100)
	waitFor(t, 90*time.Second, "steal2 to take its share", func() bool {
		o := e.ownersIn("steal-app")
		return o["steal1"] == 2 && o["steal2"] == 2
	})
	phase(t, filepath.Join(stealDir, "rows"), "steal of never-checkpointed shards, records put while they move", 0, n, 60*time.Second)
	s1.stop(30 * time.Second)
	s2.stop(30 * time.Second)

	// The main application: its first worker reads a few records of one
	// key, so three shards are never checkpointed.
	cfg := e.config("latest")
	w1 := e.start(cfg, "w1")
	e.waitRegistered(e.table)
	waitFor(t, 60*time.Second, "w1 to read all 4 shards", func() bool { return w1.leasesTaken() >= 4 })
	from := n
	sparse, _, _ := orders(from, 20, false)
	keys := make([]string, len(sparse))
	for i := range keys {
		keys[i] = "one-key"
	}
	e.put(sparse, keys)
	phase(t, e.rowsDir(), "sparse records while w1 runs", from, from+20, 60*time.Second)
	from += 20

	// 1. Graceful stop; records put while no worker runs.
	w1.stop(30 * time.Second)
	to := e.putKeyed(from, from+200)
	w2 := e.start(cfg, "w2")
	phase(t, e.rowsDir(), "stop, records put while no worker runs, restart", from, to, 60*time.Second)
	from = to

	// 2. A split while w2 runs; w2 killed before the children's first
	// checkpoint; records put into the children before w3 leases them.
	e.splitShard(0)
	waitFor(t, 60*time.Second, "w2 to lease both children", func() bool { return w2.leasesTaken() >= 6 })
	w2.kill()
	to = e.putKeyed(from, from+200)
	w3 := e.start(cfg, "w3")
	phase(t, e.rowsDir(), "split while running, kill -9 before the children's first checkpoint", from, to, 90*time.Second)
	from = to

	// 3. A merge and a split while no worker runs.
	w3.stop(30 * time.Second)
	e.mergeShards(1) // the split's upper child and the next shard
	e.splitShard(0)
	to = e.putKeyed(from, from+200)
	w4 := e.start(cfg, "w4")
	phase(t, e.rowsDir(), "merge and split while no worker runs", from, to, 90*time.Second)
	from = to

	// 4. A split and a merge while w4 runs and records flow.
	p := e.produceKeyed(100*time.Millisecond, 10, from)
	time.Sleep(time.Second)
	e.splitShard(2)
	e.mergeShards(0)
	time.Sleep(3 * time.Second)
	to = p.halt()
	phase(t, e.rowsDir(), "split and merge while running and records flow", from, to, 90*time.Second)
	w4.stop(30 * time.Second)
}

func waitForEvery(t *testing.T, timeout, every time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(every)
	}
}

// ownersIn counts live leases per worker in table.
func (e *env) ownersIn(table string) map[string]int {
	e.t.Helper()
	rows, err := e.leaseTable(table).Checkpoints(e.t.Context())
	if err != nil {
		e.t.Fatalf("read lease table %s: %v", table, err)
	}
	m := map[string]int{}
	for _, l := range rows {
		if l.Owner != "" && l.LeaseTimeout.After(time.Now()) && l.Checkpoint != "SHARD_END" {
			m[l.Owner]++
		}
	}
	return m
}

// A merged shard is read only after both its parents are read to their end,
// so per partition key, rows are written in the order the records were put.
// Deterministic: the adjacent parent's lease is held by a worker that died
// (its row says so), so the worker must wait a lease duration for it, well
// after the other parent reached SHARD_END; the KCL alone would lease the
// child then, since it keeps only ParentShardId.
func TestMergedShardWaitsForBothParents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	e.putKeyed(0, 300)
	open := e.openShards()
	parent, adjacent := *open[0].ShardId, *open[1].ShardId
	e.mergeShards(0)
	e.putKeyed(300, 600)

	tbl := e.leaseTable(e.table)
	if err := tbl.EnsureTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := testaws.Dynamo(e.ddb.Endpoint).PutItem(t.Context(), &dynamodb.PutItemInput{
		TableName: aws.String(e.table),
		Item: map[string]ddbtypes.AttributeValue{
			"ShardID":      &ddbtypes.AttributeValueMemberS{Value: adjacent},
			"AssignedTo":   &ddbtypes.AttributeValueMemberS{Value: "dead-worker"},
			"LeaseTimeout": &ddbtypes.AttributeValueMemberS{Value: time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)},
		},
	}); err != nil {
		t.Fatal(err)
	}
	e.start(e.config("trim_horizon"), "w1")
	waitFor(t, 90*time.Second, "all 600 rows", func() bool { return len(missing(idsOf(e.rows()), 0, 600, nil)) == 0 })
	rows := e.rows()
	first, last := map[string]int{}, map[string]int{}
	for i, r := range rows {
		if _, ok := first[r.Shard]; !ok {
			first[r.Shard] = i
		}
		last[r.Shard] = i
	}
	var child string
	for s := range first {
		if s != parent && s != adjacent {
			child = s
		}
	}
	for _, p := range []string{parent, adjacent} {
		if last[p] > first[child] {
			t.Errorf("merged shard %s read (row %d) before its parent %s was finished (its last row %d)", child, first[child], p, last[p])
		}
	}
	lastByKey := map[string]int64{}
	inversions := 0
	for _, r := range rows {
		key := "k" + strconv.FormatInt(r.ID%keyCount, 10)
		if l, ok := lastByKey[key]; ok && r.ID < l {
			inversions++
		}
		lastByKey[key] = max(lastByKey[key], r.ID)
	}
	if inversions > 0 {
		t.Errorf("%d rows written after a later record of the same partition key", inversions)
	}
}

// A stream deleted and created again under the same name is not read with
// the old stream's checkpoints: validate fails on the lease table and run
// exits, both saying what to do. A changed init_position is a warning that
// names the stored start position.
func TestRecreatedStreamIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	cfg := e.config("trim_horizon")
	w := e.start(cfg, "w1")
	e.putKeyed(0, 50)
	waitFor(t, 60*time.Second, "50 rows", func() bool { return len(missing(idsOf(e.rows()), 0, 50, nil)) == 0 })
	w.stop(30 * time.Second)

	r := e.validate(e.config("latest"))
	if r.code != 0 {
		t.Fatalf("validate of the same stream with another init_position: exit %d, want 0 with a warning", r.code)
	}
	if !strings.Contains(r.out, "first started") || !strings.Contains(r.out, "TRIM_HORIZON") {
		t.Errorf("validate does not warn that the stored TRIM_HORIZON applies:\n%s", r.out)
	}

	if _, err := e.kc.DeleteStream(t.Context(), &kinesis.DeleteStreamInput{StreamName: aws.String(e.stream)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the stream deleted", func() bool {
		_, err := e.kc.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(e.stream)})
		return err != nil
	})
	time.Sleep(1100 * time.Millisecond) // another creation time, at any precision
	if arn := envtest.CreateStream(t, e.kc, e.stream, 1); arn != e.arn {
		t.Fatalf("recreated stream has ARN %s, want %s", arn, e.arn)
	}
	e.putKeyed(1000, 1050)

	r = e.validate(cfg)
	if r.code == 0 {
		t.Fatalf("validate passed on a lease table of the deleted stream:\n%s", r.out)
	}
	wantLines(t, r, map[string][]string{"FAIL  lease table " + e.table: {"deleted and recreated", "delete the items"}})

	w2 := e.start(cfg, "w2")
	select {
	case <-w2.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("run on a lease table of the deleted stream did not exit")
	}
	b, _ := os.ReadFile(w2.log)
	if w2.err == nil || !strings.Contains(string(b), "deleted and recreated") {
		t.Fatalf("run: exit %v, log lacks the reason:\n%s", w2.err, tail(string(b), 20))
	}
	if got := len(e.rows()); got != 50 {
		t.Errorf("%d rows after the refused run, want the first stream's 50", got)
	}
}

// A steal during a slow sink write reads nothing twice: the owner keeps its
// lease while the batch is in flight (here: its sink is down for three lease
// durations) and hands the shard over right after the batch is durable and
// checkpointed; the claimer resumes after that checkpoint. Counted by id
// over both workers' rows: nothing lost, nothing written twice.
func TestStealDuringASlowSinkWriteReadsNothingTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	e.putKeyed(0, 100)
	w1 := e.start(e.config("trim_horizon"), "w1")
	waitFor(t, 60*time.Second, "w1's first 100 rows", func() bool { return len(missing(idsOf(e.rows()), 0, 100, nil)) == 0 })

	// w1's sink goes down (its rows directory becomes a file) with records
	// in flight on both shards.
	restore := e.breakRowSink()
	e.putKeyed(100, 200)
	waitFor(t, 30*time.Second, "w1 retrying its sink", func() bool {
		b, _ := os.ReadFile(w1.log)
		return strings.Contains(string(b), "sink write failed; retrying")
	})
	dir2 := filepath.Join(e.dir, "w2")
	w2 := e.start(e.writeConfig(testConfig{InitPosition: "trim_horizon", Dir: dir2}), "w2")
	waitFor(t, 30*time.Second, "w2 to claim a shard", func() bool {
		for _, l := range e.checkpoints() {
			if l.ClaimRequest == "w2" {
				return true
			}
		}
		return false
	})
	time.Sleep(3 * leaseDuration)
	restore()
	waitFor(t, 60*time.Second, "w2 to hold a shard", func() bool { return e.owners()["w2"] == 1 })
	data, keys, _ := keyedOrders(200, 100)
	last := e.put(data, keys)
	all := func() []rowLine {
		return append(e.rows(), readLines(t, filepath.Join(dir2, "rows"), func(*rowLine, string) {})...)
	}
	waitFor(t, 60*time.Second, "all 300 rows", func() bool { return len(missing(idsOf(all()), 0, 300, nil)) == 0 })
	// Counted once both checkpointed past them and exited: they write
	// nothing more.
	e.waitCheckpointed(last, 60*time.Second)
	w1.stop(30 * time.Second)
	w2.stop(30 * time.Second)
	lost, dups := report(t, all(), 300)
	if len(lost) > 0 {
		t.Fatalf("lost %d records", len(lost))
	}
	if dups > 0 {
		t.Errorf("a steal during a slow sink write wrote %d rows twice", dups)
	}
}
