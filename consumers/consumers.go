// Package consumers reads records (record.Record) from a stream and hands
// them, shard by shard, to a Handler (the pipeline). The implementation is
// consumers/kcl (Kinesis through the KCL, leases in DynamoDB through
// consumers/leases). A consumer knows nothing of sinks or of the pipeline
// beyond Handler: internal/layout's test holds it to that.
//
// The walk of one batch, arrival to checkpoint (consumers/kcl; each arrow
// a call across a package boundary, and its return):
//
//  1. The KCL's read loop calls GetRecords on the client consumers/kcl built
//     (kcl.New): its middlewares reserve the in-flight budget, decode the
//     answer (consumers/getrecords) and flag malformed KPL aggregates in
//     their records; the KCL de-aggregates. In enhanced fan-out mode the
//     records come in SubscribeToShard events instead, and a middleware of
//     the same client flags them event by event before the SDK decodes them.
//  2. KCL → kcl processor.ProcessRecords → leases.BeginBatch (a claimed
//     shard is handed over between batches, never during one).
//  3. processor → Hooks.Delivering (metrics) → Handler.DeliverState (the
//     pipeline: rows and dead letters durable) → leases.StageState.
//  4. processor → the KCL's checkpointer → kcl's lease-table adapter →
//     leases.CheckpointSequence (one conditional write: checkpoint and
//     state) → Hooks.Checkpointed → leases.EndBatch.
//
// Why leases are not the KCL's to take: the library's event loop takes one
// lease per shard sync and stops, and it alone can start a shard consumer
// (newShardConsumer is unexported; its source cannot be copied in). So
// consumers/kcl runs lease passes of its own (consumers/leases Table.Pass:
// one table scan plans the whole assignment, and every due lease is taken at
// once) and leaves the loop only the starts, pacing it through its
// ListShards call (consumers/kcl/coordinator.go).
package consumers

import (
	"context"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// Handler takes the records of one shard, in sequence order, one batch at a
// time per shard; batches of different shards may arrive concurrently.
//
// Deliver returns nil only once every record of the batch has a durable row or a
// durable dead letter: the consumer checkpoints past the batch right after. It
// retries transient failures (a sink outage) itself, with backoff, until ctx is
// done, and then returns ctx's error with nothing promised: the consumer does not
// checkpoint and the batch is read again by whoever holds the shard next.
type Handler interface {
	Deliver(ctx context.Context, source string, records []record.Record) error
}

// StateHandler is a Handler whose work on a shard depends on state that must
// travel with the shard's checkpoint (the late-row watermarks of datasets with
// a disorder), so that whoever reads the shard next, after a crash or a lease
// move, resumes from the checkpoint with the state it was taken with and
// classifies the records it re-reads as the first reader did. A consumer
// calls DeliverState instead of Deliver when its Handler has it.
type StateHandler interface {
	Handler
	// DeliverState is Deliver with the shard's state: state is what the
	// previous batch's DeliverState returned or, for the first batch after
	// taking the shard, what was stored with its checkpoint (nil if
	// nothing). The state it returns with nil is stored with the checkpoint
	// past the batch, in the same conditional write.
	DeliverState(ctx context.Context, source string, state []byte, records []record.Record) ([]byte, error)
}

// DeferredHandler is a StateHandler whose sinks may make a batch durable
// after the delivery returns (see sinks.DeferredRowSink): the shard reads
// its next batch meanwhile, and checkpoints each batch once durable, in
// order.
type DeferredHandler interface {
	StateHandler
	// DeliverDeferred is DeliverState returning once the batch is taken.
	// When it returns nil, durable is called exactly once, from any
	// goroutine and possibly before it returns: nil once every row and dead
	// letter of the batch is durable, an error if they never will be (the
	// consumer then checkpoints nothing more of the shard). When it returns
	// an error, durable is never called.
	DeliverDeferred(ctx context.Context, source string, state []byte, records []record.Record, durable func(error)) ([]byte, error)
	// Flush returns once every batch delivered before it is durable, or
	// when ctx ends: a graceful stop, a shard ended or handed over.
	Flush(ctx context.Context) error
}
