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

// current reports whether a shard's idle mark counts for this run. One
// written before this consumer started is a previous run's (a bounded job
// run again under the same application): the records put since were never
// looked at, and counting it made the run done before its first lease. Only
// the mark of a shard past its window (the epoch) outlives its run: the
// window's records all came before it, for good.
func (c *Consumer) current(idleSince time.Time) bool {
	if idleSince.Equal(time.Unix(0, 0)) {
		return !c.cfg.PastWindow.IsZero()
	}
	return !idleSince.IsZero() && !idleSince.Before(c.started)
}

// busy clears the shard's idle mark as a batch is read, before it is
// delivered: while a batch is in flight the shard is not done, however long
// its delivery takes (a sink down). Cleared only after the checkpoint, the
// mark let every worker judge the source done with the batch in flight,
// which the drain then abandoned.
func (p *processor) busy() {
	if p.c.cfg.Idleness <= 0 || p.stopped.Load() || p.past {
		return
	}
	p.lastNew = time.Now()
	if !p.marked {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	if err := p.c.table.MarkIdle(ctx, p.shardID, time.Time{}); err != nil {
		p.log.Warn("bounded source: idle mark not cleared before a delivery; a run that stops meanwhile fails rather than call the source done", "err", err)
		return
	}
	p.marked = false
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
			case c.current(r.IdleSince) && now.Sub(r.IdleSince) >= c.cfg.Idleness:
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
