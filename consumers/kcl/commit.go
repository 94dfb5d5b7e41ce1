package kcl

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
)

// A deferred delivery (consumers.DeferredHandler) returns before its batch is
// durable; the shard reads on, and its commits checkpoint each batch once it
// is, in order, never past one that is not. One goroutine per shard does it,
// started with the first batch that is not durable when its delivery returns;
// a batch durable by then (every synchronous sink) is checkpointed by the
// shard's own goroutine, as before, when nothing is waiting ahead of it.

// maxPendingBatches bounds a shard's batches delivered and not yet durable.
// Past it the shard asks the sinks to flush and waits: memory is bounded by
// the in-flight budget anyway, this bounds the bookkeeping of a shard that
// reads many small batches.
const maxPendingBatches = 512

// commit is one delivered batch waiting to be durable (or, with a
// checkpoint interval, to be checkpointed).
type commit struct {
	last     string // the batch's last sequence number
	state    []byte // the handler's state after the batch, staged with the checkpoint
	stateful bool   // state is a StateHandler's: stage it
	cp       kcl.IRecordProcessorCheckpointer
	done     chan error // the handler's durable answer; buffered
}

// durableCommit is a commit for a batch durable already, checkpointed later
// because of the checkpoint interval.
func durableCommit(last string, state []byte, stateful bool, cp kcl.IRecordProcessorCheckpointer) *commit {
	cm := &commit{last: last, state: state, stateful: stateful, cp: cp, done: make(chan error, 1)}
	cm.done <- nil
	return cm
}

// commits is a shard's queue of commits and the goroutine that checkpoints
// them.
type commits struct {
	p     *processor
	slots chan struct{} // one per commit queued: bounds the queue

	mu      sync.Mutex
	queue   []*commit
	running bool
	wake    chan struct{} // cap 1: a commit was queued
	idle    chan struct{} // closed when the queue is empty and nothing is being handled
	// hurry ends the wait for the checkpoint interval: the shard is being
	// settled (handed over, ended, released), urgent from then on.
	hurry  chan struct{}
	urgent atomic.Bool
}

func newCommits(p *processor) *commits {
	idle := make(chan struct{})
	close(idle)
	return &commits{p: p, slots: make(chan struct{}, maxPendingBatches), wake: make(chan struct{}, 1), idle: idle, hurry: make(chan struct{}, 1)}
}

// rush makes the commits checkpoint without waiting for the interval.
func (c *commits) rush() {
	c.urgent.Store(true)
	select {
	case c.hurry <- struct{}{}:
	default:
	}
}

// empty reports whether no commit is queued or being handled.
func (c *commits) empty() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.idle:
		return true
	default:
		return false
	}
}

// push queues a commit, waiting for a slot (after asking the sinks to flush
// when the queue is full); false if ctx ended first.
func (c *commits) push(ctx context.Context, cm *commit, flush func(context.Context) error) bool {
	select {
	case c.slots <- struct{}{}:
	default:
		c.p.log.Info("shard has the most batches allowed waiting to be durable; flushing the sinks", "batches", maxPendingBatches)
		if flush != nil {
			if err := flush(ctx); err != nil {
				c.p.log.Warn("flush of the sinks failed; waiting for their own flush", "err", err)
			}
		}
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return false
		}
	}
	c.mu.Lock()
	c.queue = append(c.queue, cm)
	select {
	case <-c.idle:
		c.idle = make(chan struct{})
	default:
	}
	start := !c.running
	c.running = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	if start {
		go c.run(ctx)
	}
	return true
}

// wait returns once every queued commit is handled, or ctx is done.
func (c *commits) wait(ctx context.Context) bool {
	c.mu.Lock()
	idle := c.idle
	c.mu.Unlock()
	select {
	case <-idle:
		return true
	case <-ctx.Done():
		return false
	}
}

// run checkpoints queued commits in order as they become durable, folding
// the ones already durable behind the first into one checkpoint. It ends
// when the queue is empty (push starts it again) or ctx is done.
func (c *commits) run(ctx context.Context) {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.running = false
			close(c.idle)
			c.mu.Unlock()
			return
		}
		head := c.queue[0]
		c.mu.Unlock()
		var err error
		select {
		case err = <-head.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		batch := []*commit{head}
		if err == nil {
			batch = c.durableBehind(batch)
			if c.holdForInterval(ctx) {
				batch = c.durableBehind(batch)
			}
		}
		c.handle(batch, err)
		c.mu.Lock()
		c.queue = c.queue[len(batch):]
		c.mu.Unlock()
		for range batch {
			<-c.slots
		}
	}
}

// holdForInterval holds a checkpoint until the shard's checkpoint interval
// has passed since its last one (or the shard is settled); true if it
// waited.
func (c *commits) holdForInterval(ctx context.Context) bool {
	every := c.p.c.cfg.CheckpointInterval
	if every <= 0 || c.urgent.Load() {
		return false
	}
	d := time.Until(c.p.lastCheckpoint.Add(every))
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.hurry:
	case <-ctx.Done():
	}
	return true
}

// durableBehind appends to batch the commits queued after it that are
// durable already, stopping at the first that is not (or failed: it is
// handled on its own).
func (c *commits) durableBehind(batch []*commit) []*commit {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cm := range c.queue[len(batch):] {
		select {
		case err := <-cm.done:
			if err != nil {
				cm.done <- err // handled by the next round, alone
				return batch
			}
			batch = append(batch, cm)
		default:
			return batch
		}
	}
	return batch
}

// handle checkpoints at the last of batch (all durable) or, when err says
// they never will be, stops the shard: nothing after them may be
// checkpointed, and the next owner reads them again. Their bytes leave the
// in-flight budget either way.
func (c *commits) handle(batch []*commit, err error) {
	p := c.p
	defer func() {
		for _, cm := range batch {
			p.c.inflight.done(cm.last)
		}
	}()
	if err != nil {
		if !p.stopped.Swap(true) {
			p.log.Warn("batch not made durable; the shard checkpoints nothing more and stops (the next owner reads it again)", "last_sequence_number", batch[0].last, "err", err)
		}
		return
	}
	if p.stopped.Load() {
		return
	}
	last := batch[len(batch)-1]
	if last.stateful {
		p.c.table.StageState(p.shardID, last.last, last.state)
	}
	seq := last.last
	p.checkpoint(last.cp, &seq)
}
