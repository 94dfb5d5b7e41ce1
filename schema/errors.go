package schema

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"
	"unicode/utf8"
)

// FieldError says which value of a record does not fit the schema and why.
// Path is relative to the record: amount, items[3].price, attrs["a.b"], or "$"
// for the record itself.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// prefix returns e with p in front of its path.
func (e *FieldError) prefix(p string) *FieldError {
	e.Path = p + e.Path
	return e
}

func ferr(msg string) *FieldError { return &FieldError{Msg: msg} }

func wantGot(want string, v any) *FieldError {
	return &FieldError{Msg: "want " + want + ", got " + describe(v)}
}

const maxShown = 64

// clip shortens s for an error message, on a rune boundary.
func clip(s string) string {
	if len(s) <= maxShown {
		return s
	}
	i := maxShown
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// describe names a decoded value for an error message: its JSON kind and,
// for scalars, the value.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool " + strconv.FormatBool(x)
	case string:
		return "string " + strconv.Quote(clip(x))
	case json.Number:
		return "number " + clip(string(x))
	case int:
		return "number " + strconv.Itoa(x)
	case int32:
		return "number " + strconv.FormatInt(int64(x), 10)
	case int64:
		return "number " + strconv.FormatInt(x, 10)
	case float32:
		return "number " + strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return "number " + strconv.FormatFloat(x, 'g', -1, 64)
	case []byte:
		return "bytes (" + strconv.Itoa(len(x)) + " bytes)"
	case time.Time:
		return "timestamp " + x.Format(time.RFC3339Nano)
	case *big.Rat:
		if x == nil {
			return "null decimal"
		}
		// Text of a huge value costs seconds and is clipped anyway: say its size.
		if bits := x.Num().BitLen() + x.Denom().BitLen(); bits > 512 {
			return "decimal of about " + strconv.Itoa(int(float64(bits)*math.Log10(2))+1) + " digits"
		}
		return "decimal " + clip(x.RatString())
	case map[string]any:
		return "object"
	case []any:
		return "list"
	}
	return fmt.Sprintf("%T", v)
}
