package kcl

import (
	"context"
	"log/slog"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/getrecords"
	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
)

// withLeaseTable returns a copy of client whose GetShardIterator for a shard
// without a checkpoint (the KCL asks for its configured initial position)
// starts where the table says (Table.StartOf: the application's stored
// start, or TRIM_HORIZON for a child), with the middlewares more in front
// (the coordinator's ListShards gate). The KCL takes one client for
// everything, and its initial position is one setting for all shards and all
// starts, so this is where a per-shard, per-application start can be put.
// The shard listing (with the adjacent parents of merged shards, which the
// KCL drops) reaches the table through the coordinator's passes.
func withLeaseTable(client *kinesis.Client, table *leases.Table, log *slog.Logger, more ...func(*middleware.Stack) error) *kinesis.Client {
	o := client.Options()
	o.APIOptions = append(slices.Clone(o.APIOptions), more...)
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("kinesis-ingest/start-position",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				switch p := in.Parameters.(type) {
				case *kinesis.GetShardIteratorInput:
					startAt(p, table, log)
				case *kinesis.SubscribeToShardInput:
					// Enhanced fan-out: the same start, carried as the
					// subscription's starting position.
					if sp := p.StartingPosition; sp != nil {
						it := &kinesis.GetShardIteratorInput{ShardId: p.ShardId, ShardIteratorType: sp.Type, Timestamp: sp.Timestamp}
						startAt(it, table, log)
						p.StartingPosition = &types.StartingPosition{Type: it.ShardIteratorType, Timestamp: it.Timestamp, SequenceNumber: sp.SequenceNumber}
					}
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
	// kinesis.New sets o.Protocol anew before it runs its option functions,
	// so the GetRecords fast path goes on here, on the client the KCL reads
	// with, and not on one it is copied from.
	return kinesis.New(o, getrecords.Option)
}

// startAt rewrites the start of a shard without a checkpoint.
func startAt(in *kinesis.GetShardIteratorInput, table *leases.Table, log *slog.Logger) {
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeAfterSequenceNumber, types.ShardIteratorTypeAtSequenceNumber:
		return // a checkpoint
	}
	shard := aws.ToString(in.ShardId)
	p, ok := table.StartOf(shard)
	if !ok {
		return
	}
	asked := in.ShardIteratorType
	in.ShardIteratorType, in.Timestamp = types.ShardIteratorType(p.Type), nil
	if p.Type == leases.AtTimestamp {
		ts := p.Timestamp
		in.Timestamp = &ts
	}
	log.Info("shard has no checkpoint: starting at the application's start position", "shard_id", shard, "start", p.String(), "kcl_asked", asked)
}
