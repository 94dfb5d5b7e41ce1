package sinktest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
)

// The deferred subtests: what RunRowSink adds for a sinks.DeferredRowSink.
// Each holds a sink to its contract: Accept copies what it keeps; durable
// is called exactly once per Accept, with nil only once the Accept's rows
// (but the refused) can be read from storage; Flush and Close store what is
// buffered; an Accept that fails takes nothing and never calls durable.

type deferred struct {
	s      *suite[record.Row]
	refuse func(record.Row) record.Row
}

func runDeferred(t *testing.T, d *deferred) {
	t.Run("EmptyAccept", d.testEmptyAccept)
	t.Run("AcceptThenFlush", d.testAcceptThenFlush)
	t.Run("DurableMeansStored", d.testDurableMeansStored)
	t.Run("AcceptCopies", d.testAcceptCopies)
	t.Run("ReplayWhileBuffered", d.testReplayWhileBuffered)
	t.Run("AcceptOrderPerShard", d.testAcceptOrderPerShard)
	t.Run("WriteAmongAccepts", d.testWriteAmongAccepts)
	t.Run("RefusedRows", d.testRefusedRows)
	t.Run("OutageWhileBuffered", d.testOutageWhileBuffered)
	t.Run("CloseFlushesBuffered", d.testCloseFlushesBuffered)
	t.Run("CloseDuringOutage", d.testCloseDuringOutage)
	t.Run("AcceptAfterClose", d.testAcceptAfterClose)
	t.Run("AcceptCancelledContext", d.testAcceptCancelled)
}

// accepted is one Accept: the rows the suite made for it (a copy the sink
// never saw, to check storage against) and what its durable was told.
type accepted struct {
	what string
	want []record.Row
	rows func() []record.Row // makes the rows afresh
	of   *accepts
	// onNil, when set, runs inside the first durable(nil), before it
	// returns.
	onNil func(*accepted)

	mu   sync.Mutex
	errs []error
	told chan struct{} // closed after the first call
}

// accepts are a subtest's Accepts.
type accepts struct {
	s    *suite[record.Row]
	mu   sync.Mutex
	all  []*accepted
	call chan struct{} // a token after each first call of a durable
}

// track returns the subtest's Accepts. Call it before the subtest opens a
// sink: the check it registers, that no durable was called twice, then runs
// after the suite closed the sink (cleanups run last first).
func (d *deferred) track(t *testing.T) *accepts {
	as := &accepts{s: d.s, call: make(chan struct{}, 1)}
	t.Cleanup(func() {
		for _, a := range as.list() {
			if errs := a.calls(); len(errs) > 1 {
				t.Errorf("durable of the Accept of %s was called %d times (%v); the contract is exactly once", a.what, len(errs), errs)
			}
		}
	})
	return as
}

// add makes the record of an Accept of the n rows of shard from from.
func (as *accepts) add(shard string, from, n int) *accepted {
	return as.addRows(fmt.Sprintf("%s %d-%d", shard, from, from+n-1), func() []record.Row { return as.s.batch(shard, from, n) })
}

func (as *accepts) addRows(what string, rows func() []record.Row) *accepted {
	a := &accepted{what: what, want: rows(), rows: rows, of: as, told: make(chan struct{})}
	as.mu.Lock()
	as.all = append(as.all, a)
	as.mu.Unlock()
	return a
}

func (as *accepts) list() []*accepted {
	as.mu.Lock()
	defer as.mu.Unlock()
	return slices.Clone(as.all)
}

// durable is what the suite passes to Accept.
func (a *accepted) durable(err error) {
	a.mu.Lock()
	a.errs = append(a.errs, err)
	first := len(a.errs) == 1
	a.mu.Unlock()
	if !first {
		return
	}
	if err == nil && a.onNil != nil {
		a.onNil(a)
	}
	close(a.told)
	select {
	case a.of.call <- struct{}{}:
	default:
	}
}

// calls returns what durable was told so far.
func (a *accepted) calls() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.errs)
}

// result returns the first call's error; called is false when there was none.
func (a *accepted) result() (called bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.errs) == 0 {
		return false, nil
	}
	return true, a.errs[0]
}

// wait waits until deadline for durable to be called; false if it was not.
func (a *accepted) wait(deadline time.Time) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-a.told:
		return true
	case <-timer.C:
		return false
	}
}

// open returns a sink from New (reopen: Reopen) as the DeferredRowSink it is.
func (d *deferred) open(t *testing.T, reopen bool) (*handle[record.Row], sinks.DeferredRowSink) {
	t.Helper()
	h := d.s.open(t, reopen)
	ds, ok := h.w.(sinks.DeferredRowSink)
	if !ok {
		t.Fatalf("sinktest: the harness returned a %T, which is no sinks.DeferredRowSink, though its first New returned one", h.w)
	}
	return h, ds
}

// accept passes a's rows, made afresh, to Accept.
func (d *deferred) accept(ctx context.Context, ds sinks.DeferredRowSink, a *accepted) error {
	return ds.Accept(ctx, a.rows(), a.durable)
}

func (d *deferred) mustAccept(t *testing.T, ds sinks.DeferredRowSink, a *accepted) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if err := d.accept(ctx, ds, a); err != nil {
		t.Fatalf("Accept of %s: %v", a.what, err)
	}
}

func mustFlush(t *testing.T, ds sinks.DeferredRowSink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if err := ds.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// checkDurable fails the test unless each of as has had durable called
// with nil, and only once; the calls may come from another goroutine, so
// it waits for them (writeTimeout in all).
func checkDurable(t *testing.T, as ...*accepted) {
	t.Helper()
	deadline := time.Now().Add(writeTimeout)
	for _, a := range as {
		if !a.wait(deadline) {
			t.Errorf("durable of the Accept of %s was not called (waited %v)", a.what, writeTimeout)
			continue
		}
		switch errs := a.calls(); {
		case len(errs) > 1:
			t.Errorf("durable of the Accept of %s was called %d times (%v); the contract is exactly once", a.what, len(errs), errs)
		case errs[0] != nil:
			t.Errorf("durable of the Accept of %s was told %v, want nil: its rows were flushed", a.what, errs[0])
		}
	}
}

// flushAndCheck flushes, then fails the test unless every one of as is
// told nil once and storage holds want, and nothing else, in each shard's
// order.
func (d *deferred) flushAndCheck(t *testing.T, ds sinks.DeferredRowSink, want []record.Row, as ...*accepted) {
	t.Helper()
	mustFlush(t, ds)
	checkDurable(t, as...)
	got := d.s.read(t)
	d.s.checkPresent(t, got, want, false)
	d.s.checkOrder(t, got)
}

// rowsOf returns the rows of as, in order.
func rowsOf(as ...*accepted) []record.Row {
	var out []record.Row
	for _, a := range as {
		out = append(out, a.want...)
	}
	return out
}

// missing returns the keys of want not in got.
func missing(got, want []record.Row) []key {
	have := make(map[key]bool, len(got))
	for _, g := range got {
		have[keyOf(g.Origin)] = true
	}
	var out []key
	for _, w := range want {
		if k := keyOf(w.Origin); !have[k] {
			out = append(out, k)
		}
	}
	return out
}

func (d *deferred) testEmptyAccept(t *testing.T) {
	as := d.track(t)
	_, ds := d.open(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	none := as.addRows("nil", func() []record.Row { return nil })
	empty := as.addRows("[]record.Row{}", func() []record.Row { return []record.Row{} })
	for _, a := range []*accepted{none, empty} {
		if err := d.accept(ctx, ds, a); err != nil {
			t.Fatalf("Accept of no rows (%s): %v", a.what, err)
		}
	}
	mustFlush(t, ds)
	checkDurable(t, none, empty)
	if got := d.s.read(t); len(got) != 0 {
		t.Errorf("empty Accepts stored %d rows", len(got))
	}
}

// Rows of two shards, accepted in turns, are all stored by Flush, and each
// Accept is told so once.
func (d *deferred) testAcceptThenFlush(t *testing.T) {
	as := d.track(t)
	_, ds := d.open(t, false)
	var all []*accepted
	for b := range 3 {
		for _, shard := range []string{"shardId-000000000010", "shardId-000000000011"} {
			a := as.add(shard, 1+b*15, 15)
			d.mustAccept(t, ds, a)
			all = append(all, a)
		}
	}
	d.flushAndCheck(t, ds, rowsOf(all...), all...)
}

// durable(nil) means stored: at the moment it is called, the Accept's rows
// can be read. Each durable(nil) holds its caller until this test's
// goroutine has read the storage, so a sink that tells before it stores
// fails here however its timing falls.
func (d *deferred) testDurableMeansStored(t *testing.T) {
	as := d.track(t)
	_, ds := d.open(t, false)
	type check struct {
		a    *accepted
		done chan struct{}
	}
	checks := make(chan check)
	stop := make(chan struct{})
	defer close(stop) // before the suite closes the sink: no durable stays held
	onNil := func(a *accepted) {
		c := check{a, make(chan struct{})}
		select {
		case checks <- c:
		case <-stop:
			return
		}
		select {
		case <-c.done:
		case <-stop:
		}
	}
	var all []*accepted
	for b := range 4 {
		for _, shard := range []string{"shardId-000000000012", "shardId-000000000013"} {
			a := as.add(shard, 1+b*10, 10)
			a.onNil = onNil
			all = append(all, a)
		}
	}
	// Another goroutine drives the sink: durable may be called inside
	// Accept or Flush, and is held there until checked.
	driven := make(chan error, 1)
	go func() {
		driven <- func() error {
			for _, a := range all {
				ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
				err := d.accept(ctx, ds, a)
				cancel()
				if err != nil {
					return fmt.Errorf("Accept of %s: %w", a.what, err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
			defer cancel()
			if err := ds.Flush(ctx); err != nil {
				return fmt.Errorf("Flush: %w", err)
			}
			return nil
		}()
	}()
	// Told once every durable has returned (its check done, if nil).
	told := func() bool {
		for _, a := range all {
			select {
			case <-a.told:
			default:
				return false
			}
		}
		return true
	}
	timeout := time.NewTimer(2 * writeTimeout)
	defer timeout.Stop()
	checked := 0
	for driving := true; driving || !told(); {
		select {
		case c := <-checks:
			if keys := missing(d.s.read(t), c.a.want); len(keys) > 0 {
				t.Errorf("durable(nil) was called for the Accept of %s while %d of its rows were not in storage (the first: %v)", c.a.what, len(keys), keys[0])
			}
			checked++
			close(c.done)
		case err := <-driven:
			if err != nil {
				t.Fatal(err)
			}
			driving = false
		case <-as.call:
		case <-timeout.C:
			t.Fatalf("Accepts and Flush not done, or durable not called for every Accept, after %v", 2*writeTimeout)
		}
	}
	checkDurable(t, all...)
	if checked != len(all) {
		t.Errorf("durable(nil) was called for %d Accepts of %d", checked, len(all))
	}
	d.s.checkPresent(t, d.s.read(t), rowsOf(all...), false)
}

// Once Accept returns, the caller reuses the rows' memory (the Row slice,
// each Fields slice, []byte and []float64 contents, lists, maps, structs,
// and the boxes scalars sit in: schema/box.go): what the sink stores is
// what it was given.
func (d *deferred) testAcceptCopies(t *testing.T) {
	as := d.track(t)
	_, ds := d.open(t, false)
	const shard = "shardId-000000000014"
	// The round-trip rows are of another shard: two Accepts. The second's
	// last row holds typed nils, which are null (record.IsNull) and must
	// not become empty values in the copy.
	first := as.addRows("the round-trip rows", d.s.roundTrip)
	second := as.addRows(shard+" 1-10", func() []record.Row {
		rows := d.s.batch(shard, 1, 10)
		rows[9].Fields = append(rows[9].Fields, record.Field{Name: "nil_bytes", Value: []byte(nil)},
			record.Field{Name: "nil_embedding", Value: []float64(nil)}, record.Field{Name: "nil_list", Value: []any(nil)},
			record.Field{Name: "nil_map", Value: map[string]any(nil)}, record.Field{Name: "nil_struct", Value: []record.Field(nil)})
		return rows
	})
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	for _, a := range []*accepted{first, second} {
		var held slots
		given := a.rows()
		for i := range given {
			for j := range given[i].Fields {
				given[i].Fields[j].Value = held.hold(given[i].Fields[j].Value)
			}
		}
		if err := ds.Accept(ctx, given, a.durable); err != nil {
			t.Fatalf("Accept of %s: %v", a.what, err)
		}
		held.reuse()
		scribbleRows(given)
	}
	mustFlush(t, ds)
	checkDurable(t, first, second)
	d.s.checkSame(t, d.s.read(t), rowsOf(first, second))
}

// A batch accepted again before it is stored (the caller's retry), and one
// overlapping it: a de-duplicating sink stores each row once, and every
// Accept is told.
func (d *deferred) testReplayWhileBuffered(t *testing.T) {
	as := d.track(t)
	_, ds := d.open(t, false)
	const shard = "shardId-000000000015"
	a, again, overlap := as.add(shard, 1, 20), as.add(shard, 1, 20), as.add(shard, 11, 20)
	for _, x := range []*accepted{a, again, overlap} {
		d.mustAccept(t, ds, x)
	}
	mustFlush(t, ds)
	checkDurable(t, a, again, overlap)
	got := d.s.read(t)
	d.s.checkPresent(t, got, d.s.batch(shard, 1, 30), false)
	if !d.s.dedupes {
		t.Logf("note: %d of 60 accepted rows stored", len(got))
	}
}

// Shards accept concurrently, each its batches in turn, while Flush runs
// again and again: each shard's rows are stored in stream order.
func (d *deferred) testAcceptOrderPerShard(t *testing.T) {
	const shards, batches, perBatch = 4, 15, 10
	as := d.track(t)
	_, ds := d.open(t, false)
	var all []*accepted
	perShard := make([][]*accepted, shards)
	for i := range shards {
		shard := fmt.Sprintf("shardId-%012d", 30+i)
		for b := range batches {
			perShard[i] = append(perShard[i], as.add(shard, 1+b*perBatch, perBatch))
		}
		all = append(all, perShard[i]...)
	}
	errs := make(chan error, shards+1)
	var wg sync.WaitGroup
	for i := range shards {
		wg.Go(func() {
			for _, a := range perShard[i] {
				ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
				err := d.accept(ctx, ds, a)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("Accept of %s: %w", a.what, err)
					return
				}
			}
		})
	}
	accepting := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
			err := ds.Flush(ctx)
			cancel()
			if err != nil {
				errs <- fmt.Errorf("Flush while shards accept: %w", err)
				return
			}
			select {
			case <-accepting:
				return
			default:
			}
		}
	}()
	wg.Wait()
	close(accepting)
	<-flushed
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	d.flushAndCheck(t, ds, rowsOf(all...), all...)
}

// Write among Accepts of one shard keeps its own contract (its rows are
// stored when it returns) and the shard's order.
func (d *deferred) testWriteAmongAccepts(t *testing.T) {
	as := d.track(t)
	h, ds := d.open(t, false)
	const shard = "shardId-000000000016"
	a := as.add(shard, 1, 10)
	d.mustAccept(t, ds, a)
	b := d.s.batch(shard, 11, 10)
	h.mustWrite(t, b)
	if keys := missing(d.s.read(t), b); len(keys) > 0 {
		t.Errorf("Write returned nil, yet %d of its rows are not in storage (the first: %v)", len(keys), keys[0])
	}
	c := as.add(shard, 21, 10)
	d.mustAccept(t, ds, c)
	d.flushAndCheck(t, ds, d.s.batch(shard, 1, 30), a, c)
}

// Rows the sink refuses come back in a *sinks.RejectedError; the others are
// stored and durable is told nil, even when every row was refused.
func (d *deferred) testRefusedRows(t *testing.T) {
	if d.refuse == nil {
		t.Skip("harness has no Refuse")
	}
	as := d.track(t)
	_, ds := d.open(t, false)
	const shard = "shardId-000000000017"
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	some := as.add(shard, 1, 10)
	given := d.s.batch(shard, 1, 10)
	for _, i := range []int{3, 7} {
		given[i] = d.refuse(given[i])
	}
	err := ds.Accept(ctx, given, some.durable)
	if rej, ok := sinks.IsRejected(err); !ok {
		t.Fatalf("Accept of rows with 2 the sink cannot hold returned %v, want a *sinks.RejectedError", err)
	} else if !slices.Equal(rej.Index, []int{3, 7}) {
		t.Errorf("RejectedError.Index is %v, want [3 7]", rej.Index)
	}
	every := as.add(shard, 11, 2)
	given = d.s.batch(shard, 11, 2)
	for i := range given {
		given[i] = d.refuse(given[i])
	}
	err = ds.Accept(ctx, given, every.durable)
	if rej, ok := sinks.IsRejected(err); !ok {
		t.Fatalf("Accept of rows the sink cannot hold returned %v, want a *sinks.RejectedError", err)
	} else if !slices.Equal(rej.Index, []int{0, 1}) {
		t.Errorf("RejectedError.Index is %v, want [0 1]", rej.Index)
	}
	mustFlush(t, ds)
	checkDurable(t, some, every)
	stored := slices.Delete(slices.Clone(some.want), 7, 8)
	stored = slices.Delete(stored, 3, 4)
	got := d.s.read(t)
	d.s.checkPresent(t, got, stored, false) // no refused row either
}

// Rows buffered when the storage breaks: Flush fails within its ctx and
// durable is not told nil; an Accept during the outage either takes its
// rows or fails and never calls durable. Once healed, Flush stores them
// all.
func (d *deferred) testOutageWhileBuffered(t *testing.T) {
	if d.s.brk == nil {
		t.Skip("harness has no Break/Heal")
	}
	as := d.track(t)
	_, ds := d.open(t, false)
	const shard, other = "shardId-000000000018", "shardId-000000000019"
	a := as.add(shard, 1, 20)
	d.mustAccept(t, ds, a)

	heal := d.s.breakStorage(t)
	for attempt := 1; attempt <= 2; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), outageTimeout)
		start := time.Now()
		err := ds.Flush(ctx)
		took := time.Since(start)
		cancel()
		called, derr := a.result()
		switch {
		case err == nil && !(called && derr == nil):
			t.Errorf("Flush during the outage (attempt %d) returned nil, yet durable of %s was not told nil", attempt, a.what)
		case err != nil && called && derr == nil:
			// Flush failing says something it had to store is not:
			// only a's rows were accepted.
			t.Errorf("Flush during the outage failed (%v), yet durable of %s was told nil", err, a.what)
		case err == nil:
			t.Logf("%s was stored before the outage: nothing was left to fail", a.what)
		}
		if _, ok := sinks.IsRejected(err); ok {
			t.Errorf("Flush during the outage returned a RejectedError: %v", err)
		}
		if took > outageTimeout+outageSlack {
			t.Errorf("Flush during the outage took %v with a %v ctx deadline", took, outageTimeout)
		}
		t.Logf("Flush attempt %d during the outage: %v (after %v)", attempt, err, took)
	}
	// Accepts during the outage: of the shard buffered, and of another.
	var taken, failed []*accepted
	for _, x := range []*accepted{as.add(shard, 21, 20), as.add(other, 1, 20)} {
		ctx, cancel := context.WithTimeout(context.Background(), outageTimeout)
		start := time.Now()
		err := d.accept(ctx, ds, x)
		took := time.Since(start)
		cancel()
		if took > outageTimeout+outageSlack {
			t.Errorf("Accept during the outage took %v with a %v ctx deadline", took, outageTimeout)
		}
		if err != nil {
			if _, ok := sinks.IsRejected(err); ok {
				t.Errorf("Accept during the outage returned a RejectedError, which tells the caller to drop the rows: %v", err)
			}
			t.Logf("Accept of %s during the outage: %v", x.what, err)
			failed = append(failed, x)
			continue
		}
		taken = append(taken, x)
	}

	heal()
	attempts := 0
	if err := callerRetry(func(ctx context.Context) error { attempts++; return ds.Flush(ctx) }); err != nil {
		t.Fatalf("Flush after Heal still fails after %d attempts: %v", attempts, err)
	}
	checkDurable(t, append([]*accepted{a}, taken...)...)
	for _, x := range failed {
		if errs := x.calls(); len(errs) > 0 {
			t.Errorf("Accept of %s failed, yet its durable was called (%v): a failed Accept takes nothing", x.what, errs)
		}
	}
	// The caller retries the failed Accepts.
	var retried []*accepted
	for _, x := range failed {
		r := as.addRows(x.what+" (retried)", x.rows)
		d.mustAccept(t, ds, r)
		retried = append(retried, r)
	}
	mustFlush(t, ds)
	checkDurable(t, retried...)
	all := append(d.s.batch(shard, 1, 40), d.s.batch(other, 1, 20)...)
	d.s.checkPresent(t, d.s.read(t), all, false)
}

// Close stores what is buffered and tells each Accept.
func (d *deferred) testCloseFlushesBuffered(t *testing.T) {
	as := d.track(t)
	h, ds := d.open(t, false)
	a, b := as.add("shardId-000000000020", 1, 30), as.add("shardId-000000000021", 1, 10)
	d.mustAccept(t, ds, a)
	d.mustAccept(t, ds, b)
	if err := h.close(t); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkDurable(t, a, b)
	d.s.checkPresent(t, d.s.read(t), rowsOf(a, b), false)
}

// Close while the storage is down: each Accept not stored is told an error
// (never nil), and Close does not return nil. Rows told an error are read
// again after a restart: the replay stores them (once, when the sink
// de-duplicates).
func (d *deferred) testCloseDuringOutage(t *testing.T) {
	if d.s.brk == nil {
		t.Skip("harness has no Break/Heal")
	}
	as := d.track(t)
	h, ds := d.open(t, false)
	const shard = "shardId-000000000022"
	a := as.add(shard, 1, 20)
	d.mustAccept(t, ds, a)
	heal := d.s.breakStorage(t)
	cerr := h.close(t)
	t.Logf("Close during the outage: %v", cerr)
	if !a.wait(time.Now().Add(writeTimeout)) {
		t.Fatalf("Close returned (%v) and durable of %s was not called (waited %v): it must be told the rows will not be stored", cerr, a.what, writeTimeout)
	}
	_, derr := a.result()
	if derr != nil && cerr == nil {
		t.Errorf("Close returned nil, yet durable of %s was told %v", a.what, derr)
	}
	heal()

	_, again := d.open(t, true)
	got := d.s.read(t)
	if derr == nil {
		// Stored before the outage, then: it must be there.
		t.Logf("%s was stored before the outage", a.what)
		d.s.checkPresent(t, got, a.want, false)
	} else {
		t.Logf("durable of %s was told: %v; %d of its rows were stored", a.what, derr, len(a.want)-len(missing(got, a.want)))
	}
	replay := as.add(shard, 1, 20)
	d.mustAccept(t, again, replay)
	mustFlush(t, again)
	checkDurable(t, replay)
	d.s.checkPresent(t, d.s.read(t), a.want, false)
}

// Accept after Close fails and never calls durable.
func (d *deferred) testAcceptAfterClose(t *testing.T) {
	as := d.track(t)
	h, ds := d.open(t, false)
	if err := h.close(t); err != nil {
		t.Fatalf("Close: %v", err)
	}
	a := as.add("shardId-000000000023", 1, 5)
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	err := d.accept(ctx, ds, a)
	if err == nil {
		t.Fatal("Accept after Close returned nil")
	}
	t.Logf("Accept after Close: %v", err)
	if errs := a.calls(); len(errs) > 0 {
		t.Errorf("Accept after Close failed, yet its durable was called (%v)", errs)
	}
	if got := d.s.read(t); len(got) != 0 {
		t.Errorf("Accept after Close stored %d rows", len(got))
	}
}

// Accept with a context that has ended returns its error, takes nothing
// and never calls durable; the sink works on.
func (d *deferred) testAcceptCancelled(t *testing.T) {
	as := d.track(t)
	_, ds := d.open(t, false)
	const shard = "shardId-000000000024"
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dctx, dcancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer dcancel()
	var refused []*accepted
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{ctx, context.Canceled}, {dctx, context.DeadlineExceeded}} {
		a := as.add(shard, 1, 5)
		if err := d.accept(c.ctx, ds, a); !errors.Is(err, c.want) {
			t.Errorf("Accept with an ended ctx returned %v, want %v", err, c.want)
		}
		refused = append(refused, a)
	}
	ok := as.add(shard, 1, 5)
	d.mustAccept(t, ds, ok)
	mustFlush(t, ds)
	checkDurable(t, ok)
	for _, a := range refused {
		if errs := a.calls(); len(errs) > 0 {
			t.Errorf("Accept with an ended ctx failed, yet its durable was called (%v)", errs)
		}
	}
	d.s.checkPresent(t, d.s.read(t), ok.want, false)
}
