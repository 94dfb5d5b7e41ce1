package pipeline

import (
	"encoding/binary"
	"fmt"
	"hash"
	"hash/fnv"
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
	h := fnv.New64a()
	for _, i := range w.SampleColumns {
		hashValue(h, fields[i].Value)
	}
	// FNV's low bits are its best mixed; the top 53 make a uniform float.
	sum := h.Sum64()
	sum ^= sum >> 33
	sum *= 0xff51afd7ed558ccd
	sum ^= sum >> 33
	return float64(sum>>11)/(1<<53) < w.SampleRate
}

// hashValue writes v in a form that depends only on its value (map keys
// sorted, a type tag before each value) so that the hash is the same in
// every process.
func hashValue(h hash.Hash64, v any) {
	var buf [9]byte
	put := func(tag byte, n uint64) {
		buf[0] = tag
		binary.LittleEndian.PutUint64(buf[1:], n)
		h.Write(buf[:])
	}
	putBytes := func(tag byte, b []byte) {
		put(tag, uint64(len(b)))
		h.Write(b)
	}
	switch x := v.(type) {
	case nil:
		put('n', 0)
	case int64:
		put('i', uint64(x))
	case float64:
		put('f', math.Float64bits(x))
	case bool:
		if x {
			put('b', 1)
		} else {
			put('b', 0)
		}
	case string:
		putBytes('s', []byte(x))
	case []byte:
		putBytes('y', x)
	case time.Time:
		put('t', uint64(x.UnixMicro()))
	case record.Date:
		put('d', uint64(x.Year)<<16|uint64(x.Month)<<8|uint64(x.Day))
	case record.Decimal:
		putBytes('m', []byte(x))
	case []any:
		put('l', uint64(len(x)))
		for _, e := range x {
			hashValue(h, e)
		}
	case []float64:
		put('e', uint64(len(x)))
		for _, e := range x {
			put('f', math.Float64bits(e))
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		put('o', uint64(len(keys)))
		for _, k := range keys {
			putBytes('s', []byte(k))
			hashValue(h, x[k])
		}
	case []record.Field:
		put('r', uint64(len(x)))
		for _, f := range x {
			putBytes('s', []byte(f.Name))
			hashValue(h, f.Value)
		}
	default:
		putBytes('?', fmt.Appendf(nil, "%T:%v", x, x))
	}
}
