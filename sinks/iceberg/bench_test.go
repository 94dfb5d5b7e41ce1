package iceberg_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/sinks/iceberg"
)

// BenchmarkCommits: workers committing to one table at once, each a Write
// of 10 rows of its own shard at a time (one commit each), on versitygw and
// PostgreSQL here. It reports commits per minute over all workers and the
// refused swaps per commit: every commit's load-to-swap is one critical
// section of the table, so more workers mostly add conflicts.
//
//	go test -run '^$' -bench BenchmarkCommits -benchtime 40x ./sinks/iceberg
func BenchmarkCommits(b *testing.B) {
	for _, workers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			l := newLake(b)
			c := &counter{}
			sinks := make([]*iceberg.Sink, workers)
			for w := range sinks {
				sinks[w] = open(b, l.config(b, func(cfg *iceberg.Config) { cfg.Observer = c; cfg.PartitionBy = nil }))
			}
			per := max(1, b.N/workers)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w, s := range sinks {
				wg.Add(1)
				go func() {
					defer wg.Done()
					shard := fmt.Sprintf("shardId-%012d", w)
					for i := range per {
						ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
						err := s.Write(ctx, rows(shard, (w*per+i)*10, (w*per+i)*10+10))
						cancel()
						if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			d := time.Since(start)
			b.StopTimer()
			n := c.commits.Load()
			b.ReportMetric(float64(n)/d.Minutes(), "commits/min")
			b.ReportMetric(float64(c.conflicts.Load())/float64(max(1, n)), "conflicts/commit")
		})
	}
}
