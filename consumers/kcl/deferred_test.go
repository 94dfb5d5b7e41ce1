package kcl_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinesis-ingest/kinesis-ingest/consumers"
	"github.com/kinesis-ingest/kinesis-ingest/consumers/kcl"
	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
	"github.com/kinesis-ingest/kinesis-ingest/metrics"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// holding is a consumers.DeferredHandler whose batches become durable only
// when the test says: each delivery is kept with its durable callback.
type holding struct {
	mu      sync.Mutex
	batches []held
	records int
	got     chan struct{} // signalled on every delivery
}

type held struct {
	last    string
	durable func(error)
}

func (h *holding) Deliver(context.Context, string, []record.Record) error {
	return errors.New("holding: only deferred deliveries")
}

func (h *holding) DeliverState(context.Context, string, []byte, []record.Record) ([]byte, error) {
	return nil, errors.New("holding: only deferred deliveries")
}

func (h *holding) DeliverDeferred(_ context.Context, _ string, state []byte, recs []record.Record, durable func(error)) ([]byte, error) {
	h.mu.Lock()
	h.batches = append(h.batches, held{last: recs[len(recs)-1].Origin.SequenceNumber, durable: durable})
	h.records += len(recs)
	h.mu.Unlock()
	select {
	case h.got <- struct{}{}:
	default:
	}
	return state, nil
}

// Flush makes every batch held durable, in order.
func (h *holding) Flush(context.Context) error {
	h.mu.Lock()
	bs := h.batches
	h.batches = nil
	h.mu.Unlock()
	for _, b := range bs {
		b.durable(nil)
	}
	return nil
}

func (h *holding) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.records
}

func (h *holding) batch(i int) held {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.batches[i]
}

// counted is the real hooks, counting checkpoints by result.
type counted struct {
	kcl.Hooks
	mu  sync.Mutex
	got map[string]int
}

func (c *counted) Checkpointed(shard, result string, end bool) {
	c.mu.Lock()
	c.got[result]++
	c.mu.Unlock()
	c.Hooks.Checkpointed(shard, result, end)
}

func (c *counted) n(result string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[result]
}

type deferredEnv struct {
	h      *holding
	hooks  *counted
	budget *kcl.Budget
	table  *leases.Table
	last   string // the last record's sequence number
	run    func(ctx context.Context) error
}

// instant is a plain consumers.Handler: every batch durable when Deliver
// returns.
type instant struct {
	mu    sync.Mutex
	lasts []string
	n     int
}

func (h *instant) Deliver(_ context.Context, _ string, recs []record.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lasts = append(h.lasts, recs[len(recs)-1].Origin.SequenceNumber)
	h.n += len(recs)
	return nil
}

func (h *instant) delivered() (int, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n, append([]string(nil), h.lasts...)
}

// newDeferredEnv puts 50 records into a one-shard stream and returns a
// consumer of it (10 records per read) delivering to a holding handler.
func newDeferredEnv(t *testing.T) *deferredEnv {
	t.Helper()
	return newConsumerEnv(t, nil, 0)
}

// newConsumerEnv is newDeferredEnv with handler (nil: a holding one) and a
// checkpoint interval.
func newConsumerEnv(t *testing.T, handler consumers.Handler, every time.Duration) *deferredEnv {
	t.Helper()
	kin, ddb := envtest.Kinesis(t), envtest.Dynamo(t)
	kc := testaws.Kinesis(kin.Endpoint)
	stream := "deferred"
	arn := envtest.CreateStream(t, kc, stream, 1)
	e := &deferredEnv{h: &holding{got: make(chan struct{}, 1)}}
	for i := range 50 {
		out, err := kc.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"), Data: fmt.Appendf(nil, `{"id":%d}`, i)})
		if err != nil {
			t.Fatal(err)
		}
		e.last = aws.ToString(out.SequenceNumber)
	}
	e.hooks = &counted{Hooks: metrics.New(prometheus.NewRegistry()).Consumer("deferred"), got: map[string]int{}}
	var err error
	if e.budget, err = kcl.NewBudget(kcl.MaxReadBytes*4, nil); err != nil {
		t.Fatal(err)
	}
	if handler == nil {
		handler = e.h
	}
	dyn := testaws.Dynamo(ddb.Endpoint)
	if e.table, err = leases.New(leases.Config{Client: dyn, Table: "deferred", WorkerID: "reader", LeaseDuration: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	cons, err := kcl.New(kcl.Config{
		Source: "deferred", StreamARN: arn, StreamName: stream, Region: testaws.Region,
		Start:       leases.Position{Type: leases.TrimHorizon},
		Application: "deferred", WorkerID: "w1",
		ShardSyncInterval: 500 * time.Millisecond, LeaseDuration: 4 * time.Second, LeaseRefresh: time.Second,
		IdleBetweenReads: 50 * time.Millisecond, MaxRecords: 10, DrainTimeout: 10 * time.Second,
		Budget: e.budget, CheckpointInterval: every,
		Kinesis: kc, Dynamo: dyn, Handler: handler, Hooks: e.hooks,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.run = cons.Run
	return e
}

func (e *deferredEnv) checkpoint(t *testing.T) string {
	t.Helper()
	cps, err := e.table.Checkpoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range cps {
		return l.Checkpoint
	}
	return ""
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDeferredCheckpointsInOrder: the shard reads all 5 batches while none
// is durable, and checkpoints nothing; batch 2 made durable before batch 1
// is checkpointed only with it (one checkpoint, at batch 2's end); batch 3
// failing stops the shard, so batches 4 and 5, durable after it, are never
// checkpointed.
func TestDeferredCheckpointsInOrder(t *testing.T) {
	e := newDeferredEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitUntil(t, "every record delivered", func() bool { return e.h.count() >= 50 })
	if cp := e.checkpoint(t); cp != "" {
		t.Fatalf("checkpoint %s with no batch durable", cp)
	}
	if used, _ := e.budget.Used(); used == 0 {
		t.Errorf("in-flight budget empty while 5 batches wait to be durable")
	}
	e.h.batch(1).durable(nil)
	e.h.batch(0).durable(nil)
	want := e.h.batch(1).last
	// The table shows the write before the consumer counts it: both.
	waitUntil(t, "the checkpoint at batch 2's end, counted", func() bool {
		return e.checkpoint(t) == want && e.hooks.n(kcl.CheckpointOK) >= 1
	})
	if n := e.hooks.n(kcl.CheckpointOK); n != 1 {
		t.Errorf("%d checkpoints for batches 1 and 2, want 1 (batch 2 waits for 1, then both at once)", n)
	}
	e.h.batch(2).durable(errors.New("sink closed"))
	e.h.batch(3).durable(nil)
	e.h.batch(4).durable(nil)
	// Every commit handled: their bytes are out of the budget.
	waitUntil(t, "the in-flight budget released", func() bool { used, _ := e.budget.Used(); return used == 0 })
	if cp := e.checkpoint(t); cp != want {
		t.Errorf("checkpoint %s after batch 3 failed, want it to stay at batch 2's end %s", cp, want)
	}
	if n := e.hooks.n(kcl.CheckpointOK); n != 1 {
		t.Errorf("%d checkpoints, want still 1", n)
	}
}

// TestDeferredGracefulStop: with every batch held, a stop flushes the
// handler, checkpoints the shard at its last record and returns.
func TestDeferredGracefulStop(t *testing.T) {
	e := newDeferredEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.run(ctx) }()
	waitUntil(t, "every record delivered", func() bool { return e.h.count() >= 50 })
	if cp := e.checkpoint(t); cp != "" {
		t.Fatalf("checkpoint %s with no batch durable", cp)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if cp := e.checkpoint(t); cp != e.last {
		t.Errorf("after the stop the checkpoint is %q, want the last record's %s", cp, e.last)
	}
}

// TestCheckpointInterval: with a checkpoint interval of an hour, a shard
// whose batches are all durable at once is checkpointed after its first
// batch and then not again until it is settled: a graceful stop checkpoints
// its last record.
func TestCheckpointInterval(t *testing.T) {
	h := &instant{}
	e := newConsumerEnv(t, h, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.run(ctx) }()
	waitUntil(t, "every record delivered", func() bool { n, _ := h.delivered(); return n >= 50 })
	_, lasts := h.delivered()
	// The table shows the write before the consumer counts it: both.
	waitUntil(t, "the first batch checkpointed, counted", func() bool {
		return e.checkpoint(t) != "" && e.hooks.n(kcl.CheckpointOK) >= 1
	})
	if cp := e.checkpoint(t); cp != lasts[0] {
		t.Errorf("checkpoint %s within the interval, want the first batch's end %s and no later one", cp, lasts[0])
	}
	if n := e.hooks.n(kcl.CheckpointOK); n != 1 {
		t.Errorf("%d checkpoints within the interval, want 1", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if cp := e.checkpoint(t); cp != e.last {
		t.Errorf("after the stop the checkpoint is %q, want the last record's %s", cp, e.last)
	}
	if n := e.hooks.n(kcl.CheckpointOK); n != 2 {
		t.Errorf("%d checkpoints in all, want 2 (the first batch, then the rest at the stop)", n)
	}
}
