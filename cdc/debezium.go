// Package cdc reads change events into the changes of a keyed dataset:
// Debezium's (Debezium) and those of Kinesis Data Streams for DynamoDB
// (DynamoDB, see dynamodb.go). Both give a Change, whose image the
// dataset's fields read with the event's envelope beside it under $ names;
// the keyed dataset's event-time rule, not the reader, orders a key's
// changes.
//
// Debezium's envelope is read from the decoded value tree any decoder gives
// (decoders.Decoder), so JSON events, with or without the schema/payload
// wrapper of Kafka Connect's JsonConverter, and Avro envelopes read the same.
//
// The envelope (https://debezium.io/documentation/reference/stable/connectors/postgresql.html#postgresql-events):
// op c (create), r (snapshot read) and u (update) carry the new row in
// after; d (delete) carries the deleted row, or at least its key, in before;
// t (truncate) and m (a logical-decoding message) change no row. A heartbeat
// (an object with ts_ms but no op) and a tombstone (a null value, which
// Debezium emits after a delete for Kafka's log compaction) are no change
// either.
package cdc

import (
	"errors"
	"fmt"
)

// Op is what a change does to its key.
type Op uint8

const (
	// Upsert makes the image the key's row.
	Upsert Op = iota + 1
	// Delete removes the key.
	Delete
	// Skip changes no row (truncate, message, heartbeat, tombstone).
	Skip
)

// Skipped events, as Change.Skipped names them (a metric label).
const (
	SkipTruncate  = "truncate"
	SkipMessage   = "message"
	SkipHeartbeat = "heartbeat"
	SkipTombstone = "tombstone"
)

// Change is one event read from its envelope.
type Change struct {
	Op Op
	// Image is the row image (after, or before for a delete) with the
	// envelope's other members beside it under their names prefixed with $
	// ($ts_ms, $source, $op, ...), so that a dataset field can ref
	// $ts_ms or $source.lsn. Nil when Op is Skip.
	Image map[string]any
	// Skipped says which event changed no row (Skip* constants).
	Skipped string
}

// ErrEnvelope is wrapped by every error about an event that is not a
// Debezium change event (a schema_error of the record).
var ErrEnvelope = errors.New("not a Debezium change event")

// Debezium reads Debezium change events.
type Debezium struct{}

// Read reads one decoded event.
func (Debezium) Read(v any) (Change, error) {
	if v == nil {
		return Change{Op: Skip, Skipped: SkipTombstone}, nil
	}
	env, ok := v.(map[string]any)
	if !ok {
		return Change{}, fmt.Errorf("$: %w: want an object, got %T", ErrEnvelope, v)
	}
	// Kafka Connect's JsonConverter with schemas.enable wraps the event.
	if p, ok := env["payload"]; ok {
		if _, hasSchema := env["schema"]; hasSchema && len(env) == 2 {
			if p == nil {
				return Change{Op: Skip, Skipped: SkipTombstone}, nil
			}
			if env, ok = p.(map[string]any); !ok {
				return Change{}, fmt.Errorf("payload: %w: want an object, got %T", ErrEnvelope, p)
			}
		}
	}
	rawOp, hasOp := env["op"]
	if !hasOp || rawOp == nil {
		if _, ok := env["ts_ms"]; ok && env["before"] == nil && env["after"] == nil {
			return Change{Op: Skip, Skipped: SkipHeartbeat}, nil
		}
		return Change{}, fmt.Errorf("op: %w: no op (want c, r, u, d or t)", ErrEnvelope)
	}
	op, ok := rawOp.(string)
	if !ok {
		return Change{}, fmt.Errorf("op: %w: want a string, got %T", ErrEnvelope, rawOp)
	}
	var image string
	var c Change
	switch op {
	case "c", "r", "u":
		image, c.Op = "after", Upsert
	case "d":
		image, c.Op = "before", Delete
	case "t":
		return Change{Op: Skip, Skipped: SkipTruncate}, nil
	case "m":
		return Change{Op: Skip, Skipped: SkipMessage}, nil
	default:
		return Change{}, fmt.Errorf("op: %w: %q is not an operation (want c, r, u, d or t)", ErrEnvelope, op)
	}
	row, ok := env[image].(map[string]any)
	if !ok {
		what := "missing or null"
		if x := env[image]; x != nil {
			what = fmt.Sprintf("a %T", x)
		}
		return Change{}, fmt.Errorf("%s: %w: op %q needs the row image in %s, which is %s", image, ErrEnvelope, op, image, what)
	}
	c.Image = make(map[string]any, len(row)+len(env))
	for k, x := range row {
		c.Image[k] = x
	}
	for k, x := range env {
		if k != "before" && k != "after" {
			c.Image["$"+k] = x
		}
	}
	return c, nil
}
