package iceberg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/retry"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/rowcopy"
)

// Deferred durability (sinks.DeferredRowSink). Accept copies rows into the
// sink's buffer and returns; one goroutine commits the buffer when its
// oldest row has waited CommitInterval, when it passes half of
// BufferBytes, on Flush and on Close, and tells each Accept's durable once
// its rows are in the table.

// commitPolicy retries a commit that failed (the catalog or S3
// unreachable): the rows stay buffered, and so do their checkpoints.
var commitPolicy = retry.Policy{Initial: 200 * time.Millisecond, Max: 10 * time.Second}

// closeTimeout bounds Close's last commit.
const closeTimeout = 30 * time.Second

var errClosedUncommitted = errors.New("iceberg sink closed before these rows were committed; they are read again from the checkpoint")

// row is a buffered row and its place in its shard.
type row struct {
	r   record.Row
	pos pos
	key string // its shard's position property
}

// Accept checks rows, copies those that fit and buffers them.
func (s *Sink) Accept(ctx context.Context, rows []record.Row, durable func(error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var rejected []int
	var rerr error
	var scratch []byte
	keep := make([]*record.Row, 0, len(rows))
	s.mu.Lock()
	parts := s.parts
	s.mu.Unlock()
	for i := range rows {
		r := &rows[i]
		err := s.check.Check(r, &scratch)
		if err == nil {
			_, _, err = partitionValues(parts, r)
		}
		if err != nil {
			rejected = append(rejected, i)
			if rerr == nil {
				rerr = err
			}
			continue
		}
		keep = append(keep, r)
	}
	var rejErr error
	if len(rejected) > 0 {
		rejErr = &sinks.RejectedError{Index: rejected, Err: rerr}
	}
	if len(keep) == 0 {
		durable(nil)
		return rejErr
	}
	copies := rowcopy.Rows(keep)
	b := &batch{rows: make([]row, len(copies)), durable: durable}
	var key, source, shard string
	for i := range copies {
		r := &copies[i]
		// An Accept's rows are one shard's: one key for all of them.
		if i == 0 || r.Origin.Source != source || r.Origin.ShardID != shard {
			source, shard = r.Origin.Source, r.Origin.ShardID
			key = propertyKey(s.cfg.Application, source, shard)
		}
		b.rows[i] = row{r: *r, pos: posOf(&r.Origin), key: key}
		b.bytes += rowcopy.Size(r)
	}
	if err := s.waitRoom(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("iceberg sink: closed")
	}
	s.accepted++
	b.gen = s.accepted
	first := len(s.pending) == 0
	if first {
		s.oldest = time.Now()
	}
	s.pending = append(s.pending, b)
	s.held += b.bytes
	early := s.held >= s.cfg.BufferBytes/2
	s.mu.Unlock()
	switch {
	case early:
		s.poke()
	case first:
		// The committer waits for nothing while the buffer is empty: it
		// must now wait for this batch's commit_interval.
		select {
		case s.arm <- struct{}{}:
		default:
		}
	}
	return rejErr
}

// waitRoom waits while the sink holds more than BufferBytes: the shards
// stop reading until a commit makes room.
func (s *Sink) waitRoom(ctx context.Context) error {
	return s.waitUntil(ctx, func() bool { return s.held <= s.cfg.BufferBytes || s.closed })
}

// waitUntil asks the committer to commit and waits until cond (called
// under s.mu) holds after a commit, or ctx ends.
func (s *Sink) waitUntil(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		s.mu.Unlock()
		s.poke()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Sink) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Write is Accept, then a wait for the commit of its rows (the
// synchronous contract).
func (s *Sink) Write(ctx context.Context, rows []record.Row) error {
	done := make(chan error, 1)
	err := s.Accept(ctx, rows, func(err error) { done <- err })
	var rej *sinks.RejectedError
	if err != nil && !errors.As(err, &rej) {
		return err
	}
	s.poke()
	select {
	case derr := <-done:
		if derr != nil {
			return derr
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Flush commits every row accepted before it.
func (s *Sink) Flush(ctx context.Context) error {
	s.mu.Lock()
	target := s.accepted
	s.mu.Unlock()
	return s.waitUntil(ctx, func() bool { return s.committed >= target })
}

// Close commits what is buffered (within closeTimeout) and stops.
func (s *Sink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	return s.closeErr
}

// run is the committer.
func (s *Sink) run() {
	defer close(s.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		wait := time.Hour
		if len(s.pending) > 0 {
			wait = max(0, time.Until(s.oldest.Add(s.cfg.CommitInterval)))
		}
		s.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-s.kick:
		case <-s.arm:
			continue // the buffer's first batch: wait for its interval
		case <-s.stop:
			s.closeErr = s.finish()
			return
		}
		batches := s.take()
		if len(batches) == 0 {
			continue
		}
		err := commitPolicy.Do(ctx, retry.Options{OnRetry: func(a retry.Attempt) {
			s.log.Warn("iceberg commit failed; retrying (the rows stay buffered, their checkpoints wait)", "table", s.name, "attempt", a.N, "wait", a.Wait, "error", a.Err)
			if s.cfg.Observer != nil {
				s.cfg.Observer.CommitFailed(s.cfg.Dataset)
			}
		}}, func(ctx context.Context) error { return s.commit(ctx, batches) })
		if err != nil && ctx.Err() != nil {
			// Stopping: the last commit gets its own time.
			s.putBack(batches)
			s.closeErr = s.finish()
			return
		}
		s.settle(batches, err)
	}
}

// take removes the pending batches.
func (s *Sink) take() []*batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.pending
	s.pending = nil
	return b
}

func (s *Sink) putBack(b []*batch) {
	s.mu.Lock()
	s.pending = append(b, s.pending...)
	s.mu.Unlock()
}

// settle tells the batches' durable and wakes Flush and Accept.
func (s *Sink) settle(batches []*batch, err error) {
	for _, b := range batches {
		b.durable(err)
	}
	s.mu.Lock()
	for _, b := range batches {
		s.held -= b.bytes
		s.committed = max(s.committed, b.gen)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// finish commits what is left at Close, once, within closeTimeout.
func (s *Sink) finish() error {
	batches := s.take()
	if len(batches) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	err := s.commit(ctx, batches)
	if err != nil {
		s.log.Warn("iceberg sink closed with rows not committed; they are read again from their checkpoints", "table", s.name, "error", err)
		err = errClosedUncommitted
	}
	s.settle(batches, err)
	if err != nil {
		return fmt.Errorf("iceberg sink: table %s: %w", s.name, err)
	}
	return nil
}
