package pipeline

// Limits a user sets so that one stale backlog or one sink down for a day
// does not decide for them (issue 31, as Lambda's MaximumRecordAgeInSeconds
// and MaximumRetryAttempts do): both are off by default, and each case is
// counted and logged at Error.
//
//   - max_record_age (Source.MaxRecordAge): classify judges every record by
//     its Kinesis arrival time against the time the batch is classified; an
//     older one is an expired dead letter, or, with SkipExpired, skipped and
//     counted (records_expired_total{action="skip"}), neither row nor dead
//     letter. The check comes first: an expired record is not decoded.
//   - max_retry_duration (Route.MaxRetryDuration, a sink's): write retries
//     a sink's write as always, and once the budget has passed since the
//     batch's first failure to that sink, the rows of that sink become
//     sink_failed dead letters carrying the sink's last error, and the batch
//     goes on: the checkpoint moves past them. A write under way when the
//     budget ends is cancelled; a sink may still have committed it (the
//     RowSink contract promises nothing of a cancelled Write), so a row can
//     exist as a row and as a dead letter, which a redrive into a
//     de-duplicating sink makes whole. A deferred sink's Accept is covered
//     the same way; rows it accepted and then fails to flush are its own
//     retry (sinks/s3), which no budget here can end. The dead-letter sink
//     has no budget: a dead-letter sink down holds the shard.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// What became of records older than max_record_age, for Metrics.Expired.
const (
	ExpiredDeadLetter = "dead_letter"
	ExpiredSkip       = "skip"
)

// expiredCount is what a batch's classification found too old.
type expiredCount struct {
	n       int
	oldest  time.Time
	shard   string
	first   string // sequence number of the first expired record
	maxAge  time.Duration
	skipped bool
}

// expiryBound is the arrival time before which a record of src is expired
// now; zero when src has no max_record_age.
func expiryBound(src *Source) time.Time {
	if src.MaxRecordAge <= 0 {
		return time.Time{}
	}
	return time.Now().Add(-src.MaxRecordAge)
}

// expire takes rec out of the batch when it arrived before bound (zero: no
// bound), as an expired dead letter or a skip; it says whether it did. A
// record without an arrival time is never expired.
func (p *Pipeline) expire(c *classified, rec *record.Record, bound time.Time) bool {
	at := rec.Origin.ArrivalTime
	if bound.IsZero() || at.IsZero() || !at.Before(bound) {
		return false
	}
	e := &c.expired
	if e.n == 0 {
		e.shard, e.first, e.oldest = rec.Origin.ShardID, rec.Origin.SequenceNumber, at
		e.maxAge, e.skipped = c.src.MaxRecordAge, c.src.SkipExpired
	}
	e.n++
	if at.Before(e.oldest) {
		e.oldest = at
	}
	if !c.src.SkipExpired {
		p.deadLetter(c, rec, "", record.ReasonExpired, fmt.Errorf(
			"arrived in Kinesis at %s, more than max_record_age (%s) before it was read; raise sources[].max_record_age to ingest such records",
			at.UTC().Format(time.RFC3339Nano), c.src.MaxRecordAge))
	}
	return true
}

// reportExpired counts and logs, once per batch, the records it found too
// old: data the user chose not to ingest is logged at Error all the same.
func (p *Pipeline) reportExpired(c *classified) {
	e := &c.expired
	if e.n == 0 {
		return
	}
	action, msg := ExpiredDeadLetter, "records older than max_record_age: dead-lettered as expired"
	if e.skipped {
		action, msg = ExpiredSkip, "records older than max_record_age: skipped, neither rows nor dead letters"
	}
	p.cfg.Metrics.Expired(c.src.Name, action, e.n)
	p.log.Error(msg, "source", c.src.Name, "shard_id", e.shard, "first_sequence_number", e.first,
		"records", e.n, "oldest_arrival", e.oldest.UTC(), "max_record_age", e.maxAge)
}

// budgetSpentError is a sink's write that kept failing for its whole
// max_retry_duration.
type budgetSpentError struct {
	sink     string
	budget   time.Duration
	attempts int
	last     error
}

func (e *budgetSpentError) Error() string {
	return fmt.Sprintf("sink %s: writes failed for max_retry_duration (%s, %d attempts), so the rows were dead-lettered; last error: %v",
		e.sink, e.budget, e.attempts, e.last)
}

func (e *budgetSpentError) Unwrap() error { return e.last }

// errBudgetSpent is the cause that ends a write's context when its retry
// budget has passed.
var errBudgetSpent = errors.New("max_retry_duration passed")

// retryBudget ends a write's retries budget after their first failure, by
// cancelling the context they run under (the wait between attempts and the
// attempt under way end with it), and keeps the last failure that was the
// sink's own rather than the cancellation's.
type retryBudget struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	budget time.Duration
	timer  *time.Timer
	last   error
	calls  int
}

// newRetryBudget returns a budget of d over ctx; d <= 0 is none (ctx as is).
func newRetryBudget(ctx context.Context, d time.Duration) *retryBudget {
	b := &retryBudget{ctx: ctx, budget: d}
	if d > 0 {
		b.ctx, b.cancel = context.WithCancelCause(ctx)
	}
	return b
}

// start starts the clock at the first failure; later calls do nothing.
func (b *retryBudget) start() {
	if b.cancel == nil || b.timer != nil {
		return
	}
	b.timer = time.AfterFunc(b.budget, func() { b.cancel(errBudgetSpent) })
}

// track wraps an attempt to keep its failure unless the budget ended it.
func (b *retryBudget) track(f func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		b.calls++
		err := f(ctx)
		if err != nil && (b.cancel == nil || context.Cause(b.ctx) != errBudgetSpent) {
			b.last = err
		}
		return err
	}
}

// spent reports whether the budget, and not the caller's context, ended the
// retries.
func (b *retryBudget) spent() bool {
	return b.cancel != nil && context.Cause(b.ctx) == errBudgetSpent
}

func (b *retryBudget) stop() {
	if b.timer != nil {
		b.timer.Stop()
	}
	if b.cancel != nil {
		b.cancel(nil)
	}
}

// giveUp makes the rows of sb, whose sink kept failing for its whole budget,
// sink_failed dead letters: they go to the dead-letter sink with the batch's
// other letters, and the batch is acked.
func (p *Pipeline) giveUp(c *classified, sb *sinkBatch, spent *budgetSpentError) {
	for i := range sb.rows {
		p.deadLetter(c, &c.records[sb.recIdx[i]], sb.rows[i].Dataset, record.ReasonSinkFailed, spent)
	}
	p.cfg.Metrics.SinkGaveUp(sb.name)
	first, last := c.records[sb.recIdx[0]].Origin, c.records[sb.recIdx[len(sb.recIdx)-1]].Origin
	p.log.LogAttrs(context.Background(), slog.LevelError, "sink kept failing past max_retry_duration; its rows of the batch become sink_failed dead letters and the shard moves on",
		slog.String("source", c.src.Name), slog.String("sink", sb.name), slog.String("shard_id", first.ShardID),
		slog.String("first_sequence_number", first.SequenceNumber), slog.String("last_sequence_number", last.SequenceNumber),
		slog.Int("rows", len(sb.rows)), slog.Duration("max_retry_duration", spent.budget), slog.Int("attempts", spent.attempts),
		slog.Any("err", spent.last))
}
