package postgres

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkTransactionSize writes one shard's rows with one Write per
// transaction of the given size (fsync and synchronous_commit on).
func BenchmarkTransactionSize(b *testing.B) {
	dsn := server(b).CreateDatabase(b)
	for _, size := range []int{1, 10, 100, 500, 2000, 10000} {
		b.Run(fmt.Sprintf("rows=%d", size), func(b *testing.B) {
			table := fmt.Sprintf("bench_tx_%d", tableSeq.Add(1))
			s, err := NewRowSink(context.Background(), Config{DSN: dsn, Table: table, Columns: orderColumns, CreateTable: true, BatchRows: size, BatchBytes: 1 << 30},
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			seq := 0
			rows := 0
			start := time.Now()
			for b.Loop() {
				if err := s.Write(context.Background(), orderRows("shardId-000000000000", seq, size)); err != nil {
					b.Fatal(err)
				}
				seq += size
				rows += size
			}
			b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
		})
	}
}

// BenchmarkGroupCommit has shards write small batches concurrently, each
// waiting for its Write like a shard consumer, with and without a
// group-commit window.
func BenchmarkGroupCommit(b *testing.B) {
	dsn := server(b).CreateDatabase(b)
	for _, shards := range []int{4, 32} {
		for _, perWrite := range []int{10, 200} {
			for _, window := range []time.Duration{0, 5 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond} {
				name := fmt.Sprintf("shards=%d/rows=%d/window=%v", shards, perWrite, window)
				b.Run(name, func(b *testing.B) {
					table := fmt.Sprintf("bench_gc_%d", tableSeq.Add(1))
					s, err := NewRowSink(context.Background(), Config{DSN: dsn, Table: table, Columns: orderColumns, CreateTable: true, BatchInterval: window},
						slog.New(slog.NewTextHandler(io.Discard, nil)))
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					const dur = 2 * time.Second
					var rows, writes, latency atomic.Int64
					var wg sync.WaitGroup
					for b.Loop() {
						rows.Store(0)
						writes.Store(0)
						latency.Store(0)
						stop := time.Now().Add(dur)
						for i := range shards {
							shard := fmt.Sprintf("shardId-%012d-%d", i, tableSeq.Add(1))
							wg.Go(func() {
								for seq := 0; time.Now().Before(stop); seq += perWrite {
									t := time.Now()
									if err := s.Write(context.Background(), orderRows(shard, seq, perWrite)); err != nil {
										b.Error(err)
										return
									}
									latency.Add(int64(time.Since(t)))
									writes.Add(1)
									rows.Add(int64(perWrite))
								}
							})
						}
						wg.Wait()
					}
					var tx int
					conn := connect(b, dsn)
					if err := conn.QueryRow(context.Background(), "SELECT count(DISTINCT xmin::text) FROM "+table).Scan(&tx); err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(rows.Load())/dur.Seconds(), "rows/s")
					b.ReportMetric(float64(latency.Load())/float64(writes.Load())/1e6, "ms/write")
					b.ReportMetric(float64(writes.Load())/float64(max(tx, 1)), "writes/tx")
				})
			}
		}
	}
}

// BenchmarkGroupCommitPaced is closer to a worker: each shard delivers a
// batch every 500ms (idle_between_reads) and waits for it; it reports the
// transactions per second the server sees and the latency a Write adds.
func BenchmarkGroupCommitPaced(b *testing.B) {
	dsn := server(b).CreateDatabase(b)
	for _, shards := range []int{8, 64} {
		for _, window := range []time.Duration{0, 20 * time.Millisecond, 200 * time.Millisecond} {
			b.Run(fmt.Sprintf("shards=%d/rows=100/window=%v", shards, window), func(b *testing.B) {
				table := fmt.Sprintf("bench_gp_%d", tableSeq.Add(1))
				s, err := NewRowSink(context.Background(), Config{DSN: dsn, Table: table, Columns: orderColumns, CreateTable: true, BatchInterval: window},
					slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				const dur = 3 * time.Second
				var writes, latency atomic.Int64
				var wg sync.WaitGroup
				for b.Loop() {
					stop := time.Now().Add(dur)
					for i := range shards {
						shard := fmt.Sprintf("shardId-%012d", i)
						wg.Go(func() {
							time.Sleep(time.Duration(i) * 500 * time.Millisecond / time.Duration(shards))
							for seq := 0; time.Now().Before(stop); seq += 100 {
								t := time.Now()
								if err := s.Write(context.Background(), orderRows(shard, seq, 100)); err != nil {
									b.Error(err)
									return
								}
								latency.Add(int64(time.Since(t)))
								writes.Add(1)
								time.Sleep(500 * time.Millisecond)
							}
						})
					}
					wg.Wait()
				}
				var tx int
				conn := connect(b, dsn)
				if err := conn.QueryRow(context.Background(), "SELECT count(DISTINCT xmin::text) FROM "+table).Scan(&tx); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(tx)/dur.Seconds(), "tx/s")
				b.ReportMetric(float64(latency.Load())/float64(writes.Load())/1e6, "ms/write")
				b.ReportMetric(float64(writes.Load())/float64(max(tx, 1)), "writes/tx")
			})
		}
	}
}
