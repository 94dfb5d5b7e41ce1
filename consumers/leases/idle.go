package leases

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// colIdleSince is, for a shard of a bounded source, the arrival of nothing
// new: the owner writes it once it read the shard to its tip (MillisBehindLatest
// 0) with no record since that time, and removes it when a record comes. Every
// worker of the application judges "the source is done" on these rows, so
// they agree, instead of each on its own shards.
const colIdleSince = "IdleSince"

// MarkIdle writes that shardID, owned by this worker, has delivered nothing
// since `since` and is read to its tip; ClearIdle (since zero) removes it.
// Both are conditional on this worker owning the lease, and fail with
// ErrLeaseLost otherwise.
func (t *Table) MarkIdle(ctx context.Context, shardID string, since time.Time) error {
	expr, vals := "SET #is = :is", map[string]types.AttributeValue{":me": s(t.me)}
	if since.IsZero() {
		expr = "REMOVE #is"
	} else {
		vals[":is"] = s(fmtTime(since))
	}
	in := t.update(shardID, expr, "#o = :me", vals)
	_, err := t.db.UpdateItem(ctx, in)
	if ccf, ok := isConditionFailed(err); ok {
		return fmt.Errorf("leases: mark shard %q idle in table %q: %w: %w", shardID, t.table, ErrLeaseLost, ccf)
	}
	if err != nil {
		return fmt.Errorf("leases: mark shard %q idle in table %q: %w (DynamoDB error; marked again at the next read)", shardID, t.table, err)
	}
	return nil
}

// Lease reads one shard's row (a consistent read); a shard without a row
// gives a Lease with only ShardID set.
func (t *Table) Lease(ctx context.Context, shardID string) (Lease, error) {
	r, err := t.get(ctx, shardID)
	return r.Lease, err
}
