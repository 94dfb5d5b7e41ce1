package postgres

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/kinesis-ingest/kinesis-ingest/sinks"
)

// PostgreSQL's timestamptz range is 4713 BC to 294276 AD; years as Go
// counts them (1 BC is year 0).
const (
	minPGYear = -4712
	maxPGYear = 294275
)

var errNUL = errors.New("text holds a NUL character (U+0000), which PostgreSQL text and jsonb cannot store")

// toPG converts a row value to what pgx encodes for a column of kind vk, and
// estimates its encoded size. Errors are about the value (the row is
// refused), never about the connection.
func toPG(vk valueKind, v any) (any, int, error) {
	if v == nil {
		return nil, 0, nil
	}
	switch vk {
	case vkInt:
		switch x := v.(type) {
		case int64:
			return x, 8, nil
		case int:
			return int64(x), 8, nil
		}
	case vkInt4:
		switch x := v.(type) {
		case int:
			if x < math.MinInt32 || x > math.MaxInt32 {
				return nil, 0, fmt.Errorf("%d is out of range for integer", x)
			}
			return int32(x), 4, nil
		}
	case vkFloat:
		switch x := v.(type) {
		case float64:
			return x, 8, nil
		case int64:
			return float64(x), 8, nil
		}
	case vkBool:
		if x, ok := v.(bool); ok {
			return x, 1, nil
		}
	case vkText:
		switch x := v.(type) {
		case string:
			s, err := cleanText(x)
			return s, len(s), err
		}
	case vkBytes:
		if x, ok := v.([]byte); ok {
			if x == nil {
				return nil, 0, nil
			}
			return x, len(x), nil
		}
	case vkTime:
		if x, ok := v.(time.Time); ok {
			if y := x.UTC().Year(); y < minPGYear || y > maxPGYear {
				return nil, 0, fmt.Errorf("time %v is outside PostgreSQL's timestamptz range", x)
			}
			return x, 8, nil
		}
	case vkDate:
		if x, ok := v.(sinks.Date); ok {
			t := time.Date(x.Year, x.Month, x.Day, 0, 0, 0, 0, time.UTC)
			if y, m, d := t.Date(); y != x.Year || m != x.Month || d != x.Day {
				return nil, 0, fmt.Errorf("date %s is not a calendar date", x)
			}
			if x.Year < minPGYear || x.Year > maxPGYear {
				return nil, 0, fmt.Errorf("date %s is outside PostgreSQL's date range", x)
			}
			return pgtype.Date{Time: t, Valid: true}, 4, nil
		}
	case vkDecimal:
		if x, ok := v.(sinks.Decimal); ok {
			n, err := parseDecimal(string(x))
			return n, len(x), err
		}
	case vkFloatArray:
		switch x := v.(type) {
		case []float64:
			if x == nil {
				return nil, 0, nil
			}
			return x, 8 * len(x), nil
		}
	case vkJSON:
		switch v.(type) {
		case []any, map[string]any, []sinks.Field, []float64:
			if typedNil(v) {
				return nil, 0, nil
			}
			b, err := appendJSON(nil, v)
			if err != nil {
				return nil, 0, err
			}
			return b, len(b), nil
		}
	}
	return nil, 0, fmt.Errorf("a Go %T cannot go into a %s column", v, vkName(vk))
}

func vkName(vk valueKind) string {
	switch vk {
	case vkInt:
		return "bigint"
	case vkInt4:
		return "integer"
	case vkFloat:
		return "double precision"
	case vkBool:
		return "boolean"
	case vkText:
		return "text"
	case vkBytes:
		return "bytea"
	case vkTime:
		return "timestamptz"
	case vkDate:
		return "date"
	case vkDecimal:
		return "numeric"
	case vkFloatArray:
		return "double precision[]"
	case vkJSON:
		return "jsonb"
	}
	return "?"
}

// cleanText refuses NUL, which PostgreSQL cannot store in text, and replaces
// invalid UTF-8 with U+FFFD, as the file sink does.
func cleanText(s string) (string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return "", errNUL
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s, nil
}

// sanitizeText makes s storable in a text column without refusing it: for
// dead letters, which must always be storable.
func sanitizeText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}

// parseDecimal reads a sinks.Decimal ("-12.50") into a numeric that keeps
// its scale.
func parseDecimal(s string) (pgtype.Numeric, error) {
	bad := func() (pgtype.Numeric, error) {
		return pgtype.Numeric{}, fmt.Errorf("decimal %q is not a number like -12.50", s)
	}
	d := s
	neg := false
	if d != "" && (d[0] == '-' || d[0] == '+') {
		neg = d[0] == '-'
		d = d[1:]
	}
	intPart, frac, _ := strings.Cut(d, ".")
	digits := intPart + frac
	if digits == "" {
		return bad()
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return bad()
		}
	}
	n, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return bad()
	}
	if neg {
		n.Neg(n)
	}
	if len(frac) > math.MaxInt16 {
		return bad()
	}
	return pgtype.Numeric{Int: n, Exp: -int32(len(frac)), Valid: true}, nil
}

func typedNil(v any) bool {
	switch v := v.(type) {
	case []byte:
		return v == nil
	case []float64:
		return v == nil
	case []any:
		return v == nil
	case map[string]any:
		return v == nil
	case []sinks.Field:
		return v == nil
	}
	return false
}

// appendJSON writes v as JSON the way the file sink does: times as RFC 3339
// UTC with microseconds, dates as "2006-01-02", decimals and bytes (base64)
// as strings, struct fields in order, map keys sorted. jsonb itself then
// normalises key order and number formatting.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case float64:
		return appendFloat(b, v)
	case string:
		return appendString(b, v)
	case []byte:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v)
		return append(b, '"'), nil
	case time.Time:
		t := v.UTC()
		if y := t.Year(); y < 0 || y > 9999 {
			return b, fmt.Errorf("time %v: year outside 0000-9999 cannot be written as RFC 3339", v)
		}
		b = append(b, '"')
		b = t.AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
		return append(b, '"'), nil
	case sinks.Date:
		if v.Year < 0 || v.Year > 9999 || v.Month < 1 || v.Month > 12 || v.Day < 1 || v.Day > 31 {
			return b, fmt.Errorf("date %s: not a valid calendar date in 0000-9999", v)
		}
		return append(append(append(b, '"'), v.String()...), '"'), nil
	case sinks.Decimal:
		return appendString(b, string(v))
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
			if b, err = appendFloat(b, f); err != nil {
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
			if b, err = appendJSON(b, e); err != nil {
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
			if b, err = appendString(b, k); err != nil {
				return b, fmt.Errorf("key %q: %w", k, err)
			}
			b = append(b, ':')
			if b, err = appendJSON(b, v[k]); err != nil {
				return b, fmt.Errorf("[%q]: %w", k, err)
			}
		}
		return append(b, '}'), nil
	case []sinks.Field:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '{')
		for i, f := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendString(b, f.Name); err != nil {
				return b, fmt.Errorf("field %q: %w", f.Name, err)
			}
			b = append(b, ':')
			if b, err = appendJSON(b, f.Value); err != nil {
				return b, fmt.Errorf(".%s: %w", f.Name, err)
			}
		}
		return append(b, '}'), nil
	}
	return b, fmt.Errorf("unsupported value type %T", v)
}

func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, fmt.Errorf("%v: NaN and ±Inf cannot be written as JSON", f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, f, format, -1, 64), nil
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) ([]byte, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return b, errNUL
	}
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"'), nil
}
