package kcl

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/retry"
)

// The KCL v1.0.0 event loop takes one lease per shard sync and stops
// (worker.go: a break after the first acquisition), and it starts a shard's
// consumer only from that loop (newShardConsumer is unexported). So the
// leases are taken elsewhere, in bulk: the coordinator runs a lease pass
// (leases.Table.Pass) every shard_sync_interval, and the KCL's loop is left
// only the start of the consumers the pass leased. The loop runs with a
// near-zero sync interval, paced by its own ListShards call, which the
// coordinator answers from its listing (the loop never reaches Kinesis): it
// holds the call until the next pass, or lets it through at once while
// leases wait for their start, one per loop tick. A worker therefore lists
// the stream once per pass, reads the table once per pass, and starts every
// lease a pass took within milliseconds.

const (
	// loopTick is the KCL's shard sync interval under the coordinator: the
	// loop's own sleep, negligible next to the coordinator's hold.
	loopTick = 2 * time.Millisecond
	// startSpacing is the least time between two loop ticks released to
	// start pending leases, so that a lease the loop fails to start cannot
	// make it spin.
	startSpacing = 2 * time.Millisecond
)

type coordinator struct {
	table   *leases.Table
	kinesis *kinesis.Client // the caller's client, for the passes' ListShards
	stream  string
	every   time.Duration
	hooks   Hooks
	log     *slog.Logger

	wake chan struct{} // a pass ended, or the worker stops

	mu      sync.Mutex
	listing *kinesis.ListShardsOutput // every shard, as one page
	version int                       // passes that produced a listing
	served  int                       // the version last handed to the KCL
	last    time.Time                 // last release for a pending start
	stopped bool
}

func newCoordinator(table *leases.Table, kin *kinesis.Client, stream string, every time.Duration, h Hooks, log *slog.Logger) *coordinator {
	return &coordinator{table: table, kinesis: kin, stream: stream, every: every, hooks: h, log: log, wake: make(chan struct{}, 1)}
}

// run runs a pass at once and then every interval (±10% jitter, so that
// workers started together spread their scans) until ctx ends.
func (c *coordinator) run(ctx context.Context) {
	for {
		c.pass(ctx)
		d := c.every + time.Duration((rand.Float64()-0.5)*0.2*float64(c.every))
		if retry.Sleep(ctx, d) != nil {
			return
		}
	}
}

func (c *coordinator) pass(ctx context.Context) {
	shards, out, err := c.list(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("lease pass skipped: listing the stream's shards failed; retried at the next pass", "err", err)
		}
		return
	}
	rep, err := c.table.Pass(ctx, shards)
	if err != nil {
		c.hooks.LeasePass(false, 0, 0, 0, 0)
		if ctx.Err() == nil {
			c.log.Warn("lease pass failed; retried at the next pass", "pass", rep.Pass, "err", err)
		}
	} else {
		c.report(rep)
	}
	c.mu.Lock()
	c.listing = out
	c.version++
	c.mu.Unlock()
	c.signal()
}

func (c *coordinator) report(rep leases.PassReport) {
	c.hooks.LeasePass(true, rep.Target, len(rep.Taken)-rep.Expired, rep.Expired, len(rep.Claimed))
	level := slog.LevelDebug
	if len(rep.Taken) > 0 || len(rep.Claimed) > 0 {
		level = slog.LevelInfo
	}
	c.log.Log(context.Background(), level, "lease pass", "pass", rep.Pass, "workers", rep.Workers, "leasable", rep.Leasable,
		"share", rep.Target, "held", rep.Held, "taken", len(rep.Taken), "expired", rep.Expired, "claimed", len(rep.Claimed), "refused", rep.Refused, "balance", rep.Balance)
}

// list reads the stream's whole shard listing (every page).
func (c *coordinator) list(ctx context.Context) ([]leases.ShardInfo, *kinesis.ListShardsOutput, error) {
	var all []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(c.stream)}
	for {
		out, err := c.kinesis.ListShards(ctx, in)
		if err != nil {
			return nil, nil, fmt.Errorf("list shards of stream %q: %w", c.stream, err)
		}
		all = append(all, out.Shards...)
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	infos := make([]leases.ShardInfo, len(all))
	for i, s := range all {
		infos[i] = leases.ShardInfo{ID: aws.ToString(s.ShardId), Parent: aws.ToString(s.ParentShardId), AdjacentParent: aws.ToString(s.AdjacentParentShardId)}
	}
	return infos, &kinesis.ListShardsOutput{Shards: slices.Clip(all)}, nil
}

func (c *coordinator) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// stop opens the gate for good: the KCL's loop must reach its stop check.
func (c *coordinator) stop() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.signal()
}

// answer is the KCL loop's ListShards: held until a pass produced a new
// listing, a lease waits for its start, or the worker stops.
func (c *coordinator) answer(ctx context.Context) (*kinesis.ListShardsOutput, error) {
	for {
		wait := c.every
		c.mu.Lock()
		switch {
		case c.listing == nil:
			// Before the first pass: nothing to start yet.
			if c.stopped {
				c.mu.Unlock()
				return nil, fmt.Errorf("list shards of stream %q: the worker is stopping", c.stream)
			}
		case c.stopped:
			out := c.listing
			c.mu.Unlock()
			// Paced, so that the loop, which only reaches its stop check
			// after this call, does not spin meanwhile.
			if err := retry.Sleep(ctx, 10*time.Millisecond); err != nil {
				return nil, err
			}
			return out, nil
		case c.version != c.served:
			c.served = c.version
			out := c.listing
			c.mu.Unlock()
			return out, nil
		case c.table.Pending() > 0:
			if d := startSpacing - time.Since(c.last); d > 0 {
				wait = d
				break
			}
			c.last = time.Now()
			out := c.listing
			c.mu.Unlock()
			return out, nil
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.wake:
		case <-time.After(wait):
		}
	}
}

// gate puts answer in front of the KCL's ListShards calls.
func (c *coordinator) gate(st *middleware.Stack) error {
	return st.Initialize.Add(middleware.InitializeMiddlewareFunc("kinesis-ingest/lease-pass-gate",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if _, ok := in.Parameters.(*kinesis.ListShardsInput); !ok {
				return next.HandleInitialize(ctx, in)
			}
			out, err := c.answer(ctx)
			if err != nil {
				return middleware.InitializeOutput{}, middleware.Metadata{}, err
			}
			return middleware.InitializeOutput{Result: out}, middleware.Metadata{}, nil
		}), middleware.Before)
}
