package kcl

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/smithy-go"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	kclmetrics "github.com/vmware/vmware-go-kcl-v2/clientlibrary/metrics"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
)

// The adapter is where the KCL meets the project: the library's
// Checkpointer goes to the lease table (consumers/leases), its
// MonitoringService to Hooks. Nothing else of the project is handed to the
// library.

// leaseTable is the KCL's Checkpointer: the lease table, and what its calls
// tell Hooks. It returns the table's errors unchanged: the KCL compares
// some of them with ==.
type leaseTable struct {
	t     *leases.Table
	hooks Hooks
	// releasing, when set, runs before a shard's lease is released (every
	// exit of its consumer, which the KCL reports to nobody else): batches
	// delivered and not yet durable are made so and checkpointed while the
	// lease is still this worker's.
	releasing func(shardID string)
}

var _ checkpoint.Checkpointer = (*leaseTable)(nil)

// Lease table operations, the values of Hooks.LeaseTableFailed's op.
const (
	opInit        = "init"
	opGetLease    = "get_lease"
	opCheckpoint  = "checkpoint"
	opFetch       = "fetch_checkpoint"
	opRemoveInfo  = "remove_lease_info"
	opRemoveOwner = "remove_lease_owner"
	opGetOwner    = "get_lease_owner"
)

// errNoStealing answers the Checkpointer methods the KCL calls only with
// its own lease stealing on; passes place the claims (leases.Table.Pass).
var errNoStealing = errors.New("kcl: the library's lease stealing is off; lease passes place the claims")

func (l *leaseTable) Init() error {
	err := l.t.Init()
	l.observe(opInit, err)
	return err
}

func (l *leaseTable) GetLease(shard *par.ShardStatus, worker string) error {
	err := l.t.GetLease(shard, worker)
	l.observe(opGetLease, err)
	return err
}

func (l *leaseTable) CheckpointSequence(shard *par.ShardStatus) error {
	err := l.t.CheckpointSequence(shard)
	l.observe(opCheckpoint, err)
	return err
}

func (l *leaseTable) FetchCheckpoint(shard *par.ShardStatus) error {
	err := l.t.FetchCheckpoint(shard)
	l.observe(opFetch, err)
	return err
}

func (l *leaseTable) RemoveLeaseInfo(shardID string) error {
	err := l.t.RemoveLeaseInfo(shardID)
	l.observe(opRemoveInfo, err)
	return err
}

func (l *leaseTable) RemoveLeaseOwner(shardID string) error {
	if l.releasing != nil {
		l.releasing(shardID)
	}
	err := l.t.RemoveLeaseOwner(shardID)
	l.observe(opRemoveOwner, err)
	return err
}

// GetLeaseOwner is not called by KCL v1.0.0; it reads the row.
func (l *leaseTable) GetLeaseOwner(shardID string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := l.t.Lease(ctx, shardID)
	l.observe(opGetOwner, err)
	if err == nil && r.Owner == "" {
		err = fmt.Errorf("kcl: shard %q: %w", shardID, checkpoint.NoLeaseOwnerErr)
	}
	return r.Owner, err
}

func (l *leaseTable) ListActiveWorkers(map[string]*par.ShardStatus) (map[string][]*par.ShardStatus, error) {
	return nil, errNoStealing
}

func (l *leaseTable) ClaimShard(*par.ShardStatus, string) error { return errNoStealing }

// observe classifies err: it failed (an error from DynamoDB or from the way to
// it: a connection, a throttle, a timeout, a missing table), or the table
// answered: nil, a conditional write it refused, or a refusal the lease table
// decided on what it had just read (no checkpoint yet, a shard not planned
// for this worker). Counting those keeps a worker that holds no lease (more
// workers than shards) ready. A cancelled call is neither.
func (l *leaseTable) observe(op string, err error) {
	switch tableAnswer(err) {
	case answered:
		l.hooks.LeaseTableAnswered()
	case failed:
		l.hooks.LeaseTableFailed(op)
	}
}

type answer int

const (
	undecided answer = iota
	answered
	failed
)

func tableAnswer(err error) answer {
	if err == nil {
		return answered
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		if api.ErrorCode() == "ConditionalCheckFailedException" {
			return answered
		}
		return failed
	}
	var op *smithy.OperationError
	if errors.As(err, &op) || errors.Is(err, context.DeadlineExceeded) {
		return failed
	}
	if errors.Is(err, context.Canceled) {
		return undecided
	}
	return answered
}

// monitor is the KCL's MonitoringService, reporting to Hooks, so the
// library's own Prometheus exporter (global registry, DefaultServeMux, a
// panic on a second worker) is never used.
type monitor struct {
	hooks Hooks

	mu    sync.Mutex
	empty map[string]bool // shard -> its last GetRecords returned no records
}

var _ kclmetrics.MonitoringService = (*monitor)(nil)

func newMonitor(h Hooks) *monitor { return &monitor{hooks: h, empty: map[string]bool{}} }

func (m *monitor) Init(_, _, _ string) error { return nil }
func (m *monitor) Start() error              { return nil }
func (m *monitor) Shutdown()                 {}

// The pipeline counts records and bytes itself, after de-aggregation and at
// the point they enter it; counting them here too would double them. The KCL
// calls IncrRecordsProcessed after every GetRecords, also an empty one, right
// before MillisBehindLatest from the same shard goroutine: that is how an
// empty read is told apart.
func (m *monitor) IncrRecordsProcessed(shard string, n int) {
	m.mu.Lock()
	m.empty[shard] = n == 0
	m.mu.Unlock()
}

func (m *monitor) IncrBytesProcessed(string, int64) {}

// MillisBehindLatest: a negative value is unknown, an enhanced fan-out event
// that came without it (see FanOutGuard).
func (m *monitor) MillisBehindLatest(shard string, ms float64) {
	m.mu.Lock()
	empty := m.empty[shard]
	m.mu.Unlock()
	m.hooks.Read(shard, ms, empty)
}

func (m *monitor) DeleteMetricMillisBehindLatest(shard string) { m.hooks.ShardGone(shard) }
func (m *monitor) LeaseGained(shard string)                    { m.hooks.LeaseGained(shard) }

func (m *monitor) LeaseLost(shard string) {
	m.mu.Lock()
	delete(m.empty, shard)
	m.mu.Unlock()
	m.hooks.LeaseLost(shard)
}

func (m *monitor) LeaseRenewed(shard string) { m.hooks.LeaseRenewed(shard) }

// RecordGetRecordsTime receives milliseconds.
func (m *monitor) RecordGetRecordsTime(shard string, ms float64) {
	m.hooks.ReadTook(shard, time.Duration(ms*float64(time.Millisecond)))
}

// RecordProcessRecordsTime is the handler's to measure.
func (m *monitor) RecordProcessRecordsTime(string, float64) {}
