package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"gopkg.in/yaml.v3"
)

func mustDecode(t testing.TB, s string) any {
	t.Helper()
	v, err := jsondec.New().Decode([]byte(s))
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

func utc(y int, m time.Month, d, h, mi, s, us int) time.Time {
	return time.Date(y, m, d, h, mi, s, us*1000, time.UTC)
}

func TestParseType(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		want        string
		errContains string
	}{
		{"int", "int", "int", ""},
		{"float", "float", "float", ""},
		{"bool", "bool", "bool", ""},
		{"str", "str", "str", ""},
		{"bytes", "bytes", "bytes", ""},
		{"datetime", "datetime", "datetime", ""},
		{"date", "date", "date", ""},
		{"struct", "struct", "struct", ""},
		{"decimal", "decimal[2]", "decimal[2]", ""},
		{"decimal max", "decimal[28]", "decimal[28]", ""},
		{"embedding", "embedding[32]", "embedding[32]", ""},
		{"optional", "optional[int]", "optional[int]", ""},
		{"nested", "list[map[optional[decimal[3]]]]", "list[map[optional[decimal[3]]]]", ""},
		{"case and blanks", " Optional[ List[ STR ] ] ", "optional[list[str]]", ""},
		{"dict alias", "dict[int]", "map[int]", ""},
		{"typo", "flaot", "", `unknown type "flaot" (want int, float`},
		{"empty", "", "", "required"},
		{"decimal 0", "decimal[0]", "", "scale must be 1..28"},
		{"decimal 29", "decimal[29]", "", "scale must be 1..28"},
		{"decimal no size", "decimal", "", "needs a size"},
		{"decimal not int", "decimal[x]", "", "integer size"},
		{"embedding 0", "embedding[0]", "", "dimension must be"},
		{"embedding huge", "embedding[99999999999]", "", "too large"},
		{"list no elem", "list", "", "needs an element type"},
		{"list unclosed", "list[int", "", "missing ']'"},
		{"int param", "int[3]", "", "takes no parameter"},
		{"trailing", "int x", "", `unexpected "x"`},
		{"map two params", "map[str, int]", "", "map keys are always str"},
		{"double optional", "optional[optional[int]]", "", "optional[optional"},
		{"garbage", "[int]", "", "unexpected"},
		{"deep", strings.Repeat("list[", 40) + "int" + strings.Repeat("]", 40), "", "nests deeper"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseType(tc.in)
			if tc.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errContains) {
					t.Fatalf("ParseType(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.errContains)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("ParseType(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
			}
		})
	}
}

// convertCase converts {"ts": 0, "v": in} (in == "" means v is missing) with
// field v of spec and compares field v.
type convertCase struct {
	name        string
	in          string
	want        any
	errContains string
}

func runConvert(t *testing.T, spec FieldSpec, tests []convertCase) {
	t.Helper()
	spec.Name = "v"
	s, err := Compile("ts", []FieldSpec{{Name: "ts", Type: "datetime"}, spec})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			js := `{"ts":0}`
			if tc.in != "" {
				js = `{"ts":0,"v":` + tc.in + `}`
			}
			got, err := convertBoth(t, s, js)
			if tc.errContains != "" {
				var fe *FieldError
				if err == nil || !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.errContains) {
					t.Fatalf("Convert(%s) = %#v, %v; want *FieldError containing %q", js, got, err, tc.errContains)
				}
				if got != nil {
					t.Fatalf("Convert returned fields with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Convert(%s): %v", js, err)
			}
			if len(got) != 2 || got[1].Name != "v" {
				t.Fatalf("Convert(%s) = %#v", js, got)
			}
			if !reflect.DeepEqual(got[1].Value, tc.want) {
				t.Fatalf("Convert(%s) v = %#v (%T), want %#v (%T)", js, got[1].Value, got[1].Value, tc.want, tc.want)
			}
		})
	}
}

func TestConvertInt(t *testing.T) {
	runConvert(t, FieldSpec{Type: "int"}, []convertCase{
		{"small", `42`, int64(42), ""},
		{"negative", `-7`, int64(-7), ""},
		{"zero", `0`, int64(0), ""},
		{"max", `9223372036854775807`, int64(9223372036854775807), ""},
		{"min", `-9223372036854775808`, int64(-9223372036854775808), ""},
		{"19 digits", `1234567890123456789`, int64(1234567890123456789), ""},
		{"whole float", `2.0`, int64(2), ""},
		{"exponent", `1e3`, int64(1000), ""},
		{"fraction exponent", `12.50e1`, int64(125), ""},
		{"neg zero", `-0.0`, int64(0), ""},
		{"max by exponent", `9.223372036854775807e18`, int64(9223372036854775807), ""},
		{"fraction", `2.5`, nil, "v: want int, got number 2.5 (not a whole number)"},
		{"tiny fraction", `1e-30`, nil, "not a whole number"},
		{"overflow", `9223372036854775808`, nil, "v: want int, got number 9223372036854775808 (outside int64 range)"},
		{"underflow", `-9223372036854775809`, nil, "outside int64 range"},
		{"huge", `1e30`, nil, "outside int64 range"},
		{"huge exponent", `1e999999999999`, nil, "outside int64 range"},
		{"string", `"42"`, nil, `v: want int, got string "42"`},
		{"bool", `true`, nil, "want int, got bool true"},
		{"null", `null`, nil, "v: want int, got null"},
		{"missing", ``, nil, "v: missing"},
		{"object", `{}`, nil, "want int, got object"},
		{"list", `[1]`, nil, "want int, got list"},
	})
}

func TestConvertIntAvro(t *testing.T) {
	s, err := Compile("", []FieldSpec{{Name: "ts", Type: "datetime"}, {Name: "v", Type: "int"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in          any
		want        any
		errContains string
	}{
		{int32(5), int64(5), ""},
		{int64(-5), int64(-5), ""},
		{float64(3), int64(3), ""},
		{float32(3), int64(3), ""},
		{float64(3.5), nil, "not a whole number"},
		{float64(1e19), nil, "outside int64 range"},
		{float64(9223372036854775807), nil, "outside int64 range"}, // rounds to 2^63
		{float64(-9223372036854775808), int64(-9223372036854775808), ""},
	} {
		got, err := s.Convert(map[string]any{"ts": int64(0), "v": tc.in})
		if tc.errContains != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errContains) {
				t.Errorf("%T %v: got %v, %v; want error %q", tc.in, tc.in, got, err, tc.errContains)
			}
			continue
		}
		if err != nil || got[1].Value != tc.want {
			t.Errorf("%T %v: got %v, %v; want %v", tc.in, tc.in, got, err, tc.want)
		}
	}
}

func TestConvertFloat(t *testing.T) {
	runConvert(t, FieldSpec{Type: "float"}, []convertCase{
		{"float", `12.5`, 12.5, ""},
		{"int", `12`, 12.0, ""},
		{"negative", `-0.25`, -0.25, ""},
		{"exponent", `1.5e-3`, 0.0015, ""},
		{"big int", `12345678901234567890`, 12345678901234567890.0, ""},
		{"2^53+1", `9007199254740993`, 9007199254740992.0, ""},
		{"underflow", `1e-400`, 0.0, ""},
		{"overflow", `1e400`, nil, "v: want float, got number 1e400 (outside float64 range)"},
		{"neg overflow", `-1e400`, nil, "outside float64 range"},
		{"string", `"12.5"`, nil, `v: want float, got string "12.5"`},
		{"null", `null`, nil, "want float, got null"},
		{"missing", ``, nil, "v: missing"},
	})
}

func TestConvertBoolStrBytes(t *testing.T) {
	runConvert(t, FieldSpec{Type: "bool"}, []convertCase{
		{"true", `true`, true, ""},
		{"false", `false`, false, ""},
		{"int", `1`, nil, "want bool, got number 1"},
		{"string", `"true"`, nil, `want bool, got string "true"`},
	})
	runConvert(t, FieldSpec{Type: "str"}, []convertCase{
		{"str", `"hello"`, "hello", ""},
		{"empty", `""`, "", ""},
		{"unicode", `"héllo ☃"`, "héllo ☃", ""},
		{"escaped", `"a\nb\u0000"`, "a\nb\x00", ""},
		{"number", `42`, nil, "want str, got number 42"},
		{"null", `null`, nil, "want str, got null"},
		{"long string is clipped", `5`, nil, "number 5"},
	})
	runConvert(t, FieldSpec{Type: "bytes"}, []convertCase{
		{"std padded", `"aGk/Pz4+"`, []byte("hi??>>"), ""},
		{"std", `"aGVsbG8="`, []byte("hello"), ""},
		{"raw", `"aGVsbG8"`, []byte("hello"), ""},
		{"url", `"aGk_Pz4-"`, []byte("hi??>>"), ""},
		{"empty", `""`, []byte{}, ""},
		{"not base64", `"!!!"`, nil, `want bytes, got string "!!!" (not base64)`},
		{"number", `1`, nil, "want bytes (base64 string), got number 1"},
	})
	s, _ := Compile("", []FieldSpec{{Name: "ts", Type: "datetime"}, {Name: "v", Type: "str"}, {Name: "b", Type: "bytes"}})
	if _, err := s.Convert(map[string]any{"ts": int64(0), "v": "a\xffb", "b": []byte{1}}); err == nil || !strings.Contains(err.Error(), "invalid UTF-8") {
		t.Errorf("invalid UTF-8 str: %v", err)
	}
	got, err := s.Convert(map[string]any{"ts": int64(0), "v": "x", "b": []byte{1, 2}})
	if err != nil || !reflect.DeepEqual(got[2].Value, []byte{1, 2}) {
		t.Errorf("Avro bytes: %v, %v", got, err)
	}
	long := strings.Repeat("x", 200)
	_, err = s.Convert(map[string]any{"ts": int64(0), "v": 1, "b": long})
	if err == nil || strings.Contains(err.Error(), long) {
		t.Errorf("long value not clipped: %v", err)
	}
}

func TestConvertDatetime(t *testing.T) {
	runConvert(t, FieldSpec{Type: "datetime"}, []convertCase{
		{"rfc3339 Z", `"2002-10-02T15:00:00Z"`, utc(2002, 10, 2, 15, 0, 0, 0), ""},
		{"rfc3339 offset", `"2002-10-02T10:00:00-05:00"`, utc(2002, 10, 2, 15, 0, 0, 0), ""},
		{"rfc3339 fraction", `"2002-10-02T15:00:00.05Z"`, utc(2002, 10, 2, 15, 0, 0, 50000), ""},
		{"rfc3339 nanos truncated", `"2002-10-02T15:00:00.123456789Z"`, utc(2002, 10, 2, 15, 0, 0, 123456), ""},
		{"lowercase", `"2002-10-02t15:00:00z"`, utc(2002, 10, 2, 15, 0, 0, 0), ""},
		{"space sep", `"2002-10-02 15:00:00+0130"`, utc(2002, 10, 2, 13, 30, 0, 0), ""},
		{"hour offset", `"2002-10-02T15:00:00+02"`, utc(2002, 10, 2, 13, 0, 0, 0), ""},
		{"no zone is UTC", `"2002-10-02T15:00:00"`, utc(2002, 10, 2, 15, 0, 0, 0), ""},
		{"no seconds", `"2002-10-02T15:04"`, utc(2002, 10, 2, 15, 4, 0, 0), ""},
		{"date only", `"2002-10-02"`, utc(2002, 10, 2, 0, 0, 0, 0), ""},
		{"leap day", `"2024-02-29T00:00:00Z"`, utc(2024, 2, 29, 0, 0, 0, 0), ""},
		{"not leap day", `"2023-02-29T00:00:00Z"`, nil, "want datetime"},
		{"bad month", `"2002-13-02T15:00:00Z"`, nil, "want datetime"},
		{"bad hour", `"2002-10-02T24:00:00Z"`, nil, "want datetime"},
		{"leap second", `"2002-10-02T23:59:60Z"`, nil, "want datetime"},
		{"year 0", `"0000-01-01T00:00:00Z"`, nil, "outside years 1..9999"},
		{"before year 1 by offset", `"0001-01-01T00:00:00+01:00"`, nil, "outside years 1..9999"},
		{"rfc2822", `"Sun, 23 Jan 2000 01:23:45 +0900"`, utc(2000, 1, 22, 16, 23, 45, 0), ""},
		{"rfc2822 JST is -0000", `"Sun, 23 Jan 2000 01:23:45 JST"`, utc(2000, 1, 23, 1, 23, 45, 0), ""},
		{"rfc2822 EST", `"Mon, 02 Jan 2006 15:04:05 EST"`, utc(2006, 1, 2, 20, 4, 5, 0), ""},
		{"rfc2822 GMT no day", `"2 Jan 2006 15:04 GMT"`, utc(2006, 1, 2, 15, 4, 0, 0), ""},
		{"rfc2822 2-digit year", `"2 Jan 06 15:04:05 -0700"`, utc(2006, 1, 2, 22, 4, 5, 0), ""},
		{"rfc2822 wrong weekday", `"Mon, 23 Jan 2000 01:23:45 +0000"`, nil, "want datetime"},
		{"rfc2822 no zone", `"Sun, 23 Jan 2000 01:23:45"`, nil, "want datetime"},
		{"garbage", `"yesterday"`, nil, `want datetime, got string "yesterday" (want RFC 3339, RFC 2822 or epoch`},
		{"empty string", `""`, nil, "want datetime"},
		{"epoch seconds", `1682099757`, utc(2023, 4, 21, 17, 55, 57, 0), ""},
		{"epoch millis", `1682099757123`, utc(2023, 4, 21, 17, 55, 57, 123000), ""},
		{"epoch micros", `1682099757123456`, utc(2023, 4, 21, 17, 55, 57, 123456), ""},
		{"epoch nanos", `1682099757123456789`, utc(2023, 4, 21, 17, 55, 57, 123456), ""},
		{"epoch string", `"1682099757"`, utc(2023, 4, 21, 17, 55, 57, 0), ""},
		{"epoch string millis", `"1682099757123"`, utc(2023, 4, 21, 17, 55, 57, 123000), ""},
		{"epoch fraction", `1682099757.5`, utc(2023, 4, 21, 17, 55, 57, 500000), ""},
		{"epoch fraction string", `"1682099757.1234567"`, utc(2023, 4, 21, 17, 55, 57, 123456), ""},
		{"epoch millis fraction", `1682099757123.5`, utc(2023, 4, 21, 17, 55, 57, 123500), ""},
		{"epoch exponent", `1.682099757e9`, utc(2023, 4, 21, 17, 55, 57, 0), ""},
		{"epoch zero", `0`, utc(1970, 1, 1, 0, 0, 0, 0), ""},
		{"epoch negative", `-1`, utc(1969, 12, 31, 23, 59, 59, 0), ""},
		{"epoch negative fraction", `-1.5`, utc(1969, 12, 31, 23, 59, 58, 500000), ""},
		{"epoch negative nanos floor", `-9223372036854775807`, time.Unix(0, -9223372036854775807).UTC().Truncate(time.Microsecond), ""},
		{"epoch beyond int64", `9223372036854775808`, nil, "outside int64 range"},
		{"epoch beyond int64 fraction", `99999999999999999999.5`, nil, "outside int64 range"},
		{"bool", `true`, nil, "want datetime, got bool true"},
		{"null", `null`, nil, "want datetime, got null"},
		{"missing", ``, nil, "v: missing"},
	})
}

// TestEpochUnitBoundaries pins the magnitude thresholds of the epoch unit.
func TestEpochUnitBoundaries(t *testing.T) {
	tests := []struct {
		name string
		in   int64
		want time.Time
	}{
		{"max seconds", 9_223_372_036, time.Unix(9_223_372_036, 0)},
		{"min seconds", -9_223_372_036, time.Unix(-9_223_372_036, 0)},
		{"first millis", 9_223_372_037, time.UnixMilli(9_223_372_037)},
		{"last negative millis", -9_223_372_037, time.UnixMilli(-9_223_372_037)},
		{"max millis", 9_223_372_036_854, time.UnixMilli(9_223_372_036_854)},
		{"first micros", 9_223_372_036_855, time.UnixMicro(9_223_372_036_855)},
		{"max micros", 9_223_372_036_854_775, time.UnixMicro(9_223_372_036_854_775)},
		{"first nanos", 9_223_372_036_854_776, time.Unix(0, 9_223_372_036_854_776).Truncate(time.Microsecond)},
		{"negative first nanos", -9_223_372_036_854_776, time.Unix(0, -9_223_372_036_854_776).Truncate(time.Microsecond)},
		{"max int64 nanos", 9223372036854775807, time.Unix(0, 9223372036854775807).Truncate(time.Microsecond)},
		{"min int64 nanos", -9223372036854775808, time.Unix(0, -9223372036854775808).Truncate(time.Microsecond)},
	}
	s, err := Compile("v", []FieldSpec{{Name: "v", Type: "datetime"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		for _, in := range []any{tc.in, json.Number(big.NewInt(tc.in).String()), big.NewInt(tc.in).String()} {
			got, err := s.Convert(map[string]any{"v": in})
			if err != nil {
				t.Errorf("%s (%T %v): %v", tc.name, in, in, err)
				continue
			}
			if g := got[0].Value.(time.Time); !g.Equal(tc.want) || g.Location() != time.UTC {
				t.Errorf("%s (%T %v) = %v, want %v", tc.name, in, in, g, tc.want.UTC())
			}
		}
	}
	// The same thresholds with a fraction (decimal path).
	got, err := s.Convert(map[string]any{"v": json.Number("9223372036.5")})
	if err != nil || !got[0].Value.(time.Time).Equal(time.UnixMicro(9_223_372_036_500_000)) {
		t.Errorf("9223372036.5 = %v, %v", got, err)
	}
	got, err = s.Convert(map[string]any{"v": json.Number("9223372037.5")})
	if err != nil || !got[0].Value.(time.Time).Equal(time.UnixMicro(9_223_372_037_500)) {
		t.Errorf("9223372037.5 = %v, %v", got, err)
	}
}

func TestConvertDatetimeAvro(t *testing.T) {
	s, _ := Compile("v", []FieldSpec{{Name: "v", Type: "datetime"}})
	loc := time.FixedZone("X", 3600)
	for _, tc := range []struct {
		in          any
		want        time.Time
		errContains string
	}{
		{time.Date(2020, 1, 1, 1, 0, 0, 1999, loc), utc(2020, 1, 1, 0, 0, 0, 1), ""},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}, "outside years 1..9999"},
		{int32(60), utc(1970, 1, 1, 0, 1, 0, 0), ""},
		{float64(1.5), utc(1970, 1, 1, 0, 0, 1, 500000), ""},
		{float64(1682099757123), utc(2023, 4, 21, 17, 55, 57, 123000), ""},
	} {
		got, err := s.Convert(map[string]any{"v": tc.in})
		if tc.errContains != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errContains) {
				t.Errorf("%v: %v, want error %q", tc.in, err, tc.errContains)
			}
			continue
		}
		if err != nil || got[0].Value != tc.want {
			t.Errorf("%v: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestConvertDate(t *testing.T) {
	runConvert(t, FieldSpec{Type: "date"}, []convertCase{
		{"iso", `"2024-02-29"`, record.Date{Year: 2024, Month: 2, Day: 29}, ""},
		{"days", `19782`, record.Date{Year: 2024, Month: 2, Day: 29}, ""},
		{"negative days", `-1`, record.Date{Year: 1969, Month: 12, Day: 31}, ""},
		{"first day", `-719162`, record.Date{Year: 1, Month: 1, Day: 1}, ""},
		{"last day", `2932896`, record.Date{Year: 9999, Month: 12, Day: 31}, ""},
		{"past last day", `2932897`, nil, "days outside years 1..9999"},
		{"bad day", `"2023-02-29"`, nil, "want YYYY-MM-DD"},
		{"datetime string", `"2024-02-29T00:00:00Z"`, nil, "want YYYY-MM-DD"},
		{"year 0", `"0000-01-01"`, nil, "outside years"},
		{"fraction", `1.5`, nil, "want date"},
		{"bool", `false`, nil, "want date, got bool false"},
	})
	s, _ := Compile("", []FieldSpec{{Name: "ts", Type: "datetime"}, {Name: "v", Type: "date"}})
	got, err := s.Convert(map[string]any{"ts": int64(0), "v": utc(2024, 3, 1, 0, 0, 0, 0)})
	if err != nil || got[1].Value != (record.Date{Year: 2024, Month: 3, Day: 1}) {
		t.Errorf("Avro date: %v %v", got, err)
	}
	if _, err := s.Convert(map[string]any{"ts": int64(0), "v": utc(2024, 3, 1, 0, 0, 1, 0)}); err == nil {
		t.Errorf("non-midnight time accepted as date")
	}
	got, err = s.Convert(map[string]any{"ts": int64(0), "v": int32(1)})
	if err != nil || got[1].Value != (record.Date{Year: 1970, Month: 1, Day: 2}) {
		t.Errorf("Avro int date: %v %v", got, err)
	}
}

func TestConvertDecimal(t *testing.T) {
	runConvert(t, FieldSpec{Type: "decimal[2]"}, []convertCase{
		{"number", `12.5`, record.Decimal("12.50"), ""},
		{"int", `12`, record.Decimal("12.00"), ""},
		{"negative", `-12.5`, record.Decimal("-12.50"), ""},
		{"negative zero", `-0.00`, record.Decimal("0.00"), ""},
		{"small", `0.01`, record.Decimal("0.01"), ""},
		{"leading zeros string", `"007.10"`, record.Decimal("7.10"), ""},
		{"trailing zeros beyond scale", `12.500`, record.Decimal("12.50"), ""},
		{"string", `"12.5"`, record.Decimal("12.50"), ""},
		{"exponent", `1.25e1`, record.Decimal("12.50"), ""},
		{"negative exponent", `125e-2`, record.Decimal("1.25"), ""},
		{"36 int digits", `123456789012345678901234567890123456`, record.Decimal("123456789012345678901234567890123456.00"), ""},
		{"37 int digits", `1234567890123456789012345678901234567`, nil, "outside decimal[2] range (at most 36 digits before the point)"},
		{"too much scale", `12.345`, nil, `v: want decimal[2], got number 12.345 (needs 3 digits after the point, decimal[2] has 2)`},
		{"tiny", `1e-30`, nil, "needs 30 digits after the point"},
		{"huge exponent", `1e999999999999`, nil, "outside decimal[2] range"},
		{"bad string", `"12,5"`, nil, "not a decimal number"},
		{"empty string", `""`, nil, "not a decimal number"},
		{"plus", `"+1"`, nil, "not a decimal number"},
		{"bool", `true`, nil, "want decimal, got bool true"},
	})
	s, _ := Compile("", []FieldSpec{{Name: "ts", Type: "datetime"}, {Name: "v", Type: "decimal[3]"}})
	for _, tc := range []struct {
		in          any
		want        record.Decimal
		errContains string
	}{
		{big.NewRat(-1, 8), "-0.125", ""},
		{big.NewRat(1, 3), "", "needs more than 3 digits"},
		{float64(0.1), "0.100", ""},
		{int64(-5), "-5.000", ""},
		{float64(1e300), "", "outside decimal[3] range"},
	} {
		got, err := s.Convert(map[string]any{"ts": int64(0), "v": tc.in})
		if tc.errContains != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errContains) {
				t.Errorf("%v: %v, want error %q", tc.in, err, tc.errContains)
			}
			continue
		}
		if err != nil || got[1].Value != tc.want {
			t.Errorf("%v: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestConvertComposite(t *testing.T) {
	runConvert(t, FieldSpec{Type: "optional[int]"}, []convertCase{
		{"value", `5`, int64(5), ""},
		{"null", `null`, nil, ""},
		{"missing", ``, nil, ""},
		{"wrong", `"5"`, nil, `v: want int, got string "5"`},
	})
	runConvert(t, FieldSpec{Type: "list[int]"}, []convertCase{
		{"list", `[1,2,3]`, []any{int64(1), int64(2), int64(3)}, ""},
		{"empty", `[]`, []any{}, ""},
		{"null elem", `[1,null]`, nil, "v[1]: want int, got null"},
		{"bad elem", `[1,2,3,"4"]`, nil, `v[3]: want int, got string "4"`},
		{"object", `{}`, nil, "v: want list, got object"},
	})
	runConvert(t, FieldSpec{Type: "list[optional[str]]"}, []convertCase{
		{"null elem", `["a",null]`, []any{"a", nil}, ""},
	})
	runConvert(t, FieldSpec{Type: "map[float]"}, []convertCase{
		{"map", `{"a":1,"b.c":2.5}`, map[string]any{"a": 1.0, "b.c": 2.5}, ""},
		{"empty", `{}`, map[string]any{}, ""},
		{"bad value", `{"x":"1"}`, nil, `v.x: want float, got string "1"`},
		{"bad value odd key", `{"a b":"1"}`, nil, `v["a b"]: want float`},
		{"list", `[]`, nil, "want map (object), got list"},
	})
	runConvert(t, FieldSpec{Type: "embedding[3]"}, []convertCase{
		{"embedding", `[1, 2.5, -3e-1]`, []float64{1, 2.5, -0.3}, ""},
		{"short", `[1, 2]`, nil, "v: want embedding[3], got list of 2"},
		{"long", `[1, 2, 3, 4]`, nil, "got list of 4"},
		{"bad elem", `[1, "2", 3]`, nil, `v[1]: want float, got string "2"`},
		{"null elem", `[1, null, 3]`, nil, `v[1]: want float, got null`},
		{"not list", `"abc"`, nil, "want embedding[3], got string"},
	})
	runConvert(t, FieldSpec{Type: "list[struct]", Fields: []FieldSpec{
		{Name: "sku", Type: "str"},
		{Name: "price", Type: "float"},
		{Name: "qty", Type: "optional[int]"},
		{Name: "city", Type: "optional[str]", Ref: "shop.address[0].city"},
	}}, []convertCase{
		{"structs", `[{"sku":"a","price":1,"qty":2,"extra":true,"shop":{"address":[{"city":"X"}]}},{"sku":"b","price":2.5}]`, []any{
			[]record.Field{{Name: "sku", Value: "a"}, {Name: "price", Value: 1.0}, {Name: "qty", Value: int64(2)}, {Name: "city", Value: "X"}},
			[]record.Field{{Name: "sku", Value: "b"}, {Name: "price", Value: 2.5}, {Name: "qty", Value: nil}, {Name: "city", Value: nil}},
		}, ""},
		{"missing price", `[{"sku":"a","price":1},{"sku":"b"},{"sku":"c","price":3},{"sku":"d"}]`, nil, "v[1].price: missing"},
		{"bad ref parent", `[{"sku":"a","price":1,"shop":{"address":"nowhere"}}]`, nil, "v[0].city: ref shop.address[0].city: want list at shop.address, got string"},
		{"not object", `[1]`, nil, "v[0]: want struct (object), got number 1"},
	})
}

func TestRefsAndConst(t *testing.T) {
	s, err := Compile("ts", []FieldSpec{
		{Name: "ts", Type: "datetime", Ref: "meta.time"},
		{Name: "city", Type: "str", Ref: "user.address[1].city"},
		{Name: "dotted", Type: "optional[int]", Ref: `attrs["a.b"]`},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := convertBoth(t, s, `{"meta":{"time":"2024-01-01T00:00:00Z"},"user":{"address":[{"city":"A"},{"city":"B"}]},"attrs":{"a.b":7}}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []record.Field{{Name: "ts", Value: utc(2024, 1, 1, 0, 0, 0, 0)}, {Name: "city", Value: "B"}, {Name: "dotted", Value: int64(7)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
	for _, tc := range []struct{ in, errContains string }{
		{`{"meta":{"time":0},"user":{"address":[{"city":"A"}]}}`, "city: missing (ref user.address[1].city)"},
		{`{"meta":{"time":0},"user":{"address":null}}`, "city: missing (ref user.address[1].city)"},
		{`{"meta":{"time":0},"user":null}`, "city: missing (ref user.address[1].city)"},
		{`{"meta":{"time":0},"user":{"address":[{"city":"A"},{"city":null}]}}`, "city: want str, got null"},
		{`{"meta":{"time":0},"user":[]}`, "city: ref user.address[1].city: want object at user, got list"},
		{`{"meta":{"time":0},"user":{"address":{"1":{}}}}`, "city: ref user.address[1].city: want list at user.address, got object"},
		{`{"meta":"x"}`, "ts: ref meta.time: want object at meta, got string"},
		{`{"meta":{"time":0},"user":{"address":[0,{"city":"B"}]},"attrs":5}`, `dotted: ref attrs["a.b"]: want object at attrs, got number 5`},
	} {
		_, err := convertBoth(t, s, tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.errContains) {
			t.Errorf("%s: %v, want %q", tc.in, err, tc.errContains)
		}
	}

	s, err = Compile("", []FieldSpec{
		{Name: "ts", Type: "datetime", Const: "2024-01-01T00:00:00Z"},
		{Name: "src", Type: "str", Const: "kinesis", Oneof: []any{"kinesis", "kafka"}},
		{Name: "nothing", Type: "optional[str]", HasConst: true},
		{Name: "amount", Type: "decimal[2]", Const: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err = s.Convert(map[string]any{"src": "ignored"})
	want = []record.Field{{Name: "ts", Value: utc(2024, 1, 1, 0, 0, 0, 0)}, {Name: "src", Value: "kinesis"}, {Name: "nothing", Value: nil}, {Name: "amount", Value: record.Decimal("3.00")}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("const: %#v, %v", got, err)
	}
}

func TestRestrictions(t *testing.T) {
	runConvert(t, FieldSpec{Type: "int", Oneof: []any{1, 2, int64(3)}}, []convertCase{
		{"in", `2`, int64(2), ""},
		{"whole float in", `3.0`, int64(3), ""},
		{"out", `4`, nil, "v: 4 is not one of [1, 2, 3]"},
	})
	runConvert(t, FieldSpec{Type: "optional[str]", Oneof: []any{"a", "b", nil}}, []convertCase{
		{"in", `"a"`, "a", ""},
		{"null passes", `null`, nil, ""},
		{"out", `"c"`, nil, `v: "c" is not one of ["a", "b"]`},
	})
	runConvert(t, FieldSpec{Type: "int", Between: &Between{Min: 0, Max: 10}}, []convertCase{
		{"min", `0`, int64(0), ""},
		{"max", `10`, int64(10), ""},
		{"below", `-1`, nil, "v: -1 is not in [0, 10]"},
		{"above", `11`, nil, "v: 11 is not in [0, 10]"},
	})
	runConvert(t, FieldSpec{Type: "int", Between: &Between{Min: 0, Max: 10, StrictMin: true, StrictMax: true}}, []convertCase{
		{"min", `0`, nil, "v: 0 is not in (0, 10)"},
		{"max", `10`, nil, "is not in (0, 10)"},
		{"inside", `1`, int64(1), ""},
	})
	runConvert(t, FieldSpec{Type: "float", Between: &Between{Min: 0, StrictMin: true}}, []convertCase{
		{"positive", `0.001`, 0.001, ""},
		{"zero", `0`, nil, "v: 0 is not in (0, +inf]"},
		{"huge", `1e300`, 1e300, ""},
	})
	runConvert(t, FieldSpec{Type: "optional[float]", Between: &Between{Max: 1.5, StrictMax: true}}, []convertCase{
		{"below", `-100`, -100.0, ""},
		{"max", `1.5`, nil, "v: 1.5 is not in [-inf, 1.5)"},
		{"null", `null`, nil, ""},
	})
	runConvert(t, FieldSpec{Type: "str", Regex: `[0-9]{5}`}, []convertCase{
		{"match", `"12345"`, "12345", ""},
		{"partial is not a match", `"123456"`, nil, `v: "123456" does not match regex "[0-9]{5}"`},
		{"prefix", `"x12345"`, nil, "does not match regex"},
	})
	runConvert(t, FieldSpec{Type: "str", Regex: `a|b`}, []convertCase{
		{"alternation anchored", `"a"`, "a", ""},
		{"alternation anchored whole", `"ab"`, nil, "does not match"},
	})
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name        string
		timestamp   string
		fields      []FieldSpec
		errContains []string
	}{
		{"no fields", "", nil, []string{"fields: at least one field is required"}},
		{"all at once", "ts", []FieldSpec{
			{Name: "ts", Type: "str"},
			{Name: "a", Type: "int"},
			{Name: "b", Type: "flaot"},
			{Name: "a", Type: "int"},
			{Name: "", Type: "int"},
			{Name: "r", Type: "int", Regex: "x"},
			{Name: "r2", Type: "str", Regex: "("},
			{Name: "o", Type: "float", Oneof: []any{1.0}},
			{Name: "o2", Type: "int", Oneof: []any{1, "x", 1.5, nil}},
			{Name: "o3", Type: "str", Oneof: []any{}},
			{Name: "b1", Type: "str", Between: &Between{Min: 1}},
			{Name: "b2", Type: "int", Between: &Between{Min: 1.5, Max: 3}},
			{Name: "b3", Type: "int", Between: &Between{Min: 5, Max: 1}},
			{Name: "b4", Type: "int", Between: &Between{Min: 1, Max: 2, StrictMin: true, StrictMax: true}},
			{Name: "b5", Type: "float", Between: &Between{}},
			{Name: "b6", Type: "float", Between: &Between{Min: 1, Max: 1, StrictMax: true}},
			{Name: "l", Type: "list[int]", Between: &Between{Min: 1}},
			{Name: "c", Type: "int", Const: "x"},
			{Name: "c2", Type: "int", HasConst: true},
			{Name: "c3", Type: "int", Const: 1, Ref: "x"},
			{Name: "c4", Type: "str", Const: "z", Oneof: []any{"a"}},
			{Name: "s", Type: "struct"},
			{Name: "s2", Type: "int", Fields: []FieldSpec{{Name: "x", Type: "int"}}},
			{Name: "s3", Type: "list[struct]", Fields: []FieldSpec{{Name: "x", Type: "nope"}}},
			{Name: "ref", Type: "int", Ref: "a..b"},
			{Name: "ref2", Type: "int", Ref: "a[x]"},
			{Name: "ref3", Type: "int", Ref: "a[1"},
		}, []string{
			`timestamp: field "ts" is str, want datetime`,
			`fields[2].type: unknown type "flaot" (want int, float, bool, str, bytes, datetime, date, decimal[p], optional[T], list[T], map[T], struct, embedding[n])`,
			`fields[3].name: duplicate field "a" (also fields[1])`,
			`fields[4].name: required`,
			`fields[5].regex: regex restricts str, not int`,
			`fields[6].regex: error parsing regexp`,
			`fields[7].oneof: oneof restricts int or str, not float`,
			`fields[8].oneof[1]: string "x" is not an int`,
			`fields[8].oneof[2]: number 1.5 is not an int`,
			`fields[8].oneof[3]: null, but the type is not optional`,
			`fields[9].oneof: empty`,
			`fields[10].between: between restricts int or float, not str`,
			`fields[11].between.min: number 1.5 is not an int (the field is int)`,
			`fields[12].between: [5, 1] is empty`,
			`fields[13].between: (1, 2) is empty`,
			`fields[14].between: needs min or max`,
			`fields[15].between: [1, 1) is empty`,
			`fields[16].between: between restricts int or float, not list`,
			`fields[17].const: want int, got string "x"`,
			`fields[18].const: want int, got null`,
			`fields[19].const: a field has either ref or const, not both`,
			`fields[20].const: "z" is not one of ["a"]`,
			`fields[21].fields: a struct needs fields`,
			`fields[22].fields: only a struct type has fields, int has none`,
			`fields[23].fields[0].type: unknown type "nope"`,
			`fields[24].ref: bad ref "a..b": empty name at byte 2`,
			`fields[25].ref: bad ref "a[x]"`,
			`fields[26].ref: bad ref "a[1"`,
		}},
		{"no timestamp field", "when", []FieldSpec{{Name: "ts", Type: "datetime"}}, []string{`timestamp: no field "when"`}},
		{"optional timestamp", "ts", []FieldSpec{{Name: "ts", Type: "optional[datetime]"}}, []string{`timestamp: field "ts" is optional[datetime], want datetime`}},
		{"no datetime", "", []FieldSpec{{Name: "a", Type: "int"}}, []string{"timestamp: required: no field is a datetime"}},
		{"two datetimes", "", []FieldSpec{{Name: "a", Type: "datetime"}, {Name: "b", Type: "datetime"}}, []string{"timestamp: required: several datetime fields (a, b), name one"}},
		{"nested const path", "", []FieldSpec{{Name: "ts", Type: "datetime"}, {Name: "l", Type: "list[int]", Const: []any{1, "x"}}}, []string{`fields[1].const[1]: want int, got string "x"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Compile(tc.timestamp, tc.fields)
			if err == nil {
				t.Fatalf("Compile succeeded: %+v", s)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, want := range tc.errContains {
				found := false
				for _, l := range lines {
					if strings.HasPrefix(l, want) {
						found = true
					}
				}
				if !found {
					t.Errorf("no error line starting with %q in:\n%v", want, err)
				}
			}
			if len(lines) != len(tc.errContains) {
				t.Errorf("got %d error lines, want %d:\n%v", len(lines), len(tc.errContains), err)
			}
		})
	}
}

func TestCompileOK(t *testing.T) {
	s, err := Compile("", []FieldSpec{
		{Name: "id", Type: "int"},
		{Name: "at", Type: "datetime"},
		{Name: "addr", Type: "optional[struct]", Fields: []FieldSpec{{Name: "city", Type: "str"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Timestamp() != "at" || s.TimestampIndex() != 1 {
		t.Errorf("timestamp %q %d", s.Timestamp(), s.TimestampIndex())
	}
	cols := s.Columns()
	if len(cols) != 3 || cols[2].Type.String() != "optional[struct]" || len(cols[2].Type.Elem.Fields) != 1 || cols[2].Type.Elem.Fields[0].Type.Kind != KindStr {
		t.Errorf("columns %+v", cols)
	}
	if !cols[2].Type.Nullable() || cols[0].Type.Nullable() {
		t.Errorf("Nullable")
	}
}

func TestTopLevelNotObject(t *testing.T) {
	s, _ := Compile("", []FieldSpec{{Name: "ts", Type: "datetime"}})
	for _, in := range []any{nil, []any{}, "x", json.Number("1"), true} {
		got, err := s.Convert(in)
		var fe *FieldError
		if got != nil || !errors.As(err, &fe) || fe.Path != "$" || !strings.HasPrefix(fe.Msg, "want object, got ") {
			t.Errorf("%#v: %v, %v", in, got, err)
		}
	}
}

func TestYAML(t *testing.T) {
	const doc = `
- name: ts
  type: datetime
- name: src
  type: optional[str]
  const: null
- name: n
  type: optional[int]
- name: amount
  type: float
  between: {min: 0, max: 1e6, strict_min: true}
- name: kind
  type: str
  oneof: [a, b]
- name: zip
  type: str
  regex: '[0-9]{5}'
  ref: address.zip
- name: tags
  type: list[int]
  const: [1, 2]
- name: item
  type: struct
  fields:
    - {name: sku, type: str}
`
	var specs []FieldSpec
	if err := yaml.Unmarshal([]byte(doc), &specs); err != nil {
		t.Fatal(err)
	}
	if !specs[1].HasConst || specs[2].HasConst || !specs[6].HasConst || specs[5].Ref != "address.zip" || !specs[3].Between.StrictMin {
		t.Fatalf("specs: %+v", specs)
	}
	s, err := Compile("ts", specs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := convertBoth(t, s, `{"ts":"2024-01-01","src":"x","amount":5,"kind":"a","address":{"zip":"12345"},"item":{"sku":"s"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if got[1].Value != nil || got[2].Value != nil || !reflect.DeepEqual(got[6].Value, []any{int64(1), int64(2)}) {
		t.Errorf("got %#v", got)
	}
	_, err = convertBoth(t, s, `{"ts":"2024-01-01","amount":0,"kind":"a","address":{"zip":"12345"},"item":{"sku":"s"}}`)
	if err == nil || err.Error() != "amount: 0 is not in (0, 1e+06]" {
		t.Errorf("between: %v", err)
	}
}

func TestConcurrentConvert(t *testing.T) {
	s, _ := Compile("", []FieldSpec{{Name: "ts", Type: "datetime"}, {Name: "tags", Type: "map[int]"}})
	rec := mustDecode(t, `{"ts":1,"tags":{"a":1,"b":2}}`)
	done := make(chan bool)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 200; i++ {
				if _, err := s.Convert(rec); err != nil {
					t.Error(err)
				}
			}
			done <- true
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
}

// TestHugeAvroDecimalIsCheap: goavro hands a bytes decimal of 1 MiB over as
// a big.Rat of 8M bits; it is out of any decimal[scale] range, and the
// conversion says so by its size without turning it into text or dividing
// it (which took seconds per record). Bounded by the bytes a conversion
// allocates, not by time.
func TestHugeAvroDecimalIsCheap(t *testing.T) {
	s, err := Compile("ts", []FieldSpec{{Name: "ts", Type: "datetime"}, {Name: "v", Type: "decimal[2]"}})
	if err != nil {
		t.Fatal(err)
	}
	unscaled := new(big.Int).SetBytes(bytes.Repeat([]byte{0x7f}, 1<<20))
	tests := []struct {
		name        string
		v           *big.Rat
		errContains string
	}{
		{"huge integer part", new(big.Rat).SetFrac(unscaled, big.NewInt(100)), "got decimal of about 252"},
		{"huge fraction", new(big.Rat).SetFrac(big.NewInt(1), unscaled), "needs more than 2 digits after the point"},
		{"just out of range", new(big.Rat).SetFrac(new(big.Int).Exp(big.NewInt(10), big.NewInt(40), nil), big.NewInt(1)), "outside decimal[2] range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := map[string]any{"ts": time.Unix(0, 0), "v": tt.v}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := s.Convert(rec)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tt.errContains) || len(err.Error()) > 1024 {
				t.Fatalf("Convert = %v, want an error containing %q", err, tt.errContains)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
				t.Errorf("the conversion allocated %d bytes for a %d-bit decimal, want under 64 KiB: it converted the value", got, tt.v.Num().BitLen()+tt.v.Denom().BitLen())
			}
		})
	}
}
