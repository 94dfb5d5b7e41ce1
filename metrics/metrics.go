// Package metrics builds kinesis-ingest's Prometheus collectors on a registry the
// caller owns (never the global one: two workers in one process, or a test next to
// a worker, must not collide). Label values come from small fixed sets (source,
// shard, dataset, sink, reason) and never carry error text or credentials.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "kinesis_ingest"

// Metrics holds every collector of one process.
type Metrics struct {
	registry *prometheus.Registry

	RecordsReceived   *prometheus.CounterVec   // source, shard
	BytesReceived     *prometheus.CounterVec   // source, shard
	RowsWritten       *prometheus.CounterVec   // dataset, sink
	DeadLetters       *prometheus.CounterVec   // source, reason
	Unrouted          *prometheus.CounterVec   // source
	MillisBehind      *prometheus.GaugeVec     // source, shard
	LeasesHeld        *prometheus.GaugeVec     // source
	LeaseEvents       *prometheus.CounterVec   // source, event (gained, lost, renewed)
	Checkpoints       *prometheus.CounterVec   // source, result (ok, lease_lost, error)
	SinkWriteErrors   *prometheus.CounterVec   // sink
	DecodeRetries     *prometheus.CounterVec   // source
	SinkWriteSeconds  *prometheus.HistogramVec // sink
	BatchSeconds      *prometheus.HistogramVec // source: from GetRecords return to durable
	GetRecordsSeconds *prometheus.HistogramVec // source
}

// New creates the collectors and registers them, plus Go and process collectors,
// on reg.
func New(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		registry: reg,
		RecordsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "records_received_total",
			Help: "Kinesis records handed to the pipeline (after KPL de-aggregation).",
		}, []string{"source", "shard"}),
		BytesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "bytes_received_total",
			Help: "Payload bytes of the records handed to the pipeline.",
		}, []string{"source", "shard"}),
		RowsWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "rows_written_total",
			Help: "Rows made durable in a row sink.",
		}, []string{"dataset", "sink"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "dead_letters_total",
			Help: "Records made durable in the dead-letter sink, by reason.",
		}, []string{"source", "reason"}),
		Unrouted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "records_unrouted_total",
			Help: "Records that no dataset took (dead-lettered only with dead_letter.unrouted).",
		}, []string{"source"}),
		MillisBehind: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "millis_behind_latest",
			Help: "How far the last GetRecords of a shard was behind the tip of the stream.",
		}, []string{"source", "shard"}),
		LeasesHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "leases_held",
			Help: "Shard leases this worker holds.",
		}, []string{"source"}),
		LeaseEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "lease_events_total",
			Help: "Shard lease events: gained, lost, renewed.",
		}, []string{"source", "event"}),
		Checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "checkpoints_total",
			Help: "Checkpoint writes by result: ok, lease_lost, error.",
		}, []string{"source", "result"}),
		SinkWriteErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "sink_write_errors_total",
			Help: "Transient sink write failures (each is retried with backoff).",
		}, []string{"sink"}),
		DecodeRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "decode_retries_total",
			Help: "Decodes retried because a dependency (a schema registry) was unavailable.",
		}, []string{"source"}),
		SinkWriteSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "sink_write_seconds",
			Help:    "Time for one durable sink write (a batch).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"sink"}),
		BatchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "batch_seconds",
			Help:    "Time from a GetRecords batch reaching the pipeline to all of it being durable.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"source"}),
		GetRecordsSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "get_records_seconds",
			Help:    "Duration of Kinesis GetRecords calls as the KCL reports them.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"source"}),
	}
	reg.MustRegister(
		m.RecordsReceived, m.BytesReceived, m.RowsWritten, m.DeadLetters, m.Unrouted,
		m.MillisBehind, m.LeasesHeld, m.LeaseEvents, m.Checkpoints, m.SinkWriteErrors, m.DecodeRetries,
		m.SinkWriteSeconds, m.BatchSeconds, m.GetRecordsSeconds,
	)
	return m
}

// NewWithRuntime is New plus the Go runtime and process collectors, for a
// process's own registry.
func NewWithRuntime() (*Metrics, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return New(reg), reg
}

// Registry returns the registry the collectors are on.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Totals sums rows written and dead letters over all labels.
func (m *Metrics) Totals() (rows, deadLetters float64) {
	fams, err := m.registry.Gather()
	if err != nil {
		return 0, 0
	}
	for _, f := range fams {
		var sum float64
		for _, mt := range f.GetMetric() {
			sum += mt.GetCounter().GetValue()
		}
		switch f.GetName() {
		case namespace + "_rows_written_total":
			rows = sum
		case namespace + "_dead_letters_total":
			deadLetters = sum
		}
	}
	return rows, deadLetters
}
