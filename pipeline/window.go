package pipeline

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// Reasons a dataset drops a row it made: the values of
// kinesis_ingest_records_filtered_total's reason label. A dropped row is no
// dead letter: the dataset's own rules say it does not want it.
const (
	FilteredSince  = "since"  // the row's timestamp is before the dataset's since
	FilteredUntil  = "until"  // the row's timestamp is at or after the dataset's until
	FilteredSample = "sample" // the row's hash falls outside the dataset's sample rate
)

// Window selects, among the rows a dataset makes, those inside its time
// window (since inclusive, until exclusive, on the row's timestamp field) and
// its sample. The zero Window keeps every row.
//
// The sample is a hash of the row's values, not a random draw: a replay of
// the same records, on any worker, keeps exactly the same rows.
type Window struct {
	// Timestamp is the index of the timestamp field in the row.
	Timestamp    int
	Since, Until time.Time // zero: unbounded
	// SampleRate in (0, 1) keeps that fraction of rows; 0 or 1 keeps all.
	SampleRate float64
	// SampleColumns are the indexes of the row fields hashed.
	SampleColumns []int
}

// Active reports whether the window drops anything at all.
func (w *Window) Active() bool {
	return w != nil && (!w.Since.IsZero() || !w.Until.IsZero() || (w.SampleRate > 0 && w.SampleRate < 1))
}

// Reason returns "" to keep the row, else why it is dropped (FilteredSince,
// FilteredUntil, FilteredSample).
func (w *Window) Reason(fields []record.Field) string {
	if w == nil {
		return ""
	}
	if !w.Since.IsZero() || !w.Until.IsZero() {
		if r := w.TimeReason(fields[w.Timestamp].Value); r != "" {
			return r
		}
	}
	if w.SampleRate > 0 && w.SampleRate < 1 && !w.sampled(fields) {
		return FilteredSample
	}
	return ""
}

// TimeReason is Reason's time window alone, on a timestamp value.
func (w *Window) TimeReason(ts any) string {
	t, ok := ts.(time.Time)
	if !ok {
		return ""
	}
	if !w.Since.IsZero() && t.Before(w.Since) {
		return FilteredSince
	}
	if !w.Until.IsZero() && !t.Before(w.Until) {
		return FilteredUntil
	}
	return ""
}

func (w *Window) sampled(fields []record.Field) bool {
	h := fnv1a(fnvOffset)
	for _, i := range w.SampleColumns {
		h.value(fields[i].Value)
	}
	// FNV's high bits mix poorly for short inputs: finish with a
	// murmur-style avalanche, then the top 53 bits make a uniform float.
	sum := uint64(h)
	sum ^= sum >> 33
	sum *= 0xff51afd7ed558ccd
	sum ^= sum >> 33
	return float64(sum>>11)/(1<<53) < w.SampleRate
}

// fnv1a is a 64-bit FNV-1a hash kept in a value, so that hashing a row
// allocates nothing (hash/fnv's Hash64 escapes to the heap).
type fnv1a uint64

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func (h *fnv1a) byte(b byte) { *h = (*h ^ fnv1a(b)) * fnvPrime }

func (h *fnv1a) u64(tag byte, n uint64) {
	h.byte(tag)
	for k := 0; k < 64; k += 8 {
		h.byte(byte(n >> k))
	}
}

func (h *fnv1a) str(tag byte, s string) {
	h.u64(tag, uint64(len(s)))
	for i := 0; i < len(s); i++ {
		h.byte(s[i])
	}
}

// value hashes v in a form that depends only on its value (map keys sorted,
// a type tag and a length before each value), so that the hash is the same
// in every process.
func (h *fnv1a) value(v any) {
	switch x := v.(type) {
	case nil:
		h.u64('n', 0)
	case int64:
		h.u64('i', uint64(x))
	case float64:
		h.u64('f', math.Float64bits(x))
	case bool:
		if x {
			h.u64('b', 1)
		} else {
			h.u64('b', 0)
		}
	case string:
		h.str('s', x)
	case []byte:
		h.str('y', string(x)) // the conversion does not allocate: it is only read
	case time.Time:
		h.u64('t', uint64(x.UnixMicro()))
	case record.Date:
		h.u64('d', uint64(x.Year)<<16|uint64(x.Month)<<8|uint64(x.Day))
	case record.Decimal:
		h.str('m', string(x))
	case []any:
		h.u64('l', uint64(len(x)))
		for _, e := range x {
			h.value(e)
		}
	case []float64:
		h.u64('e', uint64(len(x)))
		for _, e := range x {
			h.u64('f', math.Float64bits(e))
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		h.u64('o', uint64(len(keys)))
		for _, k := range keys {
			h.str('s', k)
			h.value(x[k])
		}
	case []record.Field:
		h.u64('r', uint64(len(x)))
		for _, f := range x {
			h.str('s', f.Name)
			h.value(f.Value)
		}
	default:
		h.str('?', fmt.Sprintf("%T:%v", x, x))
	}
}
