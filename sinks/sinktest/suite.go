package sinktest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/retry"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
)

// writer is what RowSink and DeadLetterSink have in common.
type writer[T any] interface {
	Write(ctx context.Context, items []T) error
	Close() error
}

// key is the de-duplication key of a row or dead letter.
type key struct {
	shard string
	seq   string
	sub   int
}

func (k key) String() string { return fmt.Sprintf("%s/%s/%d", k.shard, k.seq, k.sub) }

func keyOf(o record.Origin) key { return key{o.ShardID, o.SequenceNumber, o.SubSequence} }

type suite[T any] struct {
	what        string
	new, reopen func(t *testing.T) writer[T]
	read        func(t *testing.T) []T
	dedupes     bool
	brk, heal   func(t *testing.T)
	key         func(T) key
	make        func(shard string, seq int) T
	compare     func(want, got T) error
	roundTrip   func() []T
}

const (
	// writeTimeout bounds every Write the suite expects to succeed.
	writeTimeout = 30 * time.Second
	// outageTimeout is the ctx deadline of Writes during an outage, and
	// outageSlack how much longer than that such a Write may take.
	outageTimeout = 3 * time.Second
	outageSlack   = 2 * time.Second
)

func run[T any](t *testing.T, s suite[T]) {
	t.Run("RoundTrip", s.testRoundTrip)
	t.Run("EmptyBatch", s.testEmptyBatch)
	t.Run("DurableBeforeAck", s.testDurableBeforeAck)
	t.Run("ReplayIdempotence", s.testReplay)
	t.Run("OrderPerShard", s.testOrderPerShard)
	t.Run("OutageAndRecovery", s.testOutage)
	t.Run("CloseFlushes", s.testCloseFlushes)
	t.Run("WriteAfterClose", s.testWriteAfterClose)
	t.Run("CancelledContext", s.testCancelled)
}

// handle is a sink the suite closes at the end of the test unless it did so.
type handle[T any] struct {
	w      writer[T]
	closed bool
}

func (s *suite[T]) open(t *testing.T, reopen bool) *handle[T] {
	t.Helper()
	var w writer[T]
	if reopen {
		w = s.reopen(t)
	} else {
		w = s.new(t)
	}
	if w == nil {
		t.Fatal("sinktest: harness returned a nil sink")
	}
	h := &handle[T]{w: w}
	t.Cleanup(func() {
		if !h.closed {
			if err := w.Close(); err != nil {
				t.Errorf("Close at the end of the test: %v", err)
			}
		}
	})
	return h
}

func (h *handle[T]) close(t *testing.T) error {
	t.Helper()
	h.closed = true
	return h.w.Close()
}

func (h *handle[T]) mustWrite(t *testing.T, items []T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if err := h.w.Write(ctx, items); err != nil {
		t.Fatalf("Write of %d items: %v", len(items), err)
	}
}

// batch makes n items of one shard with sequence numbers from, from+1, ...
func (s *suite[T]) batch(shard string, from, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = s.make(shard, from+i)
	}
	return out
}

// count returns how often each key occurs in got.
func (s *suite[T]) count(got []T) map[key]int {
	m := make(map[key]int, len(got))
	for _, g := range got {
		m[s.key(g)]++
	}
	return m
}

// checkPresent fails the test unless every item of want is in got and, for a
// de-duplicating sink, only once. Extra items that are not in want are errors
// too, unless allowExtra.
func (s *suite[T]) checkPresent(t *testing.T, got []T, want []T, allowExtra bool) {
	t.Helper()
	counts := s.count(got)
	wantKeys := make(map[key]bool, len(want))
	missing := 0
	for _, w := range want {
		k := s.key(w)
		wantKeys[k] = true
		switch n := counts[k]; {
		case n == 0:
			if missing++; missing <= 5 {
				t.Errorf("%s %v was acknowledged but is not in storage", s.what, k)
			}
		case n > 1 && s.dedupes:
			t.Errorf("%s %v is stored %d times by a de-duplicating sink", s.what, k, n)
		}
	}
	if missing > 5 {
		t.Errorf("... %d %ss missing in all (of %d written, %d read)", missing, s.what, len(want), len(got))
	}
	if !allowExtra {
		for k := range counts {
			if !wantKeys[k] {
				t.Errorf("storage holds %s %v that was never written", s.what, k)
			}
		}
	}
}

func (s *suite[T]) testRoundTrip(t *testing.T) {
	h := s.open(t, false)
	want := s.roundTrip()
	h.mustWrite(t, want)
	s.checkSame(t, s.read(t), want)
}

// checkSame fails the test unless got holds want once each, every value as
// written.
func (s *suite[T]) checkSame(t *testing.T, got, want []T) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("Read returned %d %ss, wrote %d once", len(got), s.what, len(want))
	}
	byKey := make(map[key]T, len(got))
	for _, g := range got {
		byKey[s.key(g)] = g
	}
	for _, w := range want {
		g, ok := byKey[s.key(w)]
		if !ok {
			t.Errorf("%s %v missing", s.what, s.key(w))
			continue
		}
		if err := s.compare(w, g); err != nil {
			t.Errorf("%s %v does not round-trip: %v", s.what, s.key(w), err)
		}
	}
}

func (s *suite[T]) testEmptyBatch(t *testing.T) {
	h := s.open(t, false)
	h.mustWrite(t, nil)
	h.mustWrite(t, []T{})
	if got := s.read(t); len(got) != 0 {
		t.Errorf("empty Writes stored %d %ss", len(got), s.what)
	}
}

func (s *suite[T]) testDurableBeforeAck(t *testing.T) {
	first := s.open(t, false)
	a := s.batch("shardId-000000000000", 1, 50)
	first.mustWrite(t, a)
	// No Close: what Write acknowledged must already be in storage.
	s.checkPresent(t, s.read(t), a, false)

	// Drop the first instance without closing it, as a crash would, and
	// start another one on the same storage.
	second := s.open(t, true)
	s.checkPresent(t, s.read(t), a, false)
	b := s.batch("shardId-000000000000", 51, 50)
	second.mustWrite(t, b)
	s.checkPresent(t, s.read(t), append(a[:len(a):len(a)], b...), false)
}

func (s *suite[T]) testReplay(t *testing.T) {
	h := s.open(t, false)
	b := s.batch("shardId-000000000001", 1, 20)
	b = append(b, s.roundTrip()...)
	h.mustWrite(t, b)
	h.mustWrite(t, b) // a retry after a lost ack
	got := s.read(t)
	s.checkPresent(t, got, b, false)
	if !s.dedupes && len(got) < 2*len(b) {
		// Not required, but a sink that does not de-duplicate yet loses some
		// of a replay is suspicious.
		t.Logf("note: %d of %d replayed %ss stored", len(got), 2*len(b), s.what)
	}

	// Replay after a restart (lease moved to a new worker).
	if err := h.close(t); err != nil {
		t.Fatalf("Close: %v", err)
	}
	h2 := s.open(t, true)
	h2.mustWrite(t, b)
	s.checkPresent(t, s.read(t), b, false)
}

func (s *suite[T]) testOrderPerShard(t *testing.T) {
	const shards, batches, perBatch = 4, 25, 20
	h := s.open(t, false)
	var wg sync.WaitGroup
	errs := make(chan error, shards)
	var all []T
	for i := range shards {
		shard := fmt.Sprintf("shardId-%012d", i)
		for b := range batches {
			all = append(all, s.batch(shard, 1+b*perBatch, perBatch)...)
		}
		wg.Go(func() {
			// One shard writes its batches one after the other, as a shard
			// consumer does; the shards run concurrently.
			for b := range batches {
				ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
				err := h.w.Write(ctx, s.batch(shard, 1+b*perBatch, perBatch))
				cancel()
				if err != nil {
					errs <- fmt.Errorf("%s batch %d: %w", shard, b, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Write: %v", err)
	}
	got := s.read(t)
	s.checkPresent(t, got, all, false)
	s.checkOrder(t, got)
}

// checkOrder fails the test unless got keeps each shard's items in stream
// order.
func (s *suite[T]) checkOrder(t *testing.T, got []T) {
	t.Helper()
	last := map[string]key{}
	for i, g := range got {
		k := s.key(g)
		if prev, ok := last[k.shard]; ok && !before(prev, k) {
			t.Errorf("%s %d in storage order: %v comes after %v of the same shard", s.what, i, k, prev)
		}
		last[k.shard] = k
	}
}

func (s *suite[T]) testOutage(t *testing.T) {
	if s.brk == nil {
		t.Skip("harness has no Break/Heal")
	}
	h := s.open(t, false)
	const shard = "shardId-000000000002"
	a := s.batch(shard, 1, 20)
	h.mustWrite(t, a)

	heal := s.breakStorage(t)
	b := s.batch(shard, 21, 20)
	for attempt := 1; attempt <= 3; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), outageTimeout)
		start := time.Now()
		err := h.w.Write(ctx, b)
		took := time.Since(start)
		cancel()
		if err == nil {
			t.Fatalf("Write during outage (attempt %d) returned nil", attempt)
		}
		if _, ok := sinks.IsRejected(err); ok {
			t.Errorf("Write during outage returned a RejectedError, which tells the caller to drop the rows: %v", err)
		}
		if took > outageTimeout+outageSlack {
			t.Errorf("Write during outage took %v with a %v ctx deadline", took, outageTimeout)
		}
		t.Logf("attempt %d during outage: %v (after %v)", attempt, err, took)
	}

	heal()
	// The caller retries the same batch; allow a sink a little time to
	// reconnect, but no restart.
	attempts := 0
	err := callerRetry(func(ctx context.Context) error {
		attempts++
		return h.w.Write(ctx, b)
	})
	if err != nil {
		t.Fatalf("Write after Heal still fails after %d attempts: %v", attempts, err)
	}
	if attempts > 1 {
		t.Logf("Write after Heal succeeded at attempt %d", attempts)
	}
	c := s.batch(shard, 41, 20)
	h.mustWrite(t, c)
	// Outage attempts may have left copies of b (at-least-once), never a torn
	// record: Read fails on those.
	all := append(append(a[:len(a):len(a)], b...), c...)
	s.checkPresent(t, s.read(t), all, false)
}

// breakStorage breaks the storage until the heal it returns is called, or
// the test ends.
func (s *suite[T]) breakStorage(t *testing.T) (heal func()) {
	s.brk(t)
	healed := false
	t.Cleanup(func() {
		if !healed {
			s.heal(t)
		}
	})
	return func() {
		healed = true
		s.heal(t)
	}
}

func (s *suite[T]) testCloseFlushes(t *testing.T) {
	h := s.open(t, false)
	b := s.batch("shardId-000000000003", 1, 30)
	h.mustWrite(t, b)
	if err := h.close(t); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s.checkPresent(t, s.read(t), b, false)
}

func (s *suite[T]) testWriteAfterClose(t *testing.T) {
	h := s.open(t, false)
	b := s.batch("shardId-000000000004", 1, 5)
	h.mustWrite(t, b)
	if err := h.close(t); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if err := h.w.Write(ctx, s.batch("shardId-000000000004", 6, 5)); err == nil {
		t.Fatal("Write after Close returned nil")
	} else {
		t.Logf("Write after Close: %v", err)
	}
	s.checkPresent(t, s.read(t), b, false)
}

func (s *suite[T]) testCancelled(t *testing.T) {
	h := s.open(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := s.batch("shardId-000000000005", 1, 5)
	if err := h.w.Write(ctx, b); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a cancelled ctx returned %v, want context.Canceled", err)
	}
	dctx, dcancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer dcancel()
	if err := h.w.Write(dctx, b); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Write with an expired ctx returned %v, want context.DeadlineExceeded", err)
	}
	// The sink still works afterwards.
	h.mustWrite(t, b)
	s.checkPresent(t, s.read(t), b, false)
}

// callerRetry retries f as a caller (the pipeline) would after an outage:
// each attempt within writeTimeout, all of them within writeTimeout too.
func callerRetry(f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	return retry.Policy{Initial: 100 * time.Millisecond, Max: 100 * time.Millisecond}.Do(ctx, retry.Options{}, f)
}
