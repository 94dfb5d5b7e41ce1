package kcl

import (
	"context"
	"log/slog"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
)

// withLeaseTable returns a copy of client whose calls the lease table sees:
// a GetShardIterator for a shard without a checkpoint (the KCL asks for its
// configured initial position) starts where the table says (Table.StartOf:
// the application's stored start, or TRIM_HORIZON for a child), and each
// ListShards answer tells the table the merged shards' adjacent parents,
// which the KCL drops. The KCL takes one client for everything, and its
// initial position is one setting for all shards and all starts, so this is
// where a per-shard, per-application start can be put.
func withLeaseTable(client *kinesis.Client, table *leases.Table, log *slog.Logger, more ...func(*middleware.Stack) error) *kinesis.Client {
	l := &listing{}
	o := client.Options()
	o.APIOptions = append(slices.Clone(o.APIOptions), more...)
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		if err := st.Initialize.Add(middleware.InitializeMiddlewareFunc("kinesis-ingest/start-position",
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
			}), middleware.Before); err != nil {
			return err
		}
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("kinesis-ingest/observe-shards",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				req, isList := in.Parameters.(*kinesis.ListShardsInput)
				if ls, ok := out.Result.(*kinesis.ListShardsOutput); ok && isList && err == nil {
					table.ObserveShards(adjacentParents(ls.Shards))
					l.page(table, req, ls)
				}
				return out, md, err
			}), middleware.After)
	})
	return kinesis.New(o)
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

// listing gathers the pages of one ListShards listing (the KCL pages
// through them one after the other) and hands the table the complete list.
type listing struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (l *listing) page(table *leases.Table, in *kinesis.ListShardsInput, out *kinesis.ListShardsOutput) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if in.NextToken == nil || l.ids == nil {
		if in.NextToken != nil {
			return // the first page was missed: wait for the next listing
		}
		l.ids = map[string]bool{}
	}
	for _, s := range out.Shards {
		l.ids[aws.ToString(s.ShardId)] = true
	}
	if out.NextToken == nil {
		table.ObserveListing(l.ids)
		l.ids = nil
	}
}

func adjacentParents(shards []types.Shard) map[string]string {
	m := map[string]string{}
	for _, s := range shards {
		if s.AdjacentParentShardId != nil {
			m[aws.ToString(s.ShardId)] = aws.ToString(s.AdjacentParentShardId)
		}
	}
	return m
}
