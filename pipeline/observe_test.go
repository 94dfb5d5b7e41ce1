package pipeline_test

import (
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/kinesis-ingest/kinesis-ingest/metrics"
)

// histogram returns the sample count and sum of one histogram child.
func histogram(t *testing.T, o prometheus.Observer) (count uint64, sum float64) {
	t.Helper()
	var m dto.Metric
	if err := o.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// TestDeliverObservesLatencyBatchSizeAndWatermill checks the metrics a
// delivered batch leaves: end-to-end latency once per record, rows per sink
// write for the row and dead-letter sinks, and Watermill's acked message.
func TestDeliverObservesLatencyBatchSizeAndWatermill(t *testing.T) {
	h := newHarness(t, nil)
	recs := records("shardId-0",
		`{"id":1,"amount":1,"ts":"2024-01-01T00:00:00Z"}`,
		`{"id":2,"amount":2,"ts":"2024-01-01T00:00:00Z"}`,
		`{"id":3,"amount":"x","ts":"2024-01-01T00:00:00Z"}`,
		`not json`,
	)
	arrived := time.Now().Add(-2 * time.Second)
	for i := range recs {
		recs[i].Origin.ArrivalTime = arrived
	}
	if err := h.p.Deliver(t.Context(), "orders", recs); err != nil {
		t.Fatal(err)
	}
	n, sum := histogram(t, h.m.EndToEndSeconds.WithLabelValues("orders"))
	if n != 4 || sum/4 < 2 || sum/4 > 30 {
		t.Errorf("end-to-end latency: %d observations averaging %v s, want 4 of about 2 s", n, sum/float64(max(n, 1)))
	}
	if n, sum := histogram(t, h.m.SinkBatchRows.WithLabelValues("rows")); n != 1 || sum != 2 {
		t.Errorf("row sink batch size: %d writes of %v rows, want 1 of 2", n, sum)
	}
	if n, sum := histogram(t, h.m.SinkBatchRows.WithLabelValues("dead_letter")); n != 1 || sum != 2 {
		t.Errorf("dead-letter sink batch size: %d writes of %v letters, want 1 of 2", n, sum)
	}
	if n, _ := histogram(t, h.m.SinkWriteSeconds.WithLabelValues("dead_letter")); n != 1 {
		t.Errorf("dead-letter write latency: %d observations, want 1", n)
	}
	fams, err := h.m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var handled, received float64
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "kinesis_ingest_watermill_handler_execution_time_seconds":
				handled += float64(m.GetHistogram().GetSampleCount())
			case "kinesis_ingest_watermill_subscriber_messages_received_total":
				received += m.GetCounter().GetValue()
			}
		}
	}
	if handled != 1 {
		t.Errorf("watermill handler executions %v, want 1 (one message per batch)", handled)
	}
	// The subscriber's counter is incremented by a goroutine once the message is acked.
	deadline := time.Now().Add(5 * time.Second)
	for received != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		received = 0
		fams, _ = h.m.Gatherer().Gather()
		for _, f := range fams {
			if f.GetName() == "kinesis_ingest_watermill_subscriber_messages_received_total" {
				for _, m := range f.GetMetric() {
					received += m.GetCounter().GetValue()
				}
			}
		}
	}
	if received != 1 {
		t.Errorf("watermill messages received %v, want 1", received)
	}
}

// TestSinkOutageCountsRetries checks retries_total{stage="sink"} during an
// outage of the row sink.
func TestSinkOutageCountsRetries(t *testing.T) {
	h := newHarness(t, nil)
	os.RemoveAll(h.rowsDir)
	if err := os.WriteFile(h.rowsDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- h.p.Deliver(t.Context(), "orders", records("shardId-0", `{"id":9,"amount":1,"ts":"2024-01-01T00:00:00Z"}`))
	}()
	retries := h.m.Retries.WithLabelValues(metrics.StageSink)
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(retries) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no sink retries counted during the outage")
		}
		time.Sleep(5 * time.Millisecond)
	}
	os.Remove(h.rowsDir)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, errs := testutil.ToFloat64(retries), testutil.ToFloat64(h.m.SinkWriteErrors.WithLabelValues("rows")); got != errs {
		t.Errorf("retries_total{stage=sink} %v, sink_write_errors_total %v: want equal", got, errs)
	}
}
