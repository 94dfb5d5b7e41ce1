package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// efo holds the enhanced fan-out collectors, made on first use so that a
// polling-only worker exposes none of them.
type efo struct {
	once          sync.Once
	started       *prometheus.CounterVec   // source
	ended         *prometheus.CounterVec   // source, reason
	retried       *prometheus.CounterVec   // source, code
	resubscribeIn *prometheus.HistogramVec // source
}

// FanOut reports the enhanced fan-out subscriptions of one source
// (consumers/kcl.FanOutHooks).
type FanOut struct {
	e      *efo
	source string
}

// NewFanOut returns the enhanced fan-out metrics of source.
func (m *Metrics) NewFanOut(source string) *FanOut {
	e := &m.efo
	e.once.Do(func() {
		e.started = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "efo_subscriptions_started_total",
			Help: "SubscribeToShard calls that opened an event stream."}, []string{"source"})
		e.ended = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "efo_subscriptions_ended_total",
			Help: "Enhanced fan-out event streams that ended, by reason: expired (Kinesis ended it, every 5 minutes on AWS), error (an exception in the stream, or it broke off), closed (by this worker: shutdown, lease lost, shard end, resubscription)."}, []string{"source", "reason"})
		e.retried = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "efo_subscribe_retries_total",
			Help: "SubscribeToShard calls refused and sent again after a pause, by error code (ResourceInUseException: a subscription to the shard was opened too recently)."}, []string{"source", "code"})
		e.resubscribeIn = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "efo_resubscribe_delay_seconds",
			Help:    "Time from the end of a shard's event stream to its next subscription opening.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300}}, []string{"source"})
		m.reg.MustRegister(e.started, e.ended, e.retried, e.resubscribeIn)
	})
	return &FanOut{e: e, source: source}
}

// Started counts a subscription that opened; since is how long the shard
// was without one (0 for its first).
func (f *FanOut) Started(since time.Duration) {
	f.e.started.WithLabelValues(f.source).Inc()
	if since > 0 {
		f.e.resubscribeIn.WithLabelValues(f.source).Observe(since.Seconds())
	}
}

// Ended counts a subscription that ended, for reason (expired, error, closed).
func (f *FanOut) Ended(reason string) { f.e.ended.WithLabelValues(f.source, reason).Inc() }

// Retried counts a SubscribeToShard call refused with code and sent again.
func (f *FanOut) Retried(code string) { f.e.retried.WithLabelValues(f.source, code).Inc() }
