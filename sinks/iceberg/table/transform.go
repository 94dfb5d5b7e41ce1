package table

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// Transform maps a column's value to its partition value (spec "Partition
// Transforms"). Values are the dataset's Go types: int64, float64, bool,
// string, []byte, time.Time (timestamptz), record.Date, record.Decimal (its
// text carries the column's scale, as package schema writes it); nil is null
// and maps to nil.
type Transform interface {
	// Apply returns the partition value in the Go form the manifest's Avro
	// encoder takes: day, hour, month, year and bucket give int32 (days,
	// hours, months or years since 1970, or the bucket); identity gives the
	// value itself, except record.Date (int32 days), record.Decimal
	// (*big.Rat) and time.Time (UTC, whole microseconds).
	Apply(v any) (any, error)
	// ResultType is the partition field's type for a source column's type;
	// an error says the transform cannot apply to that type.
	ResultType(source Type) (Type, error)
	// PathValue is the value as a data file path segment shows it (Hive
	// style, URL-escaped like Java's): day "2026-12-07", hour
	// "2026-12-07-13", month "2026-12", year "2026", bucket "5". v is the
	// source value given to Apply; for day, hour, month, year and bucket an
	// int32 is taken as already transformed. A value it cannot read prints
	// as "null", as a null partition does.
	PathValue(v any) string
	// String is the spec's name: "identity", "day", "hour", "bucket[16]".
	String() string
}

// ParseTransform reads a transform's spec name. Truncate is not supported:
// the spec forbids committing with a transform the writer does not know, so
// the error stops a commit to such a table instead of writing wrong values.
func ParseTransform(s string) (Transform, error) {
	switch s {
	case "identity":
		return identity{}, nil
	case "day":
		return timeTransform{unit: "day"}, nil
	case "hour":
		return timeTransform{unit: "hour"}, nil
	case "month":
		return timeTransform{unit: "month"}, nil
	case "year":
		return timeTransform{unit: "year"}, nil
	case "void":
		return void{}, nil
	}
	if rest, ok := strings.CutPrefix(s, "bucket["); ok {
		if num, ok := strings.CutSuffix(rest, "]"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(num))
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("transform %q: want bucket[N] with N a positive integer", s)
			}
			return bucket{n: n}, nil
		}
	}
	return nil, fmt.Errorf("unsupported partition transform %q (supported: identity, year, month, day, hour, bucket[N], void)", s)
}

// DefaultPartitionName is the spec's conventional partition field name for a
// transform of column source: "id" for identity, "ts_day", "id_bucket".
func DefaultPartitionName(source string, t Transform) string {
	switch t := t.(type) {
	case identity:
		return source
	case bucket:
		return source + "_bucket"
	case timeTransform:
		return source + "_" + t.unit
	}
	return source + "_" + t.String()
}

type identity struct{}

func (identity) String() string { return "identity" }

func (identity) ResultType(source Type) (Type, error) {
	if !source.IsPrimitive() {
		return Type{}, fmt.Errorf("identity of %s: the source must be a primitive type", source)
	}
	return source, nil
}

func (identity) Apply(v any) (any, error) {
	switch x := v.(type) {
	case nil, int64, int32, float64, float32, bool, string, []byte:
		return v, nil
	case time.Time:
		return x.UTC().Truncate(time.Microsecond), nil
	case record.Date:
		return int32(daysOf(x)), nil
	case record.Decimal:
		r, ok := new(big.Rat).SetString(string(x))
		if !ok {
			return nil, fmt.Errorf("identity: %q is not a decimal number", string(x))
		}
		return r, nil
	case *big.Rat:
		return x, nil
	}
	return nil, fmt.Errorf("identity: unsupported value type %T", v)
}

func (identity) PathValue(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		s = x
	case int64:
		s = strconv.FormatInt(x, 10)
	case int32:
		s = strconv.FormatInt(int64(x), 10)
	case float64:
		s = strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		s = strconv.FormatFloat(float64(x), 'g', -1, 32)
	case bool:
		s = strconv.FormatBool(x)
	case []byte:
		s = base64.StdEncoding.EncodeToString(x) // Java's human form of binary
	case time.Time:
		s = x.UTC().Format("2006-01-02T15:04:05.999999Z07:00")
	case record.Date:
		s = x.String()
	case record.Decimal:
		s = string(x)
	case *big.Rat:
		s = x.RatString()
	default:
		return "null"
	}
	return url.QueryEscape(s)
}

type void struct{}

func (void) String() string                       { return "void" }
func (void) ResultType(source Type) (Type, error) { return source, nil }
func (void) Apply(any) (any, error)               { return nil, nil }
func (void) PathValue(any) string                 { return "null" }

// timeTransform is year, month, day or hour: whole units since 1970-01-01.
type timeTransform struct{ unit string }

func (t timeTransform) String() string { return t.unit }

func (t timeTransform) ResultType(source Type) (Type, error) {
	switch source.Primitive {
	case TypeTimestamp, TypeTimestampTZ:
	case TypeDate:
		if t.unit == "hour" {
			return Type{}, errors.New("hour of a date: the source must be a timestamp")
		}
	default:
		return Type{}, fmt.Errorf("%s of %s: the source must be a date or timestamp", t.unit, source)
	}
	if t.unit == "day" {
		return Primitive(TypeDate), nil
	}
	return Primitive(TypeInt), nil
}

func (t timeTransform) Apply(v any) (any, error) {
	var micros int64
	switch x := v.(type) {
	case nil:
		return nil, nil
	case time.Time:
		micros = x.UnixMicro()
	case record.Date:
		if t.unit == "hour" {
			return nil, fmt.Errorf("hour of a date (%s): the source must be a timestamp", x)
		}
		micros = daysOf(x) * 86_400_000_000
	case int64:
		micros = x // a timestamp column's microseconds, as other writers hold them
	default:
		return nil, fmt.Errorf("%s: unsupported value type %T", t.unit, v)
	}
	var n int64
	switch t.unit {
	case "hour":
		n = floorDiv(micros, 3_600_000_000)
	case "day":
		n = floorDiv(micros, 86_400_000_000)
	default:
		d := time.UnixMicro(micros).UTC()
		n = int64(d.Year() - 1970)
		if t.unit == "month" {
			n = n*12 + int64(d.Month()-1)
		}
	}
	if n > math.MaxInt32 || n < math.MinInt32 {
		return nil, fmt.Errorf("%s of %v: out of range", t.unit, v)
	}
	return int32(n), nil
}

func (t timeTransform) PathValue(v any) string {
	n, ok := v.(int32)
	if !ok {
		r, err := t.Apply(v)
		if err != nil || r == nil {
			return "null"
		}
		n = r.(int32)
	}
	switch t.unit {
	case "year":
		return strconv.Itoa(1970 + int(n))
	case "month":
		y, m := 1970+floorDiv(int64(n), 12), int(n)-int(floorDiv(int64(n), 12))*12
		return fmt.Sprintf("%04d-%02d", y, m+1)
	case "day":
		return time.Unix(int64(n)*86400, 0).UTC().Format("2006-01-02")
	}
	return time.Unix(int64(n)*3600, 0).UTC().Format("2006-01-02-15")
}

// bucket is bucket[N]: (murmur3 of the value's canonical bytes & MaxInt32) % N.
type bucket struct{ n int }

func (b bucket) String() string { return "bucket[" + strconv.Itoa(b.n) + "]" }

func (b bucket) ResultType(source Type) (Type, error) {
	switch source.Primitive {
	case TypeInt, TypeLong, TypeDate, TypeTime, TypeTimestamp, TypeTimestampTZ, TypeString, TypeUUID, TypeBinary:
		return Primitive(TypeInt), nil
	}
	if _, _, ok := source.DecimalParams(); ok {
		return Primitive(TypeInt), nil
	}
	if _, ok := source.FixedLength(); ok {
		return Primitive(TypeInt), nil
	}
	return Type{}, fmt.Errorf("bucket of %s: the spec defines buckets of int, long, decimal, date, time, timestamp(tz), string, uuid, fixed and binary only", source)
}

func (b bucket) Apply(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	h, err := bucketHash(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b, err)
	}
	return int32((h & math.MaxInt32) % int32(b.n)), nil
}

func (b bucket) PathValue(v any) string {
	n, ok := v.(int32)
	if !ok {
		r, err := b.Apply(v)
		if err != nil || r == nil {
			return "null"
		}
		n = r.(int32)
	}
	return strconv.Itoa(int(n))
}

// bucketHash is Appendix B's hash of a value by its type.
func bucketHash(v any) (int32, error) {
	switch x := v.(type) {
	case int64:
		return hashLong(x), nil
	case int32:
		return hashLong(int64(x)), nil
	case string:
		return hashBytes([]byte(x)), nil
	case []byte:
		return hashBytes(x), nil
	case time.Time:
		return hashLong(x.UnixMicro()), nil
	case record.Date:
		return hashLong(daysOf(x)), nil
	case record.Decimal:
		u, err := unscaledOfText(string(x))
		if err != nil {
			return 0, err
		}
		return hashBytes(minBigEndian(u)), nil
	}
	return 0, fmt.Errorf("cannot hash a value of type %T", v)
}

// daysOf is the number of days from 1970-01-01 to d.
func daysOf(d record.Date) int64 {
	return floorDiv(time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Unix(), 86400)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// unscaledOfText is a decimal's unscaled value from its text, whose scale is
// the number of digits after the point ("14.20" is 1420): the text package
// schema writes has exactly the column's scale.
func unscaledOfText(s string) (*big.Int, error) {
	digits := strings.Replace(s, ".", "", 1)
	if digits == "" || strings.ContainsAny(digits, "eE+") {
		return nil, fmt.Errorf("decimal %q: want plain decimal text like -12.50", s)
	}
	u, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return nil, fmt.Errorf("decimal %q: not a decimal number", s)
	}
	return u, nil
}

// minBigEndian is x as two's-complement big-endian in the fewest bytes that
// hold it (Appendix B's decimal hash, Appendix D's decimal bound).
func minBigEndian(x *big.Int) []byte {
	if x.Sign() >= 0 {
		b := x.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -x-1 in ones' complement is x in two's complement.
	y := new(big.Int).Neg(x)
	y.Sub(y, big.NewInt(1))
	b := y.Bytes()
	for i := range b {
		b[i] = ^b[i]
	}
	if len(b) == 0 || b[0]&0x80 == 0 {
		b = append([]byte{0xff}, b...)
	}
	return b
}
