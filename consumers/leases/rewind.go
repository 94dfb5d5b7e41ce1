package leases

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// colStartAt holds where a rewound shard starts (Rewind), while it has no
// checkpoint: LATEST, TRIM_HORIZON or AT_TIMESTAMP <RFC 3339>.
const colStartAt = "StartAt"

// Encode is the StartAt column's form of p: LATEST, TRIM_HORIZON or
// AT_TIMESTAMP <RFC 3339>.
func (p Position) Encode() string {
	if p.Type == AtTimestamp {
		return AtTimestamp + " " + p.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return p.Type
}

// ParsePosition reads Encode's form.
func ParsePosition(s string) (Position, error) {
	typ, ts, _ := strings.Cut(s, " ")
	switch typ {
	case Latest, TrimHorizon:
		if ts == "" {
			return Position{Type: typ}, nil
		}
	case AtTimestamp:
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err == nil {
			return Position{Type: typ, Timestamp: t.UTC()}, nil
		}
	}
	return Position{}, fmt.Errorf("leases: %q is not a start position (LATEST, TRIM_HORIZON or AT_TIMESTAMP <RFC 3339>)", s)
}

// startMarkerPrefix starts the in-memory checkpoint FetchCheckpoint hands the
// KCL for a rewound shard: the KCL knows only "a checkpoint, read after it" or
// its one configured initial position, so the start position travels as a
// checkpoint that the GetShardIterator guard (consumers/kcl) turns back into
// its iterator type. It is never written to the table: CheckpointSequence
// refuses it.
const startMarkerPrefix = "kinesis-ingest-start:"

// StartMarker returns the checkpoint string that stands for p.
func StartMarker(p Position) string { return startMarkerPrefix + p.Encode() }

// FromStartMarker returns the position a StartMarker stands for; ok is false
// for a real sequence number.
func FromStartMarker(cp string) (p Position, ok bool) {
	rest, ok := strings.CutPrefix(cp, startMarkerPrefix)
	if !ok {
		return Position{}, false
	}
	p, err := ParsePosition(rest)
	return p, err == nil
}

// ErrLeaseLive is returned, wrapped, by Rewind when a worker holds a live
// lease of the shard: its consumer would go on from where it is and then
// checkpoint over the rewind. Stop the application's workers first.
var ErrLeaseLive = fmt.Errorf("a worker holds a live lease of the shard")

// Rewind makes shardID start at p the next time a worker leases it: it
// removes the checkpoint and the state stored with it (SHARD_END included, so a finished parent is read
// again, and its children wait for it as usual), any steal claim and the
// expired owner (a worker that was in fact alive then fails its next
// renewal and stops, rather than checkpoint over the rewind), and
// writes p in StartAt. A shard without a row gets one. It is refused, with
// ErrLeaseLive, while a worker's lease of the shard has not expired by
// cutoff (its LeaseTimeout, written on the worker's clock: give a cutoff
// some skew before now), judged in one conditional write so that a worker
// taking the lease in the meantime wins and the rewind fails.
func (t *Table) Rewind(ctx context.Context, shardID string, p Position, cutoff time.Time) error {
	if _, err := ParsePosition(p.Encode()); err != nil {
		return err
	}
	// The handler state (State) belongs to the checkpoint removed here.
	in := t.update(shardID, "SET #sa = :sa REMOVE #cp, #c, #ct, #is, #o, #st",
		"attribute_not_exists(#o) OR #o = :none OR #lt < :now", map[string]types.AttributeValue{
			":sa":   s(p.Encode()),
			":none": s(""),
			":now":  s(fmtTime(cutoff)),
		})
	_, err := t.db.UpdateItem(ctx, in)
	if ccf, ok := isConditionFailed(err); ok {
		owner := "unknown"
		if r, err := t.get(ctx, shardID); err == nil {
			owner = r.Owner
		}
		return fmt.Errorf("leases: rewind shard %q in table %q: worker %q holds its lease; stop the application's workers (SIGTERM releases leases) and rewind again: %w: %w", shardID, t.table, owner, ErrLeaseLive, ccf)
	}
	if err != nil {
		return fmt.Errorf("leases: rewind shard %q in table %q: %w (DynamoDB error; nothing was changed for this shard, rewind again)", shardID, t.table, err)
	}
	t.log.Info("shard rewound", "shard", shardID, "start_at", p.Encode())
	return nil
}
