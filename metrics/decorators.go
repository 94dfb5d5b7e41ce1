package metrics

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/kinesis-ingest/kinesis-ingest/consumers"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
)

// The decorators below count what passes through a stage from the outside, so
// the stages themselves carry no collector calls: a sink knows nothing of
// Prometheus, and the pipeline counts only what no decorator can see (Pipeline).
// Every update is per call, that is per batch, never per record.
//
// They take and implement sinks.RowSink, sinks.DeadLetterSink and
// consumers.Handler (consumers.StateHandler when the handler keeps a state).

// refused reports whether err is a refusal of some rows rather than an outage.
func refused(err error) ([]int, bool) {
	var r *sinks.RejectedError
	if errors.As(err, &r) {
		return r.Refused(), true
	}
	return nil, false
}

// RowSink decorates a row sink: rows_written_total{dataset,sink} for the rows
// made durable (minus the ones the sink refused), and sink_write_seconds,
// sink_batch_rows and sink_write_errors_total for sink. It returns the inner
// error unchanged (the caller tells a *sinks.RejectedError from an outage).
type RowSink struct {
	inner sinks.RowSink
	m     *Metrics
	sink  string
}

// WrapRowSink returns inner (a sinks.RowSink) decorated as the sink named
// sink; a sinks.DeferredRowSink stays one.
func (m *Metrics) WrapRowSink(sink string, inner sinks.RowSink) sinks.RowSink {
	s := &RowSink{inner: inner, m: m, sink: sink}
	if d, ok := inner.(sinks.DeferredRowSink); ok {
		return &DeferredRowSink{RowSink: s, deferred: d}
	}
	return s
}

func (s *RowSink) Write(ctx context.Context, rows []record.Row) error {
	start := time.Now()
	err := s.inner.Write(ctx, rows)
	refusedRows, isRefusal := refused(err)
	if err != nil && !isRefusal {
		s.m.writeFailed(ctx, s.sink)
		return err
	}
	s.m.ObserveSinkWrite(s.sink, len(rows), time.Since(start))
	s.m.countWritten(s.sink, rows, refusedRows)
	return err
}

func (s *RowSink) Close() error { return s.inner.Close() }

// DeferredRowSink decorates a sinks.DeferredRowSink: an accepted row counts
// as written once durable, and sink_write_seconds is the time to accept.
type DeferredRowSink struct {
	*RowSink
	deferred sinks.DeferredRowSink
}

func (s *DeferredRowSink) Accept(ctx context.Context, rows []record.Row, durable func(error)) error {
	start := time.Now()
	// Counted per dataset now: rows' memory is the caller's again once
	// Accept returns, and durable may run before or after that.
	w := &written{m: s.m, sink: s.sink, counts: map[string]int{}}
	for i := range rows {
		w.counts[rows[i].Dataset]++
	}
	err := s.deferred.Accept(ctx, rows, func(err error) {
		w.done(err == nil, nil, false)
		durable(err)
	})
	refusedRows, isRefusal := refused(err)
	if err != nil && !isRefusal {
		s.m.writeFailed(ctx, s.sink)
		return err
	}
	var refusedDS []string
	for _, i := range refusedRows {
		if i >= 0 && i < len(rows) {
			refusedDS = append(refusedDS, rows[i].Dataset)
		}
	}
	w.done(false, refusedDS, true)
	s.m.ObserveSinkWrite(s.sink, len(rows), time.Since(start))
	return err
}

// written counts a deferred Accept's rows once both have happened: Accept
// returned (saying which rows it refused) and durable said nil.
type written struct {
	m    *Metrics
	sink string

	mu                sync.Mutex
	counts            map[string]int
	accepted, durable bool
}

func (w *written) done(durable bool, refused []string, accepted bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.durable = w.durable || durable
	if accepted {
		w.accepted = true
		for _, ds := range refused {
			w.counts[ds]--
		}
	}
	if !w.accepted || !w.durable {
		return
	}
	for ds, n := range w.counts {
		if n > 0 {
			w.m.RowsWritten.WithLabelValues(ds, w.sink).Add(float64(n))
		}
	}
	clear(w.counts)
}

func (s *DeferredRowSink) Flush(ctx context.Context) error { return s.deferred.Flush(ctx) }

// DeadLetterSink decorates the dead-letter sink: dead_letters_total{source,
// reason} for the letters made durable, and the sink_* metrics as sink
// "dead_letter".
type DeadLetterSink struct {
	inner sinks.DeadLetterSink
	m     *Metrics
}

// DeadLetterSinkName is the sink label of the dead-letter sink.
const DeadLetterSinkName = "dead_letter"

// WrapDeadLetterSink returns inner (a sinks.DeadLetterSink) decorated.
func (m *Metrics) WrapDeadLetterSink(inner sinks.DeadLetterSink) *DeadLetterSink {
	return &DeadLetterSink{inner: inner, m: m}
}

func (s *DeadLetterSink) Write(ctx context.Context, letters []record.DeadLetter) error {
	start := time.Now()
	if err := s.inner.Write(ctx, letters); err != nil {
		s.m.writeFailed(ctx, DeadLetterSinkName)
		return err
	}
	s.m.ObserveSinkWrite(DeadLetterSinkName, len(letters), time.Since(start))
	// A batch's letters come from one source and carry a reason or two: count
	// runs rather than build a map per batch.
	var source string
	var reason record.Reason
	n := 0
	for i := range letters {
		l := &letters[i]
		if l.Source != source || l.Reason != reason {
			if n > 0 {
				s.m.DeadLetters.WithLabelValues(source, string(reason)).Add(float64(n))
			}
			source, reason, n = l.Source, l.Reason, 0
		}
		n++
	}
	if n > 0 {
		s.m.DeadLetters.WithLabelValues(source, string(reason)).Add(float64(n))
	}
	return nil
}

func (s *DeadLetterSink) Close() error { return s.inner.Close() }

// writeFailed counts a transient write failure; a write cancelled by its
// context is the caller giving up, not the sink failing.
func (m *Metrics) writeFailed(ctx context.Context, sink string) {
	if ctx.Err() == nil {
		m.SinkWriteErrors.WithLabelValues(sink).Inc()
	}
}

// countWritten adds rows, minus those the sink refused, to rows_written by
// dataset. A sink usually carries one dataset, so the common case is one
// label lookup per batch.
func (m *Metrics) countWritten(sink string, rows []record.Row, refused []int) {
	var skip map[int]bool // nil (no lookups allocate) unless something was refused
	if len(refused) > 0 {
		skip = make(map[int]bool, len(refused))
		for _, ri := range refused {
			skip[ri] = true
		}
	}
	var ds string
	n := 0
	for ri := range rows {
		if skip[ri] {
			continue
		}
		if d := rows[ri].Dataset; d != ds {
			if n > 0 {
				m.RowsWritten.WithLabelValues(ds, sink).Add(float64(n))
			}
			ds, n = d, 0
		}
		n++
	}
	if n > 0 {
		m.RowsWritten.WithLabelValues(ds, sink).Add(float64(n))
	}
}

// Handler decorates the consumer's handler (the pipeline): records and bytes
// received per shard when a batch is handed over, and, once the handler
// returns nil (every record durable), batch_seconds and one end-to-end latency
// per record.
type Handler struct {
	inner consumers.Handler
	m     *Metrics
}

// WrapHandler returns inner (a consumers.Handler) decorated. If inner keeps a
// shard state (a consumers.StateHandler), so does the decorator.
func (m *Metrics) WrapHandler(inner consumers.Handler) *Handler {
	return &Handler{inner: inner, m: m}
}

func (h *Handler) Deliver(ctx context.Context, source string, records []record.Record) error {
	_, err := h.deliver(ctx, source, nil, records, false)
	return err
}

// DeliverState passes the shard's state through to the inner handler if it
// keeps one (consumers.StateHandler), else returns state as it was.
func (h *Handler) DeliverState(ctx context.Context, source string, state []byte, records []record.Record) ([]byte, error) {
	return h.deliver(ctx, source, state, records, true)
}

func (h *Handler) deliver(ctx context.Context, source string, state []byte, records []record.Record, withState bool) ([]byte, error) {
	sh, stateful := h.inner.(consumers.StateHandler)
	call := func() error {
		if withState && stateful {
			var err error
			state, err = sh.DeliverState(ctx, source, state, records)
			return err
		}
		return h.inner.Deliver(ctx, source, records)
	}
	if len(records) == 0 {
		return state, call()
	}
	start := time.Now()
	h.received(source, records)
	if err := call(); err != nil {
		return nil, err
	}
	now := time.Now()
	h.m.BatchSeconds.WithLabelValues(source).Observe(now.Sub(start).Seconds())
	e2e := h.m.EndToEndSeconds.WithLabelValues(source)
	for i := range records {
		if at := records[i].Origin.ArrivalTime; !at.IsZero() {
			e2e.Observe(max(0, now.Sub(at).Seconds()))
		}
	}
	return state, nil
}

// DeliverDeferred passes a deferred delivery through (consumers.DeferredHandler):
// batch_seconds is the time to take the batch, the end-to-end latency is
// observed once it is durable. An inner handler that is not deferred makes
// each batch durable before it returns.
func (h *Handler) DeliverDeferred(ctx context.Context, source string, state []byte, records []record.Record, durable func(error)) ([]byte, error) {
	d, ok := h.inner.(consumers.DeferredHandler)
	if !ok || len(records) == 0 {
		st, err := h.deliver(ctx, source, state, records, true)
		if err == nil {
			durable(nil)
		}
		return st, err
	}
	start := time.Now()
	h.received(source, records)
	// Arrival times are read now: records' memory is the consumer's again
	// once the delivery returns.
	arrivals := make([]time.Time, 0, len(records))
	for i := range records {
		if at := records[i].Origin.ArrivalTime; !at.IsZero() {
			arrivals = append(arrivals, at)
		}
	}
	st, err := d.DeliverDeferred(ctx, source, state, records, func(err error) {
		if err == nil {
			now := time.Now()
			e2e := h.m.EndToEndSeconds.WithLabelValues(source)
			for _, at := range arrivals {
				e2e.Observe(max(0, now.Sub(at).Seconds()))
			}
		}
		durable(err)
	})
	if err != nil {
		return nil, err
	}
	h.m.BatchSeconds.WithLabelValues(source).Observe(time.Since(start).Seconds())
	return st, nil
}

// Flush passes through to a deferred inner handler; any other has nothing
// pending.
func (h *Handler) Flush(ctx context.Context) error {
	if d, ok := h.inner.(consumers.DeferredHandler); ok {
		return d.Flush(ctx)
	}
	return nil
}

// received counts a batch handed to the handler.
func (h *Handler) received(source string, records []record.Record) {
	shard := records[0].Origin.ShardID
	var bytes int
	for i := range records {
		bytes += len(records[i].Data)
	}
	h.m.RecordsReceived.WithLabelValues(source, shard).Add(float64(len(records)))
	h.m.BytesReceived.WithLabelValues(source, shard).Add(float64(bytes))
}

// Pipeline counts what only the pipeline sees: records no dataset took, and
// its retries (a decoder's dependency, a sink outage, a whole batch). It
// implements pipeline.Metrics.
type Pipeline struct{ m *Metrics }

// Pipeline returns the pipeline's own counters.
func (m *Metrics) Pipeline() *Pipeline { return &Pipeline{m: m} }

// Filtered counts n rows a dataset's own rules dropped.
func (p *Pipeline) Filtered(dataset, reason string, n int) {
	p.m.Filtered.WithLabelValues(dataset, reason).Add(float64(n))
}

// Unrouted counts n records of source that no dataset took.
func (p *Pipeline) Unrouted(source string, n int) {
	p.m.Unrouted.WithLabelValues(source).Add(float64(n))
}

// DecodeRetried counts one retried decode of a record of source.
func (p *Pipeline) DecodeRetried(source string) {
	p.m.DecodeRetries.WithLabelValues(source).Inc()
	p.m.Retries.WithLabelValues(StageDecode).Inc()
}

// SinkRetried counts one retried write to sink.
func (p *Pipeline) SinkRetried(string) {
	p.m.Retries.WithLabelValues(StageSink).Inc()
}

// DeliveryRetried counts one batch of source retried whole.
func (p *Pipeline) DeliveryRetried(string) {
	p.m.Retries.WithLabelValues(StageDelivery).Inc()
}

// CDCSkipped counts n Debezium events of dataset that changed no row.
func (p *Pipeline) CDCSkipped(dataset, event string, n int) {
	p.m.CDCSkipped.WithLabelValues(dataset, event).Add(float64(n))
}

// Expired counts n records of source older than its max_record_age.
func (p *Pipeline) Expired(source, result string, n int) {
	p.m.RecordsExpired.WithLabelValues(source, result).Add(float64(n))
}

// Skipped counts n records of source that carry no data by design.
func (p *Pipeline) Skipped(source, reason string, n int) {
	p.m.RecordsSkipped.WithLabelValues(source, reason).Add(float64(n))
}

// SinkGaveUp counts a batch whose write to sink spent its retry budget.
func (p *Pipeline) SinkGaveUp(sink string) {
	p.m.SinkBudgetSpent.WithLabelValues(sink).Inc()
}

// InstrumentRouter adds Watermill's router metrics (see Metrics.InstrumentRouter).
func (p *Pipeline) InstrumentRouter(r *message.Router) { p.m.InstrumentRouter(r) }
