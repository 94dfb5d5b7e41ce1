package file

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

const benchBatch = 500

// benchRows is a batch of typical rows (~330 bytes each as JSON).
func benchRows(shard string) []record.Row {
	rows := make([]record.Row, benchBatch)
	for i := range rows {
		rows[i] = record.Row{
			Dataset: "orders",
			Origin: record.Origin{Source: "orders-stream", ShardID: shard, SequenceNumber: seqString(i),
				PartitionKey: "customer-42", ArrivalTime: fixedTime.Add(time.Duration(i) * time.Millisecond)},
			Fields: []record.Field{
				{Name: "order_id", Value: int64(1_000_000 + i)},
				{Name: "customer", Value: fmt.Sprintf("customer-%d", i%97)},
				{Name: "amount", Value: record.Decimal("129.95")},
				{Name: "placed_at", Value: fixedTime.Add(time.Duration(i) * time.Second)},
				{Name: "day", Value: record.Date{Year: 2024, Month: time.January, Day: 2}},
				{Name: "paid", Value: i%3 != 0},
				{Name: "score", Value: 0.731 * float64(i)},
				{Name: "note", Value: "deliver to the back door, ring twice \"please\""},
				{Name: "items", Value: []any{map[string]any{"sku": "A-1", "qty": int64(2)}, map[string]any{"sku": "B-7", "qty": int64(1)}}},
				{Name: "address", Value: []record.Field{{Name: "city", Value: "Berlin"}, {Name: "zip", Value: "10115"}}},
			},
		}
	}
	return rows
}

// BenchmarkWrite measures Write of 500-row batches including the fsync, from
// one writer and from 4 concurrent writers (shards) sharing fsyncs through group
// commit, plus the encoding alone.
func BenchmarkWrite(b *testing.B) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, bc := range []struct {
		writers int
		group   bool
	}{{1, true}, {4, true}, {4, false}} {
		writers := bc.writers
		name := fmt.Sprintf("writers=%d", writers)
		if !bc.group {
			name += "/no-group-commit"
		}
		b.Run(name, func(b *testing.B) {
			s, err := NewRowSink(Config{Dir: b.TempDir(), WorkerID: "bench", Prefix: "orders"}, quiet)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			s.c.noGroup = !bc.group // set before the first Write; read by the committer only after it
			batches := make([][]record.Row, writers)
			for i := range batches {
				batches[i] = benchRows(fmt.Sprintf("shardId-%d", i))
			}
			var next atomic.Int64
			b.SetParallelism(1)
			b.ResetTimer()
			if writers == 1 {
				for b.Loop() {
					if err := s.Write(context.Background(), batches[0]); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				// RunParallel starts GOMAXPROCS*parallelism goroutines; use
				// exactly `writers` of them instead.
				done := make(chan struct{})
				n := int64(b.N)
				for w := range writers {
					go func() {
						defer func() { done <- struct{}{} }()
						for next.Add(1) <= n {
							if err := s.Write(context.Background(), batches[w]); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				for range writers {
					<-done
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/row")
			b.ReportMetric(float64(len(mustEncode(b, batches[0])))/benchBatch, "bytes/row")
		})
	}
	b.Run("encode-only", func(b *testing.B) {
		rows := benchRows("shardId-0")
		buf := make([]byte, 0, 1<<20)
		for b.Loop() {
			var err error
			var e rowEncoder
			buf, _, err = encodeBatch(buf[:0], rows, "row", e.appendRow)
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/row")
	})
}

func mustEncode(b *testing.B, rows []record.Row) []byte {
	var e rowEncoder
	buf, _, err := encodeBatch(nil, rows, "row", e.appendRow)
	if err != nil {
		b.Fatal(err)
	}
	return buf
}
