package kcl

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/getrecords"
	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
)

// The KCL starts a shard either after its checkpoint or at the one initial
// position of its config, for every shard and every start. The start a shard
// needs is the lease table's, so the one middleware below, on the client the
// KCL reads with, rewrites its GetShardIterator (and, with enhanced fan-out,
// SubscribeToShard's starting position) before it is sent:
//
//   - a rewound shard (leases.Table.Rewind): the table hands the KCL a
//     leases.StartMarker as its checkpoint; it becomes the rewind's position;
//   - a shard without a checkpoint (the KCL asks for its configured
//     TRIM_HORIZON): it starts at leases.Table.StartOf, the application's
//     stored start, or TRIM_HORIZON for a child;
//   - a shard with a checkpoint is left alone.
func startPositions(table *leases.Table, log *slog.Logger) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("kinesis-ingest/start-position",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				switch x := in.Parameters.(type) {
				case *kinesis.GetShardIteratorInput:
					if p, ok := startOf(table, log, aws.ToString(x.ShardId), x.ShardIteratorType, aws.ToString(x.StartingSequenceNumber)); ok {
						out := *x
						out.StartingSequenceNumber = nil
						out.ShardIteratorType, out.Timestamp = types.ShardIteratorType(p.Type), timestamp(p)
						in.Parameters = &out
					}
				case *kinesis.SubscribeToShardInput:
					if sp := x.StartingPosition; sp != nil {
						if p, ok := startOf(table, log, aws.ToString(x.ShardId), sp.Type, aws.ToString(sp.SequenceNumber)); ok {
							out := *x
							out.StartingPosition = &types.StartingPosition{Type: types.ShardIteratorType(p.Type), Timestamp: timestamp(p)}
							in.Parameters = &out
						}
					}
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	}
}

// startOf says where shard starts instead of what the KCL asked (typ at
// seq); ok is false to leave the KCL's request alone.
func startOf(table *leases.Table, log *slog.Logger, shard string, typ types.ShardIteratorType, seq string) (leases.Position, bool) {
	if p, ok := leases.FromStartMarker(seq); ok {
		return p, true
	}
	switch typ {
	case types.ShardIteratorTypeAfterSequenceNumber, types.ShardIteratorTypeAtSequenceNumber:
		return leases.Position{}, false // a checkpoint
	}
	p, ok := table.StartOf(shard)
	if ok {
		log.Info("shard has no checkpoint: starting at the application's start position", "shard_id", shard, "start", p.String(), "kcl_asked", typ)
	}
	return p, ok
}

func timestamp(p leases.Position) *time.Time {
	if p.Type != leases.AtTimestamp {
		return nil
	}
	ts := p.Timestamp
	return &ts
}

// readClient returns the client the KCL reads with: a copy of client with the
// middlewares more (the coordinator's ListShards gate) and the start
// positions in front. kinesis.New sets o.Protocol anew before it runs its
// option functions, so the GetRecords fast path goes on here, on the client
// the KCL reads with, and not on one it is copied from.
func readClient(client *kinesis.Client, table *leases.Table, log *slog.Logger, more ...func(*middleware.Stack) error) *kinesis.Client {
	o := client.Options()
	o.APIOptions = append(slices.Clone(o.APIOptions), more...)
	o.APIOptions = append(o.APIOptions, startPositions(table, log))
	return kinesis.New(o, getrecords.Option)
}
