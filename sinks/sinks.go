// Package sinks defines where rows and dead letters go. Implementations live in
// subpackages (sinks/file, sinks/postgres); every one of them runs the
// conformance suite in sinks/sinktest.
package sinks

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Origin says where a record came from in Kinesis. It travels with every row and
// dead letter so that a user can find the record again and so that sinks which can
// de-duplicate have a stable key: (ShardID, SequenceNumber, SubSequence).
type Origin struct {
	Source         string `json:"source"`
	StreamARN      string `json:"stream_arn"`
	ShardID        string `json:"shard_id"`
	SequenceNumber string `json:"sequence_number"`
	// SubSequence is the index of a record inside a KPL aggregate (0 otherwise):
	// de-aggregated sub-records share their parent's sequence number.
	SubSequence  int       `json:"subsequence"`
	PartitionKey string    `json:"partition_key"`
	ArrivalTime  time.Time `json:"arrival_time"`
}

// Field is one named, typed value of a row. Value holds one of: nil, bool,
// int64, float64, string, []byte, time.Time (datetime, UTC, µs precision), Date,
// Decimal, []float64 (embedding), []any (list), map[string]any (map), or []Field
// (struct). Sinks encode them by these Go types.
type Field struct {
	Name  string
	Value any
}

// Date is a calendar date without a time zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// String formats the date as ISO-8601 (2006-01-02).
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// Decimal is an exact decimal number in its canonical text form ("-12.50").
type Decimal string

// Row is one validated record of a dataset.
type Row struct {
	Dataset string
	Origin  Origin
	Fields  []Field
}

// Reason is why a record became a dead letter. The set is small and fixed so that
// it can be a metric label.
type Reason string

const (
	// ReasonDecode: the bytes are not valid in the source's format.
	ReasonDecode Reason = "decode_error"
	// ReasonSchema: the decoded record does not fit the dataset.
	ReasonSchema Reason = "schema_error"
	// ReasonNoRoute: no dataset took the record.
	ReasonNoRoute Reason = "no_route"
	// ReasonSinkRejected: the row sink refused the row itself (not an outage).
	ReasonSinkRejected Reason = "sink_rejected"
)

// DeadLetter is a record that could not become a row, with the reason.
type DeadLetter struct {
	Origin
	Dataset string `json:"dataset,omitempty"`
	Reason  Reason `json:"reason"`
	Error   string `json:"error"`
	Data    []byte `json:"data"`
}

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
// Close flushes and releases resources; Write must not be called after it.
type RowSink interface {
	Write(ctx context.Context, rows []Row) error
	Close() error
}

// DeadLetterSink stores dead letters, with the same contract as RowSink.
type DeadLetterSink interface {
	Write(ctx context.Context, letters []DeadLetter) error
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

// IsRejected reports whether err says rows were refused for themselves.
func IsRejected(err error) (*RejectedError, bool) {
	var r *RejectedError
	ok := errors.As(err, &r)
	return r, ok
}
