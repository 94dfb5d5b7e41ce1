package metrics

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/aws/smithy-go"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"
)

// LeaseTable decorates the KCL's Checkpointer (our lease table) for one source:
// it counts steal claims and SHARD_END checkpoints as lease events, sets the
// shard's last-checkpoint time, and records when the table last answered (for
// readiness). It returns the inner errors unchanged: the KCL compares some of
// them with ==.
type LeaseTable struct {
	inner  checkpoint.Checkpointer
	m      *Metrics
	source string
	state  *leaseTableState
}

var _ checkpoint.Checkpointer = (*LeaseTable)(nil)

type leaseTableState struct {
	lastAnswer atomic.Int64 // Unix nanoseconds; 0: never
}

// WrapLeaseTable returns inner decorated for source. LeaseTableAnsweredAt
// reports what it saw.
func (m *Metrics) WrapLeaseTable(source string, inner checkpoint.Checkpointer) *LeaseTable {
	st, _ := m.leaseTables.LoadOrStore(source, &leaseTableState{})
	return &LeaseTable{inner: inner, m: m, source: source, state: st.(*leaseTableState)}
}

// LeaseTableAnsweredAt is when the lease table of source last answered a call
// made through WrapLeaseTable (zero if it never did).
func (m *Metrics) LeaseTableAnsweredAt(source string) time.Time {
	st, ok := m.leaseTables.Load(source)
	if !ok {
		return time.Time{}
	}
	ns := st.(*leaseTableState).lastAnswer.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Lease table operations, the values of LeaseTableErrors' op label.
const (
	opInit           = "init"
	opGetLease       = "get_lease"
	opCheckpoint     = "checkpoint"
	opFetch          = "fetch_checkpoint"
	opRemoveInfo     = "remove_lease_info"
	opRemoveOwner    = "remove_lease_owner"
	opGetOwner       = "get_lease_owner"
	opListWorkers    = "list_active_workers"
	opClaimShard     = "claim_shard"
	conditionalCheck = "ConditionalCheckFailedException"
)

// observe classifies err: it failed (an error from DynamoDB or from the way to
// it: a connection, a throttle, a timeout, a missing table), or the table
// answered: nil, a conditional write it refused, or a refusal the lease table
// decided on what it had just read (no checkpoint yet, a fair-share limit, a
// parent not ended, a shard leased by another). Counting those keeps a worker
// that holds no lease (more workers than shards) ready. A cancelled call is
// neither.
func (l *LeaseTable) observe(op string, err error) {
	switch tableAnswer(err) {
	case answered:
		now := time.Now()
		l.state.lastAnswer.Store(now.UnixNano())
		l.m.LeaseTableLastAnswer.WithLabelValues(l.source).Set(float64(now.UnixNano()) / 1e9)
	case failed:
		l.m.LeaseTableErrors.WithLabelValues(l.source, op).Inc()
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
		if api.ErrorCode() == conditionalCheck {
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

func (l *LeaseTable) Init() error {
	err := l.inner.Init()
	l.observe(opInit, err)
	return err
}

func (l *LeaseTable) GetLease(shard *par.ShardStatus, worker string) error {
	err := l.inner.GetLease(shard, worker)
	l.observe(opGetLease, err)
	return err
}

func (l *LeaseTable) CheckpointSequence(shard *par.ShardStatus) error {
	err := l.inner.CheckpointSequence(shard)
	l.observe(opCheckpoint, err)
	if err == nil {
		l.m.LastCheckpoint.WithLabelValues(l.source, shard.ID).SetToCurrentTime()
		if shard.GetCheckpoint() == checkpoint.ShardEnd {
			l.m.LeaseEvents.WithLabelValues(l.source, "shard_end").Inc()
		}
	}
	return err
}

func (l *LeaseTable) FetchCheckpoint(shard *par.ShardStatus) error {
	err := l.inner.FetchCheckpoint(shard)
	l.observe(opFetch, err)
	return err
}

func (l *LeaseTable) RemoveLeaseInfo(shardID string) error {
	err := l.inner.RemoveLeaseInfo(shardID)
	l.observe(opRemoveInfo, err)
	return err
}

func (l *LeaseTable) RemoveLeaseOwner(shardID string) error {
	err := l.inner.RemoveLeaseOwner(shardID)
	l.observe(opRemoveOwner, err)
	return err
}

func (l *LeaseTable) GetLeaseOwner(shardID string) (string, error) {
	owner, err := l.inner.GetLeaseOwner(shardID)
	l.observe(opGetOwner, err)
	return owner, err
}

func (l *LeaseTable) ListActiveWorkers(shards map[string]*par.ShardStatus) (map[string][]*par.ShardStatus, error) {
	workers, err := l.inner.ListActiveWorkers(shards)
	l.observe(opListWorkers, err)
	return workers, err
}

func (l *LeaseTable) ClaimShard(shard *par.ShardStatus, claimer string) error {
	err := l.inner.ClaimShard(shard, claimer)
	l.observe(opClaimShard, err)
	if err == nil {
		l.m.LeaseEvents.WithLabelValues(l.source, "claimed").Inc()
	}
	return err
}
