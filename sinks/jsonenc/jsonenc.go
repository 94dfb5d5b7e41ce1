// Package jsonenc writes row values as JSON, the one way every sink does:
// times as RFC 3339 UTC with exactly six fractional digits, dates as
// "2006-01-02", decimals and bytes (base64) as strings, struct fields in
// declaration order, map keys sorted. It accepts only the Go types listed in
// record.Field; anything else, and floats JSON cannot hold, is an error.
package jsonenc

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/jsontext"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// ErrNUL is returned by AppendValueNoNUL for a string holding U+0000, which
// some stores (PostgreSQL text and jsonb) cannot hold.
var ErrNUL = errors.New("text holds a NUL character (U+0000), which PostgreSQL text and jsonb cannot store")

// AppendValue appends v as JSON.
func AppendValue(b []byte, v any) ([]byte, error) { return appendValue(b, v, false) }

// AppendValueNoNUL is AppendValue refusing strings (and keys) that hold U+0000.
func AppendValueNoNUL(b []byte, v any) ([]byte, error) { return appendValue(b, v, true) }

func appendStr(b []byte, s string, noNUL bool) ([]byte, error) {
	if noNUL && strings.IndexByte(s, 0) >= 0 {
		return b, ErrNUL
	}
	return AppendString(b, s), nil
}

// TimeLayout is how every time.Time is written: RFC 3339 in UTC with exactly
// six fractional digits (microseconds, truncated).
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// appendValue appends v as JSON (see AppendValue). Only the Go types listed in record.Field are
// accepted; anything else, and floats that JSON cannot hold, is an error.
func appendValue(b []byte, v any, noNUL bool) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case float64:
		return AppendFloat(b, v)
	case string:
		return appendStr(b, v, noNUL)
	case []byte:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v)
		return append(b, '"'), nil
	case time.Time:
		return AppendTime(b, v)
	case record.Date:
		return AppendDate(b, v)
	case record.Decimal:
		return appendStr(b, string(v), noNUL)
	case []float64:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, f := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = AppendFloat(b, f); err != nil {
				return b, fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return append(b, ']'), nil
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e, noNUL); err != nil {
				return b, fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		if v == nil {
			return append(b, "null"...), nil
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendStr(b, k, noNUL); err != nil {
				return b, fmt.Errorf("key %q: %w", k, err)
			}
			b = append(b, ':')
			if b, err = appendValue(b, v[k], noNUL); err != nil {
				return b, fmt.Errorf("[%q]: %w", k, err)
			}
		}
		return append(b, '}'), nil
	case []record.Field:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '{')
		for i, f := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendStr(b, f.Name, noNUL); err != nil {
				return b, fmt.Errorf("field %q: %w", f.Name, err)
			}
			b = append(b, ':')
			if b, err = appendValue(b, f.Value, noNUL); err != nil {
				return b, fmt.Errorf(".%s: %w", f.Name, err)
			}
		}
		return append(b, '}'), nil
	default:
		return b, fmt.Errorf("unsupported value type %T", v)
	}
}

var errNonFinite = errors.New("NaN and ±Inf cannot be written as JSON")

// AppendFloat writes f like encoding/json does (shortest representation that
// round-trips, exponent form for very small and very large magnitudes).
func AppendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, fmt.Errorf("%v: %w", f, errNonFinite)
	}
	if out, ok := appendFewDecimals(b, f); ok {
		return out, nil
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// decPow10 holds 10^0 to 10^maxFewDecimals, each exact in a float64.
var decPow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6}

const maxFewDecimals = len(decPow10) - 1

// appendFewDecimals writes f as strconv's shortest 'f' form does, for the
// values rows mostly hold (amounts, prices, measurements: a few decimals),
// in a fraction of strconv's time; ok false leaves f to strconv.
//
// Why the result is strconv's: let a = |f| and, for d decimals, x = a·10^d
// computed in float64. While x < 2^49, the decimals k·10^-d (k an integer)
// that parse back to a lie within 2^-52·x of a·10^d, and x within 2^-53·x of
// it, so within 3/16 of x: only k = round(x) can, and k/10^d == a tells
// whether it does (k and 10^d are exact, and one IEEE division rounds
// correctly, as ParseFloat does). Trying d = 0, 1, 2, … the first d with a
// match therefore has exactly one decimal of that length that round-trips,
// and none shorter exists: it is the shortest, the one strconv writes.
func appendFewDecimals(b []byte, f float64) ([]byte, bool) {
	a := math.Abs(f)
	if !(a > 0) { // zero (strconv keeps the sign of -0), NaN
		return b, false
	}
	for d := 0; d <= maxFewDecimals; d++ {
		x := a * decPow10[d]
		if !(x < 1<<49) {
			return b, false
		}
		k := math.Round(x)
		if k/decPow10[d] != a {
			continue
		}
		if f < 0 {
			b = append(b, '-')
		}
		var digits [24]byte
		ds := strconv.AppendUint(digits[:0], uint64(k), 10)
		if d == 0 {
			return append(b, ds...), true
		}
		if len(ds) <= d { // a < 1: "0." and the zeros after the point
			b = append(b, '0', '.')
			for range d - len(ds) {
				b = append(b, '0')
			}
			return append(b, ds...), true
		}
		b = append(b, ds[:len(ds)-d]...)
		b = append(b, '.')
		return append(b, ds[len(ds)-d:]...), true
	}
	return b, false
}

func AppendTime(b []byte, t time.Time) ([]byte, error) {
	// From the Unix time by arithmetic: Date and Clock each look the
	// location up and work the calendar out again, and a row has two times
	// (its own and its arrival); this was a fifth of a row's encoding.
	secs := t.Unix()
	days, sod := secs/86400, secs%86400
	if sod < 0 {
		days, sod = days-1, sod+86400
	}
	year, month, day := civil(days)
	if year < 0 || year > 9999 {
		return b, fmt.Errorf("time %v: year outside 0000-9999 cannot be written as RFC 3339", t)
	}
	hour, minute, sec := int(sod/3600), int(sod/60%60), int(sod%60)
	us := t.Nanosecond() / 1000
	// Two digits at a time into a template: the same bytes as a digit per
	// append, in about half the time.
	n := len(b)
	b = append(b, `"0000-00-00T00:00:00.000000Z"`...)
	o := b[n : n+29 : n+29]
	put2(o[1:3], year/100)
	put2(o[3:5], year%100)
	put2(o[6:8], month)
	put2(o[9:11], day)
	put2(o[12:14], hour)
	put2(o[15:17], minute)
	put2(o[18:20], sec)
	put2(o[21:23], us/10000)
	put2(o[23:25], us/100%100)
	put2(o[25:27], us%100)
	return b, nil
}

// pairs holds "00" to "99".
const pairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// put2 writes v (0..99) as two digits into o.
func put2(o []byte, v int) {
	o[0], o[1] = pairs[2*v], pairs[2*v+1]
}

// civil is the proleptic Gregorian date days after 1970-01-01, by Howard
// Hinnant's days-to-civil method: count in 400-year eras of 146097 days
// that start on 1 March, so that the leap day ends a year.
func civil(days int64) (year, month, day int) {
	z := days + 719468 // days since 0000-03-01
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // [0, 365], from 1 March
	mp := (5*doy + 2) / 153                                // [0, 11], March first
	day = int(doy - (153*mp+2)/5 + 1)
	month = int(mp + 3)
	if mp >= 10 {
		month = int(mp - 9)
	}
	year = int(yoe + era*400)
	if month <= 2 {
		year++
	}
	return year, month, day
}

func AppendDate(b []byte, d record.Date) ([]byte, error) {
	if d.Year < 0 || d.Year > 9999 || d.Month < 1 || d.Month > 12 || d.Day < 1 || d.Day > 31 {
		return b, fmt.Errorf("date %s: not a valid calendar date in 0000-9999", d)
	}
	return append(b, '"', byte('0'+d.Year/1000), byte('0'+d.Year/100%10), byte('0'+d.Year/10%10), byte('0'+d.Year%10), '-',
		byte('0'+d.Month/10), byte('0'+d.Month%10), '-', byte('0'+d.Day/10), byte('0'+d.Day%10), '"'), nil
}

const hex = "0123456789abcdef"

// safe[c] is true for ASCII bytes that need no escaping in a JSON string.
var safe = func() (s [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		s[c] = c != '"' && c != '\\'
	}
	return s
}()

// AppendString writes s as a JSON string. Invalid UTF-8 becomes U+FFFD and
// U+2028/U+2029 are escaped, as encoding/json does; <, > and & are kept as is.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	if n := jsontext.PlainLen(s); n == len(s) {
		// The common case, copied whole.
		b = append(b, s...)
		return append(b, '"')
	}
	start := 0
	for i := 0; i < len(s); {
		if n := jsontext.PlainLen(s[i:]); n > 0 {
			i += n
			continue
		}
		if c := s[i]; c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// ValidUTF8 returns s with each byte that is not valid UTF-8 replaced by
// U+FFFD, as AppendString writes it: every sink stores the same text.
func ValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
