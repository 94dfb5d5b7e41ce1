// Package leases is a lease and checkpoint table in DynamoDB for the KCL
// (github.com/vmware/vmware-go-kcl-v2 v1.0.0). It implements the part of the
// KCL's checkpoint.Checkpointer that the library calls with lease stealing
// off (consumers/kcl adapts the rest); it replaces the KCL's own
// DynamoCheckpoint, which loses data (see
// /work/shared/notes/dependency-traps.md, section 1):
//
//   - Leases are taken in passes (Pass, pass.go, plan.go): one table scan
//     plans the whole assignment and every due lease is taken at once; the
//     KCL's GetLease only hands its loop what a pass took.
//   - A checkpoint is written only while this worker owns the lease
//     (UpdateItem with the condition AssignedTo = this worker). A worker that
//     lost a shard can never overwrite the new owner's checkpoint, and nothing
//     is checkpointed after the lease was released. Such writes fail with
//     ErrLeaseLost.
//   - Every write is an UpdateItem of the columns it owns, never a full-item
//     PutItem, so a checkpoint never erases a steal claim and a lease write
//     never erases a checkpoint.
//   - A child shard is not planned while its parents' rows lack SHARD_END, so
//     a child never runs alongside its parent.
//   - Steal claims work: passes place them on workers above their share; a
//     claim carries a time (ClaimTime) and expires after Config.ClaimTimeout;
//     the owner gives the shard up at its next renewal (GetLease returns
//     ErrClaimed) between batches, and only the claimer may take it while the
//     claim is live.
//   - Config.OnRelease tells the application that the KCL ended a shard
//     consumer (the KCL never sends a ZOMBIE shutdown).
//
// The table layout is the KCL's: hash key ShardID (S), AssignedTo,
// LeaseTimeout (RFC 3339, UTC, always with 9 fractional digits so that strings
// sort like times), Checkpoint (sequence number or SHARD_END), ParentShardId,
// ClaimRequest, plus ClaimTime (same format as LeaseTimeout).
//
// KCL settings to pair with it: WorkerID equal to Config.WorkerID,
// FailoverTimeMillis equal to LeaseDuration, LeaseRefreshWaitTime at most a
// third of it, lease stealing off.
//
// Limits that remain:
//
//   - Expiry is judged by local monotonic time: a lease is expired once this
//     worker has seen its owner and LeaseTimeout unchanged for LeaseDuration
//     (as KCL-Java does), so clock skew between workers never makes a live
//     lease look expired. A worker that just started therefore waits a full
//     LeaseDuration before taking over a dead worker's lease. Steal claims
//     (ClaimTime) are still compared across clocks: skew can only delay or
//     hasten a steal, never let two workers read a shard at once, since a
//     claimed shard is taken only once released or expired.
//   - WorkerID must be unique per running process (for example hostname plus
//     a random suffix). Two processes with the same WorkerID both pass the
//     AssignedTo checks and can overwrite each other's checkpoints; there is
//     no fencing token. One Table must serve one KCL Worker: it tracks which
//     shards that worker runs.
//   - A worker learns that it lost a lease only at its next renewal or
//     checkpoint, and the KCL stops a consumer only between batches: after a
//     takeover by expiry, both workers may process the same records for a
//     while (duplicates, never a moved-back or overwritten checkpoint).
//   - The KCL stops renewing a lease before RemoveLeaseOwner, so an OnRelease
//     longer than the rest of the lease lets another worker start the shard
//     while the drain runs; the drain's checkpoints then fail with
//     ErrLeaseLost.
//   - A parent whose row never reached SHARD_END but that Kinesis no longer
//     lists was lost to retention: its children are leased, the KCL's wait
//     on it reads SHARD_END, and the loss is reported once
//     (Config.OnParentExpired).
//   - The pass's table scan answers the KCL's probes (FetchCheckpoint of a
//     shard not running here): they see the table as of the last pass.
//     Nothing is taken on it alone: every take is a conditional write.
//   - Detecting that the KCL is ending a consumer (so that the same worker
//     does not restart the shard during OnRelease) relies on KCL v1.0.0
//     internals: releaseLease clears the in-memory owner before calling
//     RemoveLeaseOwner, and the event loop reuses one ShardStatus per shard.
package leases

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"
)

// Column names. The first six are the KCL's.
const (
	colShardID      = checkpoint.LeaseKeyKey       // "ShardID", hash key (S)
	colOwner        = checkpoint.LeaseOwnerKey     // "AssignedTo"
	colLeaseTimeout = checkpoint.LeaseTimeoutKey   // "LeaseTimeout"
	colCheckpoint   = checkpoint.SequenceNumberKey // "Checkpoint"
	colParent       = checkpoint.ParentShardIdKey  // "ParentShardId"
	colClaim        = checkpoint.ClaimRequestKey   // "ClaimRequest"
	colClaimTime    = "ClaimTime"
	colAdjacent     = "AdjacentParentShardId"
	// colExpired marks a parent row found unfinished after Kinesis stopped
	// listing it, so that exactly one worker reports the loss.
	colExpired = "ExpiredUnfinished"
	// colFailedOn and colFailedAt name the worker whose consumer of the
	// shard last ended in failure (a hung or failing read, renewals that
	// kept failing) and when: lease passes give the shard to another worker
	// for a while (see failureMemory).
	colFailedOn = "FailedOn"
	colFailedAt = "FailedAt"
)

// timeFormat is RFC 3339 with a fixed 9-digit fraction. Written in UTC, the
// strings have a fixed width and compare like the times they hold, which the
// ClaimTime < :expired condition relies on (time.RFC3339Nano drops trailing
// zeros, so "…:05Z" would sort after "…:05.1Z"). time.Parse with
// time.RFC3339Nano reads it, and reads the KCL's own values.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

const (
	// initTimeout bounds Init (EnsureTable).
	initTimeout = 2 * time.Minute
	// minCallTimeout is the smallest per-call timeout for the KCL methods,
	// which get no context. The timeout is max(LeaseDuration, minCallTimeout).
	minCallTimeout = 5 * time.Second
)

// ErrLeaseLost is returned, wrapped, when this worker no longer owns the lease
// of a shard it is working on:
//
//   - by CheckpointSequence (and so by the KCL's Checkpoint) when the row's
//     AssignedTo is not this worker: the lease expired and another worker took
//     it, or it was released. The checkpoint was not written. Stop processing
//     the shard and do not retry: the new owner resumes from its own
//     checkpoint, and the records since this worker's last checkpoint are read
//     again by it (at-least-once). It wraps the DynamoDB
//     ConditionalCheckFailedException.
//   - by GetLease when a consumer of the shard is still running in this
//     process but the row says another owner (or none): the KCL's renewal loop
//     then ends that consumer.
var ErrLeaseLost = errors.New("lease lost: this worker no longer owns the shard")

// ErrClaimed is returned, wrapped, by GetLease when another worker holds a
// live steal claim on a shard this worker renews: the KCL's renewal loop ends
// the consumer, whose exit releases the lease (RemoveLeaseOwner) so that the
// claimer can take it.
var ErrClaimed = errors.New("shard is claimed by another worker")

// Config configures a Table.
type Config struct {
	// Client is the DynamoDB client. Required.
	Client *dynamodb.Client
	// Table is the lease table name. Required.
	Table string
	// WorkerID identifies this worker; it must equal the KCL's WorkerID and be
	// unique per process. Required.
	WorkerID string
	// LeaseDuration is the failover time: a lease not renewed for this long is
	// free. Required. It should match the KCL's FailoverTimeMillis and be at
	// least three times its LeaseRefreshPeriodMillis.
	LeaseDuration time.Duration
	// ClaimTimeout: a steal claim not honoured within this is ignored.
	// Default 2*LeaseDuration. It must be at least LeaseDuration, so that a
	// claim outlives the lease it waits for.
	ClaimTimeout time.Duration
	// Logger receives the logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock: leases are judged by how long this worker has seen
	// a row unchanged on it, never by comparing another machine's wall clock
	// with it (see Table.live). Default time.Now. Tests inject an offset clock.
	Now func() time.Time
	// OnRelease is called (synchronously) when the KCL ends a shard consumer
	// for this worker, before the lease owner is removed. The KCL calls
	// RemoveLeaseOwner on every consumer exit (end of shard, shutdown, lease
	// lost or claimed, errors): it is the only "ended" signal, since the KCL
	// never sends a ZOMBIE shutdown. Checkpoints written from OnRelease still
	// succeed if the lease is still ours; after it returns, none do. While it
	// runs, this worker does not take the shard again. It must not panic.
	// Optional.
	OnRelease func(shardID string)
	// OnParentExpired is called once per parent shard (across all workers)
	// whose row never reached SHARD_END while Kinesis no longer lists it:
	// its unread records were lost to retention and its children are leased
	// anyway. Optional; the loss is logged at error in any case.
	OnParentExpired func(parentID, checkpoint string)

	// MaxLeasesPerPass bounds the leases a pass takes plus the claims it
	// places. Default 50: 1,000 shards over 10 workers are leased in two
	// passes.
	MaxLeasesPerPass int
	// MaxLeases caps this worker's leases (0: none); passes share the
	// shards among the workers within their caps.
	MaxLeases int
	// DisableStealing: passes take free shards only, never claim.
	DisableStealing bool
	// AnnounceWait is how long the first pass waits between announcing this
	// worker and reading the table (default 2s), so that workers started
	// together share the shards at once instead of by claims.
	AnnounceWait time.Duration
	// Balance is how passes share the shards: by count (the default) or by
	// measured throughput (balance.go). Every worker of the table should
	// balance alike; while one balances by count, all do.
	Balance Balance
}

// Lease is one row of the lease table.
type Lease struct {
	ShardID       string
	Owner         string // AssignedTo; "" when free
	Checkpoint    string // sequence number, checkpoint.ShardEnd, or ""
	ParentShardID string
	// AdjacentParentShardID is the second parent of a merged shard.
	AdjacentParentShardID string
	ClaimRequest          string    // worker that asked to steal the shard; "" if none
	LeaseTimeout          time.Time // zero if absent
	ClaimTime             time.Time // zero if absent
	// FailedOn is the worker whose consumer of the shard last ended in
	// failure, at FailedAt (see colFailedOn); "" if none.
	FailedOn string
	FailedAt time.Time
	// IdleSince is, for a shard of a bounded source, since when it has
	// delivered nothing and been read to its tip (MarkIdle); zero if not.
	IdleSince time.Time
	// StartAt is where a rewound shard starts while it has no checkpoint
	// (Rewind; Position.Encode's form), "" if none.
	StartAt string
	// State is the handler's state stored with Checkpoint (see StageState).
	State []byte
}

// Table is the lease table of one KCL worker. It implements
// checkpoint.Checkpointer and is safe for concurrent use.
type Table struct {
	db           *dynamodb.Client
	table        string
	me           string
	leaseDur     time.Duration
	claimTimeout time.Duration
	log          *slog.Logger
	onRelease    func(string)
	onExpired    func(string, string)
	callTimeout  time.Duration

	now func() time.Time

	mu sync.Mutex
	// seen is, per shard, the lease (owner and raw LeaseTimeout) this worker
	// last read and when it first read it so (on t.now, which carries a
	// monotonic reading): the lease is expired once it is unchanged for
	// leaseDur.
	seen map[string]sighting
	// running holds the shards whose consumer runs in this process: added
	// when GetLease acquires a lease, removed when RemoveLeaseOwner returns.
	running map[string]*localLease
	// states are handler states waiting for their checkpoint (StageState).
	states map[string]staged
	// draining is set by Drain: the worker is stopping and takes no new
	// lease.
	draining bool
	// app is the metadata row, once read or written (Register).
	app *Application
	// adjacent maps a merged shard to its adjacent parent, which the KCL
	// drops (from the passes' listings).
	adjacent map[string]string
	// lost holds the parents this worker's passes found lost to retention
	// (reportExpired) and leased the children of: the KCL's wait on such a
	// parent ends as at its SHARD_END (FetchCheckpoint).
	lost map[string]bool

	// Passes (pass.go).
	maxPerPass   int
	maxLeases    int
	stealing     bool
	announceWait time.Duration
	balance      Balance
	passes       int
	// pending are the leases passes took that the KCL has not started.
	pending map[string]*pendingLease
	// passRows is the last pass's scan by shard ID: it answers the KCL
	// loop's probes.
	passRows map[string]row
	// started is the KCL loop's ShardStatus of every shard started here
	// (startPending), kept to repair its view if a lease is not started.
	started map[string]*par.ShardStatus
}

// sighting is a lease as this worker saw it.
type sighting struct {
	owner, rawTimeout string
	since             time.Time
}

// localLease is a shard whose consumer runs in this process.
type localLease struct {
	// status is the KCL's ShardStatus the lease was acquired with.
	status *par.ShardStatus
	// releasing is set once the KCL started ending the consumer.
	releasing bool
	// inFlight is set while the consumer delivers a batch (BeginBatch);
	// claimed once a claim was seen during it; yield once the shard is being
	// handed over to the claimer; refused once BeginBatch refused a batch
	// for it (the consumer then delivers nothing more).
	inFlight, claimed, yield, refused bool
	// meter measures its throughput (throughput balance only).
	meter meter
}

// New validates cfg and returns a Table. It does not touch DynamoDB; the KCL
// calls Init (EnsureTable) when the worker starts.
func New(cfg Config) (*Table, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("Client is nil"))
	}
	if cfg.Table == "" {
		errs = append(errs, errors.New("Table is empty"))
	}
	if cfg.WorkerID == "" {
		errs = append(errs, errors.New("WorkerID is empty"))
	}
	if cfg.LeaseDuration <= 0 {
		errs = append(errs, fmt.Errorf("LeaseDuration %v is not positive", cfg.LeaseDuration))
	}
	if cfg.ClaimTimeout == 0 {
		cfg.ClaimTimeout = 2 * cfg.LeaseDuration
	}
	if cfg.ClaimTimeout < cfg.LeaseDuration {
		errs = append(errs, fmt.Errorf("ClaimTimeout %v is shorter than LeaseDuration %v: a claim would expire before the lease it waits for", cfg.ClaimTimeout, cfg.LeaseDuration))
	}
	switch cfg.Balance {
	case "", BalanceCount, BalanceThroughput:
	default:
		errs = append(errs, fmt.Errorf("Balance %q: want %q or %q", cfg.Balance, BalanceCount, BalanceThroughput))
	}
	if cfg.Balance == BalanceThroughput && cfg.DisableStealing {
		errs = append(errs, errors.New("the throughput balance moves shards by steal claims: it needs stealing (DisableStealing false)"))
	}
	if cfg.MaxLeasesPerPass < 0 || cfg.MaxLeases < 0 || cfg.AnnounceWait < 0 {
		errs = append(errs, fmt.Errorf("MaxLeasesPerPass %d, MaxLeases %d and AnnounceWait %v must not be negative", cfg.MaxLeasesPerPass, cfg.MaxLeases, cfg.AnnounceWait))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("leases: invalid config for table %q: %w", cfg.Table, errors.Join(errs...))
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Table{
		db:           cfg.Client,
		table:        cfg.Table,
		me:           cfg.WorkerID,
		leaseDur:     cfg.LeaseDuration,
		claimTimeout: cfg.ClaimTimeout,
		log:          log.With("table", cfg.Table, "worker", cfg.WorkerID),
		onRelease:    cfg.OnRelease,
		onExpired:    cfg.OnParentExpired,
		callTimeout:  max(cfg.LeaseDuration, minCallTimeout),
		now:          now,
		seen:         map[string]sighting{},
		adjacent:     map[string]string{},
		lost:         map[string]bool{},
		running:      map[string]*localLease{},
		maxPerPass:   cmp.Or(cfg.MaxLeasesPerPass, defaultMaxLeasesPerPass),
		maxLeases:    cfg.MaxLeases,
		stealing:     !cfg.DisableStealing,
		announceWait: cmp.Or(cfg.AnnounceWait, defaultAnnounceWait),
		balance:      cmp.Or(cfg.Balance, BalanceCount),
		pending:      map[string]*pendingLease{},
		started:      map[string]*par.ShardStatus{},
	}, nil
}

// callCtx bounds one KCL-driven call (the Checkpointer interface has no
// context).
func (t *Table) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), t.callTimeout)
}

// notAcquiredError is a refusal to acquire a lease. It matches the KCL's
// checkpoint.ErrLeaseNotAcquired with errors.As (as the KCL's event loop
// tests it, which then skips the shard without logging an error) and
// errors.Is, and unwraps to its cause (ErrClaimed, ErrParentOpen, ...).
//
// checkpoint.ErrLeaseNotAcquired{} can be built from outside its package
// (the empty literal is legal), but its only field, the message, is
// unexported, so it would print "lease not acquired: " with no reason. This
// type carries our message and answers to the KCL type instead.
type notAcquiredError struct {
	msg   string
	cause error
}

func (e *notAcquiredError) Error() string {
	if e.cause == nil {
		return e.msg
	}
	return e.msg + ": " + e.cause.Error()
}

func (e *notAcquiredError) Unwrap() error { return e.cause }

// As makes errors.As(err, &checkpoint.ErrLeaseNotAcquired{}) true.
func (e *notAcquiredError) As(target any) bool {
	if p, ok := target.(*checkpoint.ErrLeaseNotAcquired); ok {
		*p = checkpoint.ErrLeaseNotAcquired{}
		return true
	}
	return false
}

// Is makes errors.Is(err, checkpoint.ErrLeaseNotAcquired{}) true.
func (e *notAcquiredError) Is(target error) bool {
	_, ok := target.(checkpoint.ErrLeaseNotAcquired)
	return ok
}

func (t *Table) notAcquired(cause error, format string, args ...any) error {
	return &notAcquiredError{msg: "leases: " + fmt.Sprintf(format, args...), cause: cause}
}

func fmtTime(tm time.Time) string { return tm.UTC().Format(timeFormat) }

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
