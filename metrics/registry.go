package metrics

import (
	"sync"

	wmmetrics "github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// recorder registers collectors on the process's registry and remembers the
// ones it registered, so that tests can list every metric the process can
// expose (a vector without children is absent from Gather).
type recorder struct {
	prometheus.Registerer

	mu         sync.Mutex
	collectors []prometheus.Collector
}

// Register returns the registry's error unchanged: the Watermill builder
// type-asserts prometheus.AlreadyRegisteredError to share the collectors of
// a router instrumented earlier.
func (r *recorder) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	r.collectors = append(r.collectors, c)
	r.mu.Unlock()
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *recorder) registered() []prometheus.Collector {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]prometheus.Collector(nil), r.collectors...)
}

// WatermillSubsystem names the Watermill router metrics:
// kinesis_ingest_watermill_handler_execution_time_seconds{handler_name,success} and
// kinesis_ingest_watermill_subscriber_messages_received_total{handler_name,subscriber_name,acked}.
// One message is one GetRecords batch, so they count batches, not records.
const WatermillSubsystem = "watermill"

// InstrumentRouter adds Watermill's Prometheus router metrics, on our
// registry, to r. Call it before r runs. The subscriber decorator starts one
// goroutine per message until the message is acked or nacked; a message is a
// whole batch here, so that is one goroutine per shard in flight.
func (m *Metrics) InstrumentRouter(r *message.Router) {
	b := wmmetrics.NewPrometheusMetricsBuilder(m.reg, namespace, WatermillSubsystem)
	// Watermill's default handler buckets stop at 1s; a batch waiting for a
	// sink outage to end takes far longer.
	b.HandlerBuckets = prometheus.ExponentialBuckets(0.0005, 2, 16)
	b.AddPrometheusRouterMetrics(r)
}
