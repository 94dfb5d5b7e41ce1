// Package record is the data model every role shares, as Watermill's message
// package is for its routers: what a stream record is (Record, Origin), what
// it becomes when it fits a dataset (Row of Fields) and what it becomes when it
// does not (DeadLetter with a Reason). It imports nothing of the project's:
// consumers produce Records, the pipeline turns them into Rows and
// DeadLetters, sinks store those.
package record

import (
	"fmt"
	"strings"
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

// Stream is the stream's name, from StreamARN
// (arn:aws:kinesis:region:account:stream/NAME); the ARN itself when it has
// no such part.
func (o *Origin) Stream() string {
	if i := strings.LastIndex(o.StreamARN, ":stream/"); i >= 0 {
		return o.StreamARN[i+len(":stream/"):]
	}
	return o.StreamARN
}

// Field is one named, typed value of a row. Value holds one of: nil, bool,
// int64, float64, string, []byte, time.Time (datetime, UTC, µs precision), Date,
// Decimal, []float64 (embedding), []any (list), map[string]any (map), or []Field
// (struct). Sinks encode them by these Go types.
type Field struct {
	Name  string
	Value any
}

// IsNull reports whether a Field's Value is null: nil, or a nil slice or map
// of the kinds a Value holds. A sink writes both as null, and a typed nil in
// an interface would not compare equal to nil.
func IsNull(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case []byte:
		return v == nil
	case []float64:
		return v == nil
	case []any:
		return v == nil
	case map[string]any:
		return v == nil
	case []Field:
		return v == nil
	}
	return false
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
	// Delete marks a change that deletes its key from a keyed dataset (a
	// Debezium delete): only the key fields and the timestamp are set, the
	// other fields are nil. Rows of keyless datasets never delete.
	Delete bool
}

// FieldValue is the value of the field named name, nil when r has none;
// i is where a row of the dataset's declared fields has it (Fields are in
// declaration order), tried first.
func (r *Row) FieldValue(i int, name string) any {
	if i >= 0 && i < len(r.Fields) && r.Fields[i].Name == name {
		return r.Fields[i].Value
	}
	for _, f := range r.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return nil
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
	// ReasonLate: the record's dataset timestamp is older than its shard's
	// watermark (the newest timestamp seen in the shard minus the dataset's
	// disorder).
	ReasonLate Reason = "late"
	// ReasonExpired: the record arrived in Kinesis longer ago than its
	// source's max_record_age when it was read (a stale backlog).
	ReasonExpired Reason = "expired"
	// ReasonSinkFailed: the row sink kept failing (an outage, not a refusal)
	// for longer than its max_retry_duration; the shard moved on without it.
	ReasonSinkFailed Reason = "sink_failed"
)

// Reasons lists every Reason, in the order documentation names them.
func Reasons() []Reason {
	return []Reason{ReasonDecode, ReasonSchema, ReasonNoRoute, ReasonSinkRejected, ReasonLate, ReasonExpired, ReasonSinkFailed}
}

// DeadLetter is a record that could not become a row, with the reason.
type DeadLetter struct {
	Origin
	Dataset string `json:"dataset,omitempty"`
	Reason  Reason `json:"reason"`
	Error   string `json:"error"`
	Data    []byte `json:"data"`
}

// Record is one stream record, after KPL de-aggregation.
type Record struct {
	Origin Origin
	Data   []byte
	// Invalid is set by the consumer when the record could not be extracted
	// from the stream as sent (a malformed KPL aggregate): the handler
	// dead-letters it as decode_error with this reason, without decoding Data.
	Invalid error
	// Event is set on a record the pipeline split out of a CloudWatch Logs
	// subscription's envelope: one log event, Data its message, Origin its
	// envelope's but for SubSequence. Nil for every other record.
	Event *LogEvent
}

// LogEvent is one CloudWatch Logs log event and what its envelope says of
// it; fields read it as $log_group, $log_stream, $owner, $event_id and
// $event_timestamp.
type LogEvent struct {
	Owner     string // the AWS account id of the log data
	LogGroup  string
	LogStream string
	// SubscriptionFilters are the envelope's filter names (shared by its
	// events: read only).
	SubscriptionFilters []string
	ID                  string // the event's id: a decimal string, unique in the log group
	Timestamp           int64  // the event's time, in milliseconds since the epoch
}
