// Package decoders turns a Kinesis record's bytes into a generic value tree for
// schema validation. Implementations: decoders/jsondec, decoders/avrodec.
package decoders

import "errors"

// Decoder decodes one record's payload.
//
// The returned value is a tree of: nil, bool, string, []byte, json.Number (JSON
// numbers, never float64, so that int64 ids survive), int32, int64, float32,
// float64 (Avro), time.Time (Avro logical timestamps), []any and map[string]any.
// An error means the bytes are not valid in the format: the record becomes a
// decode_error dead letter. Decode must consume the whole payload, never panic,
// and be safe for concurrent use. Strings and []byte in the value may share
// data's memory (avrodec's do), so data must not change while the value is in
// use; the pipeline never modifies a record it received.
type Decoder interface {
	Decode(data []byte) (any, error)
}

// ErrTransient marks a decode error that says nothing about the bytes: a
// dependency the decoder needs (a schema registry) is unavailable. The pipeline
// retries such a record with backoff, without checkpointing, instead of
// dead-lettering it. Wrap it: fmt.Errorf("fetch schema %d: %w", id, ErrTransient).
var ErrTransient = errors.New("transient decoder failure")
