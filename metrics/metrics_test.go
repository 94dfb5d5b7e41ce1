package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"
)

func TestKCLAdapterIteratorAgeAndShardGauges(t *testing.T) {
	m := New(prometheus.NewRegistry())
	k := m.NewKCL("orders")
	k.LeaseGained("s1")
	k.LeaseGained("s2")

	// A non-empty read: the consumer sets the age from its last record; the
	// KCL's MillisBehindLatest afterwards leaves it alone.
	m.ObserveIteratorAge("orders", "s1", time.Now().Add(-30*time.Second))
	k.IncrRecordsProcessed("s1", 10)
	k.MillisBehindLatest("s1", 5000)
	if age := testutil.ToFloat64(m.IteratorAge.WithLabelValues("orders", "s1")); age < 29 || age > 40 {
		t.Errorf("iterator age after a non-empty read: %v, want about 30", age)
	}
	// An empty read: the lag is the best age there is.
	k.IncrRecordsProcessed("s1", 0)
	k.MillisBehindLatest("s1", 0)
	if age := testutil.ToFloat64(m.IteratorAge.WithLabelValues("orders", "s1")); age != 0 {
		t.Errorf("iterator age after an empty read caught up: %v, want 0", age)
	}
	k.IncrRecordsProcessed("s2", 0)
	k.MillisBehindLatest("s2", 2500)
	if age := testutil.ToFloat64(m.IteratorAge.WithLabelValues("orders", "s2")); age != 2.5 {
		t.Errorf("iterator age after an empty read behind: %v, want 2.5", age)
	}
	// A record from a clock ahead of ours is not in the future.
	m.ObserveIteratorAge("orders", "s2", time.Now().Add(time.Hour))
	if age := testutil.ToFloat64(m.IteratorAge.WithLabelValues("orders", "s2")); age != 0 {
		t.Errorf("iterator age of a future record: %v, want 0", age)
	}

	m.LastCheckpoint.WithLabelValues("orders", "s1").SetToCurrentTime()
	k.LeaseLost("s1")
	if n := testutil.CollectAndCount(m.LastCheckpoint); n != 0 {
		t.Errorf("a lost shard keeps %d last-checkpoint series: its age would grow forever", n)
	}
	if n := testutil.CollectAndCount(m.IteratorAge); n != 1 {
		t.Errorf("%d iterator-age series after losing s1, want s2's only", n)
	}
	if held := testutil.ToFloat64(m.LeasesHeld.WithLabelValues("orders")); held != 1 {
		t.Errorf("leases held %v, want 1", held)
	}
}

// shardStatus is a ShardStatus as the KCL makes it (with its mutex).
func shardStatus(id, cp string) *par.ShardStatus {
	return &par.ShardStatus{ID: id, Checkpoint: cp, Mux: &sync.RWMutex{}}
}

// fakeTable is a Checkpointer whose calls fail with err.
type fakeTable struct{ err error }

func (f *fakeTable) Init() error                               { return f.err }
func (f *fakeTable) GetLease(*par.ShardStatus, string) error   { return f.err }
func (f *fakeTable) CheckpointSequence(*par.ShardStatus) error { return f.err }
func (f *fakeTable) FetchCheckpoint(*par.ShardStatus) error    { return f.err }
func (f *fakeTable) RemoveLeaseInfo(string) error              { return f.err }
func (f *fakeTable) RemoveLeaseOwner(string) error             { return f.err }
func (f *fakeTable) GetLeaseOwner(string) (string, error)      { return "", f.err }
func (f *fakeTable) ClaimShard(*par.ShardStatus, string) error { return f.err }
func (f *fakeTable) ListActiveWorkers(map[string]*par.ShardStatus) (map[string][]*par.ShardStatus, error) {
	return nil, f.err
}

func TestLeaseTableAnswers(t *testing.T) {
	opErr := func(err error) error {
		return fmt.Errorf("leases: write checkpoint: %w", &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "UpdateItem", Err: err})
	}
	tests := []struct {
		name     string
		err      error
		answered bool
		errors   float64
	}{
		{name: "success", err: nil, answered: true},
		{name: "conditional write refused: the table answered", err: opErr(&types.ConditionalCheckFailedException{Message: new(string)}), answered: true},
		{name: "connection refused", err: opErr(&net.OpError{Op: "dial", Err: errors.New("connection refused")}), errors: 1},
		{name: "throttled", err: opErr(&types.ProvisionedThroughputExceededException{}), errors: 1},
		{name: "table gone", err: opErr(&types.ResourceNotFoundException{}), errors: 1},
		{name: "timeout", err: fmt.Errorf("leases: %w", context.DeadlineExceeded), errors: 1},
		{name: "no checkpoint yet: the table answered the read", err: checkpoint.ErrSequenceIDNotFound, answered: true},
		{name: "fair share refusal: decided on what the table answered", err: errors.New("worker already holds its fair share of shards"), answered: true},
		{name: "cancelled: neither", err: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(prometheus.NewRegistry())
			inner := &fakeTable{err: tt.err}
			lt := m.WrapLeaseTable("orders", inner)
			shard := shardStatus("s1", "42")
			if err := lt.CheckpointSequence(shard); err != tt.err { //nolint:errorlint // returned unchanged
				t.Fatalf("the decorator changed the error: %v", err)
			}
			if got := !m.LeaseTableAnsweredAt("orders").IsZero(); got != tt.answered {
				t.Errorf("answered %v, want %v", got, tt.answered)
			}
			if got := testutil.ToFloat64(m.LeaseTableErrors.WithLabelValues("orders", "checkpoint")); got != tt.errors {
				t.Errorf("errors %v, want %v", got, tt.errors)
			}
			if got := testutil.CollectAndCount(m.LastCheckpoint); (got == 1) != (tt.err == nil) {
				t.Errorf("%d last-checkpoint series after a checkpoint returning %v", got, tt.err)
			}
		})
	}
	if !New(prometheus.NewRegistry()).LeaseTableAnsweredAt("never").IsZero() {
		t.Error("a source never wrapped has answered")
	}
}

func TestLeaseTableEvents(t *testing.T) {
	m := New(prometheus.NewRegistry())
	lt := m.WrapLeaseTable("orders", &fakeTable{})
	end := shardStatus("s1", checkpoint.ShardEnd)
	_ = lt.CheckpointSequence(end)
	_ = lt.CheckpointSequence(shardStatus("s2", "7"))
	_ = lt.ClaimShard(shardStatus("s3", ""), "me")
	failing := m.WrapLeaseTable("orders", &fakeTable{err: errors.New("refused")})
	_ = failing.ClaimShard(shardStatus("s4", ""), "me")
	for event, want := range map[string]float64{"shard_end": 1, "claimed": 1} {
		if got := testutil.ToFloat64(m.LeaseEvents.WithLabelValues("orders", event)); got != want {
			t.Errorf("lease event %s: %v, want %v", event, got, want)
		}
	}
	if ts := testutil.ToFloat64(m.LastCheckpoint.WithLabelValues("orders", "s2")); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last checkpoint timestamp %v is not now", ts)
	}
}

// TestMetricNamesLint runs Prometheus' own linter over every collector with
// a child, allowing only the documented exceptions.
func TestMetricNamesLint(t *testing.T) {
	m, reg := NewWithRuntime()
	touchAll(t, m)
	problems, err := promlint.NewWithMetricFamilies(gather(t, reg)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]string{
		// The name Kinesis and the KCL use; the unit is in the name.
		"kinesis_ingest_millis_behind_latest": "use base unit",
		// A histogram of counts: rows are no unit promlint knows.
		"kinesis_ingest_sink_batch_rows": "",
	}
	for _, p := range problems {
		if why, ok := allowed[p.Metric]; ok && (why == "" || strings.Contains(p.Text, why)) {
			continue
		}
		if !strings.HasPrefix(p.Metric, namespace+"_") {
			continue // Go and process collectors are client_golang's
		}
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	for _, f := range gather(t, reg) {
		name := f.GetName()
		if !strings.HasPrefix(name, namespace+"_") {
			continue
		}
		if f.GetType().String() == "COUNTER" && !strings.HasSuffix(name, "_total") {
			t.Errorf("counter %s does not end in _total", name)
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if !allowedLabels[l.GetName()] {
					t.Errorf("%s has label %q, not one of the fixed set", name, l.GetName())
				}
			}
		}
	}
}

// allowedLabels are the label names our metrics may carry: small fixed sets.
var allowedLabels = map[string]bool{
	"source": true, "shard": true, "dataset": true, "sink": true, "reason": true,
	"stage": true, "event": true, "result": true, "op": true,
	// kinesis_ingest_build_info: one value per process, fixed at build time.
	"version": true, "revision": true, "goversion": true,
	// Watermill's router metrics.
	"handler_name": true, "subscriber_name": true, "publisher_name": true, "acked": true, "success": true,
}

// touchAll gives every vector of m one child, so that Gather shows it.
func touchAll(t *testing.T, m *Metrics) {
	t.Helper()
	for _, c := range m.reg.registered() {
		switch v := c.(type) {
		case *prometheus.CounterVec:
			v.With(labelsOf(t, c)).Inc()
		case *prometheus.GaugeVec:
			v.With(labelsOf(t, c)).Set(1)
		case *prometheus.HistogramVec:
			v.With(labelsOf(t, c)).Observe(1)
		}
	}
}
