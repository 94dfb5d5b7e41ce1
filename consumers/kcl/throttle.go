package kcl

import (
	"context"
	"errors"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// Throttling is invisible in the library and in the SDK, which retry it
// quietly: a middleware in the Deserialize step, which runs once per
// attempt inside the SDK's retry loop, reports every throttled answer
// through Hooks: Throttled for a Kinesis call (the shard from the call's
// context, see readGate; "" for calls on the stream such as ListShards),
// LeaseTableThrottled for the lease table's DynamoDB calls. The SDK's
// standard retryer retries these codes (3 attempts, a jittered wait of at
// most 1 s, then 2 s); what follows for GetRecords is the ReadLimiter's
// backoff.

// The error codes counted as throttling.
var (
	kinesisThrottles = []string{"ProvisionedThroughputExceededException", "LimitExceededException"}
	dynamoThrottles  = []string{"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)

func isThrottle(err error, codes []string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}

type shardKey struct{}

// withShard names the shard a Kinesis call is about, for the counter.
func withShard(ctx context.Context, shard string) context.Context {
	if shard == "" {
		return ctx
	}
	return context.WithValue(ctx, shardKey{}, shard)
}

func shardOf(ctx context.Context) string {
	s, _ := ctx.Value(shardKey{}).(string)
	return s
}

// throttleCounter returns an API option adding the counter, which calls
// report with the operation's name and the call's context for every
// attempt answered with one of codes.
func throttleCounter(codes []string, report func(ctx context.Context, op string)) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("kinesis-ingest/throttle-counter",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleDeserialize(ctx, in)
				if err != nil && isThrottle(err, codes) {
					report(ctx, awsmiddleware.GetOperationName(ctx))
				}
				return out, md, err
			}), middleware.Before)
	}
}

// countThrottles returns copies of the consumer's clients that report
// their throttled attempts to h.
func countThrottles(kc *kinesis.Client, dc *dynamodb.Client, h Hooks) (*kinesis.Client, *dynamodb.Client) {
	kc = kinesis.New(kc.Options(), func(o *kinesis.Options) {
		o.APIOptions = append(o.APIOptions, throttleCounter(kinesisThrottles, func(ctx context.Context, op string) {
			h.Throttled(op, shardOf(ctx))
		}))
	})
	dc = dynamodb.New(dc.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, throttleCounter(dynamoThrottles, func(_ context.Context, op string) {
			h.LeaseTableThrottled(op)
		}))
	})
	return kc, dc
}
