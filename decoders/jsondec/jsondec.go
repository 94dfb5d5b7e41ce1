// Package jsondec decodes JSON records for schema validation.
//
// A payload must be exactly one JSON value (any kind; the schema decides
// whether it must be an object), optionally surrounded by JSON whitespace.
// Rules:
//   - numbers decode to json.Number (never float64), so int64 ids survive;
//   - empty or whitespace-only input is an error;
//   - anything after the first value is an error (`{"a":1} x`, `{}{}`);
//   - the payload must be valid UTF-8 (RFC 8259 §8.1): invalid bytes are an
//     error rather than being silently replaced by U+FFFD; a byte-order mark
//     is an error too. Escaped lone surrogates ("\ud800") are valid JSON and
//     decode to U+FFFD, as encoding/json does;
//   - a duplicated object key keeps its last value (encoding/json behaviour);
//   - nesting deeper than encoding/json's limit (10000) is an error.
//
// Errors read "invalid JSON at byte N: reason", N being a 0-based byte offset
// into the payload.
//
// Record is the same rules without the value tree: a record scanned in place
// and its top-level members indexed, for readers that need a few fields of
// it (the schema's JSON conversion, a where). It takes the objects Decode
// takes, nested up to MaxDepth (FuzzDecode holds the two to that).
package jsondec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/kinesis-ingest/kinesis-ingest/decoders"
)

// Decoder decodes JSON payloads. The zero value is ready to use and it is safe
// for concurrent use.
type Decoder struct{}

var _ decoders.Decoder = (*Decoder)(nil)

// New returns a JSON decoder.
func New() *Decoder { return &Decoder{} }

// Error is a decode error with the byte offset where the problem was found.
type Error struct {
	Offset int64
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg) }

// Decode decodes one JSON value that makes up the whole of data.
func (*Decoder) Decode(data []byte) (any, error) {
	start := skipSpace(data, 0)
	if start == len(data) {
		return nil, &Error{Offset: int64(start), Msg: "empty input"}
	}
	if !utf8.Valid(data) {
		return nil, &Error{Offset: int64(invalidUTF8At(data)), Msg: "invalid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, convertErr(err, dec, len(data))
	}
	end := dec.InputOffset()
	if i := skipSpace(data, int(end)); i != len(data) {
		return nil, &Error{Offset: int64(i), Msg: fmt.Sprintf("unexpected %s after the top-level value", quoteByte(data[i]))}
	}
	return v, nil
}

func convertErr(err error, dec *json.Decoder, n int) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		off := se.Offset
		// SyntaxError.Offset counts the bytes read including the bad one.
		if off > 0 {
			off--
		}
		return &Error{Offset: off, Msg: se.Error()}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &Error{Offset: int64(n), Msg: "unexpected end of input"}
	}
	return &Error{Offset: dec.InputOffset(), Msg: err.Error()}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}
