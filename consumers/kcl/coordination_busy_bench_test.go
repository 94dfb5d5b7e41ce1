package kcl_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/kcl"
	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/faultproxy"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
	"github.com/kinesis-ingest/kinesis-ingest/metrics"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// counter is a handler that counts the batches it is given.
type counter struct{ batches atomic.Int64 }

func (c *counter) Deliver(context.Context, string, []record.Record) error {
	c.batches.Add(1)
	return nil
}

// BenchmarkCoordinationBusy measures what workers cost the lease table while
// every shard receives records (10 a second each, so that nearly every read
// returns some), with the default settings but checkpoint_interval C, counted
// by a proxy in front of dynalite: per shard one checkpoint per batch (C =
// 0) or per C, beside the idle costs (BenchmarkCoordination). Formula, for S
// shards, W workers, b non-empty batches per shard and second:
//
//	writes/s = W / P + S / R + S × (C > 0 ? min(b, 1/C) : b)
//
// It prints the busy rows of `make bench`'s coordination table with the
// projection to 1,000 busy shards × 100 workers. Run:
//
//	go test -run '^$' -bench '^BenchmarkCoordinationBusy$' -benchtime 1x ./consumers/kcl
func BenchmarkCoordinationBusy(b *testing.B) {
	const shards, workers = 16, 2
	window := 30 * time.Second
	type result struct {
		every                   time.Duration
		writeS, updateS, batchS float64
	}
	var results []result
	for _, every := range []time.Duration{0, 5 * time.Second} {
		b.Run(fmt.Sprintf("shards=%d/workers=%d/checkpoint_interval=%s", shards, workers, every), func(b *testing.B) {
			kin := envtest.Kinesis(b)
			ddb := envtest.Dynamo(b)
			dproxy := faultproxy.New(b, ddb.Endpoint)
			kc := testaws.Kinesis(kin.Endpoint)
			stream := "busy"
			envtest.CreateStream(b, kc, stream, shards)
			var c capacity
			dyn := counting(dproxy.URL, &c)
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { cancel(); wg.Wait() }()
			wg.Go(func() { produce(ctx, b, kc, stream) })
			h := &counter{}
			for i := range workers {
				cons, err := kcl.New(kcl.Config{
					Source: "busy", StreamName: stream, Region: testaws.Region,
					Start:       leases.Position{Type: leases.TrimHorizon},
					Application: "busy", WorkerID: fmt.Sprintf("w%d", i),
					ShardSyncInterval: pass, LeaseDuration: lease, LeaseRefresh: refresh, CheckpointInterval: every,
					IdleBetweenReads: config.DefaultIdleBetweenReads, MaxRecords: config.DefaultMaxRecords, LeaseStealing: true,
					DrainTimeout: 5 * time.Second,
					Kinesis:      kc, Dynamo: dyn,
					Handler: h, Hooks: metrics.New(prometheus.NewRegistry()).Consumer("busy"), Logger: log,
				})
				if err != nil {
					b.Fatal(err)
				}
				wg.Go(func() {
					if err := cons.Run(ctx); err != nil {
						b.Error(err)
					}
				})
			}
			waitConverged(ctx, b, ddb.Endpoint, "busy", shards, workers, true)
			time.Sleep(2 * pass) // past the backlog of the first reads
			for range b.N {
				_, w0, _ := c.get()
				u0, b0 := dproxy.Calls("UpdateItem"), h.batches.Load()
				start := time.Now()
				time.Sleep(window)
				secs := time.Since(start).Seconds()
				_, w1, _ := c.get()
				r := result{every: every, writeS: (w1 - w0) / secs,
					updateS: float64(dproxy.Calls("UpdateItem")-u0) / secs, batchS: float64(h.batches.Load()-b0) / secs}
				b.ReportMetric(r.writeS, "write-units/s")
				b.ReportMetric(r.updateS, "updates/s")
				b.ReportMetric(r.batchS/shards, "batches/s/shard")
				results = append(results, r)
			}
		})
	}
	if len(results) == 0 {
		return
	}
	f := func(v float64) string { return fmt.Sprintf("%.1f", v) }
	formula := func(s, w, batches float64, every time.Duration) float64 {
		per := batches
		if every > 0 {
			per = min(batches, 1/every.Seconds())
		}
		return w/pass.Seconds() + s/refresh.Seconds() + s*per
	}
	fmt.Printf("\n| shards × workers (busy, 10 records/s per shard) | checkpoint_interval | batches/s per shard | write units/s | formula | projected 1000 × 100 busy |\n")
	fmt.Printf("|---|---|---|---|---|---|\n")
	for _, r := range results {
		per := r.batchS / shards
		fmt.Printf("| %d × %d | %s | %s | %s | %s | %s |\n", shards, workers, r.every, f(per), f(r.writeS),
			f(formula(shards, workers, per, r.every)), f(formula(1000, 100, per, r.every)))
	}
}

// produce puts one record a shard every 100 ms until ctx ends, each aimed at
// its shard by an explicit hash key.
func produce(ctx context.Context, b *testing.B, kc *kinesis.Client, stream string) {
	out, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		b.Error(err)
		return
	}
	var entries []ktypes.PutRecordsRequestEntry
	for _, s := range out.Shards {
		lo, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
		entries = append(entries, ktypes.PutRecordsRequestEntry{Data: []byte(`{"id":1}`), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(lo.String())})
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
		}
	}
}
