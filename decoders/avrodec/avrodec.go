// Package avrodec decodes Avro records for schema validation, with
// github.com/linkedin/goavro/v2.
//
// A Decoder gets its writer schemas from one of two places:
//
//   - a schema (an .avsc file): each payload is one record in Avro binary,
//     either raw or single-object encoded (C3 01, the schema's 8-byte
//     little-endian CRC-64-AVRO fingerprint, the record). See Framing.
//   - a Confluent-compatible schema registry: each payload is in the
//     Confluent wire format (magic byte 0, the 4-byte big-endian schema id,
//     the record) or single-object encoded with a schema the registry has.
//     Schemas are fetched once by id (GET /schemas/ids/{id}) and cached;
//     single-object fingerprints are looked up among the schemas fetched so
//     far and, on a miss, among all the registry's schemas (GET /schemas).
//   - an AWS Glue Schema Registry: each payload is in Glue's wire format
//     (header version 3, a compression byte, the 16-byte schema version id,
//     the record, zlib-compressed or not; see Glue). Schemas are fetched
//     once by version id (GetSchemaVersion) and cached.
//
// There is no reader schema: a record decodes with the schema it was written
// with, to a map keyed by field name, and the dataset picks its fields by
// name, so writer-schema evolution that keeps the dataset's fields keeps
// working.
//
// # Values
//
// Decode returns the decoders.Decoder value tree:
//
//	null                         nil
//	boolean                      bool
//	int, long                    int32, int64
//	float, double                float32, float64
//	string, enum                 string
//	bytes, fixed                 []byte (aliasing the payload, not copied)
//	record                       map[string]any by field name
//	array                        []any
//	map                          map[string]any
//	union                        the value of the branch taken (goavro's
//	                             map{"branch": v} is unwrapped); null is nil
//	decimal (bytes or fixed)     *big.Rat
//	uuid (string)                string; uuid on fixed(16): its canonical string
//	date                         time.Time at midnight UTC
//	timestamp-millis, -micros    time.Time in UTC
//	local-timestamp-millis, -micros  time.Time: the wall clock read as UTC
//	time-millis                  int32 milliseconds after midnight
//	time-micros                  int64 microseconds after midnight
//
// # Errors
//
// Bad bytes are an *Error (the record becomes a decode_error dead letter):
// a payload that does not decode with its schema, bytes left over after the
// record, a wrong magic byte, an unknown schema id (the registry answered
// 404, Glue EntityNotFoundException) or fingerprint, a Glue header cut
// short, a zlib body that does not inflate or inflates past its bound, an int or long encoded in more bytes than it may take,
// a string that is not UTF-8, nesting deeper than 10000, or a block count
// promising more items than the payload has bytes for.
//
// A registry that cannot be reached, answers 5xx, 429, throttles or refuses
// the credentials (Glue's AccessDeniedException too) is not bad bytes: Decode returns an error wrapping
// decoders.ErrTransient at once, and the pipeline retries the record with
// its backoff, without checkpointing (the one layer that retries it: Decode
// has no context to end a wait with). Config.OnRegistryError counts every
// failed request.
package avrodec

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/linkedin/goavro/v2"

	"github.com/kinesis-ingest/kinesis-ingest/decoders"
)

// Framing says how payloads carry a record written with Config.Schema.
type Framing int

const (
	// FramingAuto takes a payload that starts with C3 01 and the schema's
	// fingerprint as single-object encoded, and any other payload as raw
	// binary. (A raw record that happens to start with those 10 bytes would
	// be misread; the odds are 2^-64 once its first two bytes match.)
	FramingAuto Framing = iota
	// FramingBinary takes every payload as one raw binary record.
	FramingBinary
	// FramingSingleObject requires single-object encoding with the schema's
	// fingerprint.
	FramingSingleObject
)

func (f Framing) String() string {
	switch f {
	case FramingAuto:
		return "auto"
	case FramingBinary:
		return "binary"
	case FramingSingleObject:
		return "single_object"
	}
	return fmt.Sprintf("Framing(%d)", int(f))
}

// Config configures a Decoder. Set exactly one of Schema, SchemaFile,
// Registry and Glue.
type Config struct {
	// Schema is the writer schema, the JSON text of an .avsc file.
	Schema string
	// SchemaFile is the path of an .avsc file, read by New.
	SchemaFile string
	// Framing of payloads written with Schema or SchemaFile; the zero value
	// is FramingAuto. Registry payloads say their framing in their first
	// byte.
	Framing Framing

	// Registry is a Confluent-compatible schema registry.
	Registry *Registry
	// Glue is an AWS Glue Schema Registry.
	Glue *Glue
	// OnRegistryError, if set, is called once for every failed registry
	// request: no answer, a 5xx, 429 or other unexpected status, a Glue call
	// that failed. A 404 (Glue's EntityNotFoundException) for an unknown
	// schema is not a failure of the registry and is not counted.
	// It must be safe for concurrent use (a Prometheus counter's Inc is).
	OnRegistryError func()

	// Logger receives warnings about the registry; nil discards them.
	Logger *slog.Logger
}

// Decoder decodes Avro payloads. It is safe for concurrent use.
type Decoder struct {
	framing Framing
	local   *schemaEntry // Schema or SchemaFile
	reg     *registry
	glue    *glueRegistry
}

var _ decoders.Decoder = (*Decoder)(nil)

// Error is a decode error: the payload is not a valid Avro record. Offset is
// the byte offset into the payload, header included, where the problem was
// found.
type Error struct {
	Offset int
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("invalid Avro at byte %d: %s", e.Offset, e.Msg) }

// New checks cfg, compiles the schema or prepares the registry client, and
// returns a Decoder. It does not contact the registry.
func New(cfg Config) (*Decoder, error) {
	set := 0
	for _, b := range []bool{cfg.Schema != "", cfg.SchemaFile != "", cfg.Registry != nil, cfg.Glue != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		return nil, errors.New("avrodec: set exactly one of Schema, SchemaFile, Registry and Glue")
	}
	if cfg.Framing < FramingAuto || cfg.Framing > FramingSingleObject {
		return nil, fmt.Errorf("avrodec: unknown framing %d", int(cfg.Framing))
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Decoder{framing: cfg.Framing}
	if (cfg.Registry != nil || cfg.Glue != nil) && cfg.Framing != FramingAuto {
		return nil, errors.New("avrodec: Framing applies to Schema and SchemaFile; registry payloads carry their framing in their first byte")
	}
	if cfg.Glue != nil {
		g, err := newGlueRegistry(cfg.Glue, cfg.OnRegistryError, log)
		if err != nil {
			return nil, err
		}
		d.glue = g
		return d, nil
	}
	if cfg.Registry != nil {
		r, err := newRegistry(cfg.Registry, cfg.OnRegistryError, log)
		if err != nil {
			return nil, err
		}
		d.reg = r
		return d, nil
	}
	text, what := cfg.Schema, "schema"
	if cfg.SchemaFile != "" {
		b, err := os.ReadFile(cfg.SchemaFile)
		if err != nil {
			return nil, fmt.Errorf("avrodec: read schema file: %w", err)
		}
		text, what = string(b), fmt.Sprintf("schema file %q", cfg.SchemaFile)
	}
	e, err := compileSchema(text)
	if err != nil {
		return nil, fmt.Errorf("avrodec: %s: %w", what, err)
	}
	d.local = e
	return d, nil
}

// Fingerprint returns the CRC-64-AVRO (Rabin) fingerprint of the schema's
// parsing canonical form, as single-object encoding carries it; 0 for a
// registry decoder.
func (d *Decoder) Fingerprint() uint64 {
	if d.local == nil {
		return 0
	}
	return d.local.fp
}

// Decode decodes one payload. See the package documentation for the value
// tree and the errors.
func (d *Decoder) Decode(data []byte) (v any, err error) {
	defer func() {
		// A panic here would be redelivered forever and stall the shard:
		// make it this record's decode error instead.
		if p := recover(); p != nil {
			v, err = nil, &Error{Offset: 0, Msg: fmt.Sprintf("decoder failure (a bug, please report it): %v", p)}
		}
	}()
	return d.decode(data, true)
}

// decode is Decode, with goavro for every value when direct is false (the
// tests' reference).
func (d *Decoder) decode(data []byte, direct bool) (v any, err error) {
	switch {
	case d.reg != nil:
		return d.decodeRegistry(data, direct)
	case d.glue != nil:
		return d.decodeGlue(data, direct)
	}
	e := d.local
	switch d.framing {
	case FramingBinary:
		return e.decode(data, 0, direct)
	case FramingSingleObject:
		fp, ok := soeFingerprint(data)
		switch {
		case !ok:
			return nil, &Error{Offset: 0, Msg: "not single-object encoded: want C3 01 and an 8-byte schema fingerprint first"}
		case !e.hasFingerprint(fp):
			return nil, &Error{Offset: 2, Msg: fmt.Sprintf("schema fingerprint %#016x is not the schema's (%#016x)", fp, e.fp)}
		}
		return e.decode(data, soeHeaderLen, direct)
	}
	fp, soe := soeFingerprint(data)
	if soe && e.hasFingerprint(fp) {
		return e.decode(data, soeHeaderLen, direct)
	}
	v, err = e.decode(data, 0, direct)
	if err != nil && soe {
		var de *Error
		if errors.As(err, &de) {
			de.Msg += fmt.Sprintf(" (read as raw binary: the payload starts like single-object encoding, but with fingerprint %#016x, not the schema's %#016x)", fp, e.fp)
		}
	}
	return v, err
}

func (d *Decoder) decodeRegistry(data []byte, direct bool) (any, error) {
	switch {
	case len(data) == 0:
		return nil, &Error{Offset: 0, Msg: "empty payload"}
	case data[0] == 0:
		if len(data) < confluentHeaderLen {
			return nil, &Error{Offset: len(data), Msg: "payload ends inside the Confluent header (magic byte 0, 4-byte schema id)"}
		}
		id := int64(data[1])<<24 | int64(data[2])<<16 | int64(data[3])<<8 | int64(data[4])
		e, err := d.reg.byID(id)
		if err != nil {
			return nil, err
		}
		return e.decode(data, confluentHeaderLen, direct)
	case data[0] == 0xC3 && len(data) > 1 && data[1] == 0x01:
		fp, ok := soeFingerprint(data)
		if !ok {
			return nil, &Error{Offset: len(data), Msg: "payload ends inside the single-object header (C3 01, 8-byte fingerprint)"}
		}
		e, err := d.reg.byFingerprint(fp)
		if err != nil {
			return nil, err
		}
		return e.decode(data, soeHeaderLen, direct)
	}
	return nil, &Error{Offset: 0, Msg: fmt.Sprintf("wrong magic byte 0x%02x: want 0x00 (Confluent wire format) or C3 01 (single-object encoding)", data[0])}
}

// schemaEntry is one compiled writer schema.
type schemaEntry struct {
	codec *goavro.Codec
	root  *node
	// fp is the fingerprint of the schema's Parsing Canonical Form, which
	// single-object encoding carries; goavroFP is goavro's Codec.Rabin,
	// which differs when the schema has logical types (see canonical.go):
	// goavro's own single-object writers send it, so it is accepted too.
	fp       uint64
	goavroFP uint64
	// names are the root record's field names, for DecodeNamed (nil if the
	// root is no record).
	names []string
}

func (e *schemaEntry) hasFingerprint(fp uint64) bool { return fp == e.fp || fp == e.goavroFP }

// decode decodes the record that fills data[off:].
func (e *schemaEntry) decode(data []byte, off int, direct bool) (any, error) {
	c := checker{buf: data}
	end, err := c.value(e.root, off, 0)
	if err != nil {
		return nil, err
	}
	if end != len(data) {
		return nil, &Error{Offset: end, Msg: fmt.Sprintf("%d trailing bytes after the record", len(data)-end)}
	}
	if direct && !e.root.noDirect {
		d := directReader{buf: data, pos: off}
		if v, ok := d.value(e.root); ok {
			return v, nil
		}
	}
	return e.decodeGoavro(data, off)
}

// decodeGoavro is decode's second half with goavro: for the types direct
// leaves to it, and as the reference the tests hold direct to.
func (e *schemaEntry) decodeGoavro(data []byte, off int) (any, error) {
	v, rest, err := e.codec.NativeFromBinary(data[off:])
	if err != nil {
		return nil, &Error{Offset: off, Msg: err.Error()}
	}
	if len(rest) != 0 { // check said otherwise: trust the stricter answer
		return nil, &Error{Offset: len(data) - len(rest), Msg: fmt.Sprintf("%d trailing bytes after the record", len(rest))}
	}
	return normalize(e.root, v), nil
}

// compileMu serializes goavro.NewCodec: goavro keeps a package-level map of
// compiled patterns that it writes without a lock.
var compileMu sync.Mutex

// compileSchema compiles a writer schema with goavro and builds its shape.
func compileSchema(text string) (*schemaEntry, error) {
	var parsed any
	if err := json.Unmarshal([]byte(text), &parsed); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	// goavro's non-standard "validated-string" logical type reads and writes
	// that package-level map while decoding: drop it (other implementations
	// ignore it too; the fingerprint does not cover logical types).
	if dropValidatedString(parsed) {
		b, err := json.Marshal(parsed)
		if err != nil {
			return nil, err
		}
		text = string(b)
	}
	compileMu.Lock()
	codec, err := goavro.NewCodec(text)
	compileMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("not a valid Avro schema: %w", err)
	}
	root, err := compileShape(parsed)
	if err != nil {
		return nil, fmt.Errorf("not a valid Avro schema: %w", err)
	}
	pcf, err := canonicalForm(parsed)
	if err != nil {
		return nil, fmt.Errorf("not a valid Avro schema: %w", err)
	}
	e := &schemaEntry{codec: codec, root: root, fp: rabin([]byte(pcf)), goavroFP: codec.Rabin}
	if root.kind == kRecord {
		for _, f := range root.fields {
			e.names = append(e.names, f.name)
		}
	}
	return e, nil
}

func dropValidatedString(v any) bool {
	found := false
	switch x := v.(type) {
	case map[string]any:
		if lt, _ := x["logicalType"].(string); lt == "validated-string" {
			delete(x, "logicalType")
			found = true
		}
		for _, e := range x {
			found = dropValidatedString(e) || found
		}
	case []any:
		for _, e := range x {
			found = dropValidatedString(e) || found
		}
	}
	return found
}
