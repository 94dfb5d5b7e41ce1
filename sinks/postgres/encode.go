package postgres

import (
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/jsonenc"
)

// PostgreSQL's timestamptz range is 4713 BC to 294276 AD; years as Go
// counts them (1 BC is year 0).
const (
	minPGYear = -4712
	maxPGYear = 294275
)

var errNUL = jsonenc.ErrNUL

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
			return v, 8, nil // v already boxes x: no new allocation
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
			return v, 8, nil
		case int64:
			return float64(x), 8, nil
		}
	case vkBool:
		if _, ok := v.(bool); ok {
			return v, 1, nil
		}
	case vkText:
		switch x := v.(type) {
		case string:
			s, err := cleanText(x)
			if err == nil && len(s) == len(x) && s == x {
				return v, len(s), nil
			}
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
			return v, 8, nil
		}
	case vkDate:
		if x, ok := v.(record.Date); ok {
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
		if x, ok := v.(record.Decimal); ok {
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
		case []any, map[string]any, []record.Field, []float64:
			if record.IsNull(v) {
				return nil, 0, nil
			}
			b, err := jsonenc.AppendValueNoNUL(nil, v)
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
// invalid UTF-8 as the file sink does (jsonenc.ValidUTF8).
func cleanText(s string) (string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return "", errNUL
	}
	return jsonenc.ValidUTF8(s), nil
}

// sanitizeText makes s storable in a text column without refusing it: for
// dead letters, which must always be storable.
func sanitizeText(s string) string {
	return strings.ReplaceAll(jsonenc.ValidUTF8(s), "\x00", "\uFFFD")
}

// parseDecimal reads a record.Decimal ("-12.50") into a numeric that keeps
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
