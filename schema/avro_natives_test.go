package schema

import (
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// TestAvroNatives converts the values decoders/avrodec returns for Avro
// types into each Fennel type that takes them.
func TestAvroNatives(t *testing.T) {
	ts := time.Date(2024, 5, 1, 12, 34, 56, 789123456, time.UTC)
	tests := []struct {
		typ         string
		in          any
		want        any
		errContains string
	}{
		{"int", int32(-42), int64(-42), ""},
		{"int", int64(1234567890123456789), int64(1234567890123456789), ""},
		{"int", float32(3), int64(3), ""},
		{"float", int32(7), 7.0, ""},
		{"float", float32(0.5), 0.5, ""},
		{"bytes", []byte{0, 0xff}, []byte{0, 0xff}, ""},
		{"datetime", ts, ts.Truncate(time.Microsecond), ""},
		{"date", time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), record.Date{Year: 1969, Month: 12, Day: 31}, ""},
		{"date", int32(19844), record.Date{Year: 2024, Month: 5, Day: 1}, ""},
		{"date", ts, nil, "not midnight UTC"},
		{"decimal[2]", new(big.Rat).SetFrac64(4332, 100), record.Decimal("43.32"), ""},
		{"decimal[4]", new(big.Rat).SetFrac64(-987654321, 10000), record.Decimal("-98765.4321"), ""},
		{"decimal[1]", new(big.Rat).SetFrac64(4332, 100), nil, "needs more than 1 digits after the point"},
		{"decimal[2]", int32(5), record.Decimal("5.00"), ""},
		// An Avro float is read by its shortest float32 text, as a JSON
		// number by its text: float32(0.1) is 0.1, not 0.10000000149011612.
		{"decimal[2]", float32(0.1), record.Decimal("0.10"), ""},
		{"decimal[2]", float32(1.25), record.Decimal("1.25"), ""},
		{"decimal[1]", float32(0.25), nil, "needs 2 digits after the point"},
		{"decimal[2]", float64(0.1), record.Decimal("0.10"), ""},
		{"str", "PAID", "PAID", ""},
		{"list[int]", []any{int32(1), int64(2)}, []any{int64(1), int64(2)}, ""},
		{"map[float]", map[string]any{"a": float32(1.5)}, map[string]any{"a": 1.5}, ""},
	}
	for _, tc := range tests {
		s, err := Compile("ts", []FieldSpec{{Name: "ts", Type: "datetime"}, {Name: "x", Type: tc.typ}})
		if err != nil {
			t.Fatal(err)
		}
		fields, err := s.Convert(map[string]any{"ts": ts, "x": tc.in})
		if tc.errContains != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errContains) {
				t.Errorf("%s from %#v: %v, want error containing %q", tc.typ, tc.in, err, tc.errContains)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s from %#v: %v", tc.typ, tc.in, err)
			continue
		}
		if got := fields[1].Value; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s from %#v = %#v, want %#v", tc.typ, tc.in, got, tc.want)
		}
	}
}

// An Avro float epoch converts by its shortest float32 text, as decimals do:
// float32(1700000000.5) is not read as 1700000000.5000000xxx.
func TestAvroFloat32Epoch(t *testing.T) {
	s, err := Compile("ts", []FieldSpec{{Name: "ts", Type: "datetime"}})
	if err != nil {
		t.Fatal(err)
	}
	fields, err := s.Convert(map[string]any{"ts": float32(0.7)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fields[0].Value.(time.Time), time.Unix(0, 700000000).UTC(); !got.Equal(want) {
		t.Errorf("float32(0.7) s = %v, want %v", got, want)
	}
}
