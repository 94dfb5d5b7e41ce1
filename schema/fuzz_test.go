package schema

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// fuzzSpecs covers every type and restriction.
var fuzzSpecs = []FieldSpec{
	{Name: "ts", Type: "datetime"},
	{Name: "id", Type: "optional[int]", Between: &Between{Min: -1000, Max: 1 << 62}},
	{Name: "amount", Type: "optional[float]", Between: &Between{Min: 0, StrictMin: true}},
	{Name: "ok", Type: "optional[bool]"},
	{Name: "note", Type: "optional[str]", Regex: `[a-z ]*`},
	{Name: "kind", Type: "optional[str]", Oneof: []any{"a", "b", nil}},
	{Name: "level", Type: "optional[int]", Oneof: []any{1, 2, 3}},
	{Name: "blob", Type: "optional[bytes]"},
	{Name: "day", Type: "optional[date]"},
	{Name: "price", Type: "optional[decimal[2]]"},
	{Name: "tags", Type: "optional[list[str]]"},
	{Name: "attrs", Type: "optional[map[float]]"},
	{Name: "vec", Type: "optional[embedding[3]]"},
	{Name: "when", Type: "optional[list[datetime]]"},
	{Name: "city", Type: "optional[str]", Ref: "user.address[0].city"},
	{Name: "items", Type: "optional[list[struct]]", Fields: []FieldSpec{
		{Name: "sku", Type: "str"},
		{Name: "qty", Type: "int", Between: &Between{Min: 1, Max: 100}},
		{Name: "price", Type: "decimal[3]"},
		{Name: "meta", Type: "optional[map[list[optional[int]]]]"},
	}},
	{Name: "src", Type: "str", Const: "kinesis"},
}

func FuzzConvert(f *testing.F) {
	s, err := Compile("ts", fuzzSpecs)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		`{"ts":1682099757}`,
		`{"ts":"2024-01-01T00:00:00.123456789+05:30","id":42,"amount":12.5,"ok":true,"note":"hi there","kind":"a","level":2,"blob":"aGk=","day":"2024-02-29","price":"12.5","tags":["x"],"attrs":{"a":1},"vec":[1,2,3],"when":[0,"Sun, 23 Jan 2000 01:23:45 JST"],"user":{"address":[{"city":"X"}]},"items":[{"sku":"s","qty":1,"price":1.125,"meta":{"k":[1,null]}}]}`,
		`{"ts":"Sun, 23 Jan 2000 01:23:45 +0900","id":2.0,"price":1e-3}`,
		`{"ts":-9223372036854775808,"id":9223372036854775808}`,
		`{"ts":1e999999999,"price":1e999999999}`,
		`[1,2,3]`,
		`null`,
		`{"ts":0,"note":"a\u0062","note":"x","tags":["\ud800\udc00","\ud800"],"attrs":{"a":1,"a":"x"}}`,
		`{"ts":0,"user":{"address":[{"city":null}]},"vec":[1,2,3,4],"kind":"c"}`,
		`{"ts":0,"ignored":[{"a":[1,-2.5e-3,true,false,null,"\""]}]}`,
	} {
		f.Add([]byte(seed))
	}
	var flatSpecs []FieldSpec
	for _, sp := range fuzzSpecs {
		if !strings.ContainsAny(sp.Ref, ".[") {
			flatSpecs = append(flatSpecs, sp)
		}
	}
	flat, err := Compile("ts", flatSpecs)
	if err != nil {
		f.Fatal(err)
	}
	dec := jsondec.New()
	f.Fuzz(func(t *testing.T, data []byte) {
		// ConvertJSON must agree with the general path: the same row where it
		// gives one, a decline where it gives a decode or schema error (the
		// general path then names it). It may also decline records nested
		// deeper than it scans.
		fast, fastOK := s.ConvertJSON(data)
		// The batch way (a JSONRecord reused after another record, appending
		// to a slice that holds another row) agrees with it.
		var r JSONRecord
		prev, _ := s.AppendJSON(nil, &r) // declines: nothing scanned yet
		if r.Scan([]byte(`{"ts":1,"ts":2,"a":{"b":[1]}}`)) {
			prev, _ = s.AppendJSON(nil, &r)
		}
		scanned := r.Scan(data)
		batch, batchOK := s.AppendJSON(prev, &r)
		if batchOK != fastOK || !scanned && batchOK ||
			batchOK && (!reflect.DeepEqual(batch[len(prev):], fast) || !reflect.DeepEqual(batch[:len(prev)], prev)) {
			t.Fatalf("Scan %v, AppendJSON gave %v (ok %v), ConvertJSON %v (ok %v)", scanned, batch, batchOK, fast, fastOK)
		}
		// Scanned again, the record's keys are the guesses of Scan's key
		// shortcut for themselves: still the same row.
		if r.Scan(data) != scanned {
			t.Fatalf("a second Scan of the same record gave %v", !scanned)
		}
		if again, againOK := s.AppendJSON(nil, &r); againOK != fastOK || againOK && !reflect.DeepEqual(again, fast) {
			t.Fatalf("scanned again, AppendJSON gave %v (ok %v), ConvertJSON %v (ok %v)", again, againOK, fast, fastOK)
		}
		rec, err := dec.Decode(data)
		if err != nil {
			var de *jsondec.Error
			if rec != nil || !errors.As(err, &de) {
				t.Fatalf("Decode: %v, %v", rec, err)
			}
			if fastOK {
				t.Fatalf("ConvertJSON gave a row %v for invalid JSON (%v)", fast, err)
			}
			return
		}
		fields, err := s.Convert(rec)
		if (fields == nil) == (err == nil) {
			t.Fatalf("Convert returned fields %v and error %v", fields, err)
		}
		// AppendNamed, given the decoded object's members, agrees with
		// Convert too (fuzzSpecs has ref paths, which it leaves to Convert:
		// flatSpecs are its own).
		checkNamed(t, s, rec, nil, fields, err)
		checkNamed(t, flat, rec, nil, nil, nil)
		switch {
		case err != nil && fastOK:
			t.Fatalf("ConvertJSON gave a row %v where Convert says %v", fast, err)
		case err == nil && !fastOK && depth(string(data)) < maxScanDepth:
			t.Fatalf("ConvertJSON declined where Convert gives %v", fields)
		case err == nil && fastOK && !reflect.DeepEqual(fast, fields):
			t.Fatalf("ConvertJSON gave\n%#v\nConvert\n%#v", fast, fields)
		}
		if err != nil {
			if _, ok := err.(*FieldError); !ok {
				t.Fatalf("error %T %v is not a *FieldError", err, err)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("error message is not UTF-8: %q", err)
			}
			return
		}
		if len(fields) != len(fuzzSpecs) {
			t.Fatalf("%d fields, want %d", len(fields), len(fuzzSpecs))
		}
		for _, fl := range fields {
			checkValue(t, fl.Name, fl.Value)
		}
	})
}

// checkNamed holds s.AppendNamed, given rec's members (decoded from the
// stream record from), to ConvertFrom's answer (computed here when want and
// wantErr are both nil): the same fields after the row already in dst, or a
// decline where ConvertFrom fails.
func checkNamed(t *testing.T, s *Schema, rec any, from *record.Record, want []record.Field, wantErr error) {
	t.Helper()
	obj, ok := rec.(map[string]any)
	if !ok {
		return
	}
	if want == nil && wantErr == nil {
		want, wantErr = s.ConvertFrom(rec, from)
	}
	var names []string
	var vals []any
	for k, v := range obj {
		names, vals = append(names, k), append(vals, v)
	}
	prev := []record.Field{{Name: "prev", Value: int64(1)}}
	got, ok := s.AppendNamed(prev, names, vals, from)
	hasPath := false
	for i := range s.fields {
		hasPath = hasPath || s.fields[i].path != nil
	}
	switch {
	case ok && wantErr != nil:
		t.Fatalf("AppendNamed gave %v where Convert says %v", got, wantErr)
	case !ok && wantErr == nil && !hasPath:
		t.Fatalf("AppendNamed declined where Convert gives %v", want)
	case ok && (!reflect.DeepEqual(got[1:], want) || got[0] != prev[0]):
		t.Fatalf("AppendNamed gave\n%#v\nConvert\n%#v", got, want)
	}
}

// checkValue asserts v is one of the Go types documented on record.Field.
func checkValue(t *testing.T, path string, v any) {
	switch x := v.(type) {
	case nil, bool, int64, string, []byte, record.Date, record.Decimal:
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			t.Fatalf("%s: non-finite float", path)
		}
	case time.Time:
		if x.Location() != time.UTC || x.Nanosecond()%1000 != 0 || x.Year() < 1 || x.Year() > 9999 {
			t.Fatalf("%s: bad time %v", path, x)
		}
	case []float64:
	case []any:
		for _, e := range x {
			checkValue(t, path+"[]", e)
		}
	case map[string]any:
		for k, e := range x {
			checkValue(t, path+"."+k, e)
		}
	case []record.Field:
		for _, e := range x {
			checkValue(t, path+"."+e.Name, e.Value)
		}
	case json.Number:
		t.Fatalf("%s: json.Number leaked", path)
	default:
		t.Fatalf("%s: unexpected Go type %T", path, v)
	}
}

// FuzzDatetime feeds strings straight to the datetime parsers.
func FuzzDatetime(f *testing.F) {
	for _, s := range []string{"2002-10-02T10:00:00-05:00", "Sun, 23 Jan 2000 01:23:45 JST", "1682099757", "-1.5e3", "2024-02-29", "0001-01-01T00:00:00+01:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, v := range []any{s, json.Number(s)} {
			tm, fe := toDatetime(v)
			if fe == nil {
				checkValue(t, "v", tm)
			}
		}
		if n, ok := parseDec(s); ok {
			_, _ = decToInt64(&n)
			_, _ = formatDecimal(&n, 28)
		}
	})
}

// fuzzMetaSpecs reads every kind of record metadata, beside payload members
// (one of them a literal key starting with $).
var fuzzMetaSpecs = []FieldSpec{
	{Name: "arrived", Type: "datetime", Ref: "$arrival_time"},
	{Name: "pk", Type: "str", Ref: "$partition_key", Regex: `[^x]*`},
	{Name: "shard", Type: "str", Ref: "$shard_id"},
	{Name: "seq", Type: "str", Ref: "$sequence_number"},
	{Name: "stream", Type: "str", Ref: "$stream"},
	{Name: "source", Type: "str", Ref: "$source"},
	{Name: "raw", Type: "bytes", Ref: "$data"},
	{Name: "text", Type: "str", Ref: "$data"},
	{Name: "id", Type: "optional[int]"},
	{Name: "odd", Type: "optional[str]", Ref: `["$odd"]`},
	{Name: "city", Type: "optional[str]", Ref: "user.address[0].city"},
}

// FuzzConvertMeta holds the fast paths to ConvertFrom for a dataset whose
// fields read the stream record's metadata: AppendJSON with the record in
// JSONRecord.From, and AppendNamed given it, give ConvertFrom's row or
// decline where it fails; without the record, ConvertJSON declines.
func FuzzConvertMeta(f *testing.F) {
	s, err := Compile("arrived", fuzzMetaSpecs)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct {
		data, pk string
		ms       int64
	}{
		{`{"id":1,"$odd":"o"}`, "user-1", 1700000000123},
		{`{"id":1.5}`, "x", 0},
		{`{"user":{"address":[{"city":"X"}]}}`, "", -62135596800000},
		{"\xff", "k", 1},
		{`{}`, "\xff", 253402300799999},
		{`[1]`, "k", 253402300800000},
	} {
		f.Add([]byte(seed.data), seed.pk, seed.ms)
	}
	dec := jsondec.New()
	f.Fuzz(func(t *testing.T, data []byte, pk string, ms int64) {
		from := &record.Record{Data: data, Origin: record.Origin{
			Source: "clicks", StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/clicks-stream",
			ShardID: "shardId-000000000003", SequenceNumber: "49590338271490256608559692538361571095921575989136588850",
			PartitionKey: pk, ArrivalTime: time.UnixMilli(ms),
		}}
		if fields, ok := s.ConvertJSON(data); ok {
			t.Fatalf("ConvertJSON, without the stream record, gave %v", fields)
		}
		var r JSONRecord
		scanned := r.Scan(data)
		r.From = from
		fast, fastOK := s.AppendJSON(nil, &r)
		if !scanned && fastOK {
			t.Fatalf("AppendJSON gave %v for a record that did not scan", fast)
		}
		rec, err := dec.Decode(data)
		if err != nil {
			if fastOK {
				t.Fatalf("AppendJSON gave a row %v for invalid JSON (%v)", fast, err)
			}
			return
		}
		fields, err := s.ConvertFrom(rec, from)
		checkNamed(t, s, rec, from, fields, err)
		switch {
		case err != nil && fastOK:
			t.Fatalf("AppendJSON gave a row %v where ConvertFrom says %v", fast, err)
		case err == nil && !fastOK && depth(string(data)) < maxScanDepth:
			t.Fatalf("AppendJSON declined where ConvertFrom gives %v", fields)
		case err == nil && fastOK && !reflect.DeepEqual(fast, fields):
			t.Fatalf("AppendJSON gave\n%#v\nConvertFrom\n%#v", fast, fields)
		}
		if err != nil {
			return
		}
		for _, fl := range fields {
			checkValue(t, fl.Name, fl.Value)
		}
		if got := fields[2].Value; got != from.Origin.ShardID {
			t.Fatalf("$shard_id gave %v", got)
		}
		if got := fields[4].Value; got != "clicks-stream" {
			t.Fatalf("$stream gave %v, want the stream's name", got)
		}
		if got := fields[0].Value.(time.Time); !got.Equal(from.Origin.ArrivalTime) {
			t.Fatalf("$arrival_time gave %v, want %v", got, from.Origin.ArrivalTime)
		}
	})
}
