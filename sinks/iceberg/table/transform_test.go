package table

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// TestBucketHashSpecVectors checks the hash against the test values of the
// spec's Appendix B: a different hash puts rows in buckets no other engine
// looks in.
func TestBucketHashSpecVectors(t *testing.T) {
	ts := time.Date(2017, 11, 16, 22, 31, 8, 0, time.UTC)
	tests := []struct {
		name string
		v    any
		want int32
	}{
		{"long 34", int64(34), 2017239379},
		{"int 34", int32(34), 2017239379},
		{"decimal 14.20", record.Decimal("14.20"), -500754589},
		{"date 2017-11-16", record.Date{Year: 2017, Month: 11, Day: 16}, -653330422},
		{"timestamptz 2017-11-16T22:31:08Z", ts, -2047944441},
		{"timestamptz 2017-11-16T14:31:08-08:00", ts.In(time.FixedZone("", -8*3600)), -2047944441},
		{"timestamptz 2017-11-16T22:31:08.000001Z", ts.Add(time.Microsecond), -1207196810},
		{"string iceberg", "iceberg", 1210000089},
		{"binary 00 01 02 03", []byte{0, 1, 2, 3}, -188683207},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bucketHash(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("hash = %d, want %d", got, tt.want)
			}
		})
	}
	// uuid and time vectors, through their canonical bytes.
	uuid := []byte{0xF7, 0x9C, 0x3E, 0x09, 0x67, 0x7C, 0x4B, 0xBD, 0xA4, 0x79, 0x3F, 0x34, 0x9C, 0xB7, 0x85, 0xE7}
	if got := hashBytes(uuid); got != 1488055340 {
		t.Errorf("uuid hash = %d, want 1488055340", got)
	}
	if got := hashLong((22*3600 + 31*60 + 8) * 1_000_000); got != -662762989 {
		t.Errorf("time 22:31:08 hash = %d, want -662762989", got)
	}
}

func TestTransforms(t *testing.T) {
	ts := time.Date(2026, 12, 7, 13, 45, 1, 123456789, time.UTC)
	before := time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC)
	tests := []struct {
		transform string
		in        any
		want      any
		path      string
	}{
		{"day", ts, int32(20794), "2026-12-07"},
		{"day", record.Date{Year: 2026, Month: 12, Day: 7}, int32(20794), "2026-12-07"},
		{"day", before, int32(-1), "1969-12-31"},
		{"hour", ts, int32(20794*24 + 13), "2026-12-07-13"},
		{"hour", before, int32(-1), "1969-12-31-23"},
		{"month", ts, int32(56*12 + 11), "2026-12"},
		{"month", before, int32(-1), "1969-12"},
		{"year", ts, int32(56), "2026"},
		{"bucket[16]", int64(34), int32(2017239379 % 16), "3"},
		{"bucket[16]", "iceberg", int32(1210000089 % 16), "9"},
		{"bucket[7]", nil, nil, "null"},
		{"identity", "a b/c", "a b/c", "a+b%2Fc"},
		{"identity", int64(-5), int64(-5), "-5"},
		{"identity", ts, ts.Truncate(time.Microsecond), "2026-12-07T13%3A45%3A01.123456Z"},
		{"identity", record.Date{Year: 2026, Month: 1, Day: 2}, int32(20455), "2026-01-02"},
		{"identity", record.Decimal("-12.50"), big.NewRat(-25, 2), "-12.50"},
		{"void", "x", nil, "null"},
	}
	for _, tt := range tests {
		t.Run(tt.transform, func(t *testing.T) {
			tr, err := ParseTransform(tt.transform)
			if err != nil {
				t.Fatal(err)
			}
			if tr.String() != tt.transform {
				t.Errorf("String() = %q", tr.String())
			}
			got, err := tr.Apply(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !equalValue(got, tt.want) {
				t.Errorf("Apply(%v) = %#v, want %#v", tt.in, got, tt.want)
			}
			if p := tr.PathValue(tt.in); p != tt.path {
				t.Errorf("PathValue(%v) = %q, want %q", tt.in, p, tt.path)
			}
			if got != nil {
				if p := tr.PathValue(got); tt.transform != "identity" && p != tt.path {
					t.Errorf("PathValue(applied %v) = %q, want %q", got, p, tt.path)
				}
			}
		})
	}
}

func equalValue(a, b any) bool {
	if ra, ok := a.(*big.Rat); ok {
		rb, ok := b.(*big.Rat)
		return ok && ra.Cmp(rb) == 0
	}
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	return a == b
}

func TestTransformErrors(t *testing.T) {
	tests := []struct {
		transform   string
		source      Type
		errContains string
	}{
		{"truncate[4]", Primitive(TypeString), "unsupported partition transform"},
		{"bucket[0]", Primitive(TypeLong), "positive integer"},
		{"bucket[x]", Primitive(TypeLong), "positive integer"},
		{"hour", Primitive(TypeDate), "must be a timestamp"},
		{"day", Primitive(TypeLong), "date or timestamp"},
		{"bucket[4]", Primitive(TypeDouble), "defines buckets of"},
		{"identity", ListOf(3, Primitive(TypeLong), true), "primitive"},
	}
	for _, tt := range tests {
		t.Run(tt.transform, func(t *testing.T) {
			tr, err := ParseTransform(tt.transform)
			if err == nil {
				_, err = tr.ResultType(tt.source)
			}
			if err == nil || !strings.Contains(err.Error(), tt.errContains) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.errContains)
			}
		})
	}
}

func TestMinBigEndian(t *testing.T) {
	tests := []struct {
		in   int64
		want []byte
	}{
		{0, []byte{0}}, {1, []byte{1}}, {127, []byte{0x7f}}, {128, []byte{0, 0x80}},
		{-1, []byte{0xff}}, {-128, []byte{0x80}}, {-129, []byte{0xff, 0x7f}}, {1420, []byte{0x05, 0x8c}},
	}
	for _, tt := range tests {
		if got := minBigEndian(big.NewInt(tt.in)); string(got) != string(tt.want) {
			t.Errorf("minBigEndian(%d) = % x, want % x", tt.in, got, tt.want)
		}
	}
}
