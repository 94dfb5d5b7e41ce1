package schema

import (
	"time"
	"unsafe"
)

// boxes holds the values of a batch's rows that an interface cannot hold
// without a heap copy of its own (a string, an int64 of 256 or more, a
// float64, a time.Time): they are stored in slabs, and each row's interface
// points at its slot. One allocation per 128 values instead of one per value;
// those boxes were most of the fast path's allocations and, through the
// garbage collector, about a fifth of the hot path's CPU.
//
// The interfaces are built as the runtime builds them (a type word and a
// pointer to the value), only the pointer goes into a slab instead of a fresh
// object. That is sound because a slot is written once, before its interface
// exists, and never again (slabs are only appended to, a full one is left to
// the rows that point into it), and because an interior pointer keeps the
// whole slab alive for the garbage collector.
type boxes struct {
	strs   []string
	ints   []int64
	floats []float64
	times  []time.Time
}

const boxSlab = 128

type eface struct {
	typ, data unsafe.Pointer
}

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	strType   = typeWord("")
	intType   = typeWord(int64(0))
	floatType = typeWord(float64(0))
	timeType  = typeWord(time.Time{})
)

func boxed(typ unsafe.Pointer, p unsafe.Pointer) (v any) {
	*(*eface)(unsafe.Pointer(&v)) = eface{typ, p}
	return v
}

func (b *boxes) str(s string) any {
	if b == nil || s == "" {
		return s
	}
	if len(b.strs) == cap(b.strs) {
		b.strs = make([]string, 0, boxSlab)
	}
	b.strs = append(b.strs, s)
	return boxed(strType, unsafe.Pointer(&b.strs[len(b.strs)-1]))
}

func (b *boxes) int(i int64) any {
	if b == nil || i >= 0 && i < 256 { // the runtime boxes these without allocating
		return i
	}
	if len(b.ints) == cap(b.ints) {
		b.ints = make([]int64, 0, boxSlab)
	}
	b.ints = append(b.ints, i)
	return boxed(intType, unsafe.Pointer(&b.ints[len(b.ints)-1]))
}

func (b *boxes) float(f float64) any {
	if b == nil {
		return f
	}
	if len(b.floats) == cap(b.floats) {
		b.floats = make([]float64, 0, boxSlab)
	}
	b.floats = append(b.floats, f)
	return boxed(floatType, unsafe.Pointer(&b.floats[len(b.floats)-1]))
}

func (b *boxes) time(t time.Time) any {
	if b == nil {
		return t
	}
	if len(b.times) == cap(b.times) {
		b.times = make([]time.Time, 0, boxSlab)
	}
	b.times = append(b.times, t)
	return boxed(timeType, unsafe.Pointer(&b.times[len(b.times)-1]))
}
