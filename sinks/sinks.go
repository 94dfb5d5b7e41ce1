// Package sinks defines where rows and dead letters go: the RowSink and
// DeadLetterSink contracts. What a row and a dead letter are is package
// record. Implementations live in subpackages (sinks/file, sinks/postgres);
// every one of them runs the conformance suite in sinks/sinktest.
package sinks

import (
	"context"
	"errors"
	"fmt"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// RowSink stores rows.
//
// Write returns nil only once every row passed is durable (fsynced, committed):
// the caller acks and may checkpoint past them right after. Rows of one call come
// from one shard in sequence order; a sink keeps that order per shard. Write may be
// called concurrently from several shards. The same rows may be written again
// after a crash or a lease move (at-least-once); a sink that can de-duplicate on
// the Origin key does so. An error is transient (outage) unless it is a
// *RejectedError; the caller retries transient errors with the same rows. ctx
// cancels a Write in progress, which then returns ctx's error and promises nothing.
// A Write that returned nil or a *RejectedError keeps no reference to rows, their
// Fields or their values: the pipeline reuses that memory for its next batch.
// Close flushes and releases resources; Write must not be called after it.
type RowSink interface {
	Write(ctx context.Context, rows []record.Row) error
	Close() error
}

// DeadLetterSink stores dead letters, with the same contract as RowSink.
type DeadLetterSink interface {
	Write(ctx context.Context, letters []record.DeadLetter) error
	Close() error
}

// RejectedError is returned by a RowSink that refused some rows for themselves
// (a value the store cannot hold), as opposed to being unavailable. The rows at
// Index were not written and will never be; every other row of the call was.
type RejectedError struct {
	Index []int
	Err   error
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("sink rejected %d rows: %v", len(e.Index), e.Err)
}

func (e *RejectedError) Unwrap() error { return e.Err }

// Refused returns Index. A decorator that must tell a refusal from an outage
// asks for it through an interface (errors.As), so that it need not import
// this package: the metrics decorators do, since the consumer imports them.
func (e *RejectedError) Refused() []int { return e.Index }

// IsRejected reports whether err says rows were refused for themselves.
func IsRejected(err error) (*RejectedError, bool) {
	var r *RejectedError
	ok := errors.As(err, &r)
	return r, ok
}
