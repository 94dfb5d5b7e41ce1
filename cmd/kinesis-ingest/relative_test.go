package main

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// TestRelativeInitPositionResolvedOnce: records A, then 8 s later records B;
// a worker started right after B with init_position -4s lands exactly B. The
// lease table stores the instant of that first start, and a restart later
// (whose own now-4s would be another instant) keeps it without a warning.
func TestRelativeInitPositionResolvedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	dataA, keysA, _ := orders(0, 100, false)
	e.put(dataA, keysA)
	time.Sleep(8 * time.Second)
	dataB, keysB, _ := orders(100, 100, false)
	e.put(dataB, keysB)
	cfg := e.writeConfig(testConfig{InitPosition: "-4s"})
	before := time.Now()
	w := e.start(cfg, "w1")
	waitFor(t, 60*time.Second, "the records of B", func() bool { return len(e.rows()) >= 100 })
	time.Sleep(2 * time.Second) // any record of A would have come by now
	w.stop(30 * time.Second)
	var ids []int64
	for _, r := range e.rows() {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	if len(ids) != 100 || ids[0] != 100 || ids[99] != 199 {
		t.Fatalf("init_position -4s landed %d rows %v, want exactly ids 100..199", len(ids), ids)
	}

	stored := func() leases.Application {
		tbl, err := leases.New(leases.Config{Client: testaws.Dynamo(e.ddb.Endpoint), Table: e.table, WorkerID: "test-reader", LeaseDuration: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		app, ok, err := tbl.Application(t.Context())
		if err != nil || !ok {
			t.Fatalf("application row: %v, %v", ok, err)
		}
		return app
	}
	first := stored()
	if first.Start.Type != leases.AtTimestamp || first.Start.Timestamp.Before(before.Add(-4*time.Second)) || first.Start.Timestamp.After(before.Add(-4*time.Second).Add(10*time.Second)) {
		t.Fatalf("stored start %+v, want about %s", first.Start, before.Add(-4*time.Second))
	}
	time.Sleep(2 * time.Second)
	w2 := e.start(cfg, "w2")
	waitFor(t, 30*time.Second, "the restart to take its leases", func() bool {
		b, _ := os.ReadFile(w2.log)
		return strings.Count(string(b), "shard lease taken") >= 2
	})
	w2.stop(30 * time.Second)
	if again := stored(); !again.Start.Timestamp.Equal(first.Start.Timestamp) {
		t.Errorf("restart changed the stored start from %s to %s", first.Start.Timestamp, again.Start.Timestamp)
	}
	if b, _ := os.ReadFile(w2.log); strings.Contains(string(b), "init_position differs") {
		t.Errorf("a restart with a relative init_position warned that it differs")
	}
}
