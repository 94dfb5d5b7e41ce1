package schema

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// TestLogEventRefs reads each name of a CloudWatch Logs event through a
// field, on the general, JSON and named paths; a record that is no log
// event has none of them, and every path says so or declines.
func TestLogEventRefs(t *testing.T) {
	ev := &record.Record{Origin: metaRecord.Origin, Data: []byte(`{"level":"warn"}`), Event: &record.LogEvent{
		Owner: "123456789012", LogGroup: "/aws/lambda/checkout", LogStream: "2024/05/01/[$LATEST]abc",
		SubscriptionFilters: []string{"all"}, ID: "36972373525384739576354372573895374939439458493473740800", Timestamp: 1714559400123,
	}}
	tests := []struct {
		name string
		spec FieldSpec
		want any
	}{
		{"log group", FieldSpec{Type: "str", Ref: "$log_group"}, "/aws/lambda/checkout"},
		{"log stream", FieldSpec{Type: "str", Ref: "$log_stream"}, "2024/05/01/[$LATEST]abc"},
		{"owner", FieldSpec{Type: "str", Ref: "$owner"}, "123456789012"},
		{"event id", FieldSpec{Type: "str", Ref: "$event_id", Key: true}, "36972373525384739576354372573895374939439458493473740800"},
		{"event timestamp, UTC", FieldSpec{Type: "datetime", Ref: "$event_timestamp"}, time.Date(2024, 5, 1, 10, 30, 0, 123000000, time.UTC)},
		{"message as str", FieldSpec{Type: "str", Ref: "$data"}, `{"level":"warn"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Name = "m"
			s, err := Compile("ts", []FieldSpec{{Name: "level", Type: "str"}, {Name: "ts", Type: "datetime", Ref: "$event_timestamp"}, tc.spec})
			if err != nil {
				t.Fatal(err)
			}
			want := []record.Field{{Name: "level", Value: "warn"}, {Name: "ts", Value: time.Date(2024, 5, 1, 10, 30, 0, 123000000, time.UTC)}, {Name: "m", Value: tc.want}}
			got, err := s.ConvertFrom(map[string]any{"level": "warn"}, ev)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("ConvertFrom = %#v, %v; want %#v", got, err, want)
			}
			var r JSONRecord
			if !r.Scan(ev.Data) {
				t.Fatal("Scan failed")
			}
			r.From = ev
			if fast, ok := s.AppendJSON(nil, &r); !ok || !reflect.DeepEqual(fast, want) {
				t.Errorf("AppendJSON = %#v, %v", fast, ok)
			}
			if named, ok := s.AppendNamed(nil, []string{"level"}, []any{"warn"}, ev); !ok || !reflect.DeepEqual(named, want) {
				t.Errorf("AppendNamed = %#v, %v", named, ok)
			}

			plain := &record.Record{Origin: ev.Origin, Data: ev.Data}
			if _, err := s.ConvertFrom(map[string]any{"level": "warn"}, plain); err == nil || !strings.Contains(err.Error(), "is no CloudWatch Logs event") {
				t.Errorf("ConvertFrom of a record that is no log event: %v", err)
			}
			r.From = plain
			if fast, ok := s.AppendJSON(nil, &r); ok {
				t.Errorf("AppendJSON of a record that is no log event = %#v", fast)
			}
		})
	}
}

func TestLogEventCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		spec FieldSpec
		want string
	}{
		{FieldSpec{Name: "at", Type: "int", Ref: "$event_timestamp"}, `fields[1].type: field "at" reads $event_timestamp, which is datetime, not int; declare type: datetime`},
		{FieldSpec{Name: "group", Type: "bytes", Ref: "$log_group"}, `fields[1].type: field "group" reads $log_group, which is str, not bytes; declare type: str`},
	} {
		_, err := Compile("ts", []FieldSpec{{Name: "ts", Type: "datetime"}, tc.spec})
		if err == nil || err.Error() != tc.want {
			t.Errorf("Compile: %v\nwant %s", err, tc.want)
		}
	}
}
