package metrics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/kinesis-ingest/kinesis-ingest/consumers"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
)

// The decorators restate the contracts rather than import them (see
// decorators.go); these keep the two in step.
var (
	_ sinks.RowSink        = (*RowSink)(nil)
	_ sinks.DeadLetterSink = (*DeadLetterSink)(nil)
	_ consumers.Handler    = (*Handler)(nil)
)

// rowSinkFunc is a row sink answering with whatever its function returns: the
// decorator's contract is about the answers, which a real sink gives only
// under conditions (a value PostgreSQL refuses, an outage) this package does
// not set up; sinks/file and sinks/postgres are measured through the
// pipeline and cmd/kinesis-ingest tests.
type rowSinkFunc func([]record.Row) error

func (f rowSinkFunc) Write(_ context.Context, rows []record.Row) error { return f(rows) }
func (f rowSinkFunc) Close() error                                     { return nil }

type deadLetterSinkFunc func([]record.DeadLetter) error

func (f deadLetterSinkFunc) Write(_ context.Context, l []record.DeadLetter) error { return f(l) }
func (f deadLetterSinkFunc) Close() error                                         { return nil }

func histogramCount(t *testing.T, o prometheus.Observer) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	if err := o.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

func TestRowSinkDecorator(t *testing.T) {
	rows := []record.Row{{Dataset: "orders"}, {Dataset: "orders"}, {Dataset: "refunds"}, {Dataset: "orders"}}
	outage := errors.New("connection refused")
	tests := []struct {
		name       string
		answer     error
		cancelled  bool
		orders     float64 // rows_written_total{dataset=orders,sink=pg}
		refunds    float64
		writes     uint64 // sink_write_seconds observations
		batchRows  float64
		errorCount float64
	}{
		{name: "durable", answer: nil, orders: 3, refunds: 1, writes: 1, batchRows: 4},
		{name: "some refused: the rest is durable", answer: &sinks.RejectedError{Index: []int{1, 2}, Err: errors.New("numeric overflow")},
			orders: 2, refunds: 0, writes: 1, batchRows: 4},
		{name: "refused index out of range counts nothing away", answer: &sinks.RejectedError{Index: []int{9}, Err: errors.New("x")},
			orders: 3, refunds: 1, writes: 1, batchRows: 4},
		{name: "outage", answer: outage, errorCount: 1},
		{name: "cancelled: the caller gave up, the sink did not fail", answer: context.Canceled, cancelled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(prometheus.NewRegistry())
			s := m.WrapRowSink("pg", rowSinkFunc(func([]record.Row) error { return tt.answer }))
			ctx, cancel := context.WithCancel(t.Context())
			if tt.cancelled {
				cancel()
			}
			defer cancel()
			if err := s.Write(ctx, rows); err != tt.answer { //nolint:errorlint // returned unchanged
				t.Fatalf("the decorator changed the error: %v, want %v", err, tt.answer)
			}
			if got := testutil.ToFloat64(m.RowsWritten.WithLabelValues("orders", "pg")); got != tt.orders {
				t.Errorf("rows written to orders %v, want %v", got, tt.orders)
			}
			if got := testutil.ToFloat64(m.RowsWritten.WithLabelValues("refunds", "pg")); got != tt.refunds {
				t.Errorf("rows written to refunds %v, want %v", got, tt.refunds)
			}
			if n, _ := histogramCount(t, m.SinkWriteSeconds.WithLabelValues("pg")); n != tt.writes {
				t.Errorf("%d write latencies, want %d", n, tt.writes)
			}
			if _, sum := histogramCount(t, m.SinkBatchRows.WithLabelValues("pg")); sum != tt.batchRows {
				t.Errorf("batch rows %v, want %v", sum, tt.batchRows)
			}
			if got := testutil.ToFloat64(m.SinkWriteErrors.WithLabelValues("pg")); got != tt.errorCount {
				t.Errorf("write errors %v, want %v", got, tt.errorCount)
			}
		})
	}
}

func TestDeadLetterSinkDecoratorCountsBySourceAndReason(t *testing.T) {
	m := New(prometheus.NewRegistry())
	fail := true
	s := m.WrapDeadLetterSink(deadLetterSinkFunc(func([]record.DeadLetter) error {
		if fail {
			return errors.New("disk full")
		}
		return nil
	}))
	letter := func(source string, r record.Reason) record.DeadLetter {
		return record.DeadLetter{Origin: record.Origin{Source: source}, Reason: r}
	}
	letters := []record.DeadLetter{
		letter("orders", record.ReasonDecode), letter("orders", record.ReasonSchema),
		letter("orders", record.ReasonDecode), letter("clicks", record.ReasonDecode),
	}
	if err := s.Write(t.Context(), letters); err == nil {
		t.Fatal("the decorator hid the sink's error")
	}
	if got := testutil.CollectAndCount(m.DeadLetters); got != 0 {
		t.Errorf("%d dead-letter series after a failed write: nothing was durable", got)
	}
	fail = false
	if err := s.Write(t.Context(), letters); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		source string
		reason record.Reason
		want   float64
	}{{"orders", record.ReasonDecode, 2}, {"orders", record.ReasonSchema, 1}, {"clicks", record.ReasonDecode, 1}} {
		if got := testutil.ToFloat64(m.DeadLetters.WithLabelValues(c.source, string(c.reason))); got != c.want {
			t.Errorf("dead letters %s/%s %v, want %v", c.source, c.reason, got, c.want)
		}
	}
	if got := testutil.ToFloat64(m.SinkWriteErrors.WithLabelValues(DeadLetterSinkName)); got != 1 {
		t.Errorf("dead-letter write errors %v, want 1", got)
	}
	if rows, dl := m.Totals(); rows != 0 || dl != 4 {
		t.Errorf("Totals() = %v rows, %v dead letters; want 0, 4", rows, dl)
	}
}

type handlerFunc func() error

func (f handlerFunc) Deliver(context.Context, string, []record.Record) error { return f() }

func TestHandlerDecorator(t *testing.T) {
	m := New(prometheus.NewRegistry())
	arrived := time.Now().Add(-3 * time.Second)
	recs := []record.Record{
		{Origin: record.Origin{ShardID: "s1", ArrivalTime: arrived}, Data: []byte("abc")},
		{Origin: record.Origin{ShardID: "s1"}, Data: []byte("de")}, // no arrival time: no latency
	}
	failed := m.WrapHandler(handlerFunc(func() error { return context.Canceled }))
	if err := failed.Deliver(t.Context(), "orders", recs); !errors.Is(err, context.Canceled) {
		t.Fatalf("Deliver = %v, want the inner error", err)
	}
	if n, _ := histogramCount(t, m.EndToEndSeconds.WithLabelValues("orders")); n != 0 {
		t.Errorf("%d end-to-end latencies for a batch that is not durable", n)
	}
	ok := m.WrapHandler(handlerFunc(func() error { return nil }))
	if err := ok.Deliver(t.Context(), "orders", recs); err != nil {
		t.Fatal(err)
	}
	if err := ok.Deliver(t.Context(), "orders", nil); err != nil {
		t.Fatal(err)
	}
	// Records are counted when handed over, durable or not.
	if got := testutil.ToFloat64(m.RecordsReceived.WithLabelValues("orders", "s1")); got != 4 {
		t.Errorf("records received %v, want 4", got)
	}
	if got := testutil.ToFloat64(m.BytesReceived.WithLabelValues("orders", "s1")); got != 10 {
		t.Errorf("bytes received %v, want 10", got)
	}
	if n, sum := histogramCount(t, m.EndToEndSeconds.WithLabelValues("orders")); n != 1 || sum < 3 || sum > 60 {
		t.Errorf("end-to-end: %d observations summing %v s, want 1 of about 3 s", n, sum)
	}
	if n, _ := histogramCount(t, m.BatchSeconds.WithLabelValues("orders")); n != 1 {
		t.Errorf("%d batch latencies, want 1 (the durable batch)", n)
	}
}

// TestNewOnARegisterer checks that collectors go on any Registerer (a
// prefixed or labelled one, say) and that Handler then serves nothing rather
// than failing.
func TestNewOnARegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(prometheus.WrapRegistererWith(prometheus.Labels{"worker": "w1"}, reg))
	m.RowsWritten.WithLabelValues("orders", "pg").Add(2)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range fams {
		if f.GetName() == namespace+"_rows_written_total" {
			found = true
		}
	}
	if !found {
		t.Error("rows_written_total is not on the wrapped registry")
	}
	if fams, err := m.Gatherer().Gather(); err != nil || len(fams) != 0 {
		t.Errorf("Gatherer of a plain Registerer: %d families, %v; want none", len(fams), err)
	}
	if rows, _ := m.Totals(); rows != 2 {
		t.Errorf("Totals rows %v, want 2", rows)
	}
}
