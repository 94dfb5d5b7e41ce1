package metrics

import (
	"sync"

	kclmetrics "github.com/vmware/vmware-go-kcl-v2/clientlibrary/metrics"
)

// KCL adapts the KCL's MonitoringService to our collectors for one source, so
// the library's own Prometheus exporter (global registry, DefaultServeMux, a
// panic on a second worker) is never used.
type KCL struct {
	m      *Metrics
	source string

	mu    sync.Mutex
	held  map[string]bool
	empty map[string]bool // shard -> its last GetRecords returned no records
}

var _ kclmetrics.MonitoringService = (*KCL)(nil)

// NewKCL returns a MonitoringService reporting as source.
func (m *Metrics) NewKCL(source string) *KCL {
	return &KCL{m: m, source: source, held: map[string]bool{}, empty: map[string]bool{}}
}

func (k *KCL) Init(_, _, _ string) error { return nil }
func (k *KCL) Start() error              { return nil }
func (k *KCL) Shutdown()                 {}

// The pipeline counts records and bytes itself, after de-aggregation and at the
// point they enter it; counting them here too would double them. The KCL calls
// IncrRecordsProcessed after every GetRecords, also an empty one, right before
// MillisBehindLatest from the same shard goroutine: that is how an empty read
// is told apart for IteratorAge.
func (k *KCL) IncrRecordsProcessed(shard string, n int) {
	k.mu.Lock()
	k.empty[shard] = n == 0
	k.mu.Unlock()
}

func (k *KCL) IncrBytesProcessed(string, int64) {}

// MillisBehindLatest also sets IteratorAge after an empty GetRecords: with no
// record to date, the best estimate of the age is how far behind the tip the
// read was (0 once caught up). A non-empty read's age is set by the consumer
// from its last record (ObserveIteratorAge).
//
// A negative value is unknown: an enhanced fan-out event that came without
// MillisBehindLatest (see kcl.FanOutGuard).
func (k *KCL) MillisBehindLatest(shard string, ms float64) {
	if ms < 0 {
		return
	}
	k.m.MillisBehind.WithLabelValues(k.source, shard).Set(ms)
	k.mu.Lock()
	empty := k.empty[shard]
	k.mu.Unlock()
	if empty {
		k.m.IteratorAge.WithLabelValues(k.source, shard).Set(ms / 1000)
	}
}

func (k *KCL) DeleteMetricMillisBehindLatest(shard string) {
	k.m.MillisBehind.DeleteLabelValues(k.source, shard)
}

func (k *KCL) LeaseGained(shard string) {
	k.m.LeaseEvents.WithLabelValues(k.source, "gained").Inc()
	k.mu.Lock()
	k.held[shard] = true
	k.m.LeasesHeld.WithLabelValues(k.source).Set(float64(len(k.held)))
	k.mu.Unlock()
}

// LeaseLost is called whenever the shard's consumer here ends (shutdown, shard
// end, a steal, an expired lease). The shard's gauges go with it: a checkpoint
// time left behind would read as an ever older checkpoint.
func (k *KCL) LeaseLost(shard string) {
	k.m.LeaseEvents.WithLabelValues(k.source, "lost").Inc()
	k.m.IteratorAge.DeleteLabelValues(k.source, shard)
	k.m.LastCheckpoint.DeleteLabelValues(k.source, shard)
	k.mu.Lock()
	delete(k.held, shard)
	delete(k.empty, shard)
	k.m.LeasesHeld.WithLabelValues(k.source).Set(float64(len(k.held)))
	k.mu.Unlock()
}

func (k *KCL) LeaseRenewed(string) {
	k.m.LeaseEvents.WithLabelValues(k.source, "renewed").Inc()
}

// RecordGetRecordsTime receives milliseconds; the histogram is in seconds.
func (k *KCL) RecordGetRecordsTime(_ string, ms float64) {
	k.m.GetRecordsSeconds.WithLabelValues(k.source).Observe(ms / 1000)
}

// RecordProcessRecordsTime is covered by BatchSeconds, measured by the pipeline.
func (k *KCL) RecordProcessRecordsTime(string, float64) {}
