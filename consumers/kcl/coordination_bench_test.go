package kcl_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
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

// capacity sums the capacity units DynamoDB reports (dynalite computes them
// as AWS does: a read is ceil(bytes / 4 KiB) units, half when eventually
// consistent, a scan page counts its items' bytes together; a write
// ceil(bytes / 1 KiB)), and the items scans return.
type capacity struct {
	mu                 sync.Mutex
	read, write, items float64
}

func (c *capacity) add(cc *types.ConsumedCapacity, write bool, items int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items += float64(items)
	if cc == nil || cc.CapacityUnits == nil {
		return
	}
	if write {
		c.write += *cc.CapacityUnits
	} else {
		c.read += *cc.CapacityUnits
	}
}

func (c *capacity) get() (read, write, items float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.read, c.write, c.items
}

// counting is a DynamoDB client to endpoint that asks for and sums the
// consumed capacity of every call.
func counting(endpoint string, c *capacity) *dynamodb.Client {
	return dynamodb.NewFromConfig(testaws.Config(endpoint, testaws.Account), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("count-capacity",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					total := types.ReturnConsumedCapacityTotal
					switch p := in.Parameters.(type) {
					case *dynamodb.GetItemInput:
						p.ReturnConsumedCapacity = total
					case *dynamodb.ScanInput:
						p.ReturnConsumedCapacity = total
					case *dynamodb.UpdateItemInput:
						p.ReturnConsumedCapacity = total
					case *dynamodb.PutItemInput:
						p.ReturnConsumedCapacity = total
					case *dynamodb.DeleteItemInput:
						p.ReturnConsumedCapacity = total
					}
					out, md, err := next.HandleInitialize(ctx, in)
					switch r := out.Result.(type) {
					case *dynamodb.GetItemOutput:
						c.add(r.ConsumedCapacity, false, 0)
					case *dynamodb.ScanOutput:
						c.add(r.ConsumedCapacity, false, len(r.Items))
					case *dynamodb.UpdateItemOutput:
						c.add(r.ConsumedCapacity, true, 0)
					case *dynamodb.PutItemOutput:
						c.add(r.ConsumedCapacity, true, 0)
					case *dynamodb.DeleteItemOutput:
						c.add(r.ConsumedCapacity, true, 0)
					}
					return out, md, err
				}), middleware.After)
		})
	})
}

// itemBytes is an item's size as DynamoDB counts it: attribute names plus
// values (strings and numbers by their text, binaries by their bytes).
func itemBytes(it map[string]types.AttributeValue) int {
	n := 0
	for k, v := range it {
		n += len(k)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			n += len(v.Value)
		case *types.AttributeValueMemberN:
			n += len(v.Value)
		case *types.AttributeValueMemberB:
			n += len(v.Value)
		default:
			n++
		}
	}
	return n
}

// waitConverged waits until workers hold shards leases between them, each
// worker some (and, if checkpointed, each lease with a checkpoint).
func waitConverged(ctx context.Context, b *testing.B, endpoint, table string, shards, workers int, checkpointed bool) {
	b.Helper()
	reader, err := leases.New(leases.Config{Client: testaws.Dynamo(endpoint), Table: table, WorkerID: "reader", LeaseDuration: lease})
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		rows, err := reader.Checkpoints(ctx)
		held := map[string]int{}
		for _, r := range rows {
			if r.Owner != "" && (!checkpointed || r.Checkpoint != "") {
				held[r.Owner]++
			}
		}
		n := 0
		for _, h := range held {
			n += h
		}
		if err == nil && n == shards && len(held) == workers {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("not converged after 3 minutes: %v", held)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type discard struct{}

func (discard) Deliver(context.Context, string, []record.Record) error { return nil }

// The default consumer settings, which the figures are for.
const (
	pass    = config.DefaultShardSyncInterval
	lease   = config.DefaultLeaseDuration
	refresh = config.DefaultLeaseRefresh
	// Row sizes the projection takes at least: a lease row with a
	// checkpoint, a worker row (the bench measures both).
	rowBytes = 250
	wBytes   = 80
)

// scanUnits is the formula's U: the read units of one eventually consistent
// scan of S lease rows and W worker rows (one page: up to 1 MB).
func scanUnits(s, w int, rowB, workerB float64) float64 {
	return math.Ceil((float64(s)*rowB+float64(w)*workerB)/4096) / 2
}

// BenchmarkCoordination measures what idle workers cost the lease table and
// Kinesis' control plane once they hold every shard, with the default
// consumer settings, counted by proxies in front of dynalite and
// kinesis-mock, beside the formula's prediction. Per worker and pass
// (shard_sync_interval P): one ListShards (ceil(S/1000) pages), one
// announcement write, one eventually consistent scan of the table; per held
// lease and lease_refresh R: one conditional write (the renewal, no read).
// So, for S shards and W workers:
//
//	read units/s   = W × ceil((S×b + W×w) / 4 KiB) / 2 / P   (b, w: row bytes)
//	scans/s        = W / P,  ListShards/s = W × ceil(S/1000) / P
//	GetItem/s      = 0 when idle (one per shard start: its checkpoint)
//	writes/s       = W / P + S / R
//
// It prints the table `make bench` shows, with the projection to 1,000
// shards × 100 workers. Run:
//
//	go test -run '^$' -bench '^BenchmarkCoordination$' -benchtime 1x ./consumers/kcl
func BenchmarkCoordination(b *testing.B) {
	const shards = 16
	window := 30 * time.Second
	type result struct {
		workers                                   int
		readUS, scanS, getS, listS, writeS, itemS float64
		u, rowB, workerB                          float64
	}
	var results []result
	for _, workers := range []int{2, 8} {
		b.Run(fmt.Sprintf("shards=%d/workers=%d", shards, workers), func(b *testing.B) {
			kin := envtest.Kinesis(b)
			ddb := envtest.Dynamo(b)
			kproxy := faultproxy.New(b, kin.Endpoint)
			dproxy := faultproxy.New(b, ddb.Endpoint)
			stream := fmt.Sprintf("coord-%d", workers)
			envtest.CreateStream(b, testaws.Kinesis(kin.Endpoint), stream, shards)
			var c capacity
			dyn := counting(dproxy.URL, &c)
			app := fmt.Sprintf("coord-%d", workers)
			log := slog.New(slog.NewTextHandler(io.Discard, nil))

			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { cancel(); wg.Wait() }()
			for i := range workers {
				cons, err := kcl.New(kcl.Config{
					Source: "bench", StreamName: stream, Region: testaws.Region,
					Start:       leases.Position{Type: leases.TrimHorizon},
					Application: app, WorkerID: fmt.Sprintf("w%d", i),
					ShardSyncInterval: pass, LeaseDuration: lease, LeaseRefresh: refresh,
					IdleBetweenReads: config.DefaultIdleBetweenReads, MaxRecords: config.DefaultMaxRecords, LeaseStealing: true,
					DrainTimeout: 5 * time.Second,
					Kinesis:      testaws.Kinesis(kproxy.URL), Dynamo: dyn,
					Handler: discard{}, Hooks: metrics.New(prometheus.NewRegistry()).Consumer("bench"), Logger: log,
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
			waitConverged(ctx, b, ddb.Endpoint, app, shards, workers, false)
			time.Sleep(2 * pass) // past the last takes and the shards' first reads

			// One scan's units: the formula's U, as measured.
			var one capacity
			probe := counting(ddb.Endpoint, &one)
			out, err := probe.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(app), ConsistentRead: aws.Bool(false)})
			if err != nil {
				b.Fatal(err)
			}
			u, _, _ := one.get()
			var lb, wb, ln, wn int
			for _, it := range out.Items {
				if id := it["ShardID"].(*types.AttributeValueMemberS).Value; strings.HasPrefix(id, "#worker#") {
					wb, wn = wb+itemBytes(it), wn+1
				} else if !strings.HasPrefix(id, "#") {
					lb, ln = lb+itemBytes(it), ln+1
				}
			}
			rowB, workerB := float64(lb)/float64(max(ln, 1)), float64(wb)/float64(max(wn, 1))

			for range b.N {
				r0, w0, i0 := c.get()
				s0, g0, l0 := dproxy.Calls("Scan"), dproxy.Calls("GetItem"), kproxy.Calls("ListShards")
				start := time.Now()
				time.Sleep(window)
				secs := time.Since(start).Seconds()
				r1, w1, i1 := c.get()
				res := result{
					workers: workers, u: u, rowB: rowB, workerB: workerB,
					readUS: (r1 - r0) / secs, writeS: (w1 - w0) / secs, itemS: (i1 - i0) / secs,
					scanS: float64(dproxy.Calls("Scan")-s0) / secs, getS: float64(dproxy.Calls("GetItem")-g0) / secs,
					listS: float64(kproxy.Calls("ListShards")-l0) / secs,
				}
				b.ReportMetric(res.readUS, "read-units/s")
				b.ReportMetric(float64(workers)*u/pass.Seconds(), "formula-read-units/s")
				b.ReportMetric(res.scanS, "scan/s")
				b.ReportMetric(res.getS, "getitem/s")
				b.ReportMetric(res.listS, "listshards/s")
				b.ReportMetric(res.writeS, "write-units/s")
				results = append(results, res)
			}
		})
	}
	if len(results) == 0 {
		return
	}
	f := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	fmt.Printf("\n| shards × workers (idle, defaults) | read units/s | formula | scans/s | formula | items scanned/s | GetItem/s | ListShards/s | formula | write units/s | formula |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		w := float64(r.workers)
		fmt.Printf("| %d × %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", shards, r.workers,
			f(r.readUS), f(w*r.u/pass.Seconds()), f(r.scanS), f(w/pass.Seconds()), f(r.itemS), f(r.getS),
			f(r.listS), f(w/pass.Seconds()), f(r.writeS), f(w/pass.Seconds()+shards/refresh.Seconds()))
	}
	const S, W = 1000, 100
	last := results[len(results)-1]
	rowB, workerB := max(last.rowB, rowBytes), max(last.workerB, wBytes)
	fmt.Printf("| 1000 × 100 (projected) | | %s | | %s | %s | 0 | | %s | | %s |\n",
		f(W*scanUnits(S, W, rowB, workerB)/pass.Seconds()), f(W/pass.Seconds()), f(W*(S+W)/pass.Seconds()),
		f(W*math.Ceil(S/1000.0)/pass.Seconds()), f(W/pass.Seconds()+S/refresh.Seconds()))
	fmt.Printf("\nU, one eventually consistent scan of the 16-shard table as measured: %.1f read units (2 workers), %.1f (8 workers). Rows measured: lease %.0f bytes, worker %.0f; the projection takes max(measured, %d) and max(measured, %d).\n",
		results[0].u, last.u, last.rowB, last.workerB, rowBytes, wBytes)
}
