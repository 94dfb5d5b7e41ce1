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
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// Source is where dead letters are read back from.
type Source interface {
	// Scan reads the dead letters q selects into t: either t.Add for each
	// letter (it may add letters q does not select; t applies q again), or,
	// for a source that counts for itself (a database), t.Count for each
	// group of letters and t.Offer for at least the newest q.Limit of them.
	// A Letter keeps only the start of the data, so a scan holds at most
	// q.Limit small letters whatever the size of the records. What the
	// source cannot parse is counted in the stats, not returned.
	Scan(ctx context.Context, q Query, t *Tally) (ScanStats, error)
}

// Letter is a dead letter as the view reads it: all but its data, of which
// only the size and the first bytes are kept.
type Letter struct {
	record.Origin
	Dataset string
	Reason  record.Reason
	Error   string // its start: at least MaxErrorBytes when longer
	Size    int    // bytes of data
	// Head is the start of the data: at least PreviewBytes plus
	// utf8.UTFMax-1 of it (so a rune cut by the preview can be completed),
	// or all of it when shorter.
	Head []byte
}

// HeadBytes is how much of a record's data a Letter keeps.
const HeadBytes = PreviewBytes + utf8.UTFMax - 1

// LetterOf keeps what the view needs of d.
func LetterOf(d *record.DeadLetter) *Letter {
	return &Letter{Origin: d.Origin, Dataset: d.Dataset, Reason: d.Reason, Error: clipBytes(d.Error, MaxErrorBytes+1),
		Size: len(d.Data), Head: bytes.Clone(d.Data[:min(len(d.Data), HeadBytes)])}
}

// clipBytes cuts s to at most n bytes, keeping nothing else of it alive.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.Clone(s[:n])
}

// Tally collects a scan: the counts of every selected letter and the newest
// q.Limit letters. It is not safe for concurrent use.
type Tally struct {
	q       Query
	total   int
	reasons map[string]int
	fields  map[[2]string]int
	latest  newest
}

func newTally(q Query) *Tally {
	return &Tally{q: q, reasons: map[string]int{}, fields: map[[2]string]int{}, latest: newest{limit: q.Limit}}
}

// Add counts l and offers it, if q selects it.
func (t *Tally) Add(l *Letter) {
	if !t.q.match(l) {
		return
	}
	t.Count(l.Reason, l.Dataset, l.Error, 1)
	t.Offer(l)
}

// Count counts n selected letters of a reason and dataset whose error
// starts with err (which names the field of a schema_error).
func (t *Tally) Count(reason record.Reason, dataset, err string, n int) {
	t.total += n
	t.reasons[string(reason)] += n
	if f := fieldOf(reason, err); f != "" {
		t.fields[[2]string{dataset, f}] += n
	}
}

// Offer makes l a candidate for the newest letters shown; it keeps l only
// while l is among the newest q.Limit offered.
func (t *Tally) Offer(l *Letter) { t.latest.add(l) }

// ScanStats describes what a Scan read.
type ScanStats struct {
	Files        int `json:"files"`
	Skipped      int `json:"skipped_lines,omitempty"` // lines that are not dead letters
	SkippedFiles int `json:"skipped_files,omitempty"` // names of dead-letter files that are not regular files
}

// ErrNotSupported is returned by a Source for a dead-letter sink kind that
// this build cannot read back.
var ErrNotSupported = errors.New("reading dead letters back is not supported for this sink kind")

// Unsupported is the Source of a dead-letter sink kind that cannot be read
// back yet; Scan returns an error wrapping ErrNotSupported that names kind.
type Unsupported struct{ Kind string }

func (u Unsupported) Scan(context.Context, Query, *Tally) (ScanStats, error) {
	return ScanStats{}, fmt.Errorf("the %s dead-letter sink: %w yet; query its table directly", u.Kind, ErrNotSupported)
}

// Filter selects dead letters. Zero fields select everything.
type Filter struct {
	Reasons []string  // any of these reasons
	Shard   string    // this shard id
	Since   time.Time // arrival time at or after
	Until   time.Time // arrival time before
}

func (f Filter) match(d *Letter) bool {
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
	q = q.normalized()
	t := newTally(q)
	stats, err := src.Scan(ctx, q, t)
	if err != nil {
		return nil, err
	}
	s := &Summary{Filter: q.view(), Stats: stats, Total: t.total}
	s.ByReason = make([]ReasonCount, 0, len(t.reasons))
	for r, n := range t.reasons {
		s.ByReason = append(s.ByReason, ReasonCount{Reason: r, Count: n})
	}
	sortBy(s.ByReason, func(a, b ReasonCount) bool {
		return a.Count > b.Count || a.Count == b.Count && a.Reason < b.Reason
	})
	s.ByField = make([]FieldCount, 0, len(t.fields))
	for k, n := range t.fields {
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
	s.Latest = make([]Entry, 0, t.latest.Len())
	for _, l := range t.latest.sorted() {
		s.Latest = append(s.Latest, entryOf(l))
	}
	return s, nil
}

// normalized applies the limit's default and maximum.
func (q Query) normalized() Query {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	q.Limit = min(q.Limit, MaxLimit)
	return q
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

// EntryOf is d as the view shows one dead letter: its field, its error and
// a preview of its data (dry runs and redrive show their examples so).
func EntryOf(d *record.DeadLetter) Entry { return entryOf(LetterOf(d)) }

func entryOf(d *Letter) Entry {
	return Entry{
		Source:         d.Source,
		ShardID:        d.ShardID,
		SequenceNumber: d.SequenceNumber,
		SubSequence:    d.SubSequence,
		PartitionKey:   d.PartitionKey,
		ArrivalTime:    d.ArrivalTime.UTC(),
		Dataset:        d.Dataset,
		Reason:         string(d.Reason),
		Field:          fieldOf(d.Reason, d.Error),
		Error:          clip(d.Error, MaxErrorBytes),
		Size:           d.Size,
		Preview:        previewOf(d.Head, d.Size, PreviewBytes),
	}
}

// fieldOf is the field a schema_error names, "" for other reasons.
func fieldOf(reason record.Reason, err string) string {
	if reason != record.ReasonSchema {
		return ""
	}
	return FieldPath(err)
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

// previewOf shows data (of which head is the start, size its length) as text
// when it is printable UTF-8, else as hex; at most max bytes of data either
// way (cut on a rune boundary). Only head is looked at: a record that turns
// binary after the preview still shows as text.
func previewOf(head []byte, size, max int) Preview {
	if len(head) > size {
		head = head[:size]
	}
	cut := len(head)
	if cut > max {
		cut = max
		for cut > 0 && !utf8.RuneStart(head[cut]) {
			cut--
		}
	}
	// A rune cut by the end of head (data goes on) does not make it binary.
	whole := head
	if size > len(head) {
		whole = head[:cut]
	}
	if printable(whole) {
		return Preview{Encoding: "text", Text: string(head[:cut]), Truncated: cut < size}
	}
	n := min(len(head), max/2) // two hex digits per byte: the same width as text
	const digits = "0123456789abcdef"
	b := make([]byte, 2*n)
	for i, c := range head[:n] {
		b[2*i], b[2*i+1] = digits[c>>4], digits[c&0xf]
	}
	return Preview{Encoding: "hex", Text: string(b), Truncated: n < size}
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
			if !slices.Contains(record.Reasons(), record.Reason(r)) {
				known := make([]string, 0, len(record.Reasons()))
				for _, k := range record.Reasons() {
					known = append(known, string(k))
				}
				return nil, fmt.Errorf("unknown reason %q: use one of %s", r, strings.Join(known, ", "))
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// newest keeps the limit most recent letters (a min-heap on recency).
type newest struct {
	limit int
	h     []*Letter
}

// after orders letters by arrival time, then shard, sequence number and
// subsequence: a total order, so the view is the same on every run.
func after(a, b *Letter) bool {
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
func (n *newest) Push(x any)         { n.h = append(n.h, x.(*Letter)) }
func (n *newest) Pop() any {
	x := n.h[len(n.h)-1]
	n.h = n.h[:len(n.h)-1]
	return x
}

func (n *newest) add(d *Letter) {
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
func (n *newest) sorted() []*Letter {
	out := append([]*Letter(nil), n.h...)
	sortBy(out, after)
	return out
}
