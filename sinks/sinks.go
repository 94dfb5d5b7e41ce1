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

// DeferredRowSink is a RowSink that may make rows durable after it returns:
// one that writes large objects (the lake) buffers rows and flushes them by
// size, by age or when asked, and a shard goes on reading meanwhile.
//
// Accept takes rows (of one shard, in sequence order, as Write does) and
// returns once the sink holds them: it copies what it keeps, since the
// caller reuses rows' memory after it returns. durable is called exactly
// once, from any goroutine, possibly before Accept returns: with nil when
// every row of the call that Accept did not refuse is durable, with an error
// when they never will be (the sink closed first); the caller checkpoints
// past them only after nil. Rows refused for themselves come back as a
// *RejectedError, as from Write; an outage error means nothing of the call
// was taken and durable is not called.
//
// Flush makes every row accepted before it durable before it returns (a
// graceful stop, a shard handed over); ctx bounds it. Write keeps the
// RowSink contract: it returns once its own rows are durable.
type DeferredRowSink interface {
	RowSink
	Accept(ctx context.Context, rows []record.Row, durable func(error)) error
	Flush(ctx context.Context) error
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
