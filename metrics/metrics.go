// Package metrics builds kinesis-ingest's Prometheus collectors on a registry the
// caller owns (never the global one: two workers in one process, or a test next to
// a worker, must not collide). Label values come from small fixed sets (source,
// shard, dataset, sink, reason) and never carry error text or credentials.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "kinesis_ingest"

// Metrics holds every collector of one process.
type Metrics struct {
	registry *prometheus.Registry
	// reg registers on registry and remembers what it registered (Names).
	reg *recorder

	// leaseTables holds, per source, when its lease table last answered.
	leaseTables sync.Map // string -> *leaseTableState

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
	SinkDuplicates    *prometheus.CounterVec   // sink
	DecodeRetries     *prometheus.CounterVec   // source
	SinkWriteSeconds  *prometheus.HistogramVec // sink
	BatchSeconds      *prometheus.HistogramVec // source: from GetRecords return to durable
	GetRecordsSeconds *prometheus.HistogramVec // source

	IteratorAge          *prometheus.GaugeVec     // source, shard: seconds
	LastCheckpoint       *prometheus.GaugeVec     // source, shard: Unix seconds
	EndToEndSeconds      *prometheus.HistogramVec // source: Kinesis arrival to durable
	SinkBatchRows        *prometheus.HistogramVec // sink: rows (or dead letters) per durable write
	Retries              *prometheus.CounterVec   // stage (sink, decode, delivery)
	LeaseTableLastAnswer *prometheus.GaugeVec     // source: Unix seconds
	LeaseTableErrors     *prometheus.CounterVec   // source, op
}

// Retry stages, the values of Retries' stage label.
const (
	StageSink     = "sink"     // a row or dead-letter sink write failed (an outage)
	StageDecode   = "decode"   // a decoder's dependency (a schema registry) was unavailable
	StageDelivery = "delivery" // a whole batch failed in the pipeline (a panic outside a stage)
)

// New creates the collectors and registers them, plus Go and process collectors,
// on reg.
func New(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		registry: reg,
		reg:      &recorder{Registerer: reg},
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
			Help: "How far the last GetRecords of a shard was behind the tip of the stream, in milliseconds (Kinesis' MillisBehindLatest, as the API reports it).",
		}, []string{"source", "shard"}),
		LeasesHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "leases_held",
			Help: "Shard leases this worker holds.",
		}, []string{"source"}),
		LeaseEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "lease_events_total",
			Help: "Shard lease events: gained, lost (the shard's consumer here ended, for any reason), renewed, claimed (this worker asked another to hand a shard over: a steal), shard_end (SHARD_END checkpointed).",
		}, []string{"source", "event"}),
		Checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "checkpoints_total",
			Help: "Checkpoint writes by result: ok, lease_lost, error.",
		}, []string{"source", "result"}),
		SinkDuplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "sink_duplicates_skipped_total",
			Help: "Rows (or dead letters) a de-duplicating sink already held and skipped: replays after a crash or a lease move.",
		}, []string{"sink"}),
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
		IteratorAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "iterator_age_seconds",
			Help: "Age of the last record of a shard's last non-empty GetRecords when it was read (now minus its Kinesis arrival time, like CloudWatch's IteratorAgeMilliseconds); after an empty GetRecords, MillisBehindLatest in seconds, so 0 once caught up.",
		}, []string{"source", "shard"}),
		LastCheckpoint: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "last_checkpoint_timestamp_seconds",
			Help: "Unix time of the last checkpoint of a shard this worker wrote; checkpoint age is time() minus this. Removed when the shard's consumer here ends.",
		}, []string{"source", "shard"}),
		EndToEndSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "end_to_end_latency_seconds",
			Help:    "Time from a record's arrival in Kinesis (ApproximateArrivalTimestamp) to its row or dead letter being durable, per record.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 20), // 10ms .. ~1.5h
		}, []string{"source"}),
		SinkBatchRows: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "sink_batch_rows",
			Help:    "Rows (dead letters, for sink=\"dead_letter\") per durable sink write.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 15), // 1 .. 16384
		}, []string{"sink"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "retries_total",
			Help: "Retries of transient failures by stage: sink (a sink write), decode (a decoder dependency), delivery (a whole batch).",
		}, []string{"stage"}),
		LeaseTableLastAnswer: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "lease_table_last_answer_timestamp_seconds",
			Help: "Unix time the source's DynamoDB lease table last answered a call (success or a conditional-write refusal).",
		}, []string{"source"}),
		LeaseTableErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "lease_table_errors_total",
			Help: "Lease table calls that failed in DynamoDB or on the way to it (not lease refusals), by operation.",
		}, []string{"source", "op"}),
	}
	m.reg.MustRegister(
		m.RecordsReceived, m.BytesReceived, m.RowsWritten, m.DeadLetters, m.Unrouted,
		m.MillisBehind, m.LeasesHeld, m.LeaseEvents, m.Checkpoints, m.SinkWriteErrors, m.SinkDuplicates, m.DecodeRetries,
		m.SinkWriteSeconds, m.BatchSeconds, m.GetRecordsSeconds,
		m.IteratorAge, m.LastCheckpoint, m.EndToEndSeconds, m.SinkBatchRows, m.Retries,
		m.LeaseTableLastAnswer, m.LeaseTableErrors,
	)
	return m
}

// ObserveSinkWrite records one durable sink write of n rows that took d.
func (m *Metrics) ObserveSinkWrite(sink string, n int, d time.Duration) {
	m.SinkWriteSeconds.WithLabelValues(sink).Observe(d.Seconds())
	m.SinkBatchRows.WithLabelValues(sink).Observe(float64(n))
}

// ObserveIteratorAge records the arrival time of the last record of a
// non-empty GetRecords of a shard, at the time it was read.
func (m *Metrics) ObserveIteratorAge(source, shard string, lastArrival time.Time) {
	if lastArrival.IsZero() {
		return
	}
	m.IteratorAge.WithLabelValues(source, shard).Set(max(0, time.Since(lastArrival).Seconds()))
}

// NewWithRuntime is New plus the Go runtime and process collectors, for a
// process's own registry.
func NewWithRuntime() (*Metrics, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m, reg
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
