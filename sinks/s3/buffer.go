package s3

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/retry"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/rowcopy"
)

// Deferred durability (sinks.DeferredRowSink). Accept copies rows into their
// chain's buffer and returns; a chain's buffer becomes its next object when
// it reaches MaxBytes, when its oldest row has waited MaxInterval, when the
// sink's buffers together pass BufferBytes (the largest chains go first),
// or on Flush and Close. Each Accept's durable is told once every chain it
// touched has stored an object reaching its last row there. The chain's
// objects are still created one after the other, each starting after the
// newest, so everything docs/lake.md says of them holds unchanged; only
// where an object ends now depends on time as well as on the batches, which
// the chain design never relied on.

// DefaultMaxInterval is Config.MaxInterval when 0.
const DefaultMaxInterval = time.Minute

// DefaultBufferBytes is Config.BufferBytes when 0.
const DefaultBufferBytes int64 = 256 << 20

// maxUploads bounds the objects a sink uploads at once.
const maxUploads = 8

// flushPolicy retries a flush that failed (S3 unreachable): the rows stay
// buffered, and so does the checkpoint, until it succeeds.
var flushPolicy = retry.Policy{Initial: 200 * time.Millisecond, Max: 10 * time.Second}

// errClosedUnflushed tells the durable of rows a sink closed without
// storing: their shard's checkpoint stays before them.
var errClosedUnflushed = errors.New("s3 sink closed before these rows were stored; they are read again from the checkpoint")

// ticket is one Accept's wait: durable is told when every chain it waits
// for has stored its rows.
type ticket struct {
	mu      sync.Mutex
	left    int
	armed   bool
	err     error
	durable func(error)
}

func (t *ticket) add() {
	t.mu.Lock()
	t.left++
	t.mu.Unlock()
}

// done counts one chain's answer.
func (t *ticket) done(err error) {
	t.mu.Lock()
	t.left--
	if err != nil && t.err == nil {
		t.err = err
	}
	f, ferr := t.due()
	t.mu.Unlock()
	if f != nil {
		f(ferr)
	}
}

// arm says every chain has been counted.
func (t *ticket) arm() {
	t.mu.Lock()
	t.armed = true
	f, ferr := t.due()
	t.mu.Unlock()
	if f != nil {
		f(ferr)
	}
}

func (t *ticket) due() (func(error), error) {
	if !t.armed || t.left > 0 || t.durable == nil {
		return nil, nil
	}
	f := t.durable
	t.durable = nil
	return f, t.err
}

// waiter is a ticket waiting for its chain to store the row at need.
type waiter struct {
	need pos
	t    *ticket
}

// Accept implements sinks.DeferredRowSink.
func (s *RowSink) Accept(ctx context.Context, rows []record.Row, durable func(error)) error {
	_, err := s.accept(ctx, rows, durable)
	return err
}

// accept buffers rows and returns the chains they went to. Learning a
// chain's head (its first Accept) is its only call to S3.
func (s *RowSink) accept(ctx context.Context, rows []record.Row, durable func(error)) ([]*chain, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	groups, order, refused, refusal := s.group(rows)
	// Every chain's head first: a failure here takes nothing.
	chains := make([]*chain, len(order))
	for i, k := range order {
		c := s.chain(k)
		if err := c.ensureKnown(ctx, s); err != nil {
			return nil, err
		}
		chains[i] = c
	}
	t := &ticket{durable: durable}
	for i, k := range order {
		s.buffer(chains[i], groups[k], t)
	}
	t.arm()
	s.afterAccept(chains)
	s.waitBelowBudget(ctx)
	if refused != nil {
		return chains, &sinks.RejectedError{Index: refused, Err: refusal}
	}
	return chains, nil
}

// group sorts rows by chain, in stream order within each; rows the format
// or the partitioning cannot take are refused.
func (s *RowSink) group(rows []record.Row) (map[chainKey][]item, []chainKey, []int, error) {
	groups := map[chainKey][]item{}
	var order []chainKey
	var refused []int
	var refusal error
	var scratch []byte
	for i := range rows {
		r := &rows[i]
		p, err := posOf(&r.Origin)
		if err == nil {
			err = s.enc.check(r, &scratch)
		}
		var part string
		if err == nil {
			part, err = s.partition(r)
		}
		if err != nil {
			refused = append(refused, i)
			refusal = errors.Join(refusal, fmt.Errorf("row %d (%s %s): %w", i, r.Origin.ShardID, r.Origin.SequenceNumber, err))
			continue
		}
		k := chainKey{r.Origin.ShardID, part}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], item{row: r, pos: p})
	}
	return groups, order, refused, refusal
}

// buffer appends items (in stream order) to c's buffer, copied, except the
// ones c holds already (stored, or buffered by an earlier Accept: a replay,
// a retried batch), and makes t wait for c to store the last of them.
func (s *RowSink) buffer(c *chain, items []item, t *ticket) {
	c.mu.Lock()
	defer c.mu.Unlock()
	need := items[len(items)-1].pos
	skip := 0
	if c.has {
		skip, _ = slices.BinarySearchFunc(items, c.accepted, func(it item, last pos) int {
			if it.pos.cmp(last) <= 0 {
				return -1
			}
			return 1
		})
	}
	if skip > 0 {
		s.cfg.Observer.Duplicates(s.cfg.Dataset, skip)
	}
	var added int64
	for _, it := range copyItems(items[skip:]) {
		n := rowcopy.Size(it.row)
		c.buf = append(c.buf, it)
		c.bufBytes += n
		added += n
	}
	if skip < len(items) {
		if c.since.IsZero() {
			c.since = time.Now()
		}
		c.accepted, c.has = need, true
	}
	if added > 0 {
		s.buffered.Add(added)
		s.cfg.Observer.Buffered(s.cfg.Dataset, added)
	}
	if !c.empty && need.cmp(c.stored) <= 0 {
		return
	}
	t.add()
	c.waiters = append(c.waiters, waiter{need: need, t: t})
}

// afterAccept starts the flushes the new rows made due: a chain at
// MaxBytes, and the largest chains while the sink holds more than
// BufferBytes.
func (s *RowSink) afterAccept(touched []*chain) {
	for _, c := range touched {
		c.mu.Lock()
		full := c.bufBytes >= s.cfg.MaxBytes
		c.mu.Unlock()
		if full {
			s.flushLater(c, FlushSize)
		}
	}
	if s.buffered.Load() <= s.cfg.BufferBytes {
		return
	}
	s.mu.Lock()
	all := make([]*chain, 0, len(s.chains))
	for _, c := range s.chains {
		all = append(all, c)
	}
	s.mu.Unlock()
	type sized struct {
		c *chain
		n int64
	}
	var list []sized
	for _, c := range all {
		c.mu.Lock()
		if c.bufBytes > 0 && !c.queued {
			list = append(list, sized{c, c.bufBytes})
		}
		c.mu.Unlock()
	}
	slices.SortFunc(list, func(a, b sized) int { return int(b.n - a.n) })
	over := s.buffered.Load() - s.cfg.BufferBytes/2
	for _, e := range list {
		if over <= 0 {
			break
		}
		s.flushLater(e.c, FlushMemory)
		over -= e.n
	}
}

// waitBelowBudget holds the Accept (and so its shard) while the sink's
// buffers exceed BufferBytes, until flushes bring them under it: memory
// stays bounded by BufferBytes plus one Accept per shard, whatever the
// number of chains. A ctx that ends returns at once: the rows are taken
// already.
func (s *RowSink) waitBelowBudget(ctx context.Context) {
	for s.buffered.Load() > s.cfg.BufferBytes {
		s.mu.Lock()
		freed := s.freed
		s.mu.Unlock()
		if s.buffered.Load() <= s.cfg.BufferBytes {
			return
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return
		case <-s.bgCtx.Done():
			return
		}
	}
}

// release takes n stored or dropped bytes off the buffers' total and wakes
// the Accepts waiting for room.
func (s *RowSink) release(n int64) {
	if n == 0 {
		return
	}
	s.buffered.Add(-n)
	s.cfg.Observer.Buffered(s.cfg.Dataset, -n)
	s.mu.Lock()
	close(s.freed)
	s.freed = make(chan struct{})
	s.mu.Unlock()
}

// flushLater flushes c in the background, retrying until it is stored or
// the sink closes; a chain already queued is not queued twice.
func (s *RowSink) flushLater(c *chain, reason string) {
	c.mu.Lock()
	if c.queued || len(c.buf) == 0 {
		c.mu.Unlock()
		return
	}
	c.queued = true
	c.mu.Unlock()
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer func() {
			c.mu.Lock()
			c.queued = false
			c.mu.Unlock()
		}()
		s.uploads <- struct{}{}
		defer func() { <-s.uploads }()
		_ = flushPolicy.Do(s.bgCtx, retryOpts(s, c), func(ctx context.Context) error {
			return s.flushChain(ctx, c, reason)
		})
	}()
}

func retryOpts(s *RowSink, c *chain) retry.Options {
	return retry.Options{OnRetry: func(a retry.Attempt) {
		s.log.Warn("flush to S3 failed; the rows stay buffered and their shard's checkpoint waits; retrying",
			"chain", s.dir(c.key.partition)+c.key.shard, "attempt", a.N, "retry_in", a.Wait, "err", a.Err)
	}}
}

// flushChain stores c's buffered rows as its next objects. On an error the
// rows not stored go back to the front of the buffer.
func (s *RowSink) flushChain(ctx context.Context, c *chain, reason string) error {
	c.io.Lock()
	defer c.io.Unlock()
	c.mu.Lock()
	items, n := c.buf, c.bufBytes
	c.buf, c.bufBytes, c.since = nil, 0, time.Time{}
	c.mu.Unlock()
	if len(items) == 0 {
		return nil
	}
	s.cfg.Observer.Flushed(s.cfg.Dataset, reason)
	rest, err := s.store(ctx, c, items)
	var back int64
	for _, it := range rest {
		back += rowcopy.Size(it.row)
	}
	if len(rest) > 0 {
		c.mu.Lock()
		c.buf = append(rest, c.buf...)
		c.bufBytes += back
		if c.since.IsZero() {
			c.since = time.Now()
		}
		c.mu.Unlock()
	}
	s.release(n - back)
	return err
}

// store appends items (of one chain, in stream order, after what it holds
// or overlapping it) to the chain, as objects of at most MaxBytes each. It
// returns the items not stored when it fails. c.io is held.
func (s *RowSink) store(ctx context.Context, c *chain, items []item) ([]item, error) {
	dir := s.dir(c.key.partition)
	for conflicts := 0; ; {
		if !c.known {
			if err := s.learn(ctx, dir, c.key.shard, c); err != nil {
				return items, err
			}
			// Another writer's objects may hold rows someone waits for.
			s.satisfy(c)
		}
		skip := 0
		if !c.empty {
			skip, _ = slices.BinarySearchFunc(items, c.stored, func(it item, last pos) int {
				if it.pos.cmp(last) <= 0 {
					return -1
				}
				return 1
			})
		}
		if skip > 0 {
			s.cfg.Observer.Duplicates(s.cfg.Dataset, skip)
		}
		items = items[skip:]
		for len(items) > 0 {
			n := s.fit(items)
			err := s.put(ctx, dir, c.key.shard, items[:n])
			if isConflict(err) {
				conflicts++
				if conflicts > maxConflicts {
					return items, fmt.Errorf("s3 sink: chain %s%s-: %d conflicting writers in one flush; check that no other deployment writes the same prefix: %w", dir, c.key.shard, conflicts, err)
				}
				s.cfg.Observer.Conflict(s.cfg.Dataset)
				s.log.Info("another writer stored the next object of the chain; learning its head again", "chain", dir+c.key.shard)
				c.known = false
				break
			}
			if err != nil {
				return items, err
			}
			c.mu.Lock()
			c.stored, c.empty = items[n-1].pos, false
			c.mu.Unlock()
			s.satisfy(c)
			items = items[n:]
		}
		if len(items) == 0 {
			return nil, nil
		}
	}
}

// satisfy tells the waiters of c whose rows it has stored. c.io is held.
func (s *RowSink) satisfy(c *chain) {
	c.mu.Lock()
	if !c.empty && (!c.has || c.accepted.cmp(c.stored) < 0) {
		// The chain holds rows past what this sink took (another writer's,
		// or learned at its first Accept): nothing up to there is new.
		c.accepted, c.has = c.stored, true
	}
	var ready []*ticket
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !c.empty && w.need.cmp(c.stored) <= 0 {
			ready = append(ready, w.t)
			continue
		}
		kept = append(kept, w)
	}
	clear(c.waiters[len(kept):])
	c.waiters = kept
	c.mu.Unlock()
	for _, t := range ready {
		t.done(nil)
	}
}

// ensureKnown learns c's head if this sink has not yet.
func (c *chain) ensureKnown(ctx context.Context, s *RowSink) error {
	c.io.Lock()
	defer c.io.Unlock()
	if c.known {
		return nil
	}
	if err := s.learn(ctx, s.dir(c.key.partition), c.key.shard, c); err != nil {
		return err
	}
	s.satisfy(c)
	return nil
}

// Flush implements sinks.DeferredRowSink: every chain's buffer is stored
// before it returns, retried until ctx ends.
func (s *RowSink) Flush(ctx context.Context) error {
	return s.flushAll(ctx, FlushAsked, flushPolicy)
}

// flushAll stores every chain's buffer, each retried by policy.
func (s *RowSink) flushAll(ctx context.Context, reason string, policy retry.Policy) error {
	s.mu.Lock()
	all := make([]*chain, 0, len(s.chains))
	for _, c := range s.chains {
		all = append(all, c)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(all))
	sem := make(chan struct{}, maxUploads)
	for i, c := range all {
		// Waiters without a buffer: a background flush holds the rows
		// (flushChain took them out of buf). flushChain waits for it on
		// c.io and then stores whatever it put back, so that Flush and
		// Close return only once those rows are stored too, and Close
		// does not cancel their upload with bgCtx after it.
		c.mu.Lock()
		has := len(c.buf) > 0 || len(c.waiters) > 0
		c.mu.Unlock()
		if !has {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = policy.Do(ctx, retryOpts(s, c), func(ctx context.Context) error {
				return s.flushChain(ctx, c, reason)
			})
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ages flushes, every tick, the chains whose oldest row has waited
// MaxInterval.
func (s *RowSink) ages() {
	defer s.bg.Done()
	tick := min(max(s.cfg.MaxInterval/4, 20*time.Millisecond), 5*time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-s.bgCtx.Done():
			return
		case now := <-t.C:
			s.mu.Lock()
			var due []*chain
			for _, c := range s.chains {
				c.mu.Lock()
				if !c.since.IsZero() && now.Sub(c.since) >= s.cfg.MaxInterval {
					due = append(due, c)
				}
				c.mu.Unlock()
			}
			s.mu.Unlock()
			for _, c := range due {
				s.flushLater(c, FlushAge)
			}
		}
	}
}

// Buffered returns the bytes the sink holds not yet stored (by the rows'
// size in memory).
func (s *RowSink) Buffered() int64 { return s.buffered.Load() }
