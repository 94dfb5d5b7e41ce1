package kcl

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
)

// StartRewound is a kinesis.Options function that lets a rewound shard (see
// leases.Table.Rewind) start where the rewind says. The KCL starts a shard
// either after its checkpoint or at the one initial position of its config;
// for a rewound shard the lease table hands it a leases.StartMarker as the
// checkpoint, and this turns the KCL's GetShardIterator AFTER_SEQUENCE_NUMBER
// <marker> (or, with enhanced fan-out, SubscribeToShard's starting position)
// into LATEST, TRIM_HORIZON or AT_TIMESTAMP before it is sent.
func StartRewound(o *kinesis.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("kinesis-ingest-start-rewound",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				switch x := in.Parameters.(type) {
				case *kinesis.GetShardIteratorInput:
					if p, ok := leases.FromStartMarker(aws.ToString(x.StartingSequenceNumber)); ok {
						in.Parameters = rewoundIterator(x, p)
					}
				case *kinesis.SubscribeToShardInput: // enhanced fan-out
					if sp := x.StartingPosition; sp != nil {
						if p, ok := leases.FromStartMarker(aws.ToString(sp.SequenceNumber)); ok {
							out := *x
							out.StartingPosition = &types.StartingPosition{Type: types.ShardIteratorType(p.Type)}
							if p.Type == leases.StartAtTimestamp {
								out.StartingPosition.Timestamp = aws.Time(p.Timestamp)
							}
							in.Parameters = &out
						}
					}
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
}

func rewoundIterator(gi *kinesis.GetShardIteratorInput, p leases.StartPosition) *kinesis.GetShardIteratorInput {
	out := *gi
	out.StartingSequenceNumber = nil
	out.ShardIteratorType = types.ShardIteratorType(p.Type)
	if p.Type == leases.StartAtTimestamp {
		out.Timestamp = aws.Time(p.Timestamp)
	}
	return &out
}
