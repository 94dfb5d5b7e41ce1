// Package rowcopy copies rows into memory of their own: the pipeline reuses
// a batch's rows, their Fields, their strings and boxed values once a sink's
// Accept returns, and the lake's sinks keep rows for minutes.
package rowcopy

import (
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// Rows copies rows in a handful of allocations for the whole call instead of
// about 17 per row. Strings and byte values go into one byte arena, scalars
// into one slab per type that the copies' interfaces point into (as schema's
// boxes do; a slab is written once, before any interface points at it, and
// never reused, so the garbage collector keeps it as long as a row does).
// Lists, maps and structs, rare in rows, are copied value by value. Field
// names are not copied: they are the dataset's, which outlive every row.
func Rows(src []*record.Row) []record.Row {
	var nFields, nBytes, nInts, nFloats, nTimes, nStrs int
	for _, r := range src {
		nFields += len(r.Fields)
		o := &r.Origin
		nBytes += len(o.Source) + len(o.StreamARN) + len(o.ShardID) + len(o.SequenceNumber) + len(o.PartitionKey)
		for _, f := range r.Fields {
			switch v := f.Value.(type) {
			case string:
				nBytes += len(v)
				nStrs++
			case []byte:
				nBytes += len(v)
				nStrs++
			case record.Decimal:
				nBytes += len(v)
			case int64:
				nInts++
			case float64:
				nFloats++
			case time.Time:
				nTimes++
			}
		}
	}
	a := arena{
		bytes:  make([]byte, 0, nBytes),
		ints:   make([]int64, 0, nInts),
		floats: make([]float64, 0, nFloats),
		times:  make([]time.Time, 0, nTimes),
		strs:   make([]string, 0, nStrs),
		slices: make([][]byte, 0, nStrs),
	}
	rows := make([]record.Row, len(src))
	fields := make([]record.Field, nFields)
	var prev *record.Origin
	for i, r := range src {
		c := &rows[i]
		c.Dataset, c.Delete = r.Dataset, r.Delete
		o, co := &r.Origin, &c.Origin
		*co = *o
		// A batch's rows share their source, stream and shard.
		if prev != nil && o.Source == prev.Source && o.StreamARN == prev.StreamARN && o.ShardID == prev.ShardID {
			co.Source, co.StreamARN, co.ShardID = rows[i-1].Origin.Source, rows[i-1].Origin.StreamARN, rows[i-1].Origin.ShardID
		} else {
			co.Source, co.StreamARN, co.ShardID = a.str(o.Source), a.str(o.StreamARN), a.str(o.ShardID)
		}
		prev = o
		co.SequenceNumber, co.PartitionKey = a.str(o.SequenceNumber), a.str(o.PartitionKey)
		c.Fields, fields = fields[:len(r.Fields):len(r.Fields)], fields[len(r.Fields):]
		for j, f := range r.Fields {
			c.Fields[j] = record.Field{Name: f.Name, Value: a.value(f.Value)}
		}
	}
	return rows
}

// arena is one copy's memory. Its slices are sized for the copy up front;
// should one grow anyway, what points into the old array stays valid (the
// array is never written again).
type arena struct {
	bytes  []byte
	ints   []int64
	floats []float64
	times  []time.Time
	// strs and slices hold the headers of string and []byte values: an
	// interface holds a pointer to one, not the header itself.
	strs   []string
	slices [][]byte
}

func (a *arena) str(s string) string {
	if s == "" {
		return ""
	}
	n := len(a.bytes)
	a.bytes = append(a.bytes, s...)
	return unsafe.String(&a.bytes[n], len(s))
}

func (a *arena) value(v any) any {
	switch x := v.(type) {
	case nil, bool:
		return x
	case int64:
		if x >= 0 && x < 256 { // the runtime boxes these without allocating
			return x
		}
		a.ints = append(a.ints, x)
		return boxedAt(intWord, unsafe.Pointer(&a.ints[len(a.ints)-1]))
	case float64:
		a.floats = append(a.floats, x)
		return boxedAt(floatWord, unsafe.Pointer(&a.floats[len(a.floats)-1]))
	case time.Time:
		a.times = append(a.times, x)
		return boxedAt(timeWord, unsafe.Pointer(&a.times[len(a.times)-1]))
	case string:
		if x == "" {
			return x
		}
		a.strs = append(a.strs, a.str(x))
		return boxedAt(strWord, unsafe.Pointer(&a.strs[len(a.strs)-1]))
	case []byte:
		if x == nil { // a null, as the encoders read it
			return x
		}
		n := len(a.bytes)
		a.bytes = append(a.bytes, x...)
		a.slices = append(a.slices, a.bytes[n:len(a.bytes):len(a.bytes)])
		return boxedAt(bytesWord, unsafe.Pointer(&a.slices[len(a.slices)-1]))
	case record.Decimal:
		return record.Decimal(a.str(string(x)))
	}
	return Clone(v)
}

type eface struct{ typ, data unsafe.Pointer }

func typeWordOf(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	intWord   = typeWordOf(int64(0))
	floatWord = typeWordOf(float64(0))
	timeWord  = typeWordOf(time.Time{})
	strWord   = typeWordOf("")
	bytesWord = typeWordOf([]byte(nil))
)

// boxedAt is an interface of the type typ whose value is at p.
func boxedAt(typ, p unsafe.Pointer) (v any) {
	*(*eface)(unsafe.Pointer(&v)) = eface{typ, p}
	return v
}

// Clone copies v deep, value by value.
func Clone(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case bool:
		return x
	case int64:
		return x
	case float64:
		return x
	case string:
		return strings.Clone(x)
	case []byte:
		return slices.Clone(x)
	case time.Time:
		return x
	case record.Date:
		return x
	case record.Decimal:
		return record.Decimal(strings.Clone(string(x)))
	case []float64:
		return slices.Clone(x)
	case []any:
		if x == nil {
			return x // null, not an empty value
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Clone(e)
		}
		return out
	case map[string]any:
		if x == nil {
			return x // null, not an empty value
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[strings.Clone(k)] = Clone(e)
		}
		return out
	case []record.Field:
		if x == nil {
			return x // null, not an empty value
		}
		out := make([]record.Field, len(x))
		for i, f := range x {
			out[i] = record.Field{Name: f.Name, Value: Clone(f.Value)}
		}
		return out
	}
	return v
}

// Size estimates a row's bytes: its values' sizes plus its origin.
func Size(r *record.Row) int64 {
	n := int64(len(r.Origin.Source) + len(r.Origin.ShardID) + len(r.Origin.SequenceNumber) + 16)
	for _, f := range r.Fields {
		n += valueSize(f.Value)
	}
	return n
}

func valueSize(v any) int64 {
	switch v := v.(type) {
	case string:
		return int64(len(v))
	case []byte:
		return int64(len(v))
	case record.Decimal:
		return int64(len(v))
	case []float64:
		return int64(8 * len(v))
	case []any:
		var n int64
		for _, e := range v {
			n += valueSize(e)
		}
		return n
	case map[string]any:
		var n int64
		for k, e := range v {
			n += int64(len(k)) + valueSize(e)
		}
		return n
	case []record.Field:
		var n int64
		for _, f := range v {
			n += int64(len(f.Name)) + valueSize(f.Value)
		}
		return n
	}
	return 8
}
