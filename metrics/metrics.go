// Package metrics builds kinesis-ingest's Prometheus collectors on a
// Registerer the caller owns (never the global one: two workers in one
// process, or a test next to a worker, must not collide), and counts through
// decorators rather than calls inside the stages (as Watermill's
// PrometheusMetricsBuilder and franz-go's kprom hooks do):
//
//   - WrapRowSink, WrapDeadLetterSink: rows written by dataset, dead letters by
//     reason, write latency, batch sizes and transient errors, per sink;
//   - WrapHandler: records and bytes handed to the pipeline, batch and
//     end-to-end latency;
//   - Consumer, Budget, NewFanOut: the hooks of consumers/kcl (leases,
//     reads, checkpoints, the lease table, the in-flight budget, enhanced
//     fan-out subscriptions);
//   - S3: the observer of sinks/s3 (objects, bytes, upload time, failures,
//     conflicts, flushes, buffered bytes);
//   - InstrumentRouter: Watermill's router metrics;
//   - Pipeline: the few counters only the pipeline can feed (records no
//     dataset took, its retries), through its pipeline.Metrics interface.
//
// internal/service/app wires them. Updates are per batch, never per record. Label
// values come from small fixed sets (source, shard, dataset, sink, reason)
// and never carry error text or credentials.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/buildinfo"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

const namespace = "kinesis_ingest"

// Metrics holds every collector of one process.
type Metrics struct {
	// gatherer serves Handler: the Registerer given to New when it is also a
	// Gatherer (a *prometheus.Registry), else nothing.
	gatherer prometheus.Gatherer
	// reg registers on the caller's Registerer and remembers what it
	// registered (Names).
	reg *recorder

	// leaseTables holds, per source, when its lease table last answered.
	leaseTables sync.Map // string -> *atomic.Int64 (Unix nanoseconds)

	RecordsReceived   *prometheus.CounterVec   // source, shard
	BytesReceived     *prometheus.CounterVec   // source, shard
	RowsWritten       *prometheus.CounterVec   // dataset, sink
	DeadLetters       *prometheus.CounterVec   // source, reason
	Unrouted          *prometheus.CounterVec   // source
	Filtered          *prometheus.CounterVec   // dataset, reason (since, until, sample)
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
	ShardsExpired        *prometheus.CounterVec   // source: parents lost to retention before their end
	LeasePasses          *prometheus.CounterVec   // source: lease passes run
	LeasesTaken          *prometheus.CounterVec   // source, reason (free, expired): leases taken by passes
	LeaseClaims          *prometheus.CounterVec   // source: steal claims placed by passes
	LeaseShare           *prometheus.GaugeVec     // source: this worker's target share at the last pass
	InflightBytes        *prometheus.GaugeVec     // record bytes the in-flight budget holds now
	InflightLimit        *prometheus.GaugeVec     // consumer.max_inflight_bytes
	InflightWait         *prometheus.CounterVec   // seconds reads waited for the budget
	CDCSkipped           *prometheus.CounterVec   // dataset, event (truncate, message, heartbeat, tombstone)
	SinkChanges          *prometheus.CounterVec   // sink, result (upserted, deleted, older)
	RecordsExpired       *prometheus.CounterVec   // source, result (dead_letter, skip): older than max_record_age
	RecordsSkipped       *prometheus.CounterVec   // source, reason: records that carry no data by design
	SinkBudgetSpent      *prometheus.CounterVec   // sink: batches given up after max_retry_duration
	KinesisThrottled     *prometheus.CounterVec   // source, op, shard: throttled Kinesis calls
	LeaseTableThrottled  *prometheus.CounterVec   // source, op: throttled lease table calls

	efo     efo               // enhanced fan-out, made on first use (NewFanOut)
	s3      s3Collectors      // the s3 sinks' (S3)
	iceberg icebergCollectors // the iceberg sinks' (Iceberg)
}

// Results of a keyed sink's changes, the values of SinkChanges' result label.
const (
	ChangeUpserted = "upserted" // the change became the key's row
	ChangeDeleted  = "deleted"  // the change deleted the key (a tombstone)
	ChangeOlder    = "older"    // the key's row was already as new or newer: nothing changed
)

// Retry stages, the values of Retries' stage label.
const (
	StageSink     = "sink"     // a row or dead-letter sink write failed (an outage)
	StageDecode   = "decode"   // a decoder's dependency (a schema registry) was unavailable
	StageDelivery = "delivery" // a whole batch failed in the pipeline (a panic outside a stage)
)

// New creates the collectors and registers them on reg. A reg that is also a
// prometheus.Gatherer (a *prometheus.Registry) is what Handler serves; the Go
// and process collectors are NewWithRuntime's.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{reg: &recorder{Registerer: reg}}
	if g, ok := reg.(prometheus.Gatherer); ok {
		m.gatherer = g
	} else {
		m.gatherer = prometheus.Gatherers{}
	}
	// Each constructor registers what it makes, so a collector cannot be
	// declared and then forgotten in a separate registration list.
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels)
		m.reg.MustRegister(g)
		return g
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
		m.reg.MustRegister(h)
		return h
	}
	m.RecordsReceived = counter("records_received_total",
		"Kinesis records handed to the pipeline (after KPL de-aggregation).", "source", "shard")
	m.BytesReceived = counter("bytes_received_total",
		"Payload bytes of the records handed to the pipeline.", "source", "shard")
	m.RowsWritten = counter("rows_written_total",
		"Rows made durable in a row sink.", "dataset", "sink")
	m.DeadLetters = counter("dead_letters_total",
		"Records made durable in the dead-letter sink, by reason.", "source", "reason")
	m.Unrouted = counter("records_unrouted_total",
		"Records that no dataset took (dead-lettered only with dead_letter.unrouted).", "source")
	m.Filtered = counter("records_filtered_total",
		"Rows a dataset made and dropped by its own rules, neither rows nor dead letters: reason since or until (outside its time window), sample (outside its sample).", "dataset", "reason")
	m.MillisBehind = gauge("millis_behind_latest",
		"How far the last GetRecords of a shard was behind the tip of the stream, in milliseconds (Kinesis' MillisBehindLatest, as the API reports it).", "source", "shard")
	m.LeasesHeld = gauge("leases_held",
		"Shard leases this worker holds.", "source")
	m.LeaseEvents = counter("lease_events_total",
		"Shard lease events: gained, lost (the shard's consumer here ended, for any reason), renewed, claimed (this worker asked another to hand a shard over: a steal), shard_end (SHARD_END checkpointed).", "source", "event")
	m.Checkpoints = counter("checkpoints_total",
		"Checkpoint writes by result: ok, lease_lost, error.", "source", "result")
	m.SinkDuplicates = counter("sink_duplicates_skipped_total",
		"Rows (or dead letters) a de-duplicating sink already held and skipped: replays after a crash or a lease move.", "sink")
	m.SinkWriteErrors = counter("sink_write_errors_total",
		"Transient sink write failures (each is retried with backoff).", "sink")
	m.DecodeRetries = counter("decode_retries_total",
		"Decodes retried because a dependency (a schema registry) was unavailable.", "source")
	m.SinkWriteSeconds = histogram("sink_write_seconds", "Time for one durable sink write (a batch).",
		prometheus.ExponentialBuckets(0.0005, 2, 16), "sink")
	m.BatchSeconds = histogram("batch_seconds", "Time from a GetRecords batch reaching the pipeline to all of it being durable.",
		prometheus.ExponentialBuckets(0.0005, 2, 16), "source")
	m.GetRecordsSeconds = histogram("get_records_seconds", "Duration of Kinesis GetRecords calls as the KCL reports them.",
		prometheus.ExponentialBuckets(0.001, 2, 14), "source")
	m.IteratorAge = gauge("iterator_age_seconds",
		"Age of the last record of a shard's last non-empty GetRecords when it was read (now minus its Kinesis arrival time, like CloudWatch's IteratorAgeMilliseconds); after an empty GetRecords, MillisBehindLatest in seconds, so 0 once caught up.", "source", "shard")
	m.LastCheckpoint = gauge("last_checkpoint_timestamp_seconds",
		"Unix time of the last checkpoint of a shard this worker wrote; checkpoint age is time() minus this. Removed when the shard's consumer here ends.", "source", "shard")
	m.EndToEndSeconds = histogram("end_to_end_latency_seconds", "Time from a record's arrival in Kinesis (ApproximateArrivalTimestamp) to its row or dead letter being durable, per record.",
		prometheus.ExponentialBuckets(0.01, 2, 20), "source") // 10ms .. ~1.5h
	m.SinkBatchRows = histogram("sink_batch_rows", "Rows (dead letters, for sink=\"dead_letter\") per durable sink write.",
		prometheus.ExponentialBuckets(1, 2, 15), "sink") // 1 .. 16384
	m.Retries = counter("retries_total",
		"Retries of transient failures by stage: sink (a sink write), decode (a decoder dependency), delivery (a whole batch).", "stage")
	m.LeaseTableLastAnswer = gauge("lease_table_last_answer_timestamp_seconds",
		"Unix time the source's DynamoDB lease table last answered a call (success or a conditional-write refusal).", "source")
	m.LeaseTableErrors = counter("lease_table_errors_total",
		"Lease table calls that failed in DynamoDB or on the way to it (not lease refusals), by operation.", "source", "op")
	m.ShardsExpired = counter("shards_expired_unfinished_total",
		"Parent shards Kinesis no longer lists whose lease row never reached SHARD_END: their unread records were lost to retention, and their children were leased anyway.", "source")
	m.LeasePasses = counter("lease_passes_total",
		"Lease passes run: each reads the lease table once and takes this worker's due leases in bulk.", "source")
	m.LeasesTaken = counter("leases_taken_total",
		"Leases taken by lease passes: free (never leased, released, or released to this worker's claim), expired (its owner stopped renewing).", "source", "reason")
	m.LeaseClaims = counter("lease_claims_total",
		"Steal claims placed by lease passes on shards of workers above their share.", "source")
	m.LeaseShare = gauge("lease_share",
		"This worker's share of the leasable shards at its last lease pass.", "source")
	// The build as a constant 1 with labels, Prometheus' own convention
	// (prometheus_build_info), so a query can join it onto any series to
	// tell which build produced it during a rollout.
	bi := buildinfo.Read()
	gauge("build_info", "Always 1; the labels say which build of kinesis-ingest runs: module version, VCS revision (12 characters, -dirty with local changes), Go version.",
		"version", "revision", "goversion").WithLabelValues(bi.Version, bi.ShortRevision(), bi.GoVersion).Set(1)
	m.InflightBytes = gauge("inflight_bytes",
		"Record bytes the worker holds in flight across all shards: reserved for GetRecords calls under way, and of batches not yet durable.")
	m.InflightLimit = gauge("inflight_limit_bytes",
		"The in-flight budget, consumer.max_inflight_bytes.")
	m.InflightWait = counter("inflight_wait_seconds_total",
		"Seconds reads spent waiting for room in the in-flight budget (backpressure), summed over shards.")
	m.CDCSkipped = counter("cdc_events_skipped_total",
		"Debezium events of a cdc: debezium dataset that change no row: truncate, message, heartbeat, tombstone.", "dataset", "event")
	m.s3 = newS3Collectors(m.reg)
	m.iceberg = newIcebergCollectors(m.reg)
	m.SinkChanges = counter("sink_changes_total",
		"Changes of keyed datasets committed by a sink, by result: upserted, deleted (a tombstone), older (the key's row was as new or newer, so nothing changed: replays, disorder).", "sink", "result")
	m.RecordsExpired = counter("records_expired_total",
		"Records older than their source's max_record_age when read, by result: dead_letter (an expired dead letter, also in dead_letters_total) or skip (neither row nor dead letter).", "source", "result")
	m.RecordsSkipped = counter("records_skipped_total",
		"Records that carry no data by design, by reason: cloudwatch_logs_control (a CloudWatch Logs subscription's control message, sent when it checks the stream). Neither rows nor dead letters.", "source", "reason")
	m.SinkBudgetSpent = counter("sink_retry_budget_spent_total",
		"Batches whose write to a sink kept failing for its max_retry_duration: their rows for the sink became sink_failed dead letters and the shard moved on.", "sink")
	m.KinesisThrottled = counter("kinesis_throttled_total",
		"Kinesis calls answered ProvisionedThroughputExceededException or LimitExceededException, per attempt, by API (op) and shard (\"\" for calls on the stream); each is retried with backoff.", "source", "op", "shard")
	m.LeaseTableThrottled = counter("lease_table_throttled_total",
		"Lease table (DynamoDB) calls answered with a throttling error, per attempt, by operation; each is retried.", "source", "op")
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

// Gatherer returns what Handler serves: the registry given to New.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.gatherer }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{Registry: m.reg.Registerer})
}

// Totals sums rows written and dead letters over all labels.
func (m *Metrics) Totals() (rows, deadLetters float64) {
	return sumCounters(m.RowsWritten), sumCounters(m.DeadLetters)
}

// sumCounters adds up every child of a counter vector, read straight from
// the collector so Totals works whatever registry it is on.
func sumCounters(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	var sum float64
	for mt := range ch {
		var d dto.Metric
		if mt.Write(&d) == nil {
			sum += d.GetCounter().GetValue()
		}
	}
	return sum
}

// MaxMillisBehind is the largest millis_behind_latest of source's shards in
// this worker (0 when it holds none): for a progress line.
func (m *Metrics) MaxMillisBehind(source string) int64 {
	ch := make(chan prometheus.Metric)
	go func() {
		m.MillisBehind.Collect(ch)
		close(ch)
	}()
	var out float64
	for mt := range ch {
		var d dto.Metric
		if mt.Write(&d) != nil {
			continue
		}
		for _, l := range d.GetLabel() {
			if l.GetName() == "source" && l.GetValue() == source {
				out = max(out, d.GetGauge().GetValue())
			}
		}
	}
	return int64(out)
}
