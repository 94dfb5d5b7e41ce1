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
	plain *kinesis.Client // without the read path's middlewares: its answer is not another read
	log   *slog.Logger

	mu sync.Mutex
	// newest is each shard's newest iterator and how to get one at its
	// position: the library reads a shard with the newest it was given (as
	// the read-rate gate assumes), so one per shard is kept, no more.
	newest map[string]iteratorStart
}

type iteratorStart struct {
	iterator string
	in       kinesis.GetShardIteratorInput
	issued   time.Time
}

func newIteratorRenewal(plain *kinesis.Client, log *slog.Logger) *iteratorRenewal {
	return &iteratorRenewal{plain: plain, log: log, newest: map[string]iteratorStart{}}
}

func (r *iteratorRenewal) remember(shard string, s iteratorStart) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.iterator == "" {
		delete(r.newest, shard) // the shard's end
		return
	}
	r.newest[shard] = s
}

// of returns how to renew iterator, the one shard is read with.
func (r *iteratorRenewal) of(shard, iterator string) (iteratorStart, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.newest[shard]
	return s, ok && s.iterator == iterator
}

// middleware is a kinesis.Options function; it must come first in the list
// so that it runs inside every other: a read renewed here does not wait
// for the budget or the read-rate gate again, and they see the read as the
// KCL made it. It learns a read's shard from the read-rate gate, outside
// it (withShard).
func (r *iteratorRenewal) middleware(o *kinesis.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("kinesis-ingest/iterator-renewal",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				switch x := in.Parameters.(type) {
				case *kinesis.GetShardIteratorInput:
					out, md, err := next.HandleInitialize(ctx, in)
					if res, ok := out.Result.(*kinesis.GetShardIteratorOutput); err == nil && ok {
						r.remember(aws.ToString(x.ShardId), iteratorStart{iterator: aws.ToString(res.ShardIterator), in: *x, issued: time.Now()})
					}
					return out, md, err
				case *kinesis.GetRecordsInput:
					shard := shardOf(ctx)
					start, known := r.of(shard, aws.ToString(x.ShardIterator))
					out, md, err := next.HandleInitialize(ctx, in)
					var expired *types.ExpiredIteratorException
					if err != nil && errors.As(err, &expired) && known && start.in.ShardIteratorType != types.ShardIteratorTypeLatest {
						fresh, ferr := r.plain.GetShardIterator(ctx, &start.in)
						if ferr != nil {
							return out, md, fmt.Errorf("%w (renewing the expired iterator failed too: %w)", err, ferr)
						}
						r.log.Info("shard iterator expired before its read (the read waited over 5 minutes): renewed at the same position",
							"shard_id", shard, "iterator_age", time.Since(start.issued).Round(time.Second),
							"position", string(start.in.ShardIteratorType)+" "+aws.ToString(start.in.StartingSequenceNumber))
						again := *x
						again.ShardIterator = fresh.ShardIterator
						in.Parameters = &again
						out, md, err = next.HandleInitialize(ctx, in)
					}
					res, ok := out.Result.(*kinesis.GetRecordsOutput)
					if err != nil || !ok || !known {
						// Not read (the shard's entry stays as it was), or a
						// chain begun elsewhere.
						return out, md, err
					}
					after := iteratorStart{iterator: aws.ToString(res.NextShardIterator), in: start.in, issued: time.Now()}
					if n := len(res.Records); n > 0 {
						after.in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
						after.in.StartingSequenceNumber = res.Records[n-1].SequenceNumber
						after.in.Timestamp = nil
					}
					r.remember(shard, after)
					return out, md, err
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
}
