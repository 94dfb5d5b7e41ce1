package kcl

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesis-ingest/kinesis-ingest/metrics"
)

// granted reports whether ch closes within a short wait; a grant that should
// not come is checked with the same wait, so "not granted" means "not within
// 100 ms", which is all a waiting read needs.
func granted(ch <-chan error) (error, bool) {
	select {
	case err := <-ch:
		return err, true
	case <-time.After(100 * time.Millisecond):
		return nil, false
	}
}

func TestBudget(t *testing.T) {
	if _, err := NewBudget(MaxReadBytes-1, nil); err == nil {
		t.Fatal("a budget smaller than one read was accepted")
	}
	m := metrics.New(prometheus.NewRegistry())
	b, err := NewBudget(2*MaxReadBytes, m.Budget())
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	acquire := func(n int64) <-chan error {
		ch := make(chan error, 1)
		go func() { ch <- b.acquire(context.Background(), stop, n) }()
		return ch
	}
	if _, ok := granted(acquire(MaxReadBytes)); !ok {
		t.Fatal("the first read did not get the budget")
	}
	if _, ok := granted(acquire(MaxReadBytes)); !ok {
		t.Fatal("the second read did not get the rest of the budget")
	}
	// Full: the next read waits, and a small one behind it waits its turn
	// (in line, so that large reads are never starved by small ones).
	big := acquire(MaxReadBytes)
	if _, ok := granted(big); ok {
		t.Fatal("a read went over the budget")
	}
	small := acquire(1)
	if _, ok := granted(small); ok {
		t.Fatal("a small read jumped the line")
	}
	b.release(MaxReadBytes) // a batch became durable
	if _, ok := granted(big); !ok {
		t.Fatal("the waiting read was not granted after a release")
	}
	if _, ok := granted(small); ok {
		t.Fatal("the small read went over the budget")
	}
	// An answer larger than its reservation is taken at once (its bytes
	// arrived already); the budget is then over until it is released.
	b.force(5)
	if used, peak := b.Used(); used != 2*MaxReadBytes+5 || peak != used {
		t.Fatalf("used %d, peak %d after an overdraft", used, peak)
	}
	b.release(MaxReadBytes + 5)
	if _, ok := granted(small); !ok {
		t.Fatal("the small read was not granted after the release")
	}
	// Stopping ends a wait with errStopping, and the wait leaves nothing held.
	before, _ := b.Used()
	waiting := acquire(2 * MaxReadBytes)
	close(stop)
	if err, ok := granted(waiting); !ok || !errors.Is(err, errStopping) {
		t.Fatalf("a wait on a stopping consumer ended with %v (ended: %v), want errStopping", err, ok)
	}
	if used, _ := b.Used(); used != before {
		t.Fatalf("used %d after an abandoned wait, want %d", used, before)
	}
	if g := testutil.ToFloat64(m.InflightBytes); g != float64(before) {
		t.Errorf("inflight_bytes = %v, want %d", g, before)
	}
	if g := testutil.ToFloat64(m.InflightLimit); g != 2*MaxReadBytes {
		t.Errorf("inflight_limit_bytes = %v", g)
	}
	if w := testutil.ToFloat64(m.InflightWait); w < 0.2 {
		t.Errorf("inflight_wait_seconds_total = %v after reads waited 100 ms several times", w)
	}
}
