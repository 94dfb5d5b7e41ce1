package main

import (
	"testing"
	"time"
)

// The lake's sink holds rows until its buffers flush (max_interval,
// max_bytes, buffer_bytes, a handover, a stop), and the shards go on reading
// meanwhile. These tests set max_interval to an hour, so that only what
// they name flushes, and check that no checkpoint passes a row not stored.

// TestLakeShardReadsWhileBuffering: a worker reads every batch of its
// shards (10 per shard) while none of their rows is stored yet and no
// checkpoint has moved; SIGTERM then stores them, checkpoints every shard at
// its last record and exits 0, every good record in exactly one row.
func TestLakeShardReadsWhileBuffering(t *testing.T) {
	t.Parallel()
	const n = 2000
	e := newLakeEnv(t, 2)
	bad := map[string]string{}
	last := e.putOrders(0, n, bad)
	w := e.start(e.lakeConfig("max_interval: 1h"), "w1")
	addr := w.metricsAddr()
	waitFor(t, 90*time.Second, "every record read", func() bool {
		return metricValue(scrape(t, addr), "kinesis_ingest_records_received_total{") >= n
	})
	m := scrape(t, addr)
	if got := metricValue(m, "kinesis_ingest_s3_objects_written_total{"); got != 0 {
		t.Fatalf("%v objects written before any flush was due; want the rows buffered", got)
	}
	if got := metricValue(m, "kinesis_ingest_s3_buffered_bytes{"); got <= 0 {
		t.Errorf("s3_buffered_bytes is %v with %d records read and nothing stored", got, n)
	}
	if got := len(e.lakeCounts()); got != 0 {
		t.Fatalf("%d ids in the lake before any flush was due", got)
	}
	for shard, l := range e.checkpoints() {
		if l.Checkpoint != "" {
			t.Errorf("shard %s checkpointed at %s while its rows are only buffered", shard, l.Checkpoint)
		}
	}
	w.stop(60 * time.Second)
	if behind := e.notAt(last); len(behind) > 0 {
		t.Errorf("after SIGTERM, shards not checkpointed at their last record: %v", behind)
	}
	e.exactlyOnce(n, bad)
}

// TestLakeClaimWhileBuffered: a second worker claims half the shards of a
// first one that holds their rows in its buffers. The first stores them and
// checkpoints those shards before it releases them, so the claimer starts
// after its last record; then more records arrive, both stop, and every
// record is in exactly one row.
func TestLakeClaimWhileBuffered(t *testing.T) {
	t.Parallel()
	const n = 2000
	e := newLakeEnv(t, 4)
	bad := map[string]string{}
	last := e.putOrders(0, n, bad)
	cfg := e.lakeConfig("max_interval: 1h")
	w1 := e.start(cfg, "w1")
	addr := w1.metricsAddr()
	waitFor(t, 90*time.Second, "every record read by w1", func() bool {
		return metricValue(scrape(t, addr), "kinesis_ingest_records_received_total{") >= n
	})
	if got := len(e.lakeCounts()); got != 0 {
		t.Fatalf("%d ids in the lake before any flush was due", got)
	}
	w2 := e.start(cfg, "w2")
	var moved []string
	waitFor(t, 90*time.Second, "w2 to take shards from w1", func() bool {
		moved = moved[:0]
		for shard, l := range e.checkpoints() {
			if l.Owner == "w2" {
				moved = append(moved, shard)
			}
		}
		return len(moved) > 0
	})
	cps := e.checkpoints()
	for _, shard := range moved {
		if got := cps[shard].Checkpoint; got != last[shard] {
			t.Errorf("shard %s taken by w2 with checkpoint %q, want %s: w1 released it without storing and checkpointing its buffered rows", shard, got, last[shard])
		}
	}
	t.Logf("w2 took %v", moved)
	last = maxSeqs(last, e.putOrders(n, n/2, bad))
	addr2 := w2.metricsAddr()
	waitFor(t, 90*time.Second, "the new records read", func() bool {
		return metricValue(scrape(t, addr), "kinesis_ingest_records_received_total{")+
			metricValue(scrape(t, addr2), "kinesis_ingest_records_received_total{") >= n+n/2
	})
	w1.stop(60 * time.Second)
	w2.stop(60 * time.Second)
	if behind := e.notAt(last); len(behind) > 0 {
		t.Errorf("after both stopped, shards not checkpointed at their last record: %v", behind)
	}
	e.exactlyOnce(n+n/2, bad)
}
