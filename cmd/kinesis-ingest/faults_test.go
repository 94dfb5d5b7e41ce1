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

// TestShutdownDuringSinkOutageIsBoundedAndLosesNothing stops a worker whose row
// sink is down: it must exit within shutdown_timeout (abandoning the batch in
// flight without checkpointing it), and the next worker must deliver it.
func TestShutdownDuringSinkOutageIsBoundedAndLosesNothing(t *testing.T) {
	e := newEnv(t, 2)
	cfg := e.config("trim_horizon")
	body, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	body = []byte(strings.Replace(string(body), "consumer:\n", "consumer:\n  shutdown_timeout: 3s\n", 1))
	if err := os.WriteFile(cfg, body, 0o644); err != nil {
		t.Fatal(err)
	}
	data, keys, _ := orders(0, 100, false)
	e.put(data, keys)
	w1 := e.start(cfg, "w1")
	waitFor(t, 60*time.Second, "first rows", func() bool { return len(e.rows()) > 0 })

	// The outage: the rows directory becomes a regular file (a real ENOTDIR,
	// for root too).
	moved := e.rowsDir() + ".away"
	if err := os.Rename(e.rowsDir(), moved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.rowsDir(), []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, keys, _ = orders(100, 100, false)
	e.put(data, keys)
	waitFor(t, 30*time.Second, "the worker retrying the sink", func() bool {
		b, _ := os.ReadFile(w1.log)
		return strings.Contains(string(b), "sink write failed; retrying")
	})
	stopping := time.Now()
	w1.stop(3*time.Second + 2*leaseDuration + 10*time.Second)
	t.Logf("stopped %s after SIGTERM during the outage (shutdown_timeout 3s)", time.Since(stopping).Round(100*time.Millisecond))

	os.Remove(e.rowsDir())
	if err := os.Rename(moved, e.rowsDir()); err != nil {
		t.Fatal(err)
	}
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
