package kcl

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/faultproxy"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// TestReadLimiterSlots checks the schedule a limiter hands out, at fixed
// instants (no clock is waited on): each shard's own spacing, the worker's
// slots taken in turn, and a throttled shard backing off without holding a
// worker slot.
func TestReadLimiterSlots(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	type step struct {
		key  string
		at   int // ms after t0 the shard asks, ready
		slot int // ms after t0 it is given
	}
	tests := []struct {
		name      string
		gap       time.Duration
		perSecond int
		steps     []step
		ready     map[string]int // ms after t0 each shard may read next, after the steps
	}{
		{name: "no cap", steps: []step{{"a", 0, 0}, {"a", 0, 0}, {"b", 0, 0}},
			ready: map[string]int{"a": 0, "b": 0}},
		{name: "per-shard gap, shards independent", gap: time.Second,
			steps: []step{{"a", 0, 0}, {"b", 10, 10}, {"a", 1000, 1000}},
			ready: map[string]int{"a": 2000, "b": 1010}},
		{name: "worker cap: shards take turns", perSecond: 10,
			steps: []step{{"a", 0, 0}, {"b", 0, 100}, {"c", 0, 200}, {"a", 50, 300}, {"b", 120, 400}, {"c", 900, 900}},
			ready: map[string]int{"a": 300, "b": 400, "c": 900}},
		{name: "both caps", gap: 500 * time.Millisecond, perSecond: 4,
			steps: []step{{"a", 0, 0}, {"b", 0, 250}, {"a", 500, 500}, {"b", 750, 750}},
			ready: map[string]int{"a": 1000, "b": 1250}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := NewReadLimiter(tc.gap, tc.perSecond)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				if got := l.reserve(s.key, ms(s.at)); !got.Equal(ms(s.slot)) {
					t.Errorf("step %d: %s asking at %dms got the slot at %v, want %dms", i, s.key, s.at, got.Sub(t0), s.slot)
				}
			}
			for key, want := range tc.ready {
				if got := l.ready(key); !got.Equal(ms(want)) && !(want == 0 && got.IsZero()) {
					t.Errorf("%s may read next at %v, want %dms", key, got.Sub(t0), want)
				}
			}
		})
	}
}

// TestReadLimiterBacksOffThrottledShards: each consecutive throttled read
// of a shard puts its next read further off (1 s, 2 s, 4 s, ... up to
// 10 s, jittered over the upper half), a success ends that, and a shard
// backing off takes no worker slot from another.
func TestReadLimiterBacksOffThrottledShards(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := NewReadLimiter(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
		w := l.throttled("a", t0)
		if w < want/2 || w >= want {
			t.Errorf("throttled read %d: backoff %v, want within [%v, %v)", i+1, w, want/2, want)
		}
		if got := l.ready("a"); got.Before(t0.Add(w)) {
			t.Errorf("throttled read %d: next read at %v, before the backoff %v", i+1, got.Sub(t0), w)
		}
	}
	if slot := l.reserve("b", t0); !slot.Equal(t0) {
		t.Errorf("b got the slot at %v while a backs off, want at once", slot.Sub(t0))
	}
	l.succeeded("a")
	if w := l.throttled("a", t0); w >= time.Second {
		t.Errorf("after a success the next throttle backs off %v, want under 1s again", w)
	}
	if _, err := NewReadLimiter(-time.Second, 0); err == nil {
		t.Error("NewReadLimiter(-1s, 0) succeeded, want an error")
	}
}

// TestReadLimiterWaitEndsOnStop: a read waiting for its slot gives up when
// the consumer stops, and when its context ends.
func TestReadLimiterWaitEndsOnStop(t *testing.T) {
	l, err := NewReadLimiter(time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.wait(t.Context(), nil, "a"); err != nil {
		t.Fatalf("first read waited: %v", err)
	}
	stop := make(chan struct{})
	close(stop)
	if err := l.wait(t.Context(), stop, "a"); !errors.Is(err, errReadStopping) {
		t.Errorf("wait with the consumer stopping = %v, want errReadStopping", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := l.wait(ctx, nil, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a cancelled context = %v, want context.Canceled", err)
	}
}

// throttleHooks counts what the counter reports; the other hooks are not
// called by the code under test.
type throttleHooks struct {
	Hooks
	mu    sync.Mutex
	calls map[[2]string]int
}

func (h *throttleHooks) Throttled(op, shard string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls[[2]string{op, shard}]++
}

func (h *throttleHooks) LeaseTableThrottled(op string) { h.Throttled("dynamodb:"+op, "") }

func (h *throttleHooks) count(op, shard string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[[2]string{op, shard}]
}

// TestReadGateOnTheEmulator reads two shards of kinesis-mock through a
// proxy that throttles every second GetRecords of one shard: every
// throttled attempt is reported for that shard and none for the other, the
// SDK's retries get every read through, and the gate keeps one iterator
// per shard. Then every attempt on that shard is throttled: the call fails
// after the SDK's attempts, and the gate backs the shard off.
func TestReadGateOnTheEmulator(t *testing.T) {
	kin := envtest.Kinesis(t)
	direct := testaws.Kinesis(kin.Endpoint)
	envtest.CreateStream(t, direct, "gate", 2)
	shards, err := direct.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String("gate")})
	if err != nil {
		t.Fatal(err)
	}
	hot, cold := aws.ToString(shards.Shards[0].ShardId), aws.ToString(shards.Shards[1].ShardId)
	proxy := faultproxy.New(t, kin.Endpoint, faultproxy.Rule{Operation: "GetRecords", Every: 2, Code: "ProvisionedThroughputExceededException", Shard: hot})

	hooks := &throttleHooks{calls: map[[2]string]int{}}
	kc, _ := countThrottles(testaws.Kinesis(proxy.URL), testaws.Dynamo(kin.Endpoint), hooks)
	limiter, err := NewReadLimiter(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	gate := newReadGate(limiter, "gate", nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	kc = kinesis.New(kc.Options(), gate.middleware)

	const reads = 4
	for _, shard := range []string{hot, cold} {
		it, err := kc.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String("gate"), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for range reads {
			out, err := kc.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatalf("GetRecords on %s: %v (the SDK retries a throttled attempt)", shard, err)
			}
			iter = out.NextShardIterator
		}
	}
	throttled := proxy.ThrottledOn("GetRecords", hot)
	if throttled == 0 {
		t.Fatal("the proxy throttled nothing: the test proved nothing")
	}
	if got := hooks.count("GetRecords", hot); got != throttled {
		t.Errorf("throttled GetRecords attempts reported on %s: %d, the proxy throttled %d", hot, got, throttled)
	}
	if got := hooks.count("GetRecords", cold); got != 0 || proxy.ThrottledOn("GetRecords", cold) != 0 {
		t.Errorf("%d throttled attempts reported on %s, which the proxy never throttled", got, cold)
	}
	if got := proxy.CallsOn("GetRecords", cold); got != reads {
		t.Errorf("%d GetRecords calls reached the emulator for %s, want %d", got, cold, reads)
	}
	gate.mu.Lock()
	iterators, shardsKnown := len(gate.shardOf), len(gate.iterator)
	iter := gate.iterator[hot]
	gate.mu.Unlock()
	if iterators != 2 || shardsKnown != 2 {
		t.Errorf("the gate keeps %d iterators for %d shards, want one per shard (2)", iterators, shardsKnown)
	}

	proxy.SetRules(faultproxy.Rule{Operation: "GetRecords", Every: 1, Code: "ProvisionedThroughputExceededException", Shard: hot})
	before := hooks.count("GetRecords", hot)
	_, err = kc.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: aws.String(iter)})
	var pe *types.ProvisionedThroughputExceededException
	if !errors.As(err, &pe) {
		t.Fatalf("GetRecords with every attempt throttled = %v, want ProvisionedThroughputExceededException", err)
	}
	failed := time.Now()
	if got := hooks.count("GetRecords", hot) - before; got < 2 {
		t.Errorf("%d throttled attempts reported for the failed call, want every attempt (the SDK makes 3)", got)
	}
	if next := limiter.ready(gate.key(hot)); !next.After(failed) {
		t.Errorf("after a throttled call %s may read again at %v, want later than its failure (%v)", hot, next, failed)
	}
}
