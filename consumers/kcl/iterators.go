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
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"
)

// A shard iterator expires five minutes after Kinesis hands it out, and the
// KCL reads with the one the previous GetRecords returned only once the
// batch before is delivered: a read that waited that long (for the in-flight
// budget, the read-rate cap, or a sink outage that held the batch) fails with
// ExpiredIteratorException, which the KCL's polling consumer does not retry.
// The consumer would end, its lease go back to the passes and the shard
// restart from its checkpoint, reading again what was delivered since and
// idling meanwhile. iteratorRenewal, innermost on GetRecords, instead asks
// for a fresh iterator at the same position and reads again at once: after
// the last record the expired iterator's predecessor returned
// (AFTER_SEQUENCE_NUMBER), or, when nothing was read since, where the
// GetShardIterator that began the chain started. A chain that began at
// LATEST with nothing read since is left to fail: a new LATEST would skip
// what arrived meanwhile.
type iteratorRenewal struct {
	plain   *kinesis.Client // without the read path's middlewares: its answer is not another read
	log     *slog.Logger
	onRenew func()

	mu     sync.Mutex
	where  map[string]iteratorStart // iterator → how to get one at the same position
	pruned int                      // len(where) after the last prune
}

type iteratorStart struct {
	in     kinesis.GetShardIteratorInput
	issued time.Time
}

// forgetAfter is how long an iterator is remembered: past Kinesis's five
// minutes a little, so that the expired ones the renewal is for are known.
const forgetAfter = 15 * time.Minute

func newIteratorRenewal(plain *kinesis.Client, log *slog.Logger, onRenew func()) *iteratorRenewal {
	return &iteratorRenewal{plain: plain, log: log, onRenew: onRenew, where: map[string]iteratorStart{}}
}

func (r *iteratorRenewal) remember(iterator string, in kinesis.GetShardIteratorInput, now time.Time) {
	if iterator == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.where[iterator] = iteratorStart{in: in, issued: now}
	// Iterators a consumer that ended left behind are never read: dropped
	// once old, each time the map has doubled (amortised O(1) per read).
	if len(r.where) > 2*r.pruned+64 {
		for it, s := range r.where {
			if now.Sub(s.issued) > forgetAfter {
				delete(r.where, it)
			}
		}
		r.pruned = len(r.where)
	}
}

func (r *iteratorRenewal) take(iterator string) (iteratorStart, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.where[iterator]
	delete(r.where, iterator)
	return s, ok
}

// middleware is a kinesis.Options function; it must come first in the list
// so that it runs inside every other: a read renewed here does not wait
// for the budget or the read-rate gate again, and they see the read as the
// KCL made it.
func (r *iteratorRenewal) middleware(o *kinesis.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("kinesis-ingest/iterator-renewal",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				switch x := in.Parameters.(type) {
				case *kinesis.GetShardIteratorInput:
					out, md, err := next.HandleInitialize(ctx, in)
					if res, ok := out.Result.(*kinesis.GetShardIteratorOutput); err == nil && ok {
						r.remember(aws.ToString(res.ShardIterator), *x, time.Now())
					}
					return out, md, err
				case *kinesis.GetRecordsInput:
					start, known := r.take(aws.ToString(x.ShardIterator))
					out, md, err := next.HandleInitialize(ctx, in)
					var expired *types.ExpiredIteratorException
					if err != nil && errors.As(err, &expired) && known && start.in.ShardIteratorType != types.ShardIteratorTypeLatest {
						fresh, ferr := r.plain.GetShardIterator(ctx, &start.in)
						if ferr != nil {
							return out, md, fmt.Errorf("%w (renewing the expired iterator failed too: %w)", err, ferr)
						}
						r.log.Info("shard iterator expired before its read (the read waited over 5 minutes): renewed at the same position",
							"shard_id", aws.ToString(start.in.ShardId), "iterator_age", time.Since(start.issued).Round(time.Second),
							"position", string(start.in.ShardIteratorType)+" "+aws.ToString(start.in.StartingSequenceNumber))
						if r.onRenew != nil {
							r.onRenew()
						}
						again := *x
						again.ShardIterator = fresh.ShardIterator
						in.Parameters = &again
						start.issued = time.Now()
						out, md, err = next.HandleInitialize(ctx, in)
					}
					res, ok := out.Result.(*kinesis.GetRecordsOutput)
					if err != nil || !ok || res.NextShardIterator == nil {
						if err != nil && known {
							// Not read: the KCL ends this consumer, or (a
							// throttle) reads with the same iterator again.
							r.remember(aws.ToString(x.ShardIterator), start.in, start.issued)
						}
						return out, md, err
					}
					if !known {
						// A chain this client did not begin: nothing names
						// its shard.
						return out, md, err
					}
					after := start.in
					if n := len(res.Records); n > 0 {
						after.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
						after.StartingSequenceNumber = res.Records[n-1].SequenceNumber
						after.Timestamp = nil
					}
					r.remember(aws.ToString(res.NextShardIterator), after, time.Now())
					return out, md, err
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
}
