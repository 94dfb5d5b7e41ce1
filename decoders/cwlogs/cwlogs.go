// Package cwlogs reads the records a CloudWatch Logs subscription puts on a
// Kinesis stream: each one a gzip JSON envelope of many log events. Split
// turns a record into one record per log event, its Data the event's
// message and its Event what the envelope says of it; Decode then reads a
// message by the inner format (json, or kept as str).
//
// The envelope (AWS's "Log group-level subscription filters"):
//
//	{"messageType": "DATA_MESSAGE", "owner": "123456789012",
//	 "logGroup": "/aws/lambda/f", "logStream": "2024/05/01/[$LATEST]ab12",
//	 "subscriptionFilters": ["all"],
//	 "logEvents": [{"id": "3697...", "timestamp": 1714559400123, "message": "..."}, ...]}
//
// A CONTROL_MESSAGE (CloudWatch Logs checking that it can write to the
// stream) carries no log data: Split says so, and the caller counts it.
//
// Each event takes its own place in the origin, as a KPL sub-record does:
// its envelope's shard and sequence number, and SubSequence its index in
// logEvents (plus the record's own SubSequence), so a sink that
// de-duplicates on the origin does so per event. A dead letter of one event
// holds Letter: an envelope of that event alone, as plain JSON, which Split
// reads back as the same event in the same place (a redrive).
package cwlogs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unsafe"

	"github.com/kinesis-ingest/kinesis-ingest/decoders"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/decompress"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// Message is the inner format of the events' messages.
type Message string

// Inner formats.
const (
	// JSON: a message is a JSON value; its members are the payload's.
	JSON Message = "json"
	// Str: a message is text; the payload is one member, "message".
	Str Message = "str"
)

// Message types of an envelope.
const (
	DataMessage    = "DATA_MESSAGE"
	ControlMessage = "CONTROL_MESSAGE"
)

// SkipControl is why Split skips a control message: the label its count
// carries.
const SkipControl = "cloudwatch_logs_control"

// Config configures a Decoder.
type Config struct {
	Message Message // required
	// MaxBytes bounds an envelope's decompressed size, as
	// decompress.Config.MaxBytes does (max_decompressed_bytes); 0 is
	// decompress.DefaultMaxBytes.
	MaxBytes int64
}

// ErrEnvelope marks a record that is no CloudWatch Logs envelope: not gzip
// nor JSON, truncated, over the bound, not JSON inside, or of the wrong
// shape. The whole record is a decode_error dead letter.
var ErrEnvelope = errors.New("not a CloudWatch Logs subscription record")

// Decoder splits envelopes and decodes their events' messages. Safe for
// concurrent use.
type Decoder struct {
	message Message
	gunzip  interface{ Decompress([]byte) ([]byte, error) }
}

var _ decoders.Decoder = (*Decoder)(nil)

// New returns a Decoder by cfg. With JSON messages it has ScanJSON, with
// str messages DecodeNamed, so that the pipeline's fast paths read the
// messages.
func New(cfg Config) (decoders.Decoder, error) {
	if cfg.Message != JSON && cfg.Message != Str {
		return nil, fmt.Errorf("cloudwatch_logs: %q is not a message format; use json or str", cfg.Message)
	}
	gz, err := decompress.New(raw{}, decompress.Config{Codec: decompress.Gzip, MaxBytes: cfg.MaxBytes})
	if err != nil {
		return nil, fmt.Errorf("cloudwatch_logs: %w", err)
	}
	d := &Decoder{message: cfg.Message, gunzip: gz.(*decompress.Decoder)}
	if cfg.Message == JSON {
		return &jsonMessages{d}, nil
	}
	return &strMessages{d}, nil
}

// raw is the decoder decompress wraps: only its Decompress is used.
type raw struct{}

func (raw) Decode(data []byte) (any, error) { return data, nil }

// Split appends to dst a record per log event of rec, a CloudWatch Logs
// record (gzip, or an envelope as plain JSON, which Letter makes). Each has
// rec's Origin with SubSequence rec's plus the event's index, Data the
// event's message (sharing the envelope's memory: read only) and Event set.
//
// skip is SkipControl for a control message, which adds nothing. An error
// wraps ErrEnvelope and adds nothing: rec is dead-lettered whole. So is a
// data message with no events (CloudWatch Logs sends none), which would
// otherwise vanish, and one of several events in a record that is itself a
// KPL sub-record (SubSequence > 0), whose events' places would run into the
// next sub-record's.
func (d *Decoder) Split(dst []record.Record, rec *record.Record) (out []record.Record, skip string, err error) {
	data := rec.Data
	switch plain := bytes.TrimLeft(data, " \t\r\n"); {
	case len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b:
		if data, err = d.gunzip.Decompress(data); err != nil {
			return dst, "", fmt.Errorf("%w: %w", ErrEnvelope, err)
		}
	case len(plain) > 0 && plain[0] == '{':
	default:
		return dst, "", fmt.Errorf("%w: neither gzip (a subscription's records start with 1f 8b) nor a JSON envelope; it starts with %s", ErrEnvelope, start(data))
	}
	env, err := parse(data)
	if err != nil {
		return dst, "", fmt.Errorf("%w: %w", ErrEnvelope, err)
	}
	if env.control {
		return dst, SkipControl, nil
	}
	n := len(env.events)
	switch {
	case n == 0:
		return dst, "", fmt.Errorf("%w: a %s with no log events", ErrEnvelope, DataMessage)
	case n > 1 && rec.Origin.SubSequence > 0:
		return dst, "", fmt.Errorf("%w: %d log events in KPL sub-record %d: their places (sub-sequence numbers) would overlap the next sub-record's; CloudWatch Logs does not aggregate, so put its records on the stream as they come", ErrEnvelope, n, rec.Origin.SubSequence)
	}
	for i := range env.events {
		e := &env.events[i]
		o := rec.Origin
		o.SubSequence += i
		dst = append(dst, record.Record{Origin: o, Data: e.message, Event: &e.LogEvent})
	}
	return dst, "", nil
}

// Letter is what the dead letter of an event Split made holds: an envelope
// of that event alone, plain JSON (readable where dead letters are read),
// which Split reads back as the same event.
func (d *Decoder) Letter(ev *record.Record) []byte {
	e := ev.Event
	if e == nil {
		return ev.Data
	}
	type logEvent struct {
		ID        string `json:"id"`
		Timestamp int64  `json:"timestamp"`
		Message   string `json:"message"`
	}
	filters := e.SubscriptionFilters
	if filters == nil {
		filters = []string{}
	}
	env := struct {
		MessageType         string     `json:"messageType"`
		Owner               string     `json:"owner"`
		LogGroup            string     `json:"logGroup"`
		LogStream           string     `json:"logStream"`
		SubscriptionFilters []string   `json:"subscriptionFilters"`
		LogEvents           []logEvent `json:"logEvents"`
	}{DataMessage, e.Owner, e.LogGroup, e.LogStream, filters, []logEvent{{e.ID, e.Timestamp, string(ev.Data)}}}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(env); err != nil { // strings and ints only: it cannot fail
		return ev.Data
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// Decode decodes one event's message (a record Split made) by the inner
// format: JSON as decoders/jsondec decodes it, or str as
// map[string]any{"message": text}.
func (d *Decoder) Decode(data []byte) (any, error) {
	if d.message == Str {
		return map[string]any{"message": text(data)}, nil
	}
	v, err := jsondec.New().Decode(data)
	if err != nil {
		return nil, fmt.Errorf("log event's message (format cloudwatch_logs, message json): %w", err)
	}
	return v, nil
}

// jsonMessages is a Decoder of JSON messages, which the pipeline scans in
// place.
type jsonMessages struct{ *Decoder }

// ScanJSON scans a JSON message (pipeline.JSONScanner).
func (*jsonMessages) ScanJSON(r *jsondec.Record, data []byte) bool { return r.Scan(data) }

// strMessages is a Decoder of str messages, whose one field the pipeline
// reads without a map.
type strMessages struct{ *Decoder }

// messageName is the payload's one member name (read only).
var messageName = []string{"message"}

// DecodeNamed gives a message's one member (pipeline.NamedDecoder).
func (*strMessages) DecodeNamed(data []byte, vals []any) (names []string, out []any, ok bool) {
	return messageName, append(vals, text(data)), true
}

// text is data as a string sharing its memory, as decoders may: a record's
// data never changes.
func text(data []byte) string { return unsafe.String(unsafe.SliceData(data), len(data)) }

// start shows the first bytes of a record that is no envelope.
func start(data []byte) string {
	if len(data) == 0 {
		return "nothing (an empty record)"
	}
	return fmt.Sprintf("% x", data[:min(len(data), 4)])
}

// envelope is what parse reads of one.
type envelope struct {
	control bool
	events  []event
}

type event struct {
	record.LogEvent
	message []byte
}

// parse reads a decompressed envelope. Members it does not know (AWS adds
// some: policyLevel, extractedFields) are ignored, as are a control
// message's others.
func parse(data []byte) (*envelope, error) {
	var r jsondec.Record
	if !r.Scan(data) {
		if _, err := jsondec.New().Decode(data); err != nil {
			return nil, err
		}
		return nil, errors.New("the envelope is no JSON object (or is nested too deep)")
	}
	mt, err := str(&r, "messageType")
	if err != nil {
		return nil, err
	}
	switch mt {
	case ControlMessage:
		return &envelope{control: true}, nil
	case DataMessage:
	default:
		return nil, fmt.Errorf("messageType %s is neither %s nor %s", snippet(mt), DataMessage, ControlMessage)
	}
	var head record.LogEvent
	if head.Owner, err = str(&r, "owner"); err != nil {
		return nil, err
	}
	if head.LogGroup, err = str(&r, "logGroup"); err != nil {
		return nil, err
	}
	if head.LogStream, err = str(&r, "logStream"); err != nil {
		return nil, err
	}
	if v, _ := r.Lookup("subscriptionFilters", 0); v != "" && v != "null" {
		ok := jsondec.Elements(v, func(el string) bool {
			if el[0] != '"' {
				return false
			}
			head.SubscriptionFilters = append(head.SubscriptionFilters, jsondec.Unquote(el))
			return true
		})
		if !ok {
			return nil, fmt.Errorf("subscriptionFilters is %s, not an array of strings", snippet(v))
		}
	}
	v, _ := r.Lookup("logEvents", 0)
	if v == "" {
		return nil, errors.New("a " + DataMessage + " without logEvents")
	}
	env := &envelope{}
	var evErr error
	ok := jsondec.Elements(v, func(el string) bool {
		i := len(env.events)
		e := event{LogEvent: head}
		var id, ts, msg string
		if !jsondec.Members(el, func(k, v string) bool {
			switch k {
			case "id":
				id = v
			case "timestamp":
				ts = v
			case "message":
				msg = v
			}
			return true
		}) {
			evErr = fmt.Errorf("logEvents[%d] is %s, not an object", i, snippet(el))
			return false
		}
		switch {
		case id == "" || id[0] != '"':
			evErr = fmt.Errorf("logEvents[%d].id is %s, not a string", i, missing(id))
		case msg == "" || msg[0] != '"':
			evErr = fmt.Errorf("logEvents[%d].message is %s, not a string", i, missing(msg))
		}
		if evErr != nil {
			return false
		}
		if e.Timestamp, evErr = strconv.ParseInt(ts, 10, 64); evErr != nil {
			evErr = fmt.Errorf("logEvents[%d].timestamp is %s, not an integer of milliseconds", i, missing(ts))
			return false
		}
		e.ID = jsondec.Unquote(id)
		m := jsondec.Unquote(msg)
		e.message = unsafe.Slice(unsafe.StringData(m), len(m))
		env.events = append(env.events, e)
		return true
	})
	switch {
	case evErr != nil:
		return nil, evErr
	case !ok:
		return nil, fmt.Errorf("logEvents is %s, not an array", snippet(v))
	}
	return env, nil
}

// str reads the envelope's string member key.
func str(r *jsondec.Record, key string) (string, error) {
	v, _ := r.Lookup(key, 0)
	if v == "" || v[0] != '"' {
		return "", fmt.Errorf("%s is %s, not a string", key, missing(v))
	}
	return jsondec.Unquote(v), nil
}

func missing(v string) string {
	if v == "" {
		return "missing"
	}
	return snippet(v)
}

// snippet is the start of a JSON value, for an error.
func snippet(v string) string {
	const most = 40
	if len(v) > most {
		return strconv.Quote(v[:most]) + "..."
	}
	return strconv.Quote(v)
}
