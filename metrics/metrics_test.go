package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestConsumerHooksIteratorAgeAndShardGauges(t *testing.T) {
	m := New(prometheus.NewRegistry())
	k := m.Consumer("orders")
	k.LeaseGained("s1")
	k.LeaseGained("s2")

	// A non-empty read: the consumer sets the age from its last record; the
	// KCL's MillisBehindLatest afterwards leaves it alone.
	k.Delivering("s1", time.Now().Add(-30*time.Second))
	k.Read("s1", 5000, false)
	if age := testutil.ToFloat64(m.IteratorAge.WithLabelValues("orders", "s1")); age < 29 || age > 40 {
		t.Errorf("iterator age after a non-empty read: %v, want about 30", age)
	}
	// An empty read: the lag is the best age there is.
	k.Read("s1", 0, true)
	if age := testutil.ToFloat64(m.IteratorAge.WithLabelValues("orders", "s1")); age != 0 {
		t.Errorf("iterator age after an empty read caught up: %v, want 0", age)
	}
	k.Read("s2", 2500, true)
	if age := testutil.ToFloat64(m.IteratorAge.WithLabelValues("orders", "s2")); age != 2.5 {
		t.Errorf("iterator age after an empty read behind: %v, want 2.5", age)
	}
	// A record from a clock ahead of ours is not in the future.
	k.Delivering("s2", time.Now().Add(time.Hour))
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

// A checkpoint sets the shard's last-checkpoint time only when it was
// written, and the lease table's last answer is per source.
func TestConsumerHooksCheckpointsAndLeaseTable(t *testing.T) {
	m := New(prometheus.NewRegistry())
	k := m.Consumer("orders")
	k.Checkpointed("s1", "error", false)
	if n := testutil.CollectAndCount(m.LastCheckpoint); n != 0 {
		t.Errorf("%d last-checkpoint series after a failed checkpoint", n)
	}
	k.Checkpointed("s1", "ok", true)
	if n := testutil.CollectAndCount(m.LastCheckpoint); n != 1 {
		t.Errorf("%d last-checkpoint series after a checkpoint, want 1", n)
	}
	if e := testutil.ToFloat64(m.LeaseEvents.WithLabelValues("orders", "shard_end")); e != 1 {
		t.Errorf("shard_end events %v, want 1", e)
	}
	if !m.LeaseTableAnsweredAt("orders").IsZero() {
		t.Error("answered before any call")
	}
	k.LeaseTableFailed("checkpoint")
	if !m.LeaseTableAnsweredAt("orders").IsZero() {
		t.Error("a failed call counted as an answer")
	}
	if got := testutil.ToFloat64(m.LeaseTableErrors.WithLabelValues("orders", "checkpoint")); got != 1 {
		t.Errorf("errors %v, want 1", got)
	}
	k.LeaseTableAnswered()
	if m.LeaseTableAnsweredAt("orders").IsZero() {
		t.Error("an answer was not recorded")
	}
	if !m.LeaseTableAnsweredAt("never").IsZero() {
		t.Error("a source never wrapped has answered")
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
