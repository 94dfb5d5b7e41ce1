package table

import (
	"fmt"
	"unicode/utf8"
)

// boundLength is how much of a string or binary bound is kept: Java's
// default metrics mode, truncate(16), so that a long text column does not
// bloat every manifest.
const boundLength = 16

// Stats accumulates one data file's column metrics while its rows are
// written: value, null and NaN counts for every column fed, lower and upper
// bounds for primitive columns. Not safe for concurrent use.
type Stats struct {
	types   map[int]Type
	values  map[int]int64
	nulls   map[int]int64
	nans    map[int]int64
	lower   map[int]any
	upper   map[int]any
	err     error
	ordered []int
}

// NewStats returns Stats for columns of schema (nested ones included).
func NewStats(schema Schema) *Stats {
	s := &Stats{types: map[int]Type{}, values: map[int]int64{}, nulls: map[int]int64{}, nans: map[int]int64{},
		lower: map[int]any{}, upper: map[int]any{}}
	walkFields(schema.Fields, func(f Field) { s.types[f.ID] = f.Type })
	return s
}

// Add counts one value of column id (nil for null), as the dataset holds
// it. A column not in the schema or a value of the wrong type is reported
// by Fill.
func (s *Stats) Add(id int, v any) {
	t, ok := s.types[id]
	if !ok {
		s.fail(fmt.Errorf("column id %d is not in the schema", id))
		return
	}
	if _, seen := s.values[id]; !seen {
		s.ordered = append(s.ordered, id)
	}
	s.values[id]++
	switch {
	case v == nil:
		s.nulls[id]++
		return
	case isNaN(v):
		s.nans[id]++
		return
	case !t.IsPrimitive():
		return
	}
	lo, ok := s.lower[id]
	if !ok {
		s.lower[id], s.upper[id] = v, v
		return
	}
	c, ok := compareValues(v, lo)
	if !ok {
		s.fail(fmt.Errorf("column id %d: a %T among values of type %T", id, v, lo))
		return
	}
	if c < 0 {
		s.lower[id] = v
	}
	if c, _ := compareValues(v, s.upper[id]); c > 0 {
		s.upper[id] = v
	}
}

func (s *Stats) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// Fill sets f's ValueCounts, NullValueCounts, NaNValueCounts (float and
// double columns) and bounds from what was added.
func (s *Stats) Fill(f *DataFile) error {
	if s.err != nil {
		return fmt.Errorf("column stats: %w", s.err)
	}
	f.ValueCounts, f.NullValueCounts = map[int]int64{}, map[int]int64{}
	f.LowerBounds, f.UpperBounds = map[int][]byte{}, map[int][]byte{}
	for _, id := range s.ordered {
		t := s.types[id]
		f.ValueCounts[id] = s.values[id]
		f.NullValueCounts[id] = s.nulls[id]
		if t.Primitive == TypeFloat || t.Primitive == TypeDouble {
			if f.NaNValueCounts == nil {
				f.NaNValueCounts = map[int]int64{}
			}
			f.NaNValueCounts[id] = s.nans[id]
		}
		lo, ok := s.lower[id]
		if !ok {
			continue
		}
		lb, err := SerializeValue(t, lo)
		if err != nil {
			return fmt.Errorf("column stats: column id %d: %w", id, err)
		}
		ub, err := SerializeValue(t, s.upper[id])
		if err != nil {
			return fmt.Errorf("column stats: column id %d: %w", id, err)
		}
		switch t.Primitive {
		case TypeString:
			lb, ub = truncateLower(lb, true), truncateUpper(ub, true)
		case TypeBinary:
			lb, ub = truncateLower(lb, false), truncateUpper(ub, false)
		}
		f.LowerBounds[id] = lb
		if ub != nil {
			f.UpperBounds[id] = ub
		}
	}
	return nil
}

// truncateLower keeps the first boundLength characters (bytes for
// binary): a prefix is never greater than the value.
func truncateLower(b []byte, text bool) []byte {
	if !text {
		return b[:min(len(b), boundLength)]
	}
	n, i := 0, 0
	for i < len(b) && n < boundLength {
		_, size := utf8.DecodeRune(b[i:])
		i += size
		n++
	}
	return b[:i]
}

// truncateUpper keeps a prefix whose last character (byte) is incremented,
// so the bound stays above every value; nil when no prefix can be
// incremented (the caller then writes no upper bound).
func truncateUpper(b []byte, text bool) []byte {
	p := truncateLower(b, text)
	if len(p) == len(b) {
		return b
	}
	if !text {
		p = append([]byte(nil), p...)
		for i := len(p) - 1; i >= 0; i-- {
			if p[i] < 0xff {
				p[i]++
				return p[:i+1]
			}
		}
		return nil
	}
	runes := []rune(string(p))
	for i := len(runes) - 1; i >= 0; i-- {
		for r := runes[i] + 1; r <= utf8.MaxRune; r++ {
			if utf8.ValidRune(r) {
				runes[i] = r
				return []byte(string(runes[:i+1]))
			}
		}
	}
	return nil
}
