// Package leaseview shows where each shard of an application stands (the
// `leases` command) and rewinds its checkpoints (the `reset` command). It only
// reads Kinesis (ListShards, GetShardIterator, GetRecords with a limit of one
// record, which moves nothing) and reads or, for a reset, rewinds the lease
// table through consumers/leases.
package leaseview

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
)

// Shard states.
const (
	StateOpen     = "open"     // Kinesis still writes to it
	StateClosed   = "closed"   // split or merged, with records left to read
	StateFinished = "finished" // read to its end (SHARD_END checkpointed)
	StateGone     = "gone"     // in the lease table, no longer listed by Kinesis (trimmed)
)

// Shard is one shard of a source, as the lease table and Kinesis see it.
type Shard struct {
	Source  string   `json:"source"`
	Table   string   `json:"lease_table"`
	ShardID string   `json:"shard_id"`
	State   string   `json:"state"`
	Parents []string `json:"parents,omitempty"`
	// Owner holds the lease; LeaseLive says its lease has not expired.
	Owner        string     `json:"owner,omitempty"`
	LeaseExpires *time.Time `json:"lease_expires,omitempty"`
	LeaseLive    bool       `json:"lease_live"`
	Checkpoint   string     `json:"checkpoint,omitempty"`
	// StartAt is the start position of a rewound shard not yet checkpointed.
	StartAt string `json:"start_at,omitempty"`
	// MillisBehind is Kinesis' MillisBehindLatest for a read at the
	// checkpoint (or start position); nil when not read (no position yet,
	// finished, or the read failed: see ReadError).
	MillisBehind *int64 `json:"millis_behind_latest,omitempty"`
	// NextArrival is the arrival time of the first record after the
	// checkpoint, nil when there is none: its age is how old the unread
	// backlog is.
	NextArrival *time.Time `json:"next_record_arrival,omitempty"`
	ReadError   string     `json:"read_error,omitempty"`
}

// Source says where one source's shards and leases are.
type Source struct {
	Name       string
	StreamName string
	Kinesis    *kinesis.Client
	Table      *leases.Table
	TableName  string
}

// Read lists the shards of src: every shard Kinesis lists and every row of
// the lease table, sorted by shard id.
func Read(ctx context.Context, src Source, now time.Time) ([]Shard, error) {
	listed, err := listShards(ctx, src)
	if err != nil {
		return nil, err
	}
	rows, err := src.Table.Checkpoints(ctx)
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		rows, err = map[string]leases.Lease{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lease table %s of source %s: %w", src.TableName, src.Name, err)
	}
	ids := map[string]bool{}
	for id := range listed {
		ids[id] = true
	}
	for id := range rows {
		ids[id] = true
	}
	var out []Shard
	for id := range ids {
		sh := Shard{Source: src.Name, Table: src.TableName, ShardID: id, State: StateOpen}
		ks, isListed := listed[id]
		r, hasRow := rows[id]
		switch {
		case !isListed:
			sh.State = StateGone
		case hasRow && r.Checkpoint == checkpoint.ShardEnd:
			sh.State = StateFinished
		case ks.SequenceNumberRange != nil && ks.SequenceNumberRange.EndingSequenceNumber != nil:
			sh.State = StateClosed
		}
		if isListed {
			for _, p := range []*string{ks.ParentShardId, ks.AdjacentParentShardId} {
				if aws.ToString(p) != "" {
					sh.Parents = append(sh.Parents, aws.ToString(p))
				}
			}
		} else if hasRow && r.ParentShardID != "" {
			sh.Parents = []string{r.ParentShardID}
		}
		if hasRow {
			sh.Owner, sh.Checkpoint, sh.StartAt = r.Owner, r.Checkpoint, r.StartAt
			if !r.LeaseTimeout.IsZero() && r.Owner != "" {
				lt := r.LeaseTimeout
				sh.LeaseExpires = &lt
				sh.LeaseLive = lt.After(now)
			}
		}
		if isListed && sh.State != StateFinished {
			behind(ctx, src, &sh)
		}
		out = append(out, sh)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ShardID < out[j].ShardID })
	return out, nil
}

func listShards(ctx context.Context, src Source) (map[string]ktypes.Shard, error) {
	out := map[string]ktypes.Shard{}
	in := &kinesis.ListShardsInput{StreamName: aws.String(src.StreamName)}
	for {
		res, err := src.Kinesis.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards of stream %s (source %s): %w (check the credentials allow kinesis:ListShards)", src.StreamName, src.Name, err)
		}
		for _, s := range res.Shards {
			out[aws.ToString(s.ShardId)] = s
		}
		if res.NextToken == nil {
			return out, nil
		}
		in = &kinesis.ListShardsInput{NextToken: res.NextToken}
	}
}

// behind reads one record at the shard's position, which moves nothing:
// only checkpoints do.
func behind(ctx context.Context, src Source, sh *Shard) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(src.StreamName), ShardId: aws.String(sh.ShardID)}
	switch {
	case sh.Checkpoint != "":
		in.ShardIteratorType, in.StartingSequenceNumber = ktypes.ShardIteratorTypeAfterSequenceNumber, aws.String(sh.Checkpoint)
	case sh.StartAt != "":
		p, err := leases.ParsePosition(sh.StartAt)
		if err != nil {
			sh.ReadError = err.Error()
			return
		}
		in.ShardIteratorType = ktypes.ShardIteratorType(p.Type)
		if p.Type == leases.AtTimestamp {
			in.Timestamp = aws.Time(p.Timestamp)
		}
	default:
		return // starts at init_position when leased
	}
	it, err := src.Kinesis.GetShardIterator(ctx, in)
	if err != nil {
		sh.ReadError = "get shard iterator: " + err.Error()
		return
	}
	res, err := src.Kinesis.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)})
	if err != nil {
		sh.ReadError = "get records: " + err.Error()
		return
	}
	sh.MillisBehind = res.MillisBehindLatest
	if len(res.Records) > 0 && res.Records[0].ApproximateArrivalTimestamp != nil {
		t := res.Records[0].ApproximateArrivalTimestamp.UTC()
		sh.NextArrival = &t
	}
}

// LiveOwners returns the workers holding a lease that expires after cutoff,
// with their shards. Workers judge expiry on their own clocks (consumers/
// leases), so a caller deciding for them takes a cutoff a lease duration
// before its own now: a lease is taken as live until it is plainly dead.
func LiveOwners(shards []Shard, cutoff time.Time) map[string][]string {
	out := map[string][]string{}
	for _, s := range shards {
		if s.Owner != "" && s.LeaseExpires != nil && s.LeaseExpires.After(cutoff) {
			out[s.Owner] = append(out[s.Owner], s.ShardID)
		}
	}
	return out
}

// Change is one shard a reset rewinds.
type Change struct {
	Shard Shard
	To    leases.Position
}

// Plan returns the changes a reset to `to` makes: every shard of shards, or
// only shardID when it is not empty (an unknown one is an error).
func Plan(shards []Shard, to leases.Position, shardID string) ([]Change, error) {
	var out []Change
	for _, s := range shards {
		if shardID == "" || s.ShardID == shardID {
			out = append(out, Change{Shard: s, To: to})
		}
	}
	if shardID != "" && len(out) == 0 {
		ids := make([]string, 0, len(shards))
		for _, s := range shards {
			ids = append(ids, s.ShardID)
		}
		slices.Sort(ids)
		return nil, fmt.Errorf("--shard %s is not a shard of the application; its shards are %v", shardID, ids)
	}
	return out, nil
}
