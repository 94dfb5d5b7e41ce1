package kcl

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
)

// Progress is where a bounded source stands, as every worker sees it in the
// lease table.
type Progress struct {
	Shards   int  // every shard Kinesis lists, children included
	Done     int  // finished (SHARD_END) or idle for Idleness
	Finished bool // every shard done
}

// Finished reads the lease table and the shard list and says whether the
// source is done: every shard Kinesis lists is either finished (SHARD_END)
// or marked idle for at least Idleness. All workers of the application read
// the same rows, so they reach the same answer. A shard nobody read yet (no
// row, say a child waiting for its parent) is not done.
func (c *Consumer) Finished(ctx context.Context, now time.Time) (Progress, error) {
	if c.cfg.Idleness <= 0 {
		return Progress{}, fmt.Errorf("source %q is not bounded", c.cfg.Source)
	}
	rows, err := c.table.Checkpoints(ctx)
	if err != nil {
		return Progress{}, err
	}
	var p Progress
	in := &kinesis.ListShardsInput{StreamName: aws.String(c.cfg.StreamName)}
	for {
		res, err := c.cfg.Kinesis.ListShards(ctx, in)
		if err != nil {
			return Progress{}, fmt.Errorf("list shards of stream %q: %w", c.cfg.StreamName, err)
		}
		for _, s := range res.Shards {
			p.Shards++
			r, ok := rows[aws.ToString(s.ShardId)]
			switch {
			case !ok:
			case r.Checkpoint == checkpoint.ShardEnd:
				p.Done++
			case !r.IdleSince.IsZero() && now.Sub(r.IdleSince) >= c.cfg.Idleness:
				p.Done++
			}
		}
		if res.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: res.NextToken}
	}
	p.Finished = p.Shards > 0 && p.Done == p.Shards
	return p, nil
}
