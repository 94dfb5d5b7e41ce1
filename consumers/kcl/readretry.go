package kcl

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/kinesis-ingest/kinesis-ingest/retry"
)

// The KCL's polling consumer ends on any failed GetShardIterator or
// GetRecords but a throttle; the SDK's own retries (3 attempts) draw on a
// client-wide retry quota that a burst of timeouts across a worker's shards
// empties, after which every failing call fails at once. At 256 shards on
// one saturated kinesis-mock that ended hundreds of consumers a minute, each
// releasing its lease to the passes (leases churned while every renewal
// succeeded). readRetry retries such a call in place while it is transient
// (no answer, a timeout, a 5xx, the quota), for up to readRetryFor, so that a
// slow or briefly absent Kinesis slows the shard down instead of moving it.
// Past that, or on an error Kinesis meant (an unknown stream, access denied,
// an expired iterator: iterators.go), the call fails as before and the
// consumer ends. Throttles are left to the KCL and the read-rate gate, which
// count them and back the shard off.
type readRetry struct {
	stop <-chan struct{}
	log  *slog.Logger
	// renew renews this worker's lease on a shard. The KCL renews a shard's
	// lease only once its GetShardIterator succeeded, so the retries of
	// that call renew it themselves, or the lease would expire under them
	// and another worker take the shard.
	renew func(shard string) error
}

// readRetryFor bounds the retries of one call (no attempt starts after it):
// a shard whose reads keep failing for that long on this worker is released, so that another worker,
// on another path, can try.
const readRetryFor = 30 * time.Second

var readRetryPolicy = retry.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second}

func newReadRetry(stop <-chan struct{}, log *slog.Logger, renew func(shard string) error) *readRetry {
	return &readRetry{stop: stop, log: log, renew: renew}
}

func (r *readRetry) middleware(o *kinesis.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("kinesis-ingest/read-retry",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				starting := false
				switch in.Parameters.(type) {
				case *kinesis.GetRecordsInput:
				case *kinesis.GetShardIteratorInput:
					starting = true
				default:
					return next.HandleInitialize(ctx, in)
				}
				// The first attempt as if the middleware were not there: a
				// read that succeeds (nearly all) pays nothing for it.
				first := time.Now()
				out, md, err := next.HandleInitialize(ctx, in)
				if err == nil || !transientRead(err) {
					return out, md, err
				}
				return r.retry(ctx, in, next, starting, first, err)
			}), middleware.Before)
	})
}

// retry makes a read that failed transiently (failed: its error) again
// until it succeeds, fails otherwise, readRetryFor has passed since its first
// attempt (the window bounds when an attempt may start, never one under way:
// each has the SDK's attempts of call_timeout, which may by themselves
// outlast it), its lease cannot be renewed, or the worker stops.
func (r *readRetry) retry(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler, starting bool, first time.Time, failed error) (middleware.InitializeOutput, middleware.Metadata, error) {
	shard := shardOf(ctx)
	if x, ok := in.Parameters.(*kinesis.GetShardIteratorInput); ok {
		shard = aws.ToString(x.ShardId)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var out middleware.InitializeOutput
	var md middleware.Metadata
	attempts := 0
	err := readRetryPolicy.Do(ctx, retry.Options{
		Retryable: func(err error) bool {
			if !transientRead(err) || time.Since(first) >= readRetryFor {
				return false
			}
			if starting && r.renew != nil {
				if rerr := r.renew(shard); rerr != nil {
					r.log.Warn("Kinesis read failed, and the shard's lease could not be renewed: not retried", "shard_id", shard, "err", err, "renew_err", rerr)
					return false
				}
			}
			return true
		},
		OnRetry: func(a retry.Attempt) {
			r.log.Warn("Kinesis read failed; retrying in place (the shard keeps its lease)", "shard_id", shard, "attempt", a.N, "retry_in", a.Wait, "err", a.Err)
		},
	}, func(ctx context.Context) error {
		attempts++
		if attempts == 1 {
			return failed // made already, by the caller
		}
		var err error
		out, md, err = next.HandleInitialize(ctx, in)
		return err
	})
	return out, md, err
}

// transientRead says whether a failed read may succeed if made again: no
// answer at all (a refused connection, a timeout, the SDK's retry quota) or
// a server error (any 5xx: a load balancer's or proxy's 502 carries no
// error code). An error Kinesis answered with on purpose is final here.
func transientRead(err error) bool {
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) && resp.HTTPStatusCode() >= 500 {
		// Whatever the body said (a proxy's 502 has no error code).
		return true
	}
	var api smithy.APIError
	if !errors.As(err, &api) {
		return true
	}
	if api.ErrorFault() == smithy.FaultServer {
		return true
	}
	switch api.ErrorCode() {
	case "InternalFailure", "InternalFailureException", "ServiceUnavailable", "ServiceUnavailableException":
		return true
	}
	return false
}
