package s3_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/sinks/rowcopy"
	s3sink "github.com/kinesis-ingest/kinesis-ingest/sinks/s3"
)

// TestBufferBudget: 64 shards accept rows at once into 6 partitions each
// (384 chains, a 64 KiB buffer_bytes) while no flush is due by size or age: the sink's buffers stay
// within buffer_bytes plus one Accept per shard, flushing the largest chains
// early, and every row is stored once.
func TestBufferBudget(t *testing.T) {
	s := server(t)
	bucket := s.CreateBucket(t)
	const shards, perShard, batch = 64, 60, 10
	const budget = 64 << 10
	rs := newLake(t, s.Client(), bucket, func(c *s3sink.Config) { c.BufferBytes = budget })
	var peak, acceptMax atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, shards)
	for k := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows := lakeRows(fmt.Sprintf("shardId-%012d", k), k*perShard, (k+1)*perShard)
			for i := 0; i < len(rows); i += batch {
				b := rows[i:min(i+batch, len(rows))]
				var size int64
				for j := range b {
					size += rowcopy.Size(&b[j])
				}
				if size > acceptMax.Load() {
					acceptMax.Store(size)
				}
				if err := rs.Accept(context.Background(), b, func(error) {}); err != nil {
					errs <- err
					return
				}
				if n := rs.Buffered(); n > peak.Load() {
					peak.Store(n)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if bound := budget + shards*acceptMax.Load(); peak.Load() > bound {
		t.Errorf("buffers peaked at %d bytes, over buffer_bytes %d plus one Accept per shard (%d in all)", peak.Load(), budget, bound)
	}
	t.Logf("peak %d bytes buffered, buffer_bytes %d, %d shards × %d rows", peak.Load(), budget, shards, perShard)
	if err := rs.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, lakeCounts(t, s, bucket), 0, shards*perShard)
}
