package kcl

import "time"

// Hooks receives what a consumer has to report, as it happens, in the
// project's terms (as franz-go's kgo hooks do, implemented by kprom):
// metrics implements it (metrics.Consumer), and this package touches no
// collector. One Hooks serves one source; its methods are called from many
// shards' goroutines at once and must not block.
type Hooks interface {
	// LeaseGained: a consumer of shard started here. LeaseLost: it ended,
	// for whatever reason (shutdown, shard end, a claim, an expired lease).
	LeaseGained(shard string)
	LeaseLost(shard string)
	// LeaseRenewed: the library renewed the shard's lease.
	LeaseRenewed(shard string)
	// Read reports one read of shard (a GetRecords, or a fan-out event):
	// how far behind the tip it was (negative: unknown), and whether it
	// returned no record. ReadTook is how long a GetRecords took.
	Read(shard string, millisBehind float64, empty bool)
	ReadTook(shard string, d time.Duration)
	// ShardGone: the shard's read position is no longer this worker's.
	ShardGone(shard string)
	// Delivering: a non-empty batch of shard, whose last record arrived in
	// Kinesis at lastArrival, goes to the handler now.
	Delivering(shard string, lastArrival time.Time)
	// Checkpointed: a checkpoint of shard ended with result (Checkpoint*);
	// shardEnd says it was SHARD_END.
	Checkpointed(shard, result string, shardEnd bool)
	// LeaseTableAnswered: the lease table answered a call (a success, or a
	// refusal decided on what it read). LeaseTableFailed: a call of op
	// failed in DynamoDB or on the way to it.
	LeaseTableAnswered()
	LeaseTableFailed(op string)
	// LeasePass: a lease pass ran; with ok, it set this worker's share and
	// took free and expired leases and placed claims.
	LeasePass(ok bool, share, free, expired, claimed int)
	// ParentExpired: a parent shard was lost to retention before its end.
	ParentExpired()
	// Throttled: an attempt of the Kinesis call op (GetRecords, ListShards,
	// ...) on shard ("" for a call on the stream) was answered
	// ProvisionedThroughputExceededException or LimitExceededException.
	// LeaseTableThrottled: the lease table's DynamoDB call op was
	// throttled. Both are retried.
	Throttled(op, shard string)
	LeaseTableThrottled(op string)
}

// Results of a checkpoint, for Hooks.Checkpointed.
const (
	CheckpointOK        = "ok"
	CheckpointLeaseLost = "lease_lost"
	CheckpointError     = "error"
)

// BudgetHooks receives what a Budget holds; metrics implements it
// (metrics.Budget). Safe for concurrent use.
type BudgetHooks interface {
	// Limit is the budget's size, reported once.
	Limit(bytes int64)
	// Held is the bytes held now.
	Held(bytes int64)
	// Waited is how long one read waited for room.
	Waited(d time.Duration)
}

// FanOutHooks receives what a FanOutGuard sees of a source's enhanced
// fan-out subscriptions; metrics implements it (metrics.FanOut).
type FanOutHooks interface {
	// Started: a subscription opened; since is how long the shard was
	// without one (0 for its first).
	Started(since time.Duration)
	// Ended: a subscription ended, for reason (SubscriptionExpired,
	// SubscriptionError or SubscriptionClosed).
	Ended(reason string)
	// Retried: a SubscribeToShard refused with code was sent again.
	Retried(code string)
}

// Why an enhanced fan-out subscription ended, for FanOutHooks.Ended.
const (
	// SubscriptionExpired: Kinesis ended the stream (AWS does after 5
	// minutes); the consumer resubscribes from the last continuation.
	SubscriptionExpired = "expired"
	// SubscriptionError: the stream carried an exception (or broke off);
	// the consumer resubscribes or gives the shard up and starts over from
	// its checkpoint.
	SubscriptionError = "error"
	// SubscriptionClosed: the consumer closed it (shutdown, lease lost,
	// shard end, or a resubscription).
	SubscriptionClosed = "closed"
)
