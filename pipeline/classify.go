package pipeline

import (
	"context"
	"fmt"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// Outcome is what a batch would become, decided without writing anything:
// Classify's answer, for a dry run. It is the caller's: nothing of it is
// reused by the pipeline.
type Outcome struct {
	// Rows are the rows of every route, grouped by sink in route order,
	// each group in the batch's order.
	Rows []record.Row
	// Letters are the dead letters: decode_error, schema_error, late, and
	// no_route when the source dead-letters unrouted records. A row a sink
	// would refuse for itself (sink_rejected) cannot be told without
	// writing it, so none is among them.
	Letters []record.DeadLetter
	// Unrouted counts the records no dataset took (also dead letters when
	// the source says so).
	Unrouted int
	// Filtered counts, per dataset, the rows its since, until or sample
	// dropped (no dead letters).
	Filtered map[string]int
	// Skipped counts, per dataset, the change events that change no row
	// (a cdc: debezium dataset).
	Skipped map[string]int
	// SplitSkipped counts, per reason, the records that carry no data by
	// design (a CloudWatch Logs control message; see Splitter): neither
	// rows nor dead letters.
	SplitSkipped map[string]int
	// ExpiredSkipped counts the records older than the source's
	// max_record_age that it skips (expired: skip); with expired:
	// dead_letter they are expired dead letters among Letters.
	ExpiredSkipped int
}

// Classify runs records of source through decode → where → convert →
// window → late as Deliver would, watermarks from this batch alone, and
// returns what they would become. It writes nothing, counts nothing in
// Metrics and needs no Run: the sinks of the routes are never called. Its
// one wait is a decoder's dependency that is down (retried as Deliver
// does); its errors are ctx's and an unknown source.
func (p *Pipeline) Classify(ctx context.Context, source string, records []record.Record) (*Outcome, error) {
	src, ok := p.sources[source]
	if !ok {
		return nil, fmt.Errorf("classify for unknown source %q: it is not in the pipeline's config", source)
	}
	out := &Outcome{}
	if len(records) == 0 {
		return out, nil
	}
	c, err := p.classify(ctx, &batch{source: src, records: records})
	if err != nil {
		return nil, err
	}
	// The rows are copied out of the sinks' pooled slices, which go back;
	// the fast paths' state, which their values may point into, does not:
	// the caller keeps it, and the collector takes it back.
	for _, sb := range c.sinks {
		out.Rows = append(out.Rows, sb.rows...)
		sb.release()
	}
	out.Letters, out.Unrouted = c.letters, c.unrouted
	if len(c.splitSkipped) > 0 {
		out.SplitSkipped = c.splitSkipped
	}
	if c.expired.skipped {
		out.ExpiredSkipped = c.expired.n
	}
	for k, n := range c.filtered {
		if out.Filtered == nil {
			out.Filtered = map[string]int{}
		}
		out.Filtered[k.dataset] += n
	}
	for k, n := range c.skipped {
		if out.Skipped == nil {
			out.Skipped = map[string]int{}
		}
		out.Skipped[k[0]] += n
	}
	return out, nil
}
