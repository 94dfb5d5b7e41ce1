// Package kcl consumes a Kinesis stream with vmware-go-kcl-v2 v1.0.0 in polling
// mode, leases and checkpoints in DynamoDB through consumers/leases, and hands
// each GetRecords batch to a consumers.Handler.
//
// # The library's traps, and what this package does about them
//
//   - Checkpoints and leases: the library's DynamoDB checkpointer writes whole
//     items unconditionally, so a worker that lost a shard overwrote the new
//     owner's checkpoint, and checkpoints wiped steal claims. Replaced through
//     WithCheckpointer by consumers/leases: every write is a conditional
//     UpdateItem on this worker still owning the lease.
//
//   - What is checkpointed: ProcessRecords hands the whole batch to the Handler
//     and returns only once it is durable, then checkpoints the batch's last
//     sequence number. So the checkpoint is always the highest sequence number
//     below which everything is durable, and a KPL aggregate (its sub-records
//     share one sequence number, and always arrive in one batch) is checkpointed
//     only when all its sub-records are. Blocking there is also the backpressure:
//     the library polls again as soon as ProcessRecords returns.
//
//   - Shard end: on TERMINATE every earlier batch is already durable (ProcessRecords
//     is synchronous), so SHARD_END is written at once. Nothing is checkpointed
//     after the lease is released: the conditional write would fail.
//
//   - ZOMBIE is never sent: a lost lease ends the shard's consumer with no
//     callback. A lost lease shows up as ErrLeaseLost on the next checkpoint; the
//     processor then stops delivering.
//
//   - Stealing: the library's steal loop is off (it never set
//     ShardStatus.ClaimRequest, and checkpoints wiped claims); lease passes
//     place claims on workers above their share, and the owner gives a
//     claimed shard up at its next renewal between batches.
//
//   - One lease per shard-sync tick: lease passes take every due lease at
//     once (coordinator.go).
//
//   - A child shard read while its parent still has data: lease passes do not
//     take the child until the parent's row says SHARD_END (both parents'
//     after a merge: the adjacent parent, which the library drops, is read
//     from the passes' listings), so the library's parent wait (which ignores
//     Shutdown) returns at once.
//
//   - Where a shard without a checkpoint starts: the library uses one initial
//     position for every shard and every start, so LATEST skipped what was put
//     while a never-checkpointed shard had no reader. The application's first
//     start stores its start position in the lease table (Table.Register), and
//     a middleware on the Kinesis client (startPositions) rewrites the
//     library's GetShardIterator for such a shard to Table.StartOf.
//
//   - Shutdown can hang: Worker.Shutdown waits, without a timeout, for every shard
//     consumer, and one may be blocked in a delivery to a sink that is down.
//     Run cancels deliveries after DrainTimeout (no checkpoint is written for
//     them) and stops waiting for the library after a further grace period.
//
//   - No call has a deadline: the library calls Kinesis with context.TODO. The
//     HTTP client it is given (internal/service/app) ends every attempt after
//     call_timeout; a GetRecords that fails for good ends the shard's consumer,
//     which releases the lease, so a hung read cannot keep a shard leased.
//
//   - Memory: nothing bounds the sum of the shards' batches (each GetRecords may
//     return 10 MiB). A Budget shared by the worker's consumers does: a
//     middleware on GetRecords reserves MaxReadBytes before each call and keeps
//     what the answer holds until the shard's ProcessRecords has delivered it;
//     a read that does not fit waits (backpressure; the lease keeps renewing).
//     Enhanced fan-out pushes records without GetRecords and is not bounded.
//
//   - Logging and metrics: slog through the library's Logger interface, its stray
//     logrus output redirected into slog; what the library and the lease table
//     report goes to Hooks (adapter.go: its MonitoringService and
//     Checkpointer), never to its global-registry exporter.
//
//   - A malformed KPL aggregate made the library's de-aggregator drop the whole
//     batch it came in (or panic on a bad partition-key index), in polling and
//     enhanced fan-out mode alike. GuardAggregates, middlewares on the Kinesis
//     client (on GetRecords after the response is decoded; on SubscribeToShard
//     under the SDK's event decoder, event by event), tries each aggregate alone
//     and turns a bad one into a plain record the library passes through
//     untouched, flagged in its EncryptionType (which only Kinesis sets, so a
//     plain record cannot forge the flag); it becomes a decode_error dead
//     letter and the shard moves on.
package kcl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kclcfg "github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/worker"

	"github.com/kinesis-ingest/kinesis-ingest/consumers"
	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/retry"
)

// Config configures one consumer of one stream.
type Config struct {
	Source     string // the source's name: a metric label and the origin of rows
	StreamARN  string
	StreamName string
	Region     string
	// Start is where the application starts reading at its first start
	// (init_position); later starts use what the lease table stored.
	Start leases.Position
	// StartRelative says Start.Timestamp was resolved from an offset back
	// from now at this start (init_position: -72h): only the application's
	// first start stores it, and a later start's other instant is no change
	// of config.
	StartRelative bool
	Application   string // lease table
	WorkerID      string

	ShardSyncInterval time.Duration
	LeaseDuration     time.Duration
	LeaseRefresh      time.Duration
	IdleBetweenReads  time.Duration
	MaxRecords        int
	LeaseStealing     bool
	MaxLeases         int           // 0: no limit
	MaxLeasesPerPass  int           // 0: the lease table's default
	DrainTimeout      time.Duration // how long in-flight deliveries may finish after Run's ctx ends
	// CheckpointInterval, when positive, is the least time between two
	// checkpoints of a shard: batches durable meanwhile are checkpointed
	// together, at the interval's end (or when the shard is handed over,
	// ended or released). A crash re-reads at most this much more.
	CheckpointInterval time.Duration
	// Balance is how lease passes share the shards among workers: by count
	// (the default) or by measured throughput (leases.BalanceThroughput,
	// which needs LeaseStealing).
	Balance leases.Balance
	// Idleness, when positive, makes the source bounded: each shard's owner
	// marks in the lease table when the shard is read to its tip with
	// nothing new (leases.Table.MarkIdle), and Finished tells when every
	// shard has been so for Idleness, or is finished.
	Idleness time.Duration
	// PastWindow, for a bounded source whose every dataset ends (until),
	// is an arrival time from which the shard is past the window: once it
	// delivered a record that arrived then or later, it is done, however
	// busy the stream (a replay of a window of a live stream ends).
	PastWindow time.Time
	// EFO, when set, reads through enhanced fan-out (SubscribeToShard)
	// instead of polling.
	EFO *EFO
	// Budget bounds the record bytes in flight; share one among the
	// consumers of a worker. Nil: a budget of DefaultBudget of its own.
	Budget *Budget
	// Reads spaces the GetRecords calls (readrate.go); share one among the
	// consumers of a worker. Nil: one of its own with no cap, which backs
	// throttled shards off all the same.
	Reads *ReadLimiter

	Kinesis *kinesis.Client
	Dynamo  *dynamodb.Client
	Handler consumers.Handler
	Hooks   Hooks // what the consumer reports (metrics.Consumer)
	Logger  *slog.Logger
}

func (c *Config) validate() error {
	var errs []error
	req := func(ok bool, what string) {
		if !ok {
			errs = append(errs, fmt.Errorf("kcl consumer: %s", what))
		}
	}
	req(c.Source != "", "source name is empty")
	req(c.StreamName != "", "stream name is empty")
	req(c.Region != "", "region is empty")
	req(c.Application != "", "application (lease table) is empty")
	req(c.WorkerID != "", "worker id is empty")
	req(c.Kinesis != nil && c.Dynamo != nil, "needs Kinesis and DynamoDB clients")
	req(c.Handler != nil, "needs a handler")
	req(c.Hooks != nil, "needs hooks")
	switch c.Start.Type {
	case leases.Latest, leases.TrimHorizon:
	case leases.AtTimestamp:
		req(!c.Start.Timestamp.IsZero(), "AT_TIMESTAMP needs a timestamp")
	default:
		errs = append(errs, fmt.Errorf("kcl consumer: position %q: want LATEST, TRIM_HORIZON or AT_TIMESTAMP", c.Start.Type))
	}
	req(c.MaxRecords >= 1 && c.MaxRecords <= 10000, "max_records must be in 1..10000")
	req(c.LeaseDuration > 0 && c.LeaseRefresh > 0 && c.LeaseRefresh < c.LeaseDuration/2,
		"lease_refresh must be positive and under half of lease_duration")
	req(c.ShardSyncInterval > 0 && c.IdleBetweenReads > 0, "intervals must be positive")
	if c.EFO != nil {
		req((c.EFO.ConsumerName == "") != (c.EFO.ConsumerARN == ""), "efo needs exactly one of consumer_name and consumer_arn")
		req(c.EFO.Hooks != nil, "efo needs hooks")
	}
	return errors.Join(errs...)
}

// DefaultBudget is the in-flight budget of a consumer given none.
const DefaultBudget = 192 << 20

// Consumer runs one KCL worker.
type Consumer struct {
	cfg      Config
	log      *slog.Logger
	table    *leases.Table
	kinesis  *kinesis.Client // cfg.Kinesis with the in-flight budget on GetRecords
	inflight *inflight
	// iterators renews shard iterators that expired before their read.
	iterators *iteratorRenewal
	stopping  chan struct{} // closed when Run's ctx ends: reads waiting for the budget give up
	started   time.Time     // idle marks older than this are a previous run's (current)
	// procs holds the processor of each shard running here that has
	// batches waiting to be durable (shard ID to *processor).
	procs sync.Map
}

// settleShard makes the batches of shard delivered and not yet durable
// durable and checkpointed, before the KCL releases its lease: a claim, a
// lost lease or an error ended its consumer without telling the
// processor. Bounded by the lease duration: a claimer waits no longer.
func (c *Consumer) settleShard(shardID string) {
	v, ok := c.procs.Load(shardID)
	if !ok {
		return
	}
	p := v.(*processor)
	ctx, cancel := context.WithTimeout(p.ctx, c.cfg.LeaseDuration)
	defer cancel()
	p.settleWithin(ctx, "released")
	c.procs.CompareAndDelete(shardID, p)
}

// New validates cfg.
func New(cfg Config) (*Consumer, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Budget == nil {
		b, err := NewBudget(DefaultBudget, nil)
		if err != nil {
			return nil, err
		}
		cfg.Budget = b
	}
	if cfg.Reads == nil {
		cfg.Reads, _ = NewReadLimiter(0, 0) // no cap: no error
	}
	cfg.Kinesis, cfg.Dynamo = countThrottles(cfg.Kinesis, cfg.Dynamo, cfg.Hooks)
	log := cfg.Logger.With("source", cfg.Source, "worker_id", cfg.WorkerID)
	c := &Consumer{cfg: cfg, log: log, stopping: make(chan struct{}), started: time.Now()}
	c.inflight = newInflight(cfg.Budget, c.stopping)
	reads := newReadGate(cfg.Reads, cfg.StreamARN, c.stopping, log.With("subsystem", "reads"))
	// The library takes a *kinesis.Client only, so what the project puts
	// between it and Kinesis goes on a copy of the caller's client: the KPL
	// guard, then the budget outside it (Initialize middlewares added later
	// run outside earlier ones, so the budget sees the records as the KCL
	// will), the read-rate gate outside that (a read waits for its slot
	// before it reserves bytes), and the fan-out guard on its HTTP client.
	// Run adds the lease pass gate and the start positions (readClient).
	// Innermost, first: transient read failures retried in place
	// (readretry.go), then expired iterators renewed (iterators.go).
	c.iterators = newIteratorRenewal(cfg.Kinesis, log.With("subsystem", "kcl"))
	// The lease table is made below; the retries renew through it.
	retries := newReadRetry(c.stopping, log.With("subsystem", "kcl"), func(shard string) error { return c.table.RenewHeld(shard) })
	opts := []func(*kinesis.Options){retries.middleware, c.iterators.middleware, GuardAggregates, c.inflight.middleware, reads.middleware}
	if cfg.EFO != nil {
		opts = append(opts, WithFanOutGuard(cfg.EFO.Hooks, log.With("subsystem", "efo")))
	}
	c.kinesis = kinesis.New(cfg.Kinesis.Options(), opts...)
	table, err := leases.New(leases.Config{
		Client:           cfg.Dynamo,
		Table:            cfg.Application,
		WorkerID:         cfg.WorkerID,
		LeaseDuration:    cfg.LeaseDuration,
		Logger:           log.With("subsystem", "leases"),
		OnParentExpired:  func(string, string) { cfg.Hooks.ParentExpired() },
		MaxLeasesPerPass: cfg.MaxLeasesPerPass,
		MaxLeases:        cfg.MaxLeases,
		DisableStealing:  !cfg.LeaseStealing,
		AnnounceWait:     min(cfg.ShardSyncInterval, 2*time.Second),
		Balance:          cfg.Balance,
	})
	if err != nil {
		return nil, fmt.Errorf("lease table %q: %w", cfg.Application, err)
	}
	c.table = table
	return c, nil
}

// Leases gives access to the lease table (for status and tests).
func (c *Consumer) Leases() *leases.Table { return c.table }

// Run consumes until ctx is done, then shuts down gracefully: each shard finishes
// (or, after DrainTimeout, abandons without checkpointing) its batch in flight,
// checkpoints, and releases its lease.
func (c *Consumer) Run(ctx context.Context) error {
	redirectLogrus(c.cfg.Logger)
	ms := func(d time.Duration) int { return int(d / time.Millisecond) }
	kc := kclcfg.NewKinesisClientLibConfigWithCredentials(c.cfg.Application, c.cfg.StreamName, c.cfg.Region, c.cfg.WorkerID, nil, nil).
		WithTableName(c.cfg.Application).
		WithFailoverTimeMillis(ms(c.cfg.LeaseDuration)).
		WithLeaseRefreshWaitTime(ms(c.cfg.LeaseRefresh)).
		// The coordinator paces the loop (see coordinator.go).
		WithShardSyncIntervalMillis(ms(loopTick)).
		WithIdleTimeBetweenReadsInMillis(ms(c.cfg.IdleBetweenReads)).
		WithMaxRecords(c.cfg.MaxRecords).
		// Passes place the claims; the library's own steal loop stays off.
		WithLeaseStealing(false).
		WithLogger(slogAdapter{c.log.With("subsystem", "kcl")}).
		WithMonitoringService(newMonitor(c.cfg.Hooks))
	kc.LeaseStealingIntervalMillis = ms(c.cfg.ShardSyncInterval)
	// The fan-out shard consumer renews when the lease has this long left;
	// the library's 5 s default is longer than a short lease_duration, which
	// made it renew on every pass of its event loop. Renew lease_refresh
	// after each renewal, as the polling consumer does.
	kc.LeaseRefreshPeriodMillis = ms(c.cfg.LeaseDuration - c.cfg.LeaseRefresh)
	kc.LeaseSyncingTimeIntervalMillis = ms(c.cfg.ShardSyncInterval)
	kc.LeaseStealingClaimTimeoutMillis = ms(2 * c.cfg.LeaseDuration)
	kc.MaxLeasesForWorker = c.cfg.MaxLeases
	// A bounded source must see the empty reads: they carry the
	// MillisBehindLatest of 0 that says a shard has nothing left.
	kc.CallProcessRecordsEvenForEmptyRecordList = c.cfg.Idleness > 0
	if kc.MaxLeasesForWorker <= 0 {
		kc.MaxLeasesForWorker = 1 << 30
	}
	// Shards without a checkpoint start where the lease table's application
	// row says (startPositions rewrites the KCL's GetShardIterator); the
	// KCL's own setting is never used for them.
	kc.WithInitialPositionInStream(kclcfg.TRIM_HORIZON)
	if err := c.register(ctx); err != nil {
		return err
	}

	mode := "polling"
	if e := c.cfg.EFO; e != nil {
		mode = "enhanced fan-out"
		arn := e.ConsumerARN
		if arn == "" {
			var err error
			if arn, err = RegisterConsumer(ctx, c.cfg.Kinesis, c.cfg.StreamARN, e.ConsumerName, c.log); err != nil {
				return err
			}
		}
		// The ARN, not the name: the library's own registration races
		// between workers and gives up on a consumer still CREATING.
		kc.WithEnhancedFanOutConsumerARN(arn)
	}

	// Deliveries outlive ctx by DrainTimeout so that a graceful stop finishes
	// the batches in flight and checkpoints them.
	deliverCtx, cancelDeliveries := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDeliveries()
	factory := &processorFactory{c: c, ctx: deliverCtx}
	coord := newCoordinator(c.table, c.cfg.Kinesis, c.cfg.StreamName, c.cfg.ShardSyncInterval, c.cfg.Hooks, c.log.With("subsystem", "leases"))
	kin := readClient(c.kinesis, c.table, c.log, coord.gate)
	passCtx, cancelPasses := context.WithCancel(ctx)
	defer cancelPasses()
	passesDone := make(chan struct{})
	go func() {
		defer close(passesDone)
		coord.run(passCtx)
	}()
	w := worker.NewWorker(factory, kc).WithKinesis(kin).WithCheckpointer(&leaseTable{t: c.table, hooks: c.cfg.Hooks, releasing: c.settleShard})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start consumer of stream %q with lease table %q: %w", c.cfg.StreamName, c.cfg.Application, err)
	}
	c.log.Info("consumer started", "stream", c.cfg.StreamName, "lease_table", c.cfg.Application,
		"initial_position", c.cfg.Start.Type, "mode", mode)
	<-ctx.Done()
	close(c.stopping)

	c.log.Info("consumer stopping: draining batches in flight", "drain_timeout", c.cfg.DrainTimeout)
	cancelPasses()
	<-passesDone
	c.table.Drain()
	coord.stop()
	drain := time.AfterFunc(c.cfg.DrainTimeout, func() {
		c.log.Warn("drain timeout: abandoning deliveries in flight without checkpointing them")
		cancelDeliveries()
	})
	defer drain.Stop()
	done := make(chan struct{})
	go func() {
		w.Shutdown()
		close(done)
	}()
	select {
	case <-done:
		c.log.Info("consumer stopped")
		return nil
	case <-time.After(c.cfg.DrainTimeout + 2*c.cfg.LeaseDuration):
		// A shard consumer stuck inside the library (a hung GetRecords call):
		// its lease expires by itself and another worker takes over.
		return fmt.Errorf("consumer of stream %q did not stop within %s; its leases will expire", c.cfg.StreamName, c.cfg.DrainTimeout+2*c.cfg.LeaseDuration)
	}
}

// register reads the application's stored start position and stream from the
// lease table, writing them at the application's first start, and refuses a
// table that belongs to another stream (one deleted and recreated under the
// same name).
func (c *Consumer) register(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := c.table.EnsureTable(ctx); err != nil {
		return err
	}
	sum, err := c.cfg.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(c.cfg.StreamName)})
	if err != nil {
		return fmt.Errorf("describe stream %q: %w (the credentials need kinesis:DescribeStreamSummary)", c.cfg.StreamName, err)
	}
	d := sum.StreamDescriptionSummary
	want := leases.Application{
		Start:         c.cfg.Start,
		StreamARN:     aws.ToString(d.StreamARN),
		StreamCreated: aws.ToTime(d.StreamCreationTimestamp),
	}
	if want.Start.Type == leases.Latest {
		want.Start.Timestamp = time.Time{}
	}
	app, created, err := c.table.Register(ctx, want)
	if err != nil {
		return fmt.Errorf("consumer of stream %q: %w", c.cfg.StreamName, err)
	}
	relativeKept := c.cfg.StartRelative && app.Start.Type == leases.AtTimestamp
	if !created && !app.Start.Equal(want.Start) && !relativeKept {
		c.log.Warn("init_position differs from the application's stored start position, which applies: init_position takes effect only at an application's first start",
			"init_position", want.Start.String(), "stored_start", app.Start.String(), "first_start", app.FirstStart,
			"fix", "use a new consumer.application to start over from init_position")
	}
	c.log.Info("application start position", "start", app.Start.String(), "first_start", app.FirstStart, "registered_now", created)
	return nil
}

type processorFactory struct {
	c   *Consumer
	ctx context.Context
}

func (f *processorFactory) CreateProcessor() kcl.IRecordProcessor {
	p := &processor{c: f.c, ctx: f.ctx}
	p.deferred, _ = f.c.cfg.Handler.(consumers.DeferredHandler)
	return p
}

// processor handles one shard lease. The KCL calls it from that shard's
// goroutine only.
type processor struct {
	c       *Consumer
	ctx     context.Context
	shardID string
	log     *slog.Logger
	// stopped: lease lost, delivery abandoned or a batch never durable:
	// deliver and checkpoint nothing more. Atomic: the shard's commits
	// goroutine sets it too.
	stopped atomic.Bool
	// deferred is the handler when it may make batches durable later;
	// commits checkpoints those (nil until the first).
	deferred consumers.DeferredHandler
	commits  *commits
	// lastCheckpoint is when the shard was last checkpointed (the
	// interval's start). Written by whichever goroutine checkpoints, never
	// two at once (the shard's goroutine only while commits is idle).
	lastCheckpoint time.Time
	// For a bounded source: when the shard last delivered a record (or
	// since when its row says it is idle), and whether the row says so.
	lastNew time.Time
	marked  bool
	// state is a consumers.StateHandler's state after the last batch; loaded
	// tells whether it was read from the lease table yet.
	state  []byte
	loaded bool
	past   bool // delivered a record past PastWindow: done for good
	// lastArrival is the arrival time of the last record delivered.
	lastArrival time.Time
}

func (p *processor) Initialize(in *kcl.InitializationInput) {
	p.shardID = in.ShardId
	p.log = p.c.log.With("shard_id", in.ShardId)
	var from string
	if in.ExtendedSequenceNumber != nil {
		from = aws.ToString(in.ExtendedSequenceNumber.SequenceNumber)
	}
	p.log.Info("shard lease taken", "checkpoint", from)
	if p.c.cfg.Idleness > 0 {
		// Idleness carries over from the previous owner: a shard idle for
		// 9 of 10 minutes stays so when its lease moves.
		p.lastNew = time.Now()
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		if l, err := p.c.table.Lease(ctx, in.ShardId); err == nil && p.c.current(l.IdleSince) {
			p.lastNew, p.marked = l.IdleSince, true
		}
		cancel()
	}
}

// idle notes a read of the shard for a bounded source: one that delivered
// records clears the row's idle mark, an empty one at the tip sets it.
func (p *processor) idle(records int, millisBehind int64) {
	if p.c.cfg.Idleness <= 0 || p.stopped.Load() {
		return
	}
	var since time.Time
	switch {
	case p.past:
		return
	case records > 0 && p.pastWindow():
		// Marked idle since the epoch: done at once, and kept so by
		// every later read of this consumer.
		p.past, since = true, time.Unix(0, 0)
		p.log.Info("bounded source: shard past its window, done", "arrival", p.lastArrival, "past_window", p.c.cfg.PastWindow)
	case records > 0:
		p.lastNew = time.Now()
		if !p.marked {
			return
		}
	case millisBehind == 0 && !p.marked:
		since = p.lastNew
	default:
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	if err := p.c.table.MarkIdle(ctx, p.shardID, since); err != nil {
		p.log.Warn("bounded source: idle mark not written; written again at the next read", "err", err)
		return
	}
	p.marked = !since.IsZero()
}

// pastWindow reports whether the last batch delivered reached PastWindow.
func (p *processor) pastWindow() bool {
	return !p.c.cfg.PastWindow.IsZero() && !p.lastArrival.Before(p.c.cfg.PastWindow)
}

func (p *processor) ProcessRecords(in *kcl.ProcessRecordsInput) {
	// The batch's bytes leave the budget once it is durable, abandoned or
	// skipped; a deferred batch hands this over to its commit.
	release := len(in.Records) > 0
	defer func() {
		if release {
			p.c.inflight.done(aws.ToString(in.Records[len(in.Records)-1].SequenceNumber))
		}
	}()
	if p.stopped.Load() {
		return
	}
	if len(in.Records) == 0 {
		p.idle(0, in.MillisBehindLatest)
		return
	}
	// A claimed shard changes hands between batches: while this one is in
	// flight the lease keeps being renewed, and once the table hands the
	// shard over no further batch is delivered (the claimer reads it from the
	// checkpoint, after what this worker holds is made durable and
	// checkpointed).
	if !p.c.table.BeginBatch(p.shardID) {
		p.log.Info("shard claimed by another worker: handing it over at this batch boundary", "records_left_to_it", len(in.Records))
		p.settle("handover")
		p.stopped.Store(true)
		return
	}
	defer p.c.table.EndBatch(p.shardID)
	p.busy()
	recs := make([]record.Record, len(in.Records))
	size := 0
	for i, r := range in.Records {
		size += len(r.Data)
		seq := aws.ToString(r.SequenceNumber)
		sub := 0
		// KPL sub-records share their aggregate's sequence number.
		if i > 0 && seq == recs[i-1].Origin.SequenceNumber {
			sub = recs[i-1].Origin.SubSequence + 1
		}
		recs[i] = record.Record{
			Origin: record.Origin{
				Source:         p.c.cfg.Source,
				StreamARN:      p.c.cfg.StreamARN,
				ShardID:        p.shardID,
				SequenceNumber: seq,
				SubSequence:    sub,
				PartitionKey:   aws.ToString(r.PartitionKey),
				ArrivalTime:    aws.ToTime(r.ApproximateArrivalTimestamp).UTC(),
			},
			Data: r.Data,
		}
		if orig, reason, bad := takeInvalid(r); bad {
			recs[i].Data, recs[i].Invalid = orig, errors.New(reason)
		}
	}
	p.c.table.RecordBytes(p.shardID, size)
	p.c.cfg.Hooks.Delivering(p.shardID, recs[len(recs)-1].Origin.ArrivalTime)
	last := recs[len(recs)-1].Origin.SequenceNumber
	stopRenewing := p.renewDuringDelivery()
	var err error
	var cm *commit
	switch sh, stateful := p.c.cfg.Handler.(consumers.StateHandler); {
	case p.deferred != nil:
		cm, err = p.deliverDeferred(recs, last, in.Checkpointer)
	case stateful:
		err = p.deliverState(sh, recs, last)
	default:
		err = p.c.cfg.Handler.Deliver(p.ctx, p.c.cfg.Source, recs)
	}
	stopRenewing()
	if err != nil {
		// Only cancellation ends a delivery unfinished; the batch is not
		// checkpointed and will be read again.
		p.log.Warn("batch abandoned without checkpoint", "records", len(recs), "err", err)
		p.stopped.Store(true)
		return
	}
	p.lastArrival = recs[len(recs)-1].Origin.ArrivalTime
	if cm == nil && p.coalesce() {
		// Durable now, checkpointed at the interval's end with the batches
		// after it.
		_, stateful := p.c.cfg.Handler.(consumers.StateHandler)
		cm = durableCommit(last, p.state, stateful, in.Checkpointer)
	}
	if cm != nil {
		if !p.queue(cm) {
			return
		}
		release = false
	} else {
		p.checkpoint(in.Checkpointer, &last)
	}
	p.idle(len(recs), in.MillisBehindLatest)
}

// deliverDeferred delivers a batch to a consumers.DeferredHandler. It
// returns nil when the batch is durable already and nothing is waiting ahead
// of it (the caller checkpoints it at once, with its state staged here),
// else the commit to queue.
func (p *processor) deliverDeferred(recs []record.Record, last string, cp kcl.IRecordProcessorCheckpointer) (*commit, error) {
	if err := p.loadState(); err != nil {
		return nil, err
	}
	cm := &commit{last: last, cp: cp, done: make(chan error, 1)}
	st, err := p.deferred.DeliverDeferred(p.ctx, p.c.cfg.Source, p.state, recs, func(err error) { cm.done <- err })
	if err != nil {
		return nil, err
	}
	p.state, cm.state = st, st
	if p.commits == nil || p.commits.empty() {
		select {
		case err := <-cm.done:
			if err != nil {
				p.log.Warn("batch not made durable; the shard checkpoints nothing more and stops (the next owner reads it again)", "last_sequence_number", last, "err", err)
				p.stopped.Store(true)
				return nil, err
			}
			p.c.table.StageState(p.shardID, last, st)
			return nil, nil
		default:
		}
	}
	return cm, nil
}

// coalesce reports whether a batch durable now waits for the checkpoint
// interval: one is set, and either the shard was checkpointed less than it
// ago or earlier batches wait already (order).
func (p *processor) coalesce() bool {
	if p.c.cfg.CheckpointInterval <= 0 {
		return false
	}
	if p.commits != nil && !p.commits.empty() {
		return true
	}
	return time.Since(p.lastCheckpoint) < p.c.cfg.CheckpointInterval
}

// queue hands a commit to the shard's commits goroutine; false when the
// delivery was cancelled first (its bytes are then released by the caller).
func (p *processor) queue(cm *commit) bool {
	if p.commits == nil {
		p.commits = newCommits(p)
		p.c.procs.Store(p.shardID, p)
	}
	var flush func(context.Context) error
	if p.deferred != nil {
		flush = p.deferred.Flush
	}
	if !p.commits.push(p.ctx, cm, flush) {
		p.stopped.Store(true)
		return false
	}
	return true
}

// settle makes the batches delivered and not yet durable durable, and
// checkpointed, before the shard is handed over, ended or released: the
// sinks flush, then the commits goroutine catches up. p.ctx bounds it (a
// graceful stop's drain timeout); past it, the next owner reads them again.
func (p *processor) settle(why string) bool { return p.settleWithin(p.ctx, why) }

func (p *processor) settleWithin(ctx context.Context, why string) bool {
	if p.commits == nil || p.commits.empty() {
		return true
	}
	p.commits.rush()
	if p.deferred != nil {
		if err := p.deferred.Flush(ctx); err != nil {
			p.log.Warn("flush of the sinks failed before the shard is "+why+"; batches not durable are read again by the next owner", "err", err)
		}
	}
	if !p.commits.wait(ctx) {
		p.log.Warn("batches not durable before the shard is " + why + " (drain timeout); the next owner reads them again")
		return false
	}
	return true
}

// renewDuringDelivery keeps the lease renewed while a batch is delivered, in
// enhanced fan-out mode: the KCL's fan-out shard consumer renews only inside
// its event loop, which waits for ProcessRecords, so a delivery longer than
// the lease duration (a slow or failing sink) would lose the lease to
// another worker, which would read the batch again. The polling consumer
// renews from a goroutine of its own and needs none of this.
func (p *processor) renewDuringDelivery() (stop func()) {
	if p.c.cfg.EFO == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(p.c.cfg.LeaseRefresh)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := p.c.table.RenewHeld(p.shardID); err != nil {
					p.log.Warn("lease renewal during a delivery failed", "err", err)
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// deliverState delivers a batch to a StateHandler with the shard's state
// (read from the lease table before the first batch, retried until it
// answers: a guessed state would classify records differently from the
// worker that checkpointed) and stages the new state with the checkpoint at
// last.
func (p *processor) deliverState(sh consumers.StateHandler, recs []record.Record, last string) error {
	if err := p.loadState(); err != nil {
		return err
	}
	st, err := sh.DeliverState(p.ctx, p.c.cfg.Source, p.state, recs)
	if err != nil {
		return err
	}
	p.state = st
	p.c.table.StageState(p.shardID, last, st)
	return nil
}

// loadState reads the shard's state from the lease table before its first
// batch, retried until it answers: a guessed state would classify records
// differently from the worker that checkpointed.
func (p *processor) loadState() error {
	if p.loaded {
		return nil
	}
	err := statePolicy.Do(p.ctx, retry.Options{OnRetry: func(a retry.Attempt) {
		p.log.Warn("reading the state stored with the checkpoint failed; retrying, nothing delivered meanwhile", "retry_in", a.Wait, "err", a.Err)
	}}, func(ctx context.Context) error {
		st, err := p.c.table.ShardState(ctx, p.shardID)
		p.state = st
		return err
	})
	if err != nil {
		return p.ctx.Err()
	}
	p.loaded = true
	return nil
}

// statePolicy retries the read of a shard's stored state until it answers
// or the delivery is cancelled.
var statePolicy = retry.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second}

// checkpointPolicy bounds the retries of a checkpoint that failed for a
// transient reason (DynamoDB throttled or briefly unreachable). A per-batch
// checkpoint that still fails is covered by the next one; SHARD_END matters
// more, since a shard's children are not leased until it is written.
var checkpointPolicy = retry.Policy{Initial: 100 * time.Millisecond, Attempts: 3}

func (p *processor) checkpoint(cp kcl.IRecordProcessorCheckpointer, seq *string) {
	err := checkpointPolicy.Do(p.ctx, retry.Options{
		Retryable: func(err error) bool { return !errors.Is(err, leases.ErrLeaseLost) },
		OnRetry: func(a retry.Attempt) {
			p.log.Warn("checkpoint failed; retrying", "attempt", a.N, "retry_in", a.Wait, "err", a.Err)
		},
	}, func(context.Context) error { return cp.Checkpoint(seq) })
	end := seq == nil
	switch {
	case err == nil:
		p.lastCheckpoint = time.Now()
		p.c.cfg.Hooks.Checkpointed(p.shardID, CheckpointOK, end)
	case errors.Is(err, leases.ErrLeaseLost):
		p.c.cfg.Hooks.Checkpointed(p.shardID, CheckpointLeaseLost, end)
		p.log.Warn("lease lost; another worker owns this shard now, stopping", "err", err)
		p.stopped.Store(true)
	default:
		// Not fatal: the next batch's checkpoint covers this one, and a crash
		// before then only re-reads durable records.
		p.c.cfg.Hooks.Checkpointed(p.shardID, CheckpointError, end)
		p.log.Warn("checkpoint failed; the next one will cover it (a restart before then re-reads durable records only)", "err", err)
	}
}

func (p *processor) Shutdown(in *kcl.ShutdownInput) {
	switch in.ShutdownReason {
	case kcl.TERMINATE:
		if !p.settle("ended") || p.stopped.Load() {
			return
		}
		// Every batch before this call is durable and checkpointed.
		p.checkpoint(in.Checkpointer, nil)
		p.log.Info("shard ended; SHARD_END checkpointed")
	default:
		p.settle("released")
		p.log.Info("shard released", "reason", strings.ToLower(aws.ToString(kcl.ShutdownReasonMessage(in.ShutdownReason))))
	}
}
