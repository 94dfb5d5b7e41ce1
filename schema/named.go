package schema

import (
	"slices"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// AppendNamed converts a record given as its top-level members, names[i]
// holding vals[i] (names distinct; decoders/avrodec's DecodeNamed gives
// them), decoded from the stream record from, and appends the fields to dst.
// ok true promises exactly the fields ConvertFrom returns for the map of
// those members and from; ok false means Convert would
// fail, or the schema refers into nested values (a ref path), which is left
// to Convert: the caller then takes Convert's path, for the row or the error.
// dst's spare capacity may have been written either way. A batch's rows
// appended to one slice are one allocation per batch instead of one per row.
func (s *Schema) AppendNamed(dst []record.Field, names []string, vals []any, from *record.Record) (fields []record.Field, ok bool) {
	start := len(dst)
	dst = slices.Grow(dst, len(s.fields))
	guess := 0
	for i := range s.fields {
		f := &s.fields[i]
		var v any
		if f.isConst {
			v = f.constVal
		} else if f.meta != metaNone {
			var fe *FieldError
			if v, fe = f.convertMeta(from); fe != nil {
				return dst[:start], false
			}
		} else {
			if f.path != nil {
				return dst[:start], false
			}
			var raw any
			found := false
			if j := findName(names, f.key, guess); j >= 0 {
				raw, found, guess = vals[j], true, j+1
			}
			var fe *FieldError
			if v, fe = f.convertValue(raw, found); fe != nil {
				return dst[:start], false
			}
		}
		dst = append(dst, record.Field{Name: f.name, Value: v})
	}
	if len(s.computed) > 0 && s.compute(dst[start:]) != nil {
		return dst[:start], false
	}
	return dst[:start+s.visible], true
}

// findName is the index of key in names, -1 if absent, looking first at
// guess: the writer's fields are usually in the dataset's order.
func findName(names []string, key string, guess int) int {
	if guess < len(names) && names[guess] == key {
		return guess
	}
	for j, n := range names {
		if n == key {
			return j
		}
	}
	return -1
}
