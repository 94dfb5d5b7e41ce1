// Package retry is the worker's one retry policy: a capped, jittered
// exponential backoff and Do, which runs a function until it succeeds, its
// error is not retryable, its attempts are spent or its context is done.
// Every transient failure (a sink outage, a throttled or unreachable AWS
// call, a schema registry down) is retried in exactly one layer, through
// Do; the layers above it see only the final outcome.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Policy says how to wait between attempts. The zero value retries at once
// and forever; New-style constructors are not needed: set the fields.
type Policy struct {
	// Initial is the wait before the second attempt; each later wait
	// doubles, up to Max. Every wait is jittered over [w/2, w).
	Initial time.Duration
	// Max caps the wait. Zero means no cap.
	Max time.Duration
	// Attempts bounds the number of calls of f (the first included).
	// Zero means until the context is done.
	Attempts int
}

// Attempt describes a failure that Do is about to retry.
type Attempt struct {
	N    int           // the attempt that failed, from 1
	Wait time.Duration // the wait before the next attempt
	Err  error         // what the attempt returned
}

// Options are the per-call parts of Do: which errors to retry and what to
// report before each wait. Both may be nil.
type Options struct {
	// Retryable says whether an error is worth another attempt; nil
	// retries every error. A non-retryable error is returned at once.
	Retryable func(error) bool
	// OnRetry is called before each wait (for a log line or a counter).
	OnRetry func(Attempt)
}

// Do calls f until it returns nil, returns a non-retryable error, or
// Attempts calls have failed (then it returns the last error). When ctx
// is done during a wait, or f fails after ctx is done, it returns an error
// that matches both ctx's error and f's last error under errors.Is (f's
// error alone when it already is ctx's: an f that gives up with ctx.Err()
// reads as the cancellation, once).
func (p Policy) Do(ctx context.Context, o Options, f func(context.Context) error) error {
	wait := p.Initial
	for n := 1; ; n++ {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			if errors.Is(err, cerr) {
				return err
			}
			return errors.Join(cerr, err)
		}
		if o.Retryable != nil && !o.Retryable(err) {
			return err
		}
		if p.Attempts > 0 && n >= p.Attempts {
			return err
		}
		w := Jitter(wait)
		if o.OnRetry != nil {
			o.OnRetry(Attempt{N: n, Wait: w, Err: err})
		}
		if serr := Sleep(ctx, w); serr != nil {
			return errors.Join(serr, err)
		}
		wait = p.next(wait)
	}
}

// Waits returns the sequence of un-jittered waits Do would use for n
// failures, for callers that schedule attempts themselves (a loop driven by
// other events) and for tests.
func (p Policy) Waits(n int) []time.Duration {
	ws := make([]time.Duration, 0, n)
	for w := p.Initial; len(ws) < n; w = p.next(w) {
		ws = append(ws, w)
	}
	return ws
}

// Next returns the un-jittered wait that follows w.
func (p Policy) next(w time.Duration) time.Duration {
	w *= 2
	if p.Max > 0 && w > p.Max {
		w = p.Max
	}
	if w <= 0 { // overflow, or a zero Initial
		if p.Max > 0 {
			return min(p.Max, p.Initial)
		}
		return p.Initial
	}
	return w
}

// Sleep waits d, or until ctx is done; then it returns ctx's error. Its
// timer is stopped either way, so a cancelled wait leaves nothing behind.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Jitter spreads retries of many shards over [d/2, d), so that shards that
// failed together do not retry together.
func Jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}
