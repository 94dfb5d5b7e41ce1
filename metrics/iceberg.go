package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// icebergCollectors are the Iceberg sink's metrics, by sink and dataset

type icebergCollectors struct {
	commits   *prometheus.CounterVec
	failures  *prometheus.CounterVec
	conflicts *prometheus.CounterVec
	seconds   *prometheus.HistogramVec
	files     *prometheus.HistogramVec
	rows      *prometheus.HistogramVec
}

func newIcebergCollectors(reg prometheus.Registerer) icebergCollectors {
	counter := func(name, help string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "iceberg", Name: name, Help: help}, []string{"sink", "dataset"})
		reg.MustRegister(c)
		return c
	}
	histogram := func(name, help string, buckets []float64) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "iceberg", Name: name, Help: help, Buckets: buckets}, []string{"sink", "dataset"})
		reg.MustRegister(h)
		return h
	}
	return icebergCollectors{
		commits: counter("commits_total",
			"Snapshots an iceberg sink committed: data files and the shards' positions in one catalog swap."),
		failures: counter("commit_failures_total",
			"Commit attempts that failed (the catalog or S3 unreachable, a refused call); the rows stay buffered and the commit is retried."),
		conflicts: counter("commit_conflicts_total",
			"Catalog swaps refused because another writer committed first; the sink reloaded the table, dropped what it already held and retried."),
		seconds: histogram("commit_seconds",
			"Time of one commit, from the table's load to the catalog swap, retries after conflicts included.", prometheus.ExponentialBuckets(0.01, 2, 14)), // 10ms .. ~82s
		files: histogram("files_per_commit", "Data files one commit added (one per partition it touched).", prometheus.ExponentialBuckets(1, 2, 12)),
		rows:  histogram("rows_per_commit", "Rows one commit added.", prometheus.ExponentialBuckets(1, 4, 12)),
	}
}

// Iceberg counts what one iceberg sink reports through its Observer
// (sinks/iceberg.Observer, which it implements without importing the sink).
type Iceberg struct {
	m    *Metrics
	sink string
}

// Iceberg returns the observer of the iceberg sink named sink.
func (m *Metrics) Iceberg(sink string) *Iceberg { return &Iceberg{m: m, sink: sink} }

func (o *Iceberg) Committed(dataset string, files, rows, conflicts int, d time.Duration) {
	c := &o.m.iceberg
	c.commits.WithLabelValues(o.sink, dataset).Inc()
	c.conflicts.WithLabelValues(o.sink, dataset).Add(float64(conflicts))
	c.seconds.WithLabelValues(o.sink, dataset).Observe(d.Seconds())
	c.files.WithLabelValues(o.sink, dataset).Observe(float64(files))
	c.rows.WithLabelValues(o.sink, dataset).Observe(float64(rows))
}

func (o *Iceberg) CommitFailed(dataset string) {
	o.m.iceberg.failures.WithLabelValues(o.sink, dataset).Inc()
}

// Skipped counts in sink_duplicates_skipped_total, the same counter as
// every de-duplicating sink's.
func (o *Iceberg) Skipped(_ string, rows int) {
	o.m.SinkDuplicates.WithLabelValues(o.sink).Add(float64(rows))
}
