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

	mu   sync.Mutex
	held map[string]bool
}

var _ kclmetrics.MonitoringService = (*KCL)(nil)

// NewKCL returns a MonitoringService reporting as source.
func (m *Metrics) NewKCL(source string) *KCL {
	return &KCL{m: m, source: source, held: map[string]bool{}}
}

func (k *KCL) Init(_, _, _ string) error { return nil }
func (k *KCL) Start() error              { return nil }
func (k *KCL) Shutdown()                 {}

// The pipeline counts records and bytes itself, after de-aggregation and at the
// point they enter it; counting them here too would double them.
func (k *KCL) IncrRecordsProcessed(string, int) {}
func (k *KCL) IncrBytesProcessed(string, int64) {}

func (k *KCL) MillisBehindLatest(shard string, ms float64) {
	k.m.MillisBehind.WithLabelValues(k.source, shard).Set(ms)
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

func (k *KCL) LeaseLost(shard string) {
	k.m.LeaseEvents.WithLabelValues(k.source, "lost").Inc()
	k.mu.Lock()
	delete(k.held, shard)
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
