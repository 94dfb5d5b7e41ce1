package schema

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

var metaRecord = &record.Record{
	Data: []byte(`{"id":7,"$odd":"payload","$partition_key":"not this"}`),
	Origin: record.Origin{
		Source: "orders-src", StreamARN: "arn:aws:kinesis:eu-west-1:123456789012:stream/orders",
		ShardID: "shardId-000000000002", SequenceNumber: "49590338271490256608559692538361571095921575989136588898",
		PartitionKey: "customer-42", ArrivalTime: time.Date(2024, 5, 1, 12, 30, 0, 123456789, time.FixedZone("CEST", 7200)),
	},
}

// TestMetadataRefs reads each kind of metadata through a field's ref, on
// every path that converts a record (ConvertFrom, AppendJSON, AppendNamed,
// ConvertKeysFrom for a delete), and checks that a payload key starting with
// $ stays reachable quoted.
func TestMetadataRefs(t *testing.T) {
	tests := []struct {
		name string
		spec FieldSpec
		want any
	}{
		{"partition key", FieldSpec{Type: "str", Ref: "$partition_key"}, "customer-42"},
		{"shard id", FieldSpec{Type: "str", Ref: "$shard_id"}, "shardId-000000000002"},
		{"sequence number", FieldSpec{Type: "str", Ref: "$sequence_number"}, "49590338271490256608559692538361571095921575989136588898"},
		{"arrival time, UTC to the µs", FieldSpec{Type: "datetime", Ref: "$arrival_time"}, time.Date(2024, 5, 1, 10, 30, 0, 123456000, time.UTC)},
		{"stream name from the ARN", FieldSpec{Type: "str", Ref: "$stream"}, "orders"},
		{"source", FieldSpec{Type: "str", Ref: "$source"}, "orders-src"},
		{"data as bytes", FieldSpec{Type: "bytes", Ref: "$data"}, metaRecord.Data},
		{"data as str", FieldSpec{Type: "str", Ref: "$data"}, string(metaRecord.Data)},
		{"restricted", FieldSpec{Type: "str", Ref: "$partition_key", Regex: `customer-[0-9]+`}, "customer-42"},
		{"as a key", FieldSpec{Type: "str", Ref: "$sequence_number", Key: true}, "49590338271490256608559692538361571095921575989136588898"},
		{"a quoted $ key is the payload's", FieldSpec{Type: "str", Ref: `["$odd"]`}, "payload"},
		{"a $ name that is not metadata is the payload's", FieldSpec{Type: "str", Ref: `$odd`}, "payload"},
		{"a quoted metadata name is the payload's", FieldSpec{Type: "str", Ref: `["$partition_key"]`}, "not this"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Name = "m"
			s, err := Compile("ts", []FieldSpec{{Name: "id", Type: "int", Key: true}, {Name: "ts", Type: "datetime", Ref: "$arrival_time"}, tc.spec})
			if err != nil {
				t.Fatal(err)
			}
			rec, err := jsondec.New().Decode(metaRecord.Data)
			if err != nil {
				t.Fatal(err)
			}
			want := []record.Field{{Name: "id", Value: int64(7)}, {Name: "ts", Value: time.Date(2024, 5, 1, 10, 30, 0, 123456000, time.UTC)}, {Name: "m", Value: tc.want}}
			got, err := s.ConvertFrom(rec, metaRecord)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("ConvertFrom = %#v, %v; want %#v", got, err, want)
			}
			var r JSONRecord
			if !r.Scan(metaRecord.Data) {
				t.Fatal("Scan failed")
			}
			r.From = metaRecord
			if fast, ok := s.AppendJSON(nil, &r); !ok || !reflect.DeepEqual(fast, want) {
				t.Errorf("AppendJSON = %#v, %v", fast, ok)
			}
			obj := rec.(map[string]any)
			var names []string
			var vals []any
			for k, v := range obj {
				names, vals = append(names, k), append(vals, v)
			}
			if named, ok := s.AppendNamed(nil, names, vals, metaRecord); !ok || !reflect.DeepEqual(named, want) {
				t.Errorf("AppendNamed = %#v, %v", named, ok)
			}
			keys, err := s.ConvertKeysFrom(map[string]any{"id": int64(7)}, metaRecord)
			if err != nil || keys[1].Value != want[1].Value || keys[0].Value != int64(7) {
				t.Errorf("ConvertKeysFrom = %#v, %v: want the key and the arrival time as timestamp", keys, err)
			}
			if tc.spec.Key && (keys[2].Value != tc.want) {
				t.Errorf("ConvertKeysFrom: key %v, want %v", keys[2].Value, tc.want)
			}
		})
	}
}

// TestMetadataWithoutRecord: a value converted without its stream record
// has no metadata; the fast path declines and Convert names the field.
func TestMetadataWithoutRecord(t *testing.T) {
	s, err := Compile("ts", []FieldSpec{{Name: "ts", Type: "datetime", Ref: "$arrival_time"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Convert(map[string]any{}); err == nil || !strings.HasPrefix(err.Error(), "ts: no stream record to read $arrival_time from") {
		t.Errorf("Convert: %v", err)
	}
	if fields, ok := s.ConvertJSON([]byte(`{}`)); ok {
		t.Errorf("ConvertJSON gave %v", fields)
	}
}

func TestMetadataStrDataMustBeUTF8(t *testing.T) {
	s, err := Compile("ts", []FieldSpec{{Name: "ts", Type: "datetime", Ref: "$arrival_time"}, {Name: "text", Type: "str", Ref: "$data"}})
	if err != nil {
		t.Fatal(err)
	}
	bad := &record.Record{Data: []byte{0xff, 0xfe}, Origin: metaRecord.Origin}
	if _, err := s.ConvertFrom(map[string]any{}, bad); err == nil || !strings.HasPrefix(err.Error(), "text: ") {
		t.Errorf("ConvertFrom of a non-UTF-8 payload as str: %v, want an error naming text", err)
	}
	b, err := Compile("ts", []FieldSpec{{Name: "ts", Type: "datetime", Ref: "$arrival_time"}, {Name: "raw", Type: "bytes", Ref: "$data"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.ConvertFrom(map[string]any{}, bad)
	if err != nil || !reflect.DeepEqual(got[1].Value, []byte{0xff, 0xfe}) {
		t.Errorf("ConvertFrom as bytes: %v, %v", got, err)
	}
}

func TestMetadataCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		fields []FieldSpec
		want   string
	}{
		{"arrival time as str", []FieldSpec{{Name: "arrived", Type: "str", Ref: "$arrival_time"}},
			`fields[1].type: field "arrived" reads $arrival_time, which is datetime, not str; declare type: datetime`},
		{"optional arrival time", []FieldSpec{{Name: "arrived", Type: "optional[datetime]", Ref: "$arrival_time"}},
			`fields[1].type: field "arrived" reads $arrival_time, which is datetime, not optional[datetime]; declare type: datetime`},
		{"partition key as int", []FieldSpec{{Name: "pk", Type: "int", Ref: "$partition_key"}},
			`fields[1].type: field "pk" reads $partition_key, which is str, not int; declare type: str`},
		{"sequence number as decimal", []FieldSpec{{Name: "seq", Type: "decimal[2]", Ref: "$sequence_number"}},
			`fields[1].type: field "seq" reads $sequence_number, which is str, not decimal[2]; declare type: str`},
		{"data as list", []FieldSpec{{Name: "raw", Type: "list[int]", Ref: "$data"}},
			`fields[1].type: field "raw" reads $data, which is bytes or str, not list[int]; declare type: bytes or type: str`},
		{"metadata in a struct", []FieldSpec{{Name: "s", Type: "struct", Fields: []FieldSpec{{Name: "pk", Type: "str", Ref: "$partition_key"}}}},
			`fields[1].fields[0].ref: $partition_key is the stream record's metadata, which only a dataset's own fields and inputs may read, not a struct's; a payload key that starts with $ is written ["$partition_key"]`},
		{"metadata and const", []FieldSpec{{Name: "pk", Type: "str", Ref: "$partition_key", Const: "x"}},
			`fields[1].const: a field has either ref or const, not both`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile("ts", append([]FieldSpec{{Name: "ts", Type: "datetime"}}, tc.fields...))
			if err == nil || err.Error() != tc.want {
				t.Errorf("Compile: %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestMetadataNamesAreTheRefsThatReadMetadata(t *testing.T) {
	names := MetadataNames()
	var stream []Metadata
	for _, m := range names {
		if !m.LogEvent {
			stream = append(stream, m)
		}
	}
	if len(stream) != 7 || len(names) != 12 {
		t.Fatalf("%d names, %d of every record: %v", len(names), len(stream), names)
	}
	for _, m := range names {
		if !IsMetadataRef(m.Name) || IsMetadataRef(`["`+m.Name+`"]`) || len(m.Types) == 0 || m.Doc == "" {
			t.Errorf("%+v", m)
		}
	}
	if IsMetadataRef("$ts_ms") || IsMetadataRef("partition_key") || IsMetadataRef("$source.lsn") {
		t.Error("IsMetadataRef took a payload ref")
	}
}
