// Command wide runs many real workers on one wide stream and measures what
// the width costs: how long until every shard is leased and how evenly, each
// worker's CPU and memory with records flowing into every shard, how long a
// kill -9'd worker's shards take to come back, whether any record was lost
// (counted by id), and the lease table's calls beside the formulas of
// docs/coordination.md at that width.
//
// It starts kinesis-mock and dynalite (as pershard does), with a counting
// proxy in front of each (see proxy), creates a stream of -shards shards,
// builds the real binary (go build ./cmd/kinesis-ingest) and starts -workers
// processes of `run`, the default consumer settings and a file sink, all
// together. Then:
//
//  1. it waits until the lease table shows every shard leased, until the
//     workers' /metrics say they hold them all, and until each holds its
//     share (floor or ceil of S/W);
//  2. a producer puts -rate records a second into every shard (PutRecords,
//     one explicit hash key per shard, unique ids); after -settle, it
//     measures a -window: each worker's CPU (process_cpu_seconds_total),
//     RSS (/proc), GetRecords, batches and checkpoints; the emulators' CPU
//     and this process's (the producer and the proxies); and the proxies'
//     counts;
//  3. it kill -9s the last worker and waits until the survivors hold its
//     shards (lease table, then /metrics); the producer stops, everything
//     drains, the survivors stop, and the file sinks' rows are counted by
//     id: every id put must be there at least once (duplicates are the
//     at-least-once replays of the killed worker's unfinished batches).
//
// Every wait ends after -timeout with an error naming the phase, and the
// tables print what was measured up to there: the emulators on 2 cores give
// out before the workers do (kinesis-mock's CPU is in the table).
//
// Run it from the module root:
//
//	go run ./internal/tools/bench/wide -shards 256 -workers 8
//
// It is not a test: `go test ./...` does not run it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type options struct {
	shards, workers         int
	rate                    float64 // records per second per shard
	settle, window, timeout time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.shards, "shards", 256, "shards of the stream (step down to 128, 64 where the emulators cannot serve the width)")
	flag.IntVar(&o.workers, "workers", 8, "worker processes")
	flag.Float64Var(&o.rate, "rate", 1, "records a second put into every shard while measuring")
	flag.DurationVar(&o.settle, "settle", 15*time.Second, "wait after the balance with records flowing, before the window")
	flag.DurationVar(&o.window, "window", 30*time.Second, "how long CPU, memory and the lease table's calls are measured")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on any one wait (stream, leases, take-over, drain) after this")
	flag.Parse()
	if o.shards < 1 || o.workers < 2 || o.rate <= 0 || o.window <= 0 || o.timeout <= 0 {
		fmt.Fprintln(os.Stderr, "wide: want -shards ≥ 1, -workers ≥ 2 (one is killed), -rate, -window and -timeout > 0")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &result{o: o}
	err := run(ctx, o, r)
	if err != nil {
		r.failure = err
	}
	r.print(os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wide:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// phaseError says which phase gave out.
type phaseError struct {
	phase string
	err   error
}

func (e *phaseError) Error() string { return e.phase + ": " + e.err.Error() }
func (e *phaseError) Unwrap() error { return e.err }

// waitUntil polls cond every poll until it is true, and returns how long
// that took from since; it fails after timeout, when ctx ends, or when cond
// fails.
func waitUntil(ctx context.Context, since time.Time, timeout, poll time.Duration, what string, cond func() (bool, error)) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return time.Since(since), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s: not after %s (raise -timeout, or step down -shards)", what, timeout)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s: %w", what, context.Cause(ctx))
		case <-time.After(poll):
		}
	}
}

var errExited = errors.New("a worker exited")
