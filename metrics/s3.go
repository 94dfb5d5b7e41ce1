package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// s3Collectors are the lake's (the s3 sink's) metrics.
type s3Collectors struct {
	objects   *prometheus.CounterVec   // sink, dataset
	bytes     *prometheus.CounterVec   // sink, dataset
	multipart *prometheus.CounterVec   // sink, dataset
	seconds   *prometheus.HistogramVec // sink, dataset
	failures  *prometheus.CounterVec   // sink, dataset
	conflicts *prometheus.CounterVec   // sink, dataset
	flushes   *prometheus.CounterVec   // sink, dataset, reason
	buffered  *prometheus.GaugeVec     // sink, dataset
}

func newS3Collectors(reg prometheus.Registerer) s3Collectors {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "s3", Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	c := s3Collectors{
		objects: counter("objects_written_total",
			"Objects an s3 sink created (each the next of its chain, with If-None-Match: *).", "sink", "dataset"),
		bytes: counter("bytes_written_total",
			"Bytes of the objects an s3 sink created (their bodies, compressed as stored).", "sink", "dataset"),
		multipart: counter("multipart_uploads_total",
			"Objects an s3 sink created as multipart uploads (bodies above the multipart threshold); also counted in objects_written_total.", "sink", "dataset"),
		failures: counter("upload_failures_total",
			"Uploads that failed (a refused call, a 5xx, the network; not conflicts, not a Write called off); the write is retried.", "sink", "dataset"),
		conflicts: counter("conflicts_resolved_total",
			"Conditional creates that found their key taken (412/409): another writer (a zombie, a new owner, a retry whose answer was lost) stored it first, and the sink learned the chain's head again.", "sink", "dataset"),
		flushes: counter("flushes_total",
			"Flushes of a chain's buffered rows, by reason: size, age, shutdown, handover (the shard's lease leaving).", "sink", "dataset", "reason"),
	}
	c.seconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "s3", Name: "upload_seconds",
		Help:    "Time to create one object: its PutObject, or every call of its multipart upload.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, // 5ms .. ~41s
		[]string{"sink", "dataset"})
	c.buffered = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "s3", Name: "buffered_bytes",
		Help: "Bytes of rows an s3 sink holds in memory waiting for their object (deferred durability)."}, []string{"sink", "dataset"})
	reg.MustRegister(c.seconds, c.buffered)
	return c
}

// S3 counts what one s3 sink reports through its Observer (sinks/s3.Observer,
// which it implements without importing the sink).
type S3 struct {
	m    *Metrics
	sink string
}

// S3 returns the observer of the s3 sink named sink.
func (m *Metrics) S3(sink string) *S3 { return &S3{m: m, sink: sink} }

func (o *S3) Uploaded(dataset string, bytes int64, took time.Duration, multipart bool) {
	c := &o.m.s3
	c.objects.WithLabelValues(o.sink, dataset).Inc()
	c.bytes.WithLabelValues(o.sink, dataset).Add(float64(bytes))
	c.seconds.WithLabelValues(o.sink, dataset).Observe(took.Seconds())
	if multipart {
		c.multipart.WithLabelValues(o.sink, dataset).Inc()
	}
}

func (o *S3) UploadFailed(dataset string) { o.m.s3.failures.WithLabelValues(o.sink, dataset).Inc() }

func (o *S3) Conflict(dataset string) { o.m.s3.conflicts.WithLabelValues(o.sink, dataset).Inc() }

// Duplicates counts in sink_duplicates_skipped_total, the same counter as
// every de-duplicating sink's.
func (o *S3) Duplicates(_ string, n int) { o.m.SinkDuplicates.WithLabelValues(o.sink).Add(float64(n)) }

func (o *S3) Flushed(dataset, reason string) {
	o.m.s3.flushes.WithLabelValues(o.sink, dataset, reason).Inc()
}

func (o *S3) Buffered(dataset string, delta int64) {
	o.m.s3.buffered.WithLabelValues(o.sink, dataset).Add(float64(delta))
}
