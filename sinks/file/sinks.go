package file

import (
	"context"
	"log/slog"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/letterjson"
)

// RowSink writes rows as JSON Lines: one object per row with the fields in
// declaration order, then _source, _shard_id, _sequence_number, _subsequence and
// _arrival_time. Values are written by Go type: time.Time as RFC 3339 UTC with
// six fractional digits, record.Date as "2006-01-02", record.Decimal as a string,
// []byte as base64, map keys sorted, []record.Field as an object in declaration
// order, nil as null. A row holding a value JSON cannot represent (NaN, ±Inf, a
// year outside 0000-9999, a Go type not listed in record.Field) is refused with a
// *sinks.RejectedError while the rest of the batch is written.
//
// With Config.Changelog each line also has "_op" ("upsert" or "delete", after
// _arrival_time); a delete line has the key fields and the timestamp only.
type RowSink struct {
	c         *committer
	changelog bool
}

// DeadLetterSink writes dead letters as JSON Lines, the lines of package
// letterjson: the keys source, stream_arn, shard_id, sequence_number,
// subsequence, partition_key, arrival_time, dataset (left out when empty),
// reason, error and data (base64).
type DeadLetterSink struct{ c *committer }

var (
	_ sinks.RowSink        = (*RowSink)(nil)
	_ sinks.DeadLetterSink = (*DeadLetterSink)(nil)
)

// NewRowSink validates cfg, creates cfg.Dir if needed and returns a sink that
// opens its first file on the first Write. log nil means slog.Default().
func NewRowSink(cfg Config, log *slog.Logger) (*RowSink, error) {
	c, err := newCommitter(cfg, "rows", "rows", log)
	if err != nil {
		return nil, err
	}
	return &RowSink{c: c, changelog: cfg.Changelog}, nil
}

// NewDeadLetterSink is NewRowSink for dead letters (default Prefix
// "dead-letters").
func NewDeadLetterSink(cfg Config, log *slog.Logger) (*DeadLetterSink, error) {
	c, err := newCommitter(cfg, "dead-letters", "dead letters", log)
	if err != nil {
		return nil, err
	}
	return &DeadLetterSink{c: c}, nil
}

// Write appends rows to the current file and returns once they are fsynced.
// It is safe for concurrent use; the rows of one call stay contiguous and in
// order.
func (s *RowSink) Write(ctx context.Context, rows []record.Row) error {
	var e rowEncoder
	if s.changelog {
		return writeBatch(ctx, s.c, rows, "row", e.appendChange)
	}
	return writeBatch(ctx, s.c, rows, "row", e.appendRow)
}

// Close waits for pending Writes, fsyncs and closes the current file. Write
// after Close returns an error; Close again returns nil.
func (s *RowSink) Close() error { return s.c.close() }

// Write appends letters to the current file and returns once they are fsynced.
func (s *DeadLetterSink) Write(ctx context.Context, letters []record.DeadLetter) error {
	return writeBatch(ctx, s.c, letters, "dead letter", letterjson.Append)
}

// Close waits for pending Writes, fsyncs and closes the current file.
func (s *DeadLetterSink) Close() error { return s.c.close() }
