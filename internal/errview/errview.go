// Package errview reads dead letters back and summarizes them for a person:
// counts by reason and by field, and the latest dead letters with a readable
// preview of their data. It backs `kinesis-ingest errors` and the /errors
// pages of the metrics port.
//
// The field of a schema_error is the path its error starts with (the text
// before the first ": " outside quoted keys and brackets: `amount` in
// `amount: want float, got string "x"`, `items[].price` in
// `items[3].price: ...`, list indexes folded to [] so that one bad field
// counts once whatever the index). Other reasons have no field.
//
// Time filters apply to the record's Kinesis arrival time, the only time a
// dead letter carries.
package errview

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// Source is where dead letters are read back from.
type Source interface {
	// Scan calls fn once for every dead letter it can read, in no particular
	// order, until fn returns an error (which Scan returns). It may leave out
	// letters f does not select (a database filters in its query); the
	// caller applies f again. What it cannot parse is counted in the stats,
	// not returned. fn may keep the letter.
	Scan(ctx context.Context, f Filter, fn func(*record.DeadLetter) error) (ScanStats, error)
}

// ScanStats describes what a Scan read.
type ScanStats struct {
	Files   int `json:"files"`
	Skipped int `json:"skipped_lines,omitempty"` // lines that are not dead letters
}

// ErrNotSupported is returned by a Source for a dead-letter sink kind that
// this build cannot read back.
var ErrNotSupported = errors.New("reading dead letters back is not supported for this sink kind")

// Unsupported is the Source of a dead-letter sink kind that cannot be read
// back yet; Scan returns an error wrapping ErrNotSupported that names kind.
type Unsupported struct{ Kind string }

func (u Unsupported) Scan(context.Context, Filter, func(*record.DeadLetter) error) (ScanStats, error) {
	return ScanStats{}, fmt.Errorf("the %s dead-letter sink: %w yet; query its table directly", u.Kind, ErrNotSupported)
}

// Filter selects dead letters. Zero fields select everything.
type Filter struct {
	Reasons []string  // any of these reasons
	Shard   string    // this shard id
	Since   time.Time // arrival time at or after
	Until   time.Time // arrival time before
}

func (f Filter) match(d *record.DeadLetter) bool {
	if len(f.Reasons) > 0 {
		ok := false
		for _, r := range f.Reasons {
			ok = ok || string(d.Reason) == r
		}
		if !ok {
			return false
		}
	}
	if f.Shard != "" && d.ShardID != f.Shard {
		return false
	}
	if !f.Since.IsZero() && d.ArrivalTime.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !d.ArrivalTime.Before(f.Until) {
		return false
	}
	return true
}

// Query is a Filter plus how many of the latest dead letters to show.
type Query struct {
	Filter
	// Limit is how many of the latest dead letters to list: DefaultLimit when
	// 0, at most MaxLimit.
	Limit int
}

const (
	DefaultLimit = 20
	MaxLimit     = 1000
	// PreviewBytes is how much of a record's data a preview shows.
	PreviewBytes = 256
	// MaxErrorBytes is how much of a dead letter's error an entry shows.
	MaxErrorBytes = 1024
)

// Summary is the errors view.
type Summary struct {
	Filter   FilterView    `json:"filter"`
	Stats    ScanStats     `json:"scanned"`
	Total    int           `json:"total"`
	ByReason []ReasonCount `json:"by_reason"`
	ByField  []FieldCount  `json:"by_field"`
	Latest   []Entry       `json:"latest"`
}

// FilterView echoes the filter applied.
type FilterView struct {
	Reasons []string   `json:"reasons,omitempty"`
	Shard   string     `json:"shard,omitempty"`
	Since   *time.Time `json:"since,omitempty"`
	Until   *time.Time `json:"until,omitempty"`
	Limit   int        `json:"limit"`
}

// ReasonCount is how many dead letters have a reason.
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// FieldCount is how many schema errors name a field of a dataset.
type FieldCount struct {
	Dataset string `json:"dataset"`
	Field   string `json:"field"`
	Count   int    `json:"count"`
}

// Entry is one dead letter as shown.
type Entry struct {
	Source         string    `json:"source"`
	ShardID        string    `json:"shard_id"`
	SequenceNumber string    `json:"sequence_number"`
	SubSequence    int       `json:"subsequence"`
	PartitionKey   string    `json:"partition_key"`
	ArrivalTime    time.Time `json:"arrival_time"`
	Dataset        string    `json:"dataset,omitempty"`
	Reason         string    `json:"reason"`
	Field          string    `json:"field,omitempty"`
	Error          string    `json:"error"`
	Size           int       `json:"size"` // bytes of data
	Preview        Preview   `json:"preview"`
}

// Preview is the start of a record's data in a readable form.
type Preview struct {
	// Encoding is "text" (the data is printable UTF-8, shown as is) or "hex".
	Encoding  string `json:"encoding"`
	Text      string `json:"text"`
	Truncated bool   `json:"truncated,omitempty"`
}

// Summarize scans src and builds the view of the letters q selects.
func Summarize(ctx context.Context, src Source, q Query) (*Summary, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	q.Limit = min(q.Limit, MaxLimit)
	s := &Summary{Filter: q.view()}
	reasons := map[string]int{}
	fields := map[[2]string]int{}
	latest := &newest{limit: q.Limit}
	stats, err := src.Scan(ctx, q.Filter, func(d *record.DeadLetter) error {
		if !q.match(d) {
			return nil
		}
		s.Total++
		reasons[string(d.Reason)]++
		if f := fieldOf(d); f != "" {
			fields[[2]string{d.Dataset, f}]++
		}
		latest.add(d)
		return nil
	})
	s.Stats = stats
	if err != nil {
		return nil, err
	}
	s.ByReason = make([]ReasonCount, 0, len(reasons))
	for r, n := range reasons {
		s.ByReason = append(s.ByReason, ReasonCount{Reason: r, Count: n})
	}
	sortBy(s.ByReason, func(a, b ReasonCount) bool {
		return a.Count > b.Count || a.Count == b.Count && a.Reason < b.Reason
	})
	s.ByField = make([]FieldCount, 0, len(fields))
	for k, n := range fields {
		s.ByField = append(s.ByField, FieldCount{Dataset: k[0], Field: k[1], Count: n})
	}
	sortBy(s.ByField, func(a, b FieldCount) bool {
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Dataset != b.Dataset {
			return a.Dataset < b.Dataset
		}
		return a.Field < b.Field
	})
	s.Latest = make([]Entry, 0, latest.Len())
	for _, d := range latest.sorted() {
		s.Latest = append(s.Latest, entryOf(d))
	}
	return s, nil
}

func (q Query) view() FilterView {
	v := FilterView{Reasons: q.Reasons, Shard: q.Shard, Limit: q.Limit}
	if !q.Since.IsZero() {
		t := q.Since.UTC()
		v.Since = &t
	}
	if !q.Until.IsZero() {
		t := q.Until.UTC()
		v.Until = &t
	}
	return v
}

func entryOf(d *record.DeadLetter) Entry {
	return Entry{
		Source:         d.Source,
		ShardID:        d.ShardID,
		SequenceNumber: d.SequenceNumber,
		SubSequence:    d.SubSequence,
		PartitionKey:   d.PartitionKey,
		ArrivalTime:    d.ArrivalTime.UTC(),
		Dataset:        d.Dataset,
		Reason:         string(d.Reason),
		Field:          fieldOf(d),
		Error:          clip(d.Error, MaxErrorBytes),
		Size:           len(d.Data),
		Preview:        previewOf(d.Data, PreviewBytes),
	}
}

// fieldOf is the field a schema_error names, "" for other reasons.
func fieldOf(d *record.DeadLetter) string {
	if d.Reason != record.ReasonSchema {
		return ""
	}
	return FieldPath(d.Error)
}

// FieldPath returns the path an error message starts with: the text before
// its first ": " outside brackets and quoted keys, with list indexes folded
// to "[]". It returns "" when the message does not start with a path (it has
// whitespace before that point, or no ": " at all).
func FieldPath(msg string) string {
	depth, quoted, escaped := 0, false, false
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		switch {
		case quoted:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				quoted = false
			}
		case c == '"':
			quoted = true
		case c == '[':
			depth++
		case c == ']':
			depth--
		case c == ':' && depth == 0:
			if i == 0 || i+1 >= len(msg) || msg[i+1] != ' ' {
				return ""
			}
			return foldIndexes(msg[:i])
		case c == ' ' || c == '\t' || c == '\n':
			return ""
		}
	}
	return ""
}

// foldIndexes turns items[3].price into items[].price.
func foldIndexes(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '[' {
			j := i + 1
			for j < len(p) && p[j] >= '0' && p[j] <= '9' {
				j++
			}
			if j > i+1 && j < len(p) && p[j] == ']' {
				b.WriteString("[]")
				i = j
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// previewOf shows data as text when it is printable UTF-8, else as hex; at
// most max bytes of data either way (cut on a rune boundary).
func previewOf(data []byte, max int) Preview {
	if printable(data) {
		if len(data) <= max {
			return Preview{Encoding: "text", Text: string(data)}
		}
		cut := max
		for cut > 0 && !utf8.RuneStart(data[cut]) {
			cut--
		}
		return Preview{Encoding: "text", Text: string(data[:cut]), Truncated: true}
	}
	n := min(len(data), max/2) // two hex digits per byte: the same width as text
	const digits = "0123456789abcdef"
	b := make([]byte, 2*n)
	for i, c := range data[:n] {
		b[2*i], b[2*i+1] = digits[c>>4], digits[c&0xf]
	}
	return Preview{Encoding: "hex", Text: string(b), Truncated: n < len(data)}
}

func printable(data []byte) bool {
	if !utf8.Valid(data) {
		return false
	}
	for _, r := range string(data) {
		if r != '\n' && r != '\t' && r != '\r' && !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// clip cuts s to at most max bytes on a rune boundary, marking the cut.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// ParseTime reads a --since/--until value: an RFC 3339 time, or a duration
// back from now ("90m", "1h30m", "7d").
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-11-01T12:00:00Z) nor a duration back from now (90m, 1h, 7d)", s)
	}
	return now.Add(-d), nil
}

// ParseReasons splits comma-separated reasons and checks each is known.
func ParseReasons(values ...string) ([]string, error) {
	var out []string
	for _, v := range values {
		for _, r := range strings.Split(v, ",") {
			r = strings.TrimSpace(r)
			if r == "" {
				continue
			}
			switch record.Reason(r) {
			case record.ReasonDecode, record.ReasonSchema, record.ReasonNoRoute, record.ReasonSinkRejected:
				out = append(out, r)
			default:
				return nil, fmt.Errorf("unknown reason %q: use %s, %s, %s or %s", r,
					record.ReasonDecode, record.ReasonSchema, record.ReasonNoRoute, record.ReasonSinkRejected)
			}
		}
	}
	return out, nil
}

// newest keeps the limit most recent letters (a min-heap on recency).
type newest struct {
	limit int
	h     []*record.DeadLetter
}

// after orders letters by arrival time, then shard, sequence number and
// subsequence: a total order, so the view is the same on every run.
func after(a, b *record.DeadLetter) bool {
	if !a.ArrivalTime.Equal(b.ArrivalTime) {
		return a.ArrivalTime.After(b.ArrivalTime)
	}
	if a.ShardID != b.ShardID {
		return a.ShardID > b.ShardID
	}
	if len(a.SequenceNumber) != len(b.SequenceNumber) {
		return len(a.SequenceNumber) > len(b.SequenceNumber)
	}
	if a.SequenceNumber != b.SequenceNumber {
		return a.SequenceNumber > b.SequenceNumber
	}
	return a.SubSequence > b.SubSequence
}

func (n *newest) Len() int           { return len(n.h) }
func (n *newest) Less(i, j int) bool { return after(n.h[j], n.h[i]) }
func (n *newest) Swap(i, j int)      { n.h[i], n.h[j] = n.h[j], n.h[i] }
func (n *newest) Push(x any)         { n.h = append(n.h, x.(*record.DeadLetter)) }
func (n *newest) Pop() any {
	x := n.h[len(n.h)-1]
	n.h = n.h[:len(n.h)-1]
	return x
}

func (n *newest) add(d *record.DeadLetter) {
	if len(n.h) < n.limit {
		heap.Push(n, d)
		return
	}
	if after(d, n.h[0]) {
		n.h[0] = d
		heap.Fix(n, 0)
	}
}

// sorted returns the letters newest first.
func (n *newest) sorted() []*record.DeadLetter {
	out := append([]*record.DeadLetter(nil), n.h...)
	sortBy(out, after)
	return out
}
