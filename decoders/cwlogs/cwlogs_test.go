package cwlogs_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/decoders"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/cwlogs"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/decompress"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// dataMessage is an envelope as CloudWatch Logs writes one (AWS's
// documented example), with a message of each kind.
const dataMessage = `{
  "messageType": "DATA_MESSAGE",
  "owner": "123456789012",
  "logGroup": "/aws/lambda/checkout",
  "logStream": "2024/05/01/[$LATEST]0a1b2c",
  "subscriptionFilters": ["errors", "all"],
  "policyLevel": "ACCOUNT_LEVEL_POLICY",
  "logEvents": [
    {"id": "31953106606966983378809025079804211143289615424298221568", "timestamp": 1714559400123, "message": "{\"level\":\"warn\",\"msg\":\"slow <db> & \u00e9\"}"},
    {"id": "31953106606966983378809025079804211143289615424298221569", "timestamp": 1714559400124, "message": "START RequestId: 8e1f Version: $LATEST\n", "extractedFields": {"a": "b"}},
    {"id": "31953106606966983378809025079804211143289615424298221570", "timestamp": 1714559400125, "message": ""}
  ]
}`

// controlMessage is what CloudWatch Logs puts when it checks the stream.
const controlMessage = `{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1432826855000,"message":"CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."}]}`

func gz(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type splitter interface {
	decoders.Decoder
	Split(dst []record.Record, rec *record.Record) ([]record.Record, string, error)
	Letter(rec *record.Record) []byte
}

func newDecoder(t testing.TB, m cwlogs.Message, max int64) splitter {
	t.Helper()
	d, err := cwlogs.New(cwlogs.Config{Message: m, MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	return d.(splitter)
}

var origin = record.Origin{Source: "logs", StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/logs", ShardID: "shardId-000000000001",
	SequenceNumber: "49650000000000000000000000000000000000000000000000000002", PartitionKey: "a1b2", ArrivalTime: time.Date(2024, 5, 1, 10, 30, 1, 0, time.UTC)}

func TestSplitDataMessage(t *testing.T) {
	d := newDecoder(t, cwlogs.JSON, 0)
	for _, c := range []struct {
		name string
		data []byte
	}{{"gzip", gz(t, dataMessage)}, {"plain JSON", []byte(dataMessage)}, {"two gzip members", append(gz(t, dataMessage[:100]), gz(t, dataMessage[100:])...)}} {
		t.Run(c.name, func(t *testing.T) {
			rec := record.Record{Origin: origin, Data: c.data}
			got, skip, err := d.Split([]record.Record{{Data: []byte("kept")}}, &rec)
			if err != nil || skip != "" {
				t.Fatalf("Split: %v, %q", err, skip)
			}
			if len(got) != 4 || string(got[0].Data) != "kept" {
				t.Fatalf("Split appended %d records to dst of 1: %v", len(got)-1, got)
			}
			head := record.LogEvent{Owner: "123456789012", LogGroup: "/aws/lambda/checkout", LogStream: "2024/05/01/[$LATEST]0a1b2c", SubscriptionFilters: []string{"errors", "all"}}
			want := []struct {
				id      string
				ts      int64
				message string
			}{
				{"31953106606966983378809025079804211143289615424298221568", 1714559400123, `{"level":"warn","msg":"slow <db> & é"}`},
				{"31953106606966983378809025079804211143289615424298221569", 1714559400124, "START RequestId: 8e1f Version: $LATEST\n"},
				{"31953106606966983378809025079804211143289615424298221570", 1714559400125, ""},
			}
			for i, w := range want {
				ev := got[i+1]
				o := origin
				o.SubSequence = i
				if ev.Origin != o {
					t.Errorf("event %d: origin %+v, want %+v (the record's, sub-sequence the index)", i, ev.Origin, o)
				}
				e := head
				e.ID, e.Timestamp = w.id, w.ts
				if ev.Event == nil || !reflect.DeepEqual(*ev.Event, e) {
					t.Errorf("event %d: %+v, want %+v", i, ev.Event, e)
				}
				if string(ev.Data) != w.message {
					t.Errorf("event %d: message %q, want %q", i, ev.Data, w.message)
				}
			}
		})
	}
}

func TestSplitControlMessage(t *testing.T) {
	d := newDecoder(t, cwlogs.Str, 0)
	rec := record.Record{Origin: origin, Data: gz(t, controlMessage)}
	got, skip, err := d.Split(nil, &rec)
	if err != nil || skip != cwlogs.SkipControl || len(got) != 0 {
		t.Fatalf("Split = %v, %q, %v; want no records, skipped as %q", got, skip, err, cwlogs.SkipControl)
	}
}

// TestSplitRefuses: every record that is no valid envelope is an error
// naming what is wrong, and adds nothing: the record is dead-lettered whole.
func TestSplitRefuses(t *testing.T) {
	const bound = 64 << 10
	d := newDecoder(t, cwlogs.JSON, bound)
	full := gz(t, dataMessage)
	env := func(events string) string {
		return `{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"logEvents":` + events + `}`
	}
	tests := []struct {
		name        string
		data        []byte
		sub         int
		errContains string
	}{
		{"empty record", nil, 0, "neither gzip (a subscription's records start with 1f 8b) nor a JSON envelope; it starts with nothing (an empty record)"},
		{"plain text", []byte("hello"), 0, "neither gzip (a subscription's records start with 1f 8b) nor a JSON envelope; it starts with 68 65 6c 6c"},
		{"truncated gzip", full[:len(full)/2], 0, "gzip payload is truncated"},
		{"gzip without its trailer", full[:len(full)-8], 0, "gzip payload is truncated"},
		{"corrupt gzip", append(append([]byte{}, full[:20]...), bytes.Repeat([]byte{0xff}, 40)...), 0, "gzip payload does not decompress"},
		{"bomb", gz(t, strings.Repeat(" ", 8<<20)+dataMessage), 0, "gzip payload decompresses to more than the bound of 65536 bytes (max_decompressed_bytes)"},
		{"gzip of not JSON", gz(t, "START RequestId: 1"), 0, "invalid JSON at byte 0"},
		{"gzip of bad JSON", gz(t, `{"messageType":"DATA_MESSAGE",`), 0, "invalid JSON at byte"},
		{"an array", gz(t, `[`+dataMessage+`]`), 0, "the envelope is no JSON object"},
		{"no messageType", gz(t, `{"owner":"1"}`), 0, "messageType is missing, not a string"},
		{"unknown messageType", gz(t, `{"messageType":"PING"}`), 0, `messageType "PING" is neither DATA_MESSAGE nor CONTROL_MESSAGE`},
		{"no owner", gz(t, `{"messageType":"DATA_MESSAGE","logGroup":"g","logStream":"s","logEvents":[]}`), 0, "owner is missing, not a string"},
		{"logGroup a number", gz(t, `{"messageType":"DATA_MESSAGE","owner":"1","logGroup":7,"logStream":"s","logEvents":[]}`), 0, `logGroup is "7", not a string`},
		{"filters not strings", gz(t, `{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":[1],"logEvents":[]}`), 0, "subscriptionFilters is \"[1]\", not an array of strings"},
		{"no logEvents", gz(t, `{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s"}`), 0, "a DATA_MESSAGE without logEvents"},
		{"logEvents an object", gz(t, env(`{}`)), 0, `logEvents is "{}", not an array`},
		{"no events", gz(t, env(`[]`)), 0, "a DATA_MESSAGE with no log events"},
		{"event not an object", gz(t, env(`[{"id":"1","timestamp":1,"message":"a"},"b"]`)), 0, `logEvents[1] is "\"b\"", not an object`},
		{"event id a number", gz(t, env(`[{"id":1,"timestamp":1,"message":"a"}]`)), 0, `logEvents[0].id is "1", not a string`},
		{"event without message", gz(t, env(`[{"id":"1","timestamp":1}]`)), 0, "logEvents[0].message is missing, not a string"},
		{"message an object", gz(t, env(`[{"id":"1","timestamp":1,"message":{"a":1}}]`)), 0, `logEvents[0].message is "{\"a\":1}", not a string`},
		{"timestamp a string", gz(t, env(`[{"id":"1","timestamp":"1714559400123","message":"a"}]`)), 0, `logEvents[0].timestamp is "\"1714559400123\"", not an integer of milliseconds`},
		{"timestamp fractional", gz(t, env(`[{"id":"1","timestamp":1.5e12,"message":"a"}]`)), 0, `logEvents[0].timestamp is "1.5e12", not an integer of milliseconds`},
		{"timestamp past int64", gz(t, env(`[{"id":"1","timestamp":99999999999999999999,"message":"a"}]`)), 0, "not an integer of milliseconds"},
		{"several events in a KPL sub-record", gz(t, dataMessage), 2, "3 log events in KPL sub-record 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := record.Record{Origin: origin, Data: tc.data}
			rec.Origin.SubSequence = tc.sub
			got, skip, err := d.Split(nil, &rec)
			if err == nil || !errors.Is(err, cwlogs.ErrEnvelope) || !strings.Contains(err.Error(), tc.errContains) {
				t.Fatalf("Split: %v; want ErrEnvelope containing %q", err, tc.errContains)
			}
			if len(got) != 0 || skip != "" {
				t.Errorf("Split added %v, skip %q, with its error", got, skip)
			}
		})
	}
	var tl *decompress.TooLargeError
	rec := record.Record{Origin: origin, Data: tests[5].data}
	if _, _, err := d.Split(nil, &rec); !errors.As(err, &tl) || tl.Bound != bound {
		t.Errorf("bomb: %v, want a decompress.TooLargeError at the bound", err)
	}
}

// TestLetterRoundTrip: an event's dead letter is an envelope of it alone,
// which Split reads back as the same event in the same place.
func TestLetterRoundTrip(t *testing.T) {
	d := newDecoder(t, cwlogs.JSON, 0)
	rec := record.Record{Origin: origin, Data: gz(t, dataMessage)}
	events, _, err := d.Split(nil, &rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		letter := d.Letter(&ev)
		if !bytes.Contains(letter, []byte(`"logGroup":"/aws/lambda/checkout"`)) {
			t.Errorf("letter %s does not read as JSON text", letter)
		}
		again, skip, err := d.Split(nil, &record.Record{Origin: ev.Origin, Data: letter})
		if err != nil || skip != "" || len(again) != 1 {
			t.Fatalf("Split(letter %s) = %v, %q, %v", letter, again, skip, err)
		}
		if !reflect.DeepEqual(again[0], ev) {
			t.Errorf("letter %s splits to %+v (%+v), want %+v (%+v)", letter, again[0], again[0].Event, ev, ev.Event)
		}
	}
}

func TestDecodeMessages(t *testing.T) {
	js := newDecoder(t, cwlogs.JSON, 0)
	v, err := js.Decode([]byte(`{"level":"warn","n":12}`))
	if err != nil || !reflect.DeepEqual(v, map[string]any{"level": "warn", "n": jsonNumber("12")}) {
		t.Errorf("json: %#v, %v", v, err)
	}
	if _, err := js.Decode([]byte("START RequestId: 1")); err == nil || !strings.HasPrefix(err.Error(), "log event's message (format cloudwatch_logs, message json): invalid JSON at byte 0") {
		t.Errorf("json of text: %v", err)
	}
	var r jsondec.Record
	if !js.(interface {
		ScanJSON(*jsondec.Record, []byte) bool
	}).ScanJSON(&r, []byte(`{"level":"warn"}`)) {
		t.Error("ScanJSON of a JSON message declined")
	}

	st := newDecoder(t, cwlogs.Str, 0)
	v, err = st.Decode([]byte("START RequestId: 1"))
	if err != nil || !reflect.DeepEqual(v, map[string]any{"message": "START RequestId: 1"}) {
		t.Errorf("str: %#v, %v", v, err)
	}
	names, vals, ok := st.(interface {
		DecodeNamed([]byte, []any) ([]string, []any, bool)
	}).DecodeNamed([]byte(`{"a":1}`), nil)
	if !ok || !reflect.DeepEqual(names, []string{"message"}) || !reflect.DeepEqual(vals, []any{`{"a":1}`}) {
		t.Errorf("DecodeNamed: %v, %v, %v", names, vals, ok)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, c := range []cwlogs.Config{{}, {Message: "xml"}, {Message: cwlogs.JSON, MaxBytes: -1}} {
		if _, err := cwlogs.New(c); err == nil {
			t.Errorf("New(%+v) took it", c)
		}
	}
}

func jsonNumber(s string) any { return json.Number(s) }
