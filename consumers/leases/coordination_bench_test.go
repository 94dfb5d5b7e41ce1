package leases_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/sirupsen/logrus"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/worker"
	"github.com/vmware/vmware-go-kcl-v2/logger"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/faultproxy"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// readUnits sums the read capacity DynamoDB (dynalite computes it as AWS
// does: a GetItem is ceil(item size / 4 KiB), a scan page ceil(its items'
// bytes / 4 KiB), half of either when eventually consistent) reports for the
// calls of a client, which asks for it on every read.
type readUnits struct {
	mu    sync.Mutex
	units float64
}

func (u *readUnits) add(c *types.ConsumedCapacity) {
	if c == nil || c.CapacityUnits == nil {
		return
	}
	u.mu.Lock()
	u.units += *c.CapacityUnits
	u.mu.Unlock()
}

func (u *readUnits) total() float64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.units
}

// countingClient is a DynamoDB client through proxy that reports consumed
// read capacity into u.
func countingClient(proxyURL string, u *readUnits) *dynamodb.Client {
	return dynamodb.New(db.Options(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(proxyURL)
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("count-read-units",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					switch p := in.Parameters.(type) {
					case *dynamodb.GetItemInput:
						p.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
					case *dynamodb.ScanInput:
						p.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
					}
					out, md, err := next.HandleInitialize(ctx, in)
					switch r := out.Result.(type) {
					case *dynamodb.GetItemOutput:
						u.add(r.ConsumedCapacity)
					case *dynamodb.ScanOutput:
						u.add(r.ConsumedCapacity)
					}
					return out, md, err
				}), middleware.After)
		})
	})
}

// BenchmarkCoordinationReads measures what idle workers cost the lease table
// and Kinesis' control plane once they hold every shard: read units per
// second (DynamoDB's units, as dynalite reports them), GetItem, Scan and
// ListShards calls per second, counted by proxies in front of dynalite and
// kinesis-mock. It also reports the formula's prediction for the same
// settings, so that the two can be compared:
//
//	read units/s = W × U / P
//
// an upper bound, with W workers, P the shard sync interval (the shortest
// pass: the KCL adds jitter) and U the units of
// one eventually consistent scan of the table: ceil(S × b / 4 KiB) / 2 for S
// rows of b bytes (b ≈ 150-250 for this table). Each pass reads the table
// once: the event loop's per-shard FetchCheckpoint probes, its GetLease
// attempts on shards held by others, ListActiveWorkers and the fair-share
// guard all use that scan; renewals and checkpoints are conditional writes
// without a read; a consistent GetItem happens only before taking a shard
// the scan showed takeable. Kinesis: one ListShards per worker per pass
// (ceil(S / 1000) pages).
//
// Run: go test -run '^$' -bench Coordination -benchtime 1x ./consumers/leases
func BenchmarkCoordinationReads(b *testing.B) {
	const (
		shards = 16
		pass   = time.Second // shard_sync_interval
		window = 8 * time.Second
	)
	for _, workers := range []int{2, 8} {
		b.Run(fmt.Sprintf("shards=%d/workers=%d", shards, workers), func(b *testing.B) {
			kin := envtest.Kinesis(b)
			kproxy := faultproxy.New(b, kin.Endpoint)
			kc := testaws.Kinesis(kproxy.URL)
			stream := fmt.Sprintf("coord-%d", workers)
			envtest.CreateStream(b, testaws.Kinesis(kin.Endpoint), stream, shards)
			dproxy := faultproxy.New(b, endpoint)
			var units readUnits
			client := countingClient(dproxy.URL, &units)
			table := fmt.Sprintf("coord-%d-%d", workers, tableSeq.Add(1))

			logrus.SetOutput(io.Discard)
			kclLog := logrus.New()
			kclLog.SetOutput(io.Discard)
			var ws []*worker.Worker
			for i := range workers {
				id := fmt.Sprintf("w%d", i)
				tbl, err := leases.New(leases.Config{Client: client, Table: table, WorkerID: id, LeaseDuration: 3 * pass, Logger: discardLogger()})
				if err != nil {
					b.Fatal(err)
				}
				leases.SetStatsTTL(tbl, pass/2) // what ScanReuse sets; consumers/kcl uses half the shard sync interval
				cfg := config.NewKinesisClientLibConfig(table, stream, testaws.Region, id).
					WithInitialPositionInStream(config.TRIM_HORIZON).
					WithFailoverTimeMillis(int((3 * pass).Milliseconds())).
					WithLeaseRefreshWaitTime(int((pass).Milliseconds())).
					WithShardSyncIntervalMillis(int(pass.Milliseconds())).
					WithIdleTimeBetweenReadsInMillis(500).
					WithLeaseStealing(true).
					WithLeaseStealingIntervalMillis(int(pass.Milliseconds())).
					WithLeaseSyncingIntervalMillis(int(pass.Milliseconds())).
					WithLogger(logger.NewLogrusLogger(kclLog))
				cfg.LeaseStealingClaimTimeoutMillis = int((6 * pass).Milliseconds())
				w := worker.NewWorker(factory{t: newTally(), worker: id}, cfg).WithKinesis(kc).WithCheckpointer(tbl)
				if err := w.Start(); err != nil {
					b.Fatal(err)
				}
				ws = append(ws, w)
			}
			defer func() {
				for _, w := range ws {
					w.Shutdown()
				}
			}()
			reader, err := leases.New(leases.Config{Client: db, Table: table, WorkerID: "reader", LeaseDuration: pass})
			if err != nil {
				b.Fatal(err)
			}
			deadline := time.Now().Add(3 * time.Minute)
			for {
				rows, err := reader.Checkpoints(b.Context())
				held := 0
				for _, r := range rows {
					if r.Owner != "" && r.LeaseTimeout.After(time.Now()) {
						held++
					}
				}
				if err == nil && held == shards {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("only %d of %d shards leased after 3 minutes", held, shards)
				}
				time.Sleep(200 * time.Millisecond)
			}
			time.Sleep(2 * pass) // past the last acquisitions and steals

			// One scan's units, as the formula's U.
			var one readUnits
			probe, _ := leases.New(leases.Config{Client: countingClient(endpoint, &one), Table: table, WorkerID: "probe", LeaseDuration: pass})
			if _, err := probe.ListActiveWorkers(nil); err != nil {
				b.Logf("probe scan: %v", err)
			}
			scanUnits := one.total()

			for range b.N {
				u0, g0, s0, l0 := units.total(), dproxy.Calls("GetItem"), dproxy.Calls("Scan"), kproxy.Calls("ListShards")
				start := time.Now()
				time.Sleep(window)
				secs := time.Since(start).Seconds()
				b.ReportMetric((units.total()-u0)/secs, "read-units/s")
				b.ReportMetric(float64(dproxy.Calls("GetItem")-g0)/secs, "getitem/s")
				b.ReportMetric(float64(dproxy.Calls("Scan")-s0)/secs, "scan/s")
				b.ReportMetric(float64(kproxy.Calls("ListShards")-l0)/secs, "listshards/s")
			}
			b.ReportMetric(float64(workers)*scanUnits/pass.Seconds(), "formula-read-units/s")
			b.Logf("one scan of %d rows: %.1f read units; formula W×U/P = %d×%.1f/%v", shards, scanUnits, workers, scanUnits, pass)
			b.Logf("projected, default shard_sync_interval 5s: 1000 shards x 100 workers = %.0f read units/s",
				100*math.Ceil(1000*250/4096.0)/2/5)
		})
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
