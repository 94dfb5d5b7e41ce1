package cwlogs_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/cwlogs"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// fuzzBound is small, so that the fuzzer reaches it often.
const fuzzBound = 4096

// FuzzSplit: any bytes, as a record, either split into events that match
// what jsondec's value tree of the same envelope holds (so the in-place
// reader takes nothing the full decoder reads otherwise), are skipped as a
// control message, or fail with ErrEnvelope; never a panic. Every event's
// dead letter splits back to the same event.
func FuzzSplit(f *testing.F) {
	f.Add([]byte(dataMessage), 0)
	f.Add(gz(f, dataMessage), 0)
	f.Add(gz(f, controlMessage), 0)
	f.Add([]byte(controlMessage), 1)
	f.Add(gz(f, dataMessage)[:40], 0)
	f.Add([]byte(`{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","logEvents":[{"id":"1","timestamp":-5,"message":"\ud800"}]}`), 3)
	f.Add([]byte(`{"messageType":"DATA_MESSAGE","owner":"1","owner":2,"logGroup":"g","logStream":"s","logEvents":[{"id":"1","timestamp":1,"message":"a","message":"b"}]}`), 0)
	d := newDecoder(f, cwlogs.JSON, fuzzBound)
	f.Fuzz(func(t *testing.T, data []byte, sub int) {
		sub = max(sub, 0) % 1000
		rec := record.Record{Origin: origin, Data: data}
		rec.Origin.SubSequence = sub
		events, skip, err := d.Split(nil, &rec)
		if err != nil {
			if !errors.Is(err, cwlogs.ErrEnvelope) || len(events) != 0 || skip != "" {
				t.Fatalf("Split(%q) = %v, %q, %v: an error must be ErrEnvelope and add nothing", data, events, skip, err)
			}
			return
		}
		plain := data
		if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
			plain = gunzip(t, data)
		}
		v, derr := jsondec.New().Decode(plain)
		if derr != nil {
			t.Fatalf("Split took %q, which jsondec refuses: %v", plain, derr)
		}
		env := v.(map[string]any)
		if skip != "" {
			if skip != cwlogs.SkipControl || env["messageType"] != cwlogs.ControlMessage || len(events) != 0 {
				t.Fatalf("Split(%q) skipped as %q with %v", plain, skip, events)
			}
			return
		}
		list := env["logEvents"].([]any)
		if len(events) != len(list) || len(events) == 0 || (sub > 0 && len(events) > 1) {
			t.Fatalf("Split(%q): %d events of %d", plain, len(events), len(list))
		}
		for i, ev := range events {
			want := list[i].(map[string]any)
			ts, err := strconv.ParseInt(string(want["timestamp"].(json.Number)), 10, 64)
			if err != nil || ev.Event.Timestamp != ts || ev.Event.ID != want["id"] || string(ev.Data) != want["message"] ||
				ev.Event.LogGroup != env["logGroup"] || ev.Event.Owner != env["owner"] || ev.Event.LogStream != env["logStream"] {
				t.Fatalf("event %d of %q: %+v %q, want %v", i, plain, ev.Event, ev.Data, want)
			}
			if ev.Origin.SubSequence != sub+i || !utf8.Valid(ev.Data) {
				t.Fatalf("event %d of %q: sub-sequence %d, data %q", i, plain, ev.Origin.SubSequence, ev.Data)
			}
			again, skip, err := d.Split(nil, &record.Record{Origin: ev.Origin, Data: d.Letter(&ev)})
			if err != nil || skip != "" || len(again) != 1 || !reflect.DeepEqual(again[0].Event, ev.Event) ||
				string(again[0].Data) != string(ev.Data) || again[0].Origin != ev.Origin {
				t.Fatalf("event %d of %q: its letter %s splits to %v, %q, %v", i, plain, d.Letter(&ev), again, skip, err)
			}
		}
	})
}

func gunzip(t *testing.T, data []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Split took %q, which compress/gzip refuses: %v", data, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("Split took %q, which compress/gzip refuses: %v", data, err)
	}
	return out
}
