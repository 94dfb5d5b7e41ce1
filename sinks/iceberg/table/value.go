package table

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// SerializeValue is the spec's binary single-value serialization (Appendix
// D) of v as type t, the form of lower and upper bounds in manifests and
// manifest lists. v is a dataset value (int64, float64, bool, string,
// []byte, time.Time, record.Date, record.Decimal) or a partition value as
// Transform.Apply gives it (int32, *big.Rat, ...).
func SerializeValue(t Type, v any) ([]byte, error) {
	le := binary.LittleEndian
	switch t.Primitive {
	case TypeBoolean:
		if b, ok := v.(bool); ok {
			if b {
				return []byte{1}, nil
			}
			return []byte{0}, nil
		}
	case TypeInt, TypeDate:
		if tm, ok := v.(time.Time); ok && t.Primitive == TypeDate {
			v = floorDiv(tm.Unix(), 86400) // a date's days, not a timestamp's µs
		}
		if n, ok := asInt64(v); ok && n >= math.MinInt32 && n <= math.MaxInt32 {
			return le.AppendUint32(nil, uint32(int32(n))), nil
		}
	case TypeLong, TypeTime, TypeTimestamp, TypeTimestampTZ:
		if n, ok := asInt64(v); ok {
			return le.AppendUint64(nil, uint64(n)), nil
		}
	case TypeFloat:
		switch f := v.(type) {
		case float32:
			return le.AppendUint32(nil, math.Float32bits(f)), nil
		case float64:
			return le.AppendUint32(nil, math.Float32bits(float32(f))), nil
		}
	case TypeDouble:
		if f, ok := v.(float64); ok {
			return le.AppendUint64(nil, math.Float64bits(f)), nil
		}
	case TypeString:
		if s, ok := v.(string); ok {
			return []byte(s), nil
		}
	case TypeBinary, TypeUUID:
		if b, ok := v.([]byte); ok {
			return bytes.Clone(b), nil
		}
	default:
		if _, scale, ok := t.DecimalParams(); ok {
			u, err := unscaled(v, scale)
			if err != nil {
				return nil, err
			}
			return minBigEndian(u), nil
		}
		if _, ok := t.FixedLength(); ok {
			if b, ok := v.([]byte); ok {
				return bytes.Clone(b), nil
			}
		}
	}
	return nil, fmt.Errorf("cannot serialize a %T as %s", v, t)
}

// asInt64 reads the integer forms values of int, long, date, time and
// timestamp columns come in; dates count days, times and timestamps µs.
func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int:
		return int64(x), true
	case time.Time:
		return x.UnixMicro(), true
	case record.Date:
		return daysOf(x), true
	case time.Duration:
		return x.Microseconds(), true
	}
	return 0, false
}

// unscaled is a decimal's unscaled value at scale: v × 10^scale, which must
// be whole (a value with more digits than the column's scale is refused,
// not rounded).
func unscaled(v any, scale int) (*big.Int, error) {
	var r *big.Rat
	switch x := v.(type) {
	case *big.Rat:
		r = x
	case record.Decimal:
		var ok bool
		if r, ok = new(big.Rat).SetString(string(x)); !ok {
			return nil, fmt.Errorf("decimal %q: not a decimal number", string(x))
		}
	default:
		return nil, fmt.Errorf("cannot read a %T as a decimal", v)
	}
	s := new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
	if !s.IsInt() {
		return nil, fmt.Errorf("decimal %s has more than %d digits after the point", r.FloatString(scale+4), scale)
	}
	return new(big.Int).Set(s.Num()), nil
}

// compareValues orders two non-null values of one type, as bounds need:
// numbers and times by value, strings by UTF-8 bytes (code point order, as
// Java compares), binary unsigned lexicographically, false before true. ok
// is false for values it cannot compare.
func compareValues(a, b any) (c int, ok bool) {
	switch x := a.(type) {
	case int32, int64, int, time.Time, record.Date, time.Duration:
		ia, oka := asInt64(a)
		ib, okb := asInt64(b)
		if !oka || !okb {
			return 0, false
		}
		return cmpOrdered(ia, ib), true
	case float64:
		y, ok := b.(float64)
		return cmpOrdered(x, y), ok
	case float32:
		y, ok := b.(float32)
		return cmpOrdered(x, y), ok
	case string:
		y, ok := b.(string)
		return cmpOrdered(x, y), ok
	case []byte:
		y, ok := b.([]byte)
		return bytes.Compare(x, y), ok
	case bool:
		y, ok := b.(bool)
		if !ok || x == y {
			return 0, ok
		}
		if !x {
			return -1, true
		}
		return 1, true
	case *big.Rat:
		y, ok := b.(*big.Rat)
		if !ok {
			return 0, false
		}
		return x.Cmp(y), true
	case record.Decimal:
		ra, oka := new(big.Rat).SetString(string(x))
		y, ok := b.(record.Decimal)
		if !ok || !oka {
			return 0, false
		}
		rb, okb := new(big.Rat).SetString(string(y))
		if !okb {
			return 0, false
		}
		return ra.Cmp(rb), true
	}
	return 0, false
}

func cmpOrdered[T int64 | float64 | float32 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	// -0.0 sorts before +0.0, as the spec's bounds require.
	switch x := any(a).(type) {
	case float64:
		return cmpOrdered(boolInt(math.Signbit(any(b).(float64))), boolInt(math.Signbit(x)))
	case float32:
		return cmpOrdered(boolInt(math.Signbit(float64(any(b).(float32)))), boolInt(math.Signbit(float64(x))))
	}
	return 0
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func isNaN(v any) bool {
	switch x := v.(type) {
	case float64:
		return math.IsNaN(x)
	case float32:
		return math.IsNaN(float64(x))
	}
	return false
}
