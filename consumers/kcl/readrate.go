package kcl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"

	"github.com/kinesis-ingest/kinesis-ingest/retry"
)

// ReadLimiter spaces the GetRecords calls of one worker, across the shards
// of all its sources (share one, as the Budget is shared):
//
//   - a per-shard cap (min_read_interval): two reads of one shard start at
//     least that far apart, whatever else the worker reads, so a shard whose
//     5 reads a second other applications share keeps its part of them;
//   - a worker-wide cap (max_reads_per_second): the worker's reads take
//     turns in the order their shards became ready, so when one worker
//     holds many shards each waiting shard gets the next slot in line and
//     none can take two while another waits;
//   - a backoff after throttling: a GetRecords answered
//     ProvisionedThroughputExceededException (after the SDK's own 3
//     attempts) puts the shard's next read 1 s later, doubling with each
//     consecutive throttled call up to 10 s, jittered (retry.Policy), until
//     a read succeeds. The library's own answer to it is a wait of at most
//     the rest of its current second, and after 5 such retries it ends the
//     shard's consumer (its lease is then taken again by a lease pass); the
//     backoff here is per shard and outlives that.
//
// Enhanced fan-out does not call GetRecords: none of it applies there. It is
// safe for concurrent use.
type ReadLimiter struct {
	gap      time.Duration // per shard; 0: none
	interval time.Duration // worker-wide, 1s / max_reads_per_second; 0: none
	backoff  retry.Policy

	mu     sync.Mutex
	next   time.Time // the worker's next free slot
	shards map[string]*shardReads
}

type shardReads struct {
	next      time.Time // the earliest start of the shard's next read
	throttled int       // consecutive throttled reads
}

// throttleBackoff is the wait after a throttled read: Kinesis refuses a
// shard's reads for the rest of a second after its 5th, and for up to 5 s
// after a 10 MiB answer.
var throttleBackoff = retry.Policy{Initial: time.Second, Max: 10 * time.Second}

// NewReadLimiter returns a limiter that starts the reads of one shard at
// least minInterval apart and the worker's at most perSecond a second
// (0: no such cap; throttled reads are backed off all the same).
func NewReadLimiter(minInterval time.Duration, perSecond int) (*ReadLimiter, error) {
	if minInterval < 0 || perSecond < 0 {
		return nil, fmt.Errorf("read limiter: min interval %v and reads per second %d must not be negative (0 is no cap)", minInterval, perSecond)
	}
	l := &ReadLimiter{gap: minInterval, backoff: throttleBackoff, shards: map[string]*shardReads{}}
	if perSecond > 0 {
		l.interval = time.Second / time.Duration(perSecond)
	}
	return l, nil
}

func (l *ReadLimiter) shard(key string) *shardReads {
	s := l.shards[key]
	if s == nil {
		s = &shardReads{}
		l.shards[key] = s
	}
	return s
}

// ready is when the shard keyed key may read next, by its own spacing and
// backoff.
func (l *ReadLimiter) ready(key string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.shard(key).next
}

// reserve takes the worker's next slot at or after now for the shard keyed
// key, which is ready, and returns it; the shard's next read is then at
// least gap after it. Slots go in the order of the calls.
func (l *ReadLimiter) reserve(key string, now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	slot := now
	if l.interval > 0 {
		if l.next.After(slot) {
			slot = l.next
		}
		l.next = slot.Add(l.interval)
	}
	s := l.shard(key)
	if next := slot.Add(l.gap); next.After(s.next) {
		s.next = next
	}
	return slot
}

// throttled backs the shard keyed key off after a throttled read at now.
func (l *ReadLimiter) throttled(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.shard(key)
	s.throttled++
	ws := l.backoff.Waits(min(s.throttled, 8)) // 8 doublings are past any Max
	w := retry.Jitter(ws[len(ws)-1])
	if next := now.Add(w); next.After(s.next) {
		s.next = next
	}
	return w
}

// succeeded ends the shard's backoff.
func (l *ReadLimiter) succeeded(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shard(key).throttled = 0
}

// errReadStopping ends a read that waited for its slot while the consumer
// stops.
var errReadStopping = errors.New("consumer stopping: read not started (waiting for its read slot)")

// wait returns once the shard keyed key may read: first its own spacing
// and backoff, then a slot of the worker's, so that a shard backing off
// holds no slot others could use. It returns early with ctx's error or
// errReadStopping once stop is closed.
func (l *ReadLimiter) wait(ctx context.Context, stop <-chan struct{}, key string) error {
	for {
		d := time.Until(l.ready(key))
		if d <= 0 {
			break
		}
		if err := sleep(ctx, stop, d); err != nil {
			return err
		}
	}
	return sleep(ctx, stop, time.Until(l.reserve(key, time.Now())))
}

func sleep(ctx context.Context, stop <-chan struct{}, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-stop:
		return errReadStopping
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readGate ties a ReadLimiter to one consumer's Kinesis client: a
// GetRecords request names only its shard iterator, so the gate learns
// which shard each iterator reads from the answers that hand them out
// (GetShardIterator, and each GetRecords' NextShardIterator), and puts the
// shard of every call it can name in the call's context (for the throttle
// counter, see throttle.go).
type readGate struct {
	limiter *ReadLimiter
	stream  string // keys shards apart across sources sharing the limiter
	stop    <-chan struct{}
	log     *slog.Logger

	mu       sync.Mutex
	shardOf  map[string]string // iterator to shard
	iterator map[string]string // shard to its newest iterator (the only one kept)
}

func newReadGate(l *ReadLimiter, stream string, stop <-chan struct{}, log *slog.Logger) *readGate {
	return &readGate{limiter: l, stream: stream, stop: stop, log: log, shardOf: map[string]string{}, iterator: map[string]string{}}
}

// learn remembers that iterator reads shard, forgetting the shard's
// previous one: the library reads each shard with the newest it was given.
func (g *readGate) learn(shard, iterator string) {
	if shard == "" || iterator == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if old, ok := g.iterator[shard]; ok {
		delete(g.shardOf, old)
	}
	g.iterator[shard], g.shardOf[iterator] = iterator, shard
}

func (g *readGate) shardOfIterator(iterator string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.shardOf[iterator]
}

// middleware is a kinesis.Options function installing the gate. Added after
// the in-flight budget's, it runs outside it: a read waits for its slot
// before it reserves bytes of the budget, so a shard waiting to read holds
// none.
func (g *readGate) middleware(o *kinesis.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("kinesis-ingest/read-rate",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				var shard string
				switch x := in.Parameters.(type) {
				case *kinesis.GetShardIteratorInput:
					shard = aws.ToString(x.ShardId)
				case *kinesis.SubscribeToShardInput:
					shard = aws.ToString(x.ShardId)
				case *kinesis.GetRecordsInput:
					shard = g.shardOfIterator(aws.ToString(x.ShardIterator))
					if shard == "" {
						// An iterator this gate never saw handed out: nothing
						// to space it by. The library reads only iterators
						// it got through this client.
						break
					}
					if err := g.limiter.wait(ctx, g.stop, g.key(shard)); err != nil {
						return middleware.InitializeOutput{}, middleware.Metadata{}, err
					}
				default:
					return next.HandleInitialize(ctx, in)
				}
				out, md, err := next.HandleInitialize(withShard(ctx, shard), in)
				switch res := out.Result.(type) {
				case *kinesis.GetShardIteratorOutput:
					if err == nil {
						g.learn(shard, aws.ToString(res.ShardIterator))
					}
				case *kinesis.GetRecordsOutput:
					if err == nil {
						g.learn(shard, aws.ToString(res.NextShardIterator))
					}
				}
				if _, ok := in.Parameters.(*kinesis.GetRecordsInput); ok && shard != "" {
					switch {
					case err == nil:
						g.limiter.succeeded(g.key(shard))
					case isThrottle(err, kinesisThrottles):
						w := g.limiter.throttled(g.key(shard), time.Now())
						g.log.Warn("GetRecords throttled; backing the shard off", "shard_id", shard, "next_read_in", w, "err", err)
					}
				}
				return out, md, err
			}), middleware.Before)
	})
}

func (g *readGate) key(shard string) string { return g.stream + "/" + shard }
