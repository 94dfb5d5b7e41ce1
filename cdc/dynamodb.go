package cdc

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// The record Kinesis Data Streams for DynamoDB writes
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/kds.html):
// eventName INSERT and MODIFY carry the item in dynamodb.NewImage, REMOVE its
// key in dynamodb.Keys and, usually, the item in dynamodb.OldImage; every
// image is in DynamoDB's typed JSON ({"N": "1.5"}, {"SS": ["a"]}, ...).
// The delivery is at least once and unordered: the event time,
// dynamodb.ApproximateCreationDateTime, is what orders a key's changes.

// DynamoDBMembers are the members of a Kinesis Data Streams for DynamoDB
// record, which a dataset's fields read as $awsRegion, $dynamodb.Keys, ...
var DynamoDBMembers = []string{"awsRegion", "eventID", "eventName", "userIdentity", "recordFormat", "tableName", "dynamodb", "eventSource"}

// DynamoDBChangeMembers are the members of a record's dynamodb ($dynamodb.Keys,
// ...).
var DynamoDBChangeMembers = []string{"ApproximateCreationDateTime", "ApproximateCreationDateTimePrecision", "Keys", "NewImage", "OldImage", "SizeBytes"}

// ErrDynamoDB is wrapped by every error about a record that is not a
// Kinesis Data Streams for DynamoDB change record, or whose images are not
// DynamoDB's typed JSON (a schema_error of the record).
var ErrDynamoDB = errors.New("not a DynamoDB change record")

// DynamoDB reads the change records of Kinesis Data Streams for DynamoDB.
//
// The image a dataset's fields read is the item with DynamoDB's types
// removed, as a JSON decoder would give it: S as a string, N as a
// json.Number (so that the field's type, int, float or decimal, decides
// and checks it), B as []byte, BOOL, NULL as null, M as an object, L as a
// list, SS, NS and BS as lists. Beside the item, the record's other members
// are under their names prefixed with $ ($eventName, $tableName, ...), and
// $dynamodb holds the dynamodb member with its images and Keys untyped and
// ApproximateCreationDateTime a time.Time, read at the precision
// ApproximateCreationDateTimePrecision names, or, without it, at the one its
// magnitude tells (seconds, milliseconds or microseconds).
type DynamoDB struct{}

// Read reads one decoded record.
func (DynamoDB) Read(v any) (Change, error) {
	env, ok := v.(map[string]any)
	if !ok {
		return Change{}, fmt.Errorf("$: %w: want an object, got %s", ErrDynamoDB, kind(v))
	}
	var c Change
	image := "NewImage"
	switch name := env["eventName"]; name {
	case "INSERT", "MODIFY":
		c.Op = Upsert
	case "REMOVE":
		c.Op, image = Delete, "OldImage"
	case nil:
		return Change{}, fmt.Errorf("eventName: %w: no eventName (want INSERT, MODIFY or REMOVE)", ErrDynamoDB)
	default:
		if s, ok := name.(string); ok {
			return Change{}, fmt.Errorf("eventName: %w: %q is not an event (want INSERT, MODIFY or REMOVE)", ErrDynamoDB, s)
		}
		return Change{}, fmt.Errorf("eventName: %w: want a string, got %s", ErrDynamoDB, kind(name))
	}
	raw, ok := env["dynamodb"].(map[string]any)
	if !ok {
		return Change{}, fmt.Errorf("dynamodb: %w: want the change in an object, got %s", ErrDynamoDB, kind(env["dynamodb"]))
	}
	ddb := make(map[string]any, len(raw))
	for k, x := range raw {
		switch k {
		case "Keys", "NewImage", "OldImage":
			if x == nil {
				continue
			}
			item, err := untypeItem("dynamodb."+k, x)
			if err != nil {
				return Change{}, err
			}
			ddb[k] = item
		case "ApproximateCreationDateTime":
			if x == nil {
				continue
			}
			t, err := creationTime(x, raw["ApproximateCreationDateTimePrecision"])
			if err != nil {
				return Change{}, err
			}
			ddb[k] = t
		default:
			ddb[k] = x
		}
	}
	keys, _ := ddb["Keys"].(map[string]any)
	item, _ := ddb[image].(map[string]any)
	switch {
	case c.Op == Upsert && item == nil:
		return Change{}, fmt.Errorf("dynamodb.NewImage: %w: %s needs the item in dynamodb.NewImage, which is missing or null", ErrDynamoDB, env["eventName"])
	case c.Op == Delete && keys == nil && item == nil:
		return Change{}, fmt.Errorf("dynamodb.Keys: %w: REMOVE needs the item's key in dynamodb.Keys (or the item in dynamodb.OldImage), which is missing or null", ErrDynamoDB)
	}
	c.Image = make(map[string]any, len(item)+len(keys)+len(env))
	for k, x := range item {
		c.Image[k] = x
	}
	// Keys name the item that changed, whatever its image says.
	for k, x := range keys {
		c.Image[k] = x
	}
	for k, x := range env {
		if k == "dynamodb" {
			x = ddb
		}
		c.Image["$"+k] = x
	}
	return c, nil
}

// creationTime reads ApproximateCreationDateTime, an epoch number at the
// precision prec names (MILLISECOND, MICROSECOND) or, when prec is absent,
// at the one its magnitude tells: below 1e11 seconds (the records of
// DynamoDB Streams, as Lambda delivers them, have seconds), below 1e14
// milliseconds, else microseconds.
func creationTime(v, prec any) (time.Time, error) {
	const path = "dynamodb.ApproximateCreationDateTime"
	var i int64
	var f float64
	isInt := false
	switch x := v.(type) {
	case json.Number:
		var err error
		if i, err = strconv.ParseInt(string(x), 10, 64); err == nil {
			isInt, f = true, float64(i)
		} else if f, err = strconv.ParseFloat(string(x), 64); err != nil || !isJSONNumber(string(x)) {
			return time.Time{}, fmt.Errorf("%s: %w: want an epoch number, got %s", path, ErrDynamoDB, x)
		}
	case int64:
		i, f, isInt = x, float64(x), true
	case float64:
		f = x
	default:
		return time.Time{}, fmt.Errorf("%s: %w: want an epoch number, got %s", path, ErrDynamoDB, kind(v))
	}
	var perSecond int64
	switch prec {
	case "MILLISECOND":
		perSecond = 1e3
	case "MICROSECOND":
		perSecond = 1e6
	case nil:
		switch a := math.Abs(f); {
		case a < 1e11:
			perSecond = 1
		case a < 1e14:
			perSecond = 1e3
		default:
			perSecond = 1e6
		}
	default:
		return time.Time{}, fmt.Errorf("dynamodb.ApproximateCreationDateTimePrecision: %w: %v is not a precision (want MILLISECOND or MICROSECOND)", ErrDynamoDB, prec)
	}
	// Years 1 to 9999 (the schema refuses a time outside them, naming the
	// field) fit an int64 of microseconds with room to spare.
	const bound = 1 << 62
	scale := 1e6 / perSecond
	if math.IsNaN(f) || math.Abs(f)*float64(scale) >= bound {
		return time.Time{}, fmt.Errorf("%s: %w: %s is outside years 1 to 9999", path, ErrDynamoDB, v)
	}
	if isInt {
		return time.UnixMicro(i * scale).UTC(), nil
	}
	return time.UnixMicro(int64(math.Round(f * float64(scale)))).UTC(), nil
}

// untypeItem removes DynamoDB's types from an item (an object of typed
// attributes) at path.
func untypeItem(path string, v any) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: %w: want an item (an object of typed attributes), got %s", path, ErrDynamoDB, kind(v))
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		u, err := untype(path+schema.PathStep(k), x)
		if err != nil {
			return nil, firstBad(path, m)
		}
		out[k] = u
	}
	return out, nil
}

// firstBad is the error of m's first bad attribute in name order: a record
// with several always gets the same reason, whichever worker reads it.
// Only failures pay for the sort.
func firstBad(path string, m map[string]any) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, err := untype(path+schema.PathStep(k), m[k]); err != nil {
			return err
		}
	}
	return nil
}

// untype removes DynamoDB's type from one attribute value at path
// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_AttributeValue.html).
func untype(path string, v any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, fmt.Errorf("%s: %w: want a typed value, an object with one of S, N, B, BOOL, NULL, M, L, SS, NS or BS, got %s", path, ErrDynamoDB, kind(v))
	}
	for t, x := range m {
		switch t {
		case "S":
			if s, ok := x.(string); ok {
				return s, nil
			}
		case "N":
			if s, ok := x.(string); ok {
				return number(path, s)
			}
		case "B":
			if s, ok := x.(string); ok {
				return binary(path, s)
			}
		case "BOOL":
			if b, ok := x.(bool); ok {
				return b, nil
			}
		case "NULL":
			if x == true {
				return nil, nil
			}
			return nil, fmt.Errorf("%s: %w: NULL wants true, got %s", path, ErrDynamoDB, kind(x))
		case "M":
			if _, ok := x.(map[string]any); ok {
				return untypeItem(path, x)
			}
			return nil, fmt.Errorf("%s: %w: M wants an object, got %s", path, ErrDynamoDB, kind(x))
		case "L", "SS", "NS", "BS":
			l, ok := x.([]any)
			if !ok {
				return nil, fmt.Errorf("%s: %w: %s wants a list, got %s", path, ErrDynamoDB, t, kind(x))
			}
			return untypeList(path, t, l)
		default:
			return nil, fmt.Errorf("%s: %w: %q is not a DynamoDB type (want S, N, B, BOOL, NULL, M, L, SS, NS or BS)", path, ErrDynamoDB, t)
		}
		want := "a string"
		if t == "BOOL" {
			want = "true or false"
		}
		return nil, fmt.Errorf("%s: %w: %s wants %s, got %s", path, ErrDynamoDB, t, want, kind(x))
	}
	panic("unreachable: a map of one member")
}

// untypeList reads a list (L) or a set (SS, NS, BS), in the order given.
func untypeList(path, t string, l []any) ([]any, error) {
	out := make([]any, len(l))
	for i, x := range l {
		p := path + "[" + strconv.Itoa(i) + "]"
		var err error
		if t == "L" {
			out[i], err = untype(p, x)
		} else if s, ok := x.(string); !ok {
			err = fmt.Errorf("%s: %w: %s wants strings, got %s", p, ErrDynamoDB, t, kind(x))
		} else {
			switch t {
			case "SS":
				out[i] = s
			case "NS":
				out[i], err = number(p, s)
			case "BS":
				out[i], err = binary(p, s)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// number reads an N: its text becomes a json.Number, for the field's type
// to take as int, float or decimal, or refuse.
func number(path, s string) (json.Number, error) {
	if !isJSONNumber(s) {
		return "", fmt.Errorf("%s: %w: N %q is not a number", path, ErrDynamoDB, s)
	}
	return json.Number(s), nil
}

func binary(path, s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: B is not base64: %v", path, ErrDynamoDB, err)
	}
	return b, nil
}

// isJSONNumber reports whether s is a number as JSON writes it, as
// DynamoDB writes N.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - j
	}
	if n := digits(); n == 0 || n > 1 && s[i-n] == '0' {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// kind names a decoded value's JSON kind for an error.
func kind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if len(keys) > 3 {
			keys = append(keys[:3], "...")
		}
		return "an object {" + strings.Join(keys, ", ") + "}"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case json.Number, int64, int32, float64, float32:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}
