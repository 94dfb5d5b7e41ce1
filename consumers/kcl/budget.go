package kcl

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"
)

// MaxReadBytes is the most record data one GetRecords call returns (Kinesis's
// limit, whatever the stream's record size). A shard reserves that much before
// each read: the answer's size is unknown until it arrives, and a bound that
// counted only what already arrived would bound nothing.
const MaxReadBytes = 10 << 20

// Budget bounds the record bytes one worker holds in flight, across every
// shard of every source: from just before a GetRecords call until the batch
// it returned is durable (or abandoned). A shard whose read does not fit
// waits before reading, so a full budget slows reading down and never drops
// a record. Waiters are served in arrival order, so a busy shard cannot
// starve another. It is safe for concurrent use.
type Budget struct {
	hooks BudgetHooks // nil: none

	// pressure, when set, is called (in a goroutine of its own, one at a
	// time) when a read must wait for the budget: deferred sinks hold bytes
	// until they flush, and a full budget is a reason to flush now.
	pressure atomic.Pointer[func()]
	pressing atomic.Bool

	mu      sync.Mutex
	max     int64
	used    int64
	peak    int64
	waiters []*waiter
}

type waiter struct {
	n     int64
	ready chan struct{}
}

// NewBudget returns a budget of max bytes; max must be at least MaxReadBytes
// so that every read fits. With h, it reports what it holds and how long reads
// waited.
func NewBudget(max int64, h BudgetHooks) (*Budget, error) {
	if max < MaxReadBytes {
		return nil, fmt.Errorf("in-flight budget of %d bytes: must be at least %d, the most one GetRecords returns", max, MaxReadBytes)
	}
	b := &Budget{max: max, hooks: h}
	if h != nil {
		h.Limit(max)
	}
	return b, nil
}

// Max is the budget's size in bytes.
func (b *Budget) Max() int64 { return b.max }

// Used is the bytes held now; Peak the most ever held.
func (b *Budget) Used() (used, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.peak
}

// errStopping ends a read that waited for the budget while the consumer stops.
var errStopping = errors.New("consumer stopping: read not started (waiting for the in-flight budget)")

// acquire takes n bytes, waiting in line until they fit, or returns
// errStopping once stop is closed (or ctx's error).
func (b *Budget) acquire(ctx context.Context, stop <-chan struct{}, n int64) error {
	b.mu.Lock()
	if len(b.waiters) == 0 && b.used+n <= b.max {
		b.take(n)
		b.mu.Unlock()
		return nil
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	b.press()
	if b.hooks != nil {
		defer func(start time.Time) { b.hooks.Waited(time.Since(start)) }(time.Now())
	}
	var err error
	select {
	case <-w.ready:
		return nil
	case <-stop:
		err = errStopping
	case <-ctx.Done():
		err = ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready: // granted meanwhile: give it back
		b.used -= n
		b.wake()
		b.report()
	default:
		for i, o := range b.waiters {
			if o == w {
				b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
				break
			}
		}
		b.wake() // the next in line may fit now
	}
	return err
}

// force takes n bytes at once, beyond the budget if need be: the bytes
// already arrived (an answer larger than its reservation).
// OnPressure sets what a read that must wait for the budget calls: the
// worker flushes its deferred sinks, whose rows hold the bytes.
func (b *Budget) OnPressure(f func()) { b.pressure.Store(&f) }

func (b *Budget) press() {
	f := b.pressure.Load()
	if f == nil || !b.pressing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer b.pressing.Store(false)
		(*f)()
	}()
}

func (b *Budget) force(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.take(n)
}

func (b *Budget) release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	b.wake()
	b.report()
}

// report tells the hooks what is held. Called with mu held.
func (b *Budget) report() {
	if b.hooks != nil {
		b.hooks.Held(b.used)
	}
}

func (b *Budget) take(n int64) {
	b.used += n
	b.peak = max(b.peak, b.used)
	b.report()
}

// wake grants waiters in order while the first fits. Called with mu held.
func (b *Budget) wake() {
	for len(b.waiters) > 0 && b.used+b.waiters[0].n <= b.max {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.take(w.n)
		close(w.ready)
	}
}

// inflight ties the budget to one consumer's Kinesis client and processors.
// The GetRecords middleware reserves MaxReadBytes before the call and, once
// the answer is decoded, keeps what it holds; the shard's ProcessRecords
// (the KCL calls it next, in the same goroutine, with the de-aggregated
// records) releases it once the batch is durable. The two meet on the batch's
// last sequence number: KPL sub-records share their aggregate's, so the last
// one is the same before and after de-aggregation, and it is unique.
type inflight struct {
	budget *Budget
	stop   <-chan struct{}

	mu   sync.Mutex
	held map[string]int64 // bytes held, by the last sequence number of a batch
}

func newInflight(b *Budget, stop <-chan struct{}) *inflight {
	return &inflight{budget: b, stop: stop, held: map[string]int64{}}
}

// middleware is a kinesis.Options function installing the reservation on
// GetRecords. It must be added after GuardAggregates: Initialize middlewares
// added later with middleware.Before run outside earlier ones, so it sees
// the records as the KCL will.
func (f *inflight) middleware(o *kinesis.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("kinesis-ingest-inflight-budget",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if _, ok := in.Parameters.(*kinesis.GetRecordsInput); !ok {
					return next.HandleInitialize(ctx, in)
				}
				if err := f.budget.acquire(ctx, f.stop, MaxReadBytes); err != nil {
					return middleware.InitializeOutput{}, middleware.Metadata{}, err
				}
				out, md, err := next.HandleInitialize(ctx, in)
				res, ok := out.Result.(*kinesis.GetRecordsOutput)
				if err != nil || !ok || len(res.Records) == 0 {
					f.budget.release(MaxReadBytes)
					return out, md, err
				}
				var n int64
				for _, r := range res.Records {
					n += int64(len(r.Data))
				}
				if n < MaxReadBytes {
					f.budget.release(MaxReadBytes - n)
				} else {
					f.budget.force(n - MaxReadBytes)
				}
				f.hold(aws.ToString(res.Records[len(res.Records)-1].SequenceNumber), n)
				return out, md, err
			}), middleware.Before)
	})
}

func (f *inflight) hold(lastSeq string, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held[lastSeq] += n
}

// done releases what the batch ending at lastSeq holds.
func (f *inflight) done(lastSeq string) {
	f.mu.Lock()
	n := f.held[lastSeq]
	delete(f.held, lastSeq)
	f.mu.Unlock()
	f.budget.release(n)
}
