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
// exists, and not again until reset, which the caller calls only once every
// row boxed before is out of use (JSONRecord.Reset); a slab only ever holds
// one type, so even a row kept past that would read a value of its own type.
// An interior pointer keeps the whole slab alive for the garbage collector.
type boxes struct {
	strs   slab[string]
	ints   slab[int64]
	floats slab[float64]
	times  slab[time.Time]
}

const boxSlab = 128

// slab is the slots of one type: cur is being filled; full were filled
// since the last reset; spare are cleared ones reset gave back, used before
// any new one is made, so that a JSONRecord reused from batch to batch stops
// allocating (and the garbage collector, with its write barriers on every
// row's field, stops running) once it has seen its largest batch.
type slab[T any] struct {
	cur         []T
	full, spare [][]T
}

func (s *slab[T]) put(v T) unsafe.Pointer {
	if len(s.cur) == cap(s.cur) {
		if s.cur != nil {
			s.full = append(s.full, s.cur)
		}
		if n := len(s.spare); n > 0 {
			s.cur, s.spare = s.spare[n-1][:0], s.spare[:n-1]
		} else {
			s.cur = make([]T, 0, boxSlab)
		}
	}
	s.cur = append(s.cur, v)
	return unsafe.Pointer(&s.cur[len(s.cur)-1])
}

// reset makes every slot reusable, cleared so that the slabs keep no
// record's text alive.
func (s *slab[T]) reset() {
	if s.cur != nil {
		s.full = append(s.full, s.cur)
		s.cur = nil
	}
	for i, f := range s.full {
		clear(f)
		s.spare = append(s.spare, f)
		s.full[i] = nil
	}
	s.full = s.full[:0]
}

func (b *boxes) reset() {
	b.strs.reset()
	b.ints.reset()
	b.floats.reset()
	b.times.reset()
}

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
	return boxed(strType, b.strs.put(s))
}

func (b *boxes) int(i int64) any {
	if b == nil || i >= 0 && i < 256 { // the runtime boxes these without allocating
		return i
	}
	return boxed(intType, b.ints.put(i))
}

func (b *boxes) float(f float64) any {
	if b == nil {
		return f
	}
	return boxed(floatType, b.floats.put(f))
}

func (b *boxes) time(t time.Time) any {
	if b == nil {
		return t
	}
	return boxed(timeType, b.times.put(t))
}
