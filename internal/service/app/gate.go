package app

import (
	"context"
	"fmt"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/retry"
)

// Gate is what Run waits for before it starts the pipeline and the
// consumers: the worker's dependencies (streams, lease tables, sinks)
// answering. A dependency down at start is an outage like one later on: the
// worker starts, serves /healthz, /metrics and an unready /readyz, and
// begins reading once the dependency is back.
type Gate struct {
	// Check returns nil once every dependency answers. It must honour ctx.
	Check func(context.Context) error
	// Transient says whether an error of Check is an outage worth waiting
	// out; any other error stops Run with it.
	Transient func(error) bool
}

// gateRetry paces Gate.Check: soon after a blip, then every half minute at
// most, for as long as the outage lasts.
var gateRetry = retry.Policy{Initial: time.Second, Max: 30 * time.Second}

// WithGate has Run wait for g before reading anything.
func WithGate(g Gate) Option { return func(o *options) { o.gate = g } }

// awaitGate runs the gate's check until it passes, reporting each failure on
// /readyz (the "dependencies" check) and in the log. It returns false when
// ctx ended first (the worker stops without having read anything), and the
// check's error when that is not an outage.
func (a *App) awaitGate(ctx context.Context) (bool, error) {
	g := a.gate
	if g.Check == nil {
		return true, nil
	}
	err := gateRetry.Do(ctx, retry.Options{
		Retryable: g.Transient,
		OnRetry: func(at retry.Attempt) {
			a.waiting.Set(at.Err)
			a.log.Warn("waiting for the worker's dependencies before reading: a startup check failed with an outage; retrying",
				"attempt", at.N, "retry_in", at.Wait.Round(time.Millisecond), "err", at.Err)
		},
	}, g.Check)
	switch {
	case ctx.Err() != nil:
		return false, nil
	case err != nil:
		a.waiting.Set(err)
		return false, fmt.Errorf("refusing to start: a startup check failed: %w", err)
	}
	if a.waiting.Err() != nil {
		a.log.Info("the worker's dependencies answer; starting")
	}
	a.waiting.Set(nil)
	return true, nil
}
