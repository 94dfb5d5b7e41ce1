package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/faultproxy"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

func TestCrashWhileRecordsFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 6)
	cfg := e.config("trim_horizon")
	w1 := e.start(cfg, "w1")
	e.start(cfg, "w2")
	e.start(cfg, "w3")
	e.waitBalanced(map[string]int{"w1": 2, "w2": 2, "w3": 2}, 90*time.Second)
	p := e.produce(100*time.Millisecond, 20)
	time.Sleep(3 * time.Second)
	w1.kill()
	killed := time.Now()
	waitFor(t, 60*time.Second, "w1's shards resumed on the others", func() bool {
		o := e.owners()
		return o["w1"] == 0 && o["w2"]+o["w3"] == 6
	})
	t.Logf("w1's shards resumed %s after kill -9 (lease duration %s)", time.Since(killed).Round(100*time.Millisecond), leaseDuration)
	time.Sleep(2 * time.Second)
	n := p.halt()
	waitFor(t, 90*time.Second, fmt.Sprintf("all %d rows", n), func() bool { return len(missing(idsOf(e.rows()), 0, n, nil)) == 0 })
	if lost, _ := report(t, e.rows(), n); len(lost) > 0 {
		t.Fatalf("a crash lost %d records", len(lost))
	}
}

// newPersistentEnv is newEnv with emulators that keep their state on disk, so
// that they can be restarted mid-run.
func newPersistentEnv(t *testing.T, shards int) *env {
	t.Helper()
	skipIfExternal(t, "it stops and restarts the emulators, which only works on emulators it started")
	dir := t.TempDir()
	e := &env{t: t, kin: envtest.KinesisPersistent(t, filepath.Join(dir, "kinesis")), ddb: envtest.DynamoPersistent(t, filepath.Join(dir, "dynamo")),
		dir: t.TempDir(), stream: "orders", table: "orders-ingest"}
	e.kc = testaws.Kinesis(e.kin.Endpoint)
	e.arn = envtest.CreateStream(t, e.kc, e.stream, shards)
	return e
}

func TestEmulatorRestartsLoseNothing(t *testing.T) {
	t.Parallel()
	e := newPersistentEnv(t, 4)
	cfg := e.config("trim_horizon")
	e.start(cfg, "w1")
	e.start(cfg, "w2")
	e.waitBalanced(map[string]int{"w1": 2, "w2": 2}, 90*time.Second)
	p := e.produce(100*time.Millisecond, 20)
	time.Sleep(2 * time.Second)

	// DynamoDB (leases and checkpoints) goes away for 3 s.
	if err := e.ddb.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := e.ddb.Restart(t.Context()); err != nil {
		t.Fatalf("restart dynalite: %v", err)
	}
	waitFor(t, 60*time.Second, "leases held again after the DynamoDB restart", func() bool {
		o := e.owners()
		return o["w1"]+o["w2"] == 4
	})
	time.Sleep(2 * time.Second)

	// Kinesis goes away for 3 s. kinesis-mock saves its state every 500 ms,
	// and what it had not saved is gone after a restart (a record whose
	// sequence number a worker checkpointed included): producing pauses
	// around the restart so that the emulator, not the worker, loses nothing.
	n := p.halt()
	time.Sleep(1500 * time.Millisecond)
	if err := e.kin.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := e.kin.Restart(t.Context()); err != nil {
		t.Fatalf("restart kinesis-mock: %v", err)
	}
	p = e.produceFrom(100*time.Millisecond, 20, n)
	time.Sleep(3 * time.Second)
	n = p.halt()
	waitFor(t, 120*time.Second, fmt.Sprintf("all %d rows", n), func() bool { return len(missing(idsOf(e.rows()), 0, n, nil)) == 0 })
	if lost, _ := report(t, e.rows(), n); len(lost) > 0 {
		t.Fatalf("emulator restarts lost %d records", len(lost))
	}
}

// breakRowSink makes the file row sink fail until restore is called: the rows
// directory becomes a regular file (a real ENOTDIR, for root too).
func (e *env) breakRowSink() (restore func()) {
	e.t.Helper()
	moved := e.rowsDir() + ".away"
	if err := os.Rename(e.rowsDir(), moved); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(e.rowsDir(), []byte("in the way"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return func() {
		e.t.Helper()
		os.Remove(e.rowsDir())
		if err := os.Rename(moved, e.rowsDir()); err != nil {
			e.t.Fatal(err)
		}
	}
}

// shutdownMargin is what a stopping worker may take beyond
// consumer.shutdown_timeout: stopping the consumers, closing the sinks and
// the servers. The deployments' grace periods are checked to leave at least
// this much (internal/tools/deploycheck: terminationGracePeriodSeconds).
const shutdownMargin = 5 * time.Second

// TestShutdownDuringSinkOutageIsBoundedAndLosesNothing stops a worker whose row
// sink is down: it must exit 0 within shutdown_timeout plus shutdownMargin
// (abandoning the batch in flight without checkpointing it), before an
// orchestrator's grace period runs out, and the next worker must deliver it.
func TestShutdownDuringSinkOutageIsBoundedAndLosesNothing(t *testing.T) {
	t.Parallel()
	const shutdownTimeout = 3 * time.Second
	e := newEnv(t, 2)
	cfg := e.config("trim_horizon")
	body, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	body = []byte(strings.Replace(string(body), "consumer:\n", fmt.Sprintf("consumer:\n  shutdown_timeout: %s\n", shutdownTimeout), 1))
	if err := os.WriteFile(cfg, body, 0o644); err != nil {
		t.Fatal(err)
	}
	data, keys, _ := orders(0, 100, false)
	e.put(data, keys)
	w1 := e.start(cfg, "w1")
	waitFor(t, 60*time.Second, "first rows", func() bool { return len(e.rows()) > 0 })

	restore := e.breakRowSink()
	data, keys, _ = orders(100, 100, false)
	e.put(data, keys)
	waitFor(t, 30*time.Second, "the worker retrying the sink", func() bool {
		b, _ := os.ReadFile(w1.log)
		return strings.Contains(string(b), "sink write failed; retrying")
	})
	stopping := time.Now()
	w1.stop(shutdownTimeout + shutdownMargin)
	t.Logf("stopped %s after SIGTERM during the outage (shutdown_timeout %s)", time.Since(stopping).Round(100*time.Millisecond), shutdownTimeout)

	restore()
	e.start(cfg, "w2")
	waitFor(t, 60*time.Second, "all 200 rows after the outage", func() bool { return len(missing(idsOf(e.rows()), 0, 200, nil)) == 0 })
	if dls := e.letters(); len(dls) != 0 {
		t.Errorf("%d good records were dead-lettered because the sink was down", len(dls))
	}
}

// TestThrottlingIsAnsweredWithBackoff puts a proxy that answers with AWS's
// throttling errors in front of both emulators: every third GetRecords is
// ProvisionedThroughputExceeded, every fifth GetShardIterator and ListShards
// LimitExceeded, every fourth lease-table update ProvisionedThroughputExceeded.
// The worker must back off, keep or re-acquire its leases, and lose nothing.
func TestThrottlingIsAnsweredWithBackoff(t *testing.T) {
	t.Parallel()
	skipIfExternal(t, "it puts a proxy in front of the emulators it starts")
	e := newEnv(t, 2)
	kp := faultproxy.New(t, e.kin.Endpoint,
		faultproxy.Rule{Operation: "GetRecords", Every: 3, Code: "ProvisionedThroughputExceededException"},
		faultproxy.Rule{Operation: "GetShardIterator", Every: 5, Code: "LimitExceededException"},
		faultproxy.Rule{Operation: "ListShards", Every: 5, Code: "LimitExceededException"},
	)
	dp := faultproxy.New(t, e.ddb.Endpoint,
		faultproxy.Rule{Operation: "UpdateItem", Every: 4, Code: "ProvisionedThroughputExceededException"},
		faultproxy.Rule{Operation: "GetItem", Every: 7, Code: "ThrottlingException"},
	)
	data, keys, _ := orders(0, 300, false)
	e.put(data, keys)
	e.startArgs(e.config("trim_horizon"), "w1", nil, []string{
		"AWS_ENDPOINT_URL_KINESIS=" + kp.URL, "AWS_ENDPOINT_URL_DYNAMODB=" + dp.URL,
	})
	time.Sleep(2 * time.Second)
	data, keys, _ = orders(300, 300, false)
	e.put(data, keys)
	waitFor(t, 120*time.Second, "all 600 rows through the throttling", func() bool {
		return len(missing(idsOf(e.rows()), 0, 600, nil)) == 0
	})
	lost, dups := report(t, e.rows(), 600)
	if len(lost) > 0 {
		t.Fatalf("throttling lost %d records", len(lost))
	}
	kt, dt := kp.Throttled(), dp.Throttled()
	t.Logf("throttled: kinesis %v, dynamodb %v; %d duplicate rows", kt, dt, dups)
	if kt["GetRecords"] == 0 || dt["UpdateItem"] == 0 {
		t.Fatalf("the proxy throttled nothing (kinesis %v, dynamodb %v): the test proved nothing", kt, dt)
	}
}

// withConsumerSettings adds lines (e.g. "call_timeout: 1s") to the consumer
// section of the config file at path.
func withConsumerSettings(t *testing.T, path string, lines ...string) {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	add := ""
	for _, l := range lines {
		add += "  " + l + "\n"
	}
	if !strings.Contains(string(body), "consumer:\n") {
		t.Fatalf("config %s has no consumer section", path)
	}
	body = []byte(strings.Replace(string(body), "consumer:\n", "consumer:\n"+add, 1))
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHungGetRecordsMovesTheShard leaves one shard's GetRecords unanswered on
// w1's path to Kinesis (a proxy that keeps the connection open and silent),
// while w2 reaches Kinesis directly. w1's read must give up after
// call_timeout and its attempts, retried in place for 30 s (a slow Kinesis
// must not move shards; consumers/kcl/readretry.go), end the shard's
// consumer and release the
// lease (the library renews it from another goroutine, so a read that never
// returns would keep the shard leased and unread forever), and w2 must take the
// shard and read every record of it.
func TestHungGetRecordsMovesTheShard(t *testing.T) {
	t.Parallel()
	skipIfExternal(t, "it puts a proxy in front of the emulators it starts")
	e := newEnv(t, 2)
	cfg := e.config("trim_horizon")
	withConsumerSettings(t, cfg, "call_timeout: 1s")
	kp := faultproxy.New(t, e.kin.Endpoint)
	data, keys, _ := orders(0, 100, false)
	e.put(data, keys)
	e.startArgs(cfg, "w1", nil, []string{"AWS_ENDPOINT_URL_KINESIS=" + kp.URL})
	e.start(cfg, "w2")
	e.waitBalanced(map[string]int{"w1": 1, "w2": 1}, 90*time.Second)
	waitFor(t, 60*time.Second, "the first 100 rows", func() bool { return len(missing(idsOf(e.rows()), 0, 100, nil)) == 0 })

	var shard string
	for id, l := range e.checkpoints() {
		if l.Owner == "w1" {
			shard = id
		}
	}
	if shard == "" {
		t.Fatal("w1 holds no shard")
	}
	kp.HangGetRecords(shard)
	hungAt := time.Now()
	data, keys, _ = orders(100, 200, false)
	e.put(data, keys)
	// Bound: 30 s of in-place retries of 3 attempts of call_timeout each,
	// then a lease pass of w2: about 35 s. On a loaded machine w2 may miss a renewal and
	// w1 take the shard back (and give it up again 3 s later), so the wait is
	// 120 s: far above the bound and far below "never".
	waitFor(t, 120*time.Second, "w2 holding w1's hung shard "+shard, func() bool {
		l := e.checkpoints()[shard]
		return l.Owner == "w2" && l.LeaseTimeout.After(time.Now())
	})
	moved := time.Since(hungAt)
	waitFor(t, 60*time.Second, "all 300 rows", func() bool { return len(missing(idsOf(e.rows()), 0, 300, nil)) == 0 })
	lost, dups := report(t, e.rows(), 300)
	if len(lost) > 0 {
		t.Fatalf("a hung GetRecords lost %d records", len(lost))
	}
	hung := kp.Hung()
	t.Logf("shard %s moved to w2 %s after its GetRecords hung (call_timeout 1s, lease %s); %d calls left unanswered; %d duplicate rows",
		shard, moved.Round(100*time.Millisecond), leaseDuration, hung[shard], dups)
	if hung[shard] == 0 {
		t.Fatal("the proxy left no GetRecords unanswered: the test proved nothing")
	}
	var fromW2 int
	for _, r := range e.rows() {
		if r.Shard == shard && r.ID >= 100 && strings.Contains(r.File, "w2") {
			fromW2++
		}
	}
	if fromW2 == 0 {
		t.Fatalf("no row of shard %s after the hang was written by w2", shard)
	}
}
