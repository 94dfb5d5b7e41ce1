package table

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

func TestStats(t *testing.T) {
	schema, _ := testTable(t)
	s := NewStats(schema)
	t1 := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	t2 := t1.Add(time.Hour)
	long := strings.Repeat("z", 20)
	rows := []map[int]any{
		{1: int64(5), 2: t2, 3: "b", 4: record.Decimal("1.50"), 7: record.Date{Year: 2026, Month: 1, Day: 2}, 8: 2.5},
		{1: int64(-3), 2: t1, 3: nil, 4: record.Decimal("-0.25"), 7: nil, 8: math.NaN()},
		{1: int64(9), 2: t1, 3: long, 4: nil, 7: nil, 8: math.Copysign(0, -1)}, // -0.0 is a lower bound below +0.0
	}
	for _, r := range rows {
		for _, id := range []int{1, 2, 3, 4, 7, 8} {
			s.Add(id, r[id])
		}
	}
	var f DataFile
	if err := s.Fill(&f); err != nil {
		t.Fatal(err)
	}
	want := DataFile{
		ValueCounts:     map[int]int64{1: 3, 2: 3, 3: 3, 4: 3, 7: 3, 8: 3},
		NullValueCounts: map[int]int64{1: 0, 2: 0, 3: 1, 4: 1, 7: 2, 8: 0},
		NaNValueCounts:  map[int]int64{8: 1},
		LowerBounds: map[int][]byte{
			1: must(SerializeValue(Primitive(TypeLong), int64(-3))), 2: must(SerializeValue(Primitive(TypeTimestampTZ), t1)),
			3: []byte("b"), 4: {0xe7}, 7: must(SerializeValue(Primitive(TypeDate), int32(20455))),
			8: must(SerializeValue(Primitive(TypeDouble), math.Copysign(0, -1))),
		},
		UpperBounds: map[int][]byte{
			1: must(SerializeValue(Primitive(TypeLong), int64(9))), 2: must(SerializeValue(Primitive(TypeTimestampTZ), t2)),
			3: []byte(strings.Repeat("z", 15) + "{"), 4: {0x00, 0x96}, 7: must(SerializeValue(Primitive(TypeDate), int32(20455))),
			8: must(SerializeValue(Primitive(TypeDouble), 2.5)),
		},
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("stats\n got %+v\nwant %+v", f, want)
	}

	bad := NewStats(schema)
	bad.Add(1, int64(1))
	bad.Add(1, "x")
	if err := bad.Fill(&f); err == nil {
		t.Error("mixed types in one column: no error")
	}
	unknown := NewStats(schema)
	unknown.Add(99, int64(1))
	if err := unknown.Fill(&f); err == nil || !strings.Contains(err.Error(), "99") {
		t.Errorf("unknown column: err = %v", err)
	}
}

func TestTruncateBounds(t *testing.T) {
	tests := []struct {
		in         string
		text       bool
		lower, upp string
		noUpper    bool
	}{
		{"short", true, "short", "short", false},
		{strings.Repeat("é", 17), true, strings.Repeat("é", 16), strings.Repeat("é", 15) + "ê", false},
		{strings.Repeat("a", 16) + "b", true, strings.Repeat("a", 16), strings.Repeat("a", 15) + "b", false},
		{strings.Repeat("\xff", 17), false, strings.Repeat("\xff", 16), "", true},
		{"\x01" + strings.Repeat("\xff", 16), false, "\x01" + strings.Repeat("\xff", 15), "\x02", false},
	}
	for _, tt := range tests {
		if got := string(truncateLower([]byte(tt.in), tt.text)); got != tt.lower {
			t.Errorf("truncateLower(%q) = %q, want %q", tt.in, got, tt.lower)
		}
		got := truncateUpper([]byte(tt.in), tt.text)
		if tt.noUpper != (got == nil) || (!tt.noUpper && string(got) != tt.upp) {
			t.Errorf("truncateUpper(%q) = %q, want %q (none: %v)", tt.in, got, tt.upp, tt.noUpper)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
