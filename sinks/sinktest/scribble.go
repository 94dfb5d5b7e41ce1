package sinktest

import (
	"time"
	"unsafe"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// AcceptCopies reuses rows' memory after Accept as the pipeline does: it
// clears and refills the Fields slices and the Row slice, and the decoders
// keep a batch's scalars in slabs that the next batch overwrites
// (schema/box.go), so a row's interface may point at memory that changes.

// slots holds scalars the way those slabs do; reuse overwrites them all.
type slots struct{ overwrite []func() }

// hold returns v with every scalar in it (at the top, in lists, maps and
// structs) that the decoders box moved into a slot of its own: a non-empty
// string, an int64 the runtime does not box in static memory (outside
// 0..255), a float64, a time.Time. Other scalars (a bool, a Date, a
// Decimal) reach a sink in boxes of the runtime's that nobody reuses.
func (s *slots) hold(v any) any {
	switch x := v.(type) {
	case int64:
		if x >= 0 && x < 256 {
			return x
		}
		return slot(s, x, ^x)
	case float64:
		return slot(s, x, otherFloat(x))
	case string:
		if x == "" {
			return x
		}
		return slot(s, x, x+" (reused)")
	case time.Time:
		return slot(s, x, x.Add(time.Hour))
	case []any:
		for i := range x {
			x[i] = s.hold(x[i])
		}
	case map[string]any:
		for k, e := range x {
			x[k] = s.hold(e)
		}
	case []record.Field:
		for i := range x {
			x[i].Value = s.hold(x[i].Value)
		}
	}
	return v
}

func (s *slots) reuse() {
	for _, o := range s.overwrite {
		o()
	}
}

// slot returns v as an interface whose value lives in a slot that reuse
// sets to later.
func slot[T any](s *slots, v, later T) any {
	p := new(T)
	*p = v
	s.overwrite = append(s.overwrite, func() { *p = later })
	return boxAt(p)
}

// boxAt returns an interface holding *p that points at p itself, as the
// runtime would have built it had it allocated p for the conversion. Only
// for types an interface holds by pointer (all of hold's: none is a pointer
// or a single-pointer struct).
func boxAt[T any](p *T) any {
	v := any(*p)
	(*[2]unsafe.Pointer)(unsafe.Pointer(&v))[1] = unsafe.Pointer(p)
	return v
}

// scribbleRows overwrites rows, their Fields and every value's contents in
// place, then re-slices each Fields, as a caller filling the memory with
// its next batch does.
func scribbleRows(rows []record.Row) {
	for i := range rows {
		scribbleFields(rows[i].Fields)
		rows[i] = record.Row{Dataset: "reused", Origin: record.Origin{ShardID: "reused", SequenceNumber: "1"},
			Fields: rows[i].Fields[:min(1, len(rows[i].Fields))]}
	}
}

func scribbleFields(fs []record.Field) {
	for i := range fs {
		scribble(fs[i].Value)
		fs[i] = record.Field{Name: "reused", Value: "reused"}
	}
}

// scribble overwrites what v refers to: slice contents, list elements, map
// entries, struct fields.
func scribble(v any) {
	switch x := v.(type) {
	case []byte:
		for i := range x {
			x[i] ^= 0xff
		}
	case []float64:
		for i := range x {
			x[i] = otherFloat(x[i])
		}
	case []any:
		for i, e := range x {
			scribble(e)
			x[i] = "reused"
		}
	case map[string]any:
		if x == nil {
			return
		}
		for k, e := range x {
			scribble(e)
			x[k] = "reused"
		}
		x["reused"] = true
	case []record.Field:
		scribbleFields(x)
	}
}

// otherFloat returns a float other than x.
func otherFloat(x float64) float64 {
	if y := x + 1; y != x {
		return y
	}
	return x / 2
}
