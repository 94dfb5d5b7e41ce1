package leases_test

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/sirupsen/logrus"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/worker"
	"github.com/vmware/vmware-go-kcl-v2/logger"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// tally records what the processors saw, across workers.
type tally struct {
	mu         sync.Mutex
	seen       map[string]int      // record data → times processed
	first      map[string]int      // record data → position of its first processing
	n          int                 // records processed so far
	delay      time.Duration       // per batch, before the checkpoint (a slow sink)
	released   map[string][]string // worker → shards passed to OnRelease
	ckptErrors []error
}

type processor struct {
	t      *tally
	worker string
	shard  string
}

func (p *processor) Initialize(in *kcl.InitializationInput) { p.shard = in.ShardId }

func (p *processor) ProcessRecords(in *kcl.ProcessRecordsInput) {
	if len(in.Records) == 0 {
		return
	}
	p.t.mu.Lock()
	for _, r := range in.Records {
		d := string(r.Data)
		if p.t.seen[d] == 0 {
			p.t.first[d] = p.t.n
		}
		p.t.seen[d]++
		p.t.n++
	}
	delay := p.t.delay
	p.t.mu.Unlock()
	time.Sleep(delay)
	p.checkpoint(in.Checkpointer, in.Records[len(in.Records)-1].SequenceNumber)
}

func (p *processor) Shutdown(in *kcl.ShutdownInput) {
	if in.ShutdownReason == kcl.TERMINATE {
		p.checkpoint(in.Checkpointer, nil)
	}
}

func (p *processor) checkpoint(c kcl.IRecordProcessorCheckpointer, seq *string) {
	if err := c.Checkpoint(seq); err != nil {
		p.t.mu.Lock()
		p.t.ckptErrors = append(p.t.ckptErrors, fmt.Errorf("%s/%s: %w", p.worker, p.shard, err))
		p.t.mu.Unlock()
	}
}

type factory struct {
	t      *tally
	worker string
}

func (f factory) CreateProcessor() kcl.IRecordProcessor { return &processor{t: f.t, worker: f.worker} }

func newTally() *tally {
	return &tally{seen: map[string]int{}, first: map[string]int{}, released: map[string][]string{}}
}

// startKCL starts a KCL worker (polling, lease stealing on, short
// intervals) on a leases.Table of e, reading stream from TRIM_HORIZON.
func startKCL(t *testing.T, e *env, kc *kinesis.Client, stream, id string, tl *tally, leaseDur time.Duration) *worker.Worker {
	t.Helper()
	kclLog := logrus.New()
	kclLog.SetOutput(io.Discard)
	logrus.SetOutput(io.Discard) // renewLease logs through the logrus package
	tbl := e.worker(id, leaseDur, func(shard string) {
		tl.mu.Lock()
		tl.released[id] = append(tl.released[id], shard)
		tl.mu.Unlock()
	})
	cfg := config.NewKinesisClientLibConfig("leases-kcl", stream, testaws.Region, id).
		WithInitialPositionInStream(config.TRIM_HORIZON).
		WithFailoverTimeMillis(int(leaseDur.Milliseconds())).
		WithLeaseRefreshWaitTime(500).
		WithShardSyncIntervalMillis(500).
		WithIdleTimeBetweenReadsInMillis(100).
		WithMaxRecords(100).
		WithLeaseStealing(true).
		WithLeaseStealingIntervalMillis(1000).
		WithLeaseSyncingIntervalMillis(500).
		WithLogger(logger.NewLogrusLogger(kclLog))
	cfg.LeaseStealingClaimTimeoutMillis = int((2 * leaseDur).Milliseconds())
	cfg.ParentShardPollIntervalMillis = 200
	w := worker.NewWorker(factory{t: tl, worker: id}, cfg).WithKinesis(kc).WithCheckpointer(tbl)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestKCLWorkers runs two real KCL workers on our Table against kinesis-mock
// and dynalite: the first takes all four shards, the second steals two of
// them through claims, every record is processed, and shutdown releases
// every lease through OnRelease.
func TestKCLWorkers(t *testing.T) {
	kin := envtest.Kinesis(t)
	kc := testaws.Kinesis(kin.Endpoint)
	const stream = "leases-kcl"
	envtest.CreateStream(t, kc, stream, 4)
	e := newEnv(t)
	tl := newTally()

	put := func(from, n int) {
		data := make([][]byte, n)
		for i := range data {
			data[i] = fmt.Appendf(nil, "rec-%04d", from+i)
		}
		envtest.PutJSON(t, kc, stream, data, nil)
	}
	put(0, 200)

	const leaseDur = 3 * time.Second
	start := func(id string) *worker.Worker { return startKCL(t, e, kc, stream, id, tl, leaseDur) }
	owners := func() map[string]int {
		rows, err := e.worker("probe", leaseDur, nil).Checkpoints(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, r := range rows {
			if r.Owner != "" && time.Now().Before(r.LeaseTimeout) {
				n[r.Owner]++
			}
		}
		return n
	}
	waitFor := func(what string, timeout time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting for %s (owners %v)", timeout, what, owners())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	processed := func(n int) func() bool {
		return func() bool {
			tl.mu.Lock()
			defer tl.mu.Unlock()
			for i := range n {
				if tl.seen[fmt.Sprintf("rec-%04d", i)] == 0 {
					return false
				}
			}
			return true
		}
	}

	w1 := start("w1")
	stopped1 := false
	defer func() {
		if !stopped1 {
			w1.Shutdown()
		}
	}()
	waitFor("w1 to own all 4 shards", 30*time.Second, func() bool { return owners()["w1"] == 4 })
	waitFor("the first 200 records", 30*time.Second, processed(200))

	w2 := start("w2")
	stopped2 := false
	defer func() {
		if !stopped2 {
			w2.Shutdown()
		}
	}()
	waitFor("a 2/2 split", 60*time.Second, func() bool {
		o := owners()
		return o["w1"] == 2 && o["w2"] == 2
	})
	put(200, 200)
	waitFor("all 400 records", 30*time.Second, processed(400))

	w1.Shutdown()
	stopped1 = true
	w2.Shutdown()
	stopped2 = true

	rows, err := e.worker("probe", leaseDur, nil).Checkpoints(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for id, r := range rows {
		if r.Owner != "" || r.Checkpoint == "" {
			t.Errorf("row %s after shutdown: %+v, want no owner and a checkpoint", id, r)
		}
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if len(tl.released["w1"]) < 4 || len(tl.released["w2"]) < 2 {
		t.Errorf("OnRelease calls: %v; want w1 ≥ 4 (2 stolen + 2 at shutdown), w2 ≥ 2", tl.released)
	}
	for _, err := range tl.ckptErrors {
		// A consumer that outlives its lease may see ErrLeaseLost; nothing else
		// is expected.
		if !errors.Is(err, leases.ErrLeaseLost) {
			t.Errorf("checkpoint error: %v", err)
		} else {
			t.Logf("checkpoint refused after lease loss: %v", err)
		}
	}
	dups := 0
	for _, n := range tl.seen {
		dups += n - 1
	}
	t.Logf("records: %d distinct, %d duplicates; releases %v", len(tl.seen), dups, tl.released)
}

// TestKCLReshardOrder starts two KCL workers on a stream whose only shard was
// split before they started (no lease rows yet: the case where the KCL's own
// checkpointer may run a child alongside its parent). Every record written
// before the split, for one partition key, must be processed before any
// record written after it.
func TestKCLReshardOrder(t *testing.T) {
	kin := envtest.Kinesis(t)
	kc := testaws.Kinesis(kin.Endpoint)
	const stream = "leases-reshard"
	envtest.CreateStream(t, kc, stream, 1)
	put := func(prefix string, n int) {
		data := make([][]byte, n)
		keys := make([]string, n)
		for i := range data {
			data[i] = fmt.Appendf(nil, "%s-%04d", prefix, i)
			keys[i] = "k"
		}
		envtest.PutJSON(t, kc, stream, data, keys)
	}
	put("pre", 300)
	if _, err := kc.SplitShard(t.Context(), &kinesis.SplitShardInput{
		StreamName:         aws.String(stream),
		ShardToSplit:       aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728"), // 2^127
	}); err != nil {
		t.Fatal(err)
	}
	for {
		out, err := kc.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err != nil {
			t.Fatal(err)
		}
		if out.StreamDescriptionSummary.StreamStatus == "ACTIVE" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	put("post", 300)

	e := newEnv(t)
	tl := newTally()
	tl.delay = 500 * time.Millisecond
	const leaseDur = 3 * time.Second
	w1 := startKCL(t, e, kc, stream, "w1", tl, leaseDur)
	defer w1.Shutdown()
	w2 := startKCL(t, e, kc, stream, "w2", tl, leaseDur)
	defer w2.Shutdown()

	done := func() bool {
		tl.mu.Lock()
		defer tl.mu.Unlock()
		return len(tl.seen) == 600
	}
	deadline := time.Now().Add(60 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			tl.mu.Lock()
			n := len(tl.seen)
			tl.mu.Unlock()
			t.Fatalf("timed out: %d of 600 records processed", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	tl.mu.Lock()
	lastPre, firstPost := -1, int(^uint(0)>>1)
	for d, pos := range tl.first {
		if d[:3] == "pre" {
			lastPre = max(lastPre, pos)
		} else {
			firstPost = min(firstPost, pos)
		}
	}
	tl.mu.Unlock()
	if lastPre > firstPost {
		t.Fatalf("a post-split record was processed (position %d) before the last pre-split one (position %d)", firstPost, lastPre)
	}
	rows, err := e.worker("probe", leaseDur, nil).Checkpoints(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if r := rows["shardId-000000000000"]; r.Checkpoint != "SHARD_END" {
		t.Fatalf("parent row: %+v", r)
	}
	t.Logf("last pre-split record at %d, first post-split at %d; rows %+v", lastPre, firstPost, rows)
}
