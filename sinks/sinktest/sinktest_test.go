package sinktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
)

// memStore is a reference "storage" for the suite's self-test: a sink that
// de-duplicates on the Origin key, and one that can be broken.
type memStore[T any] struct {
	mu     sync.Mutex
	items  []T
	seen   map[key]bool
	broken bool
	key    func(T) key
	// fault makes a faulty sink for the negative self-test: "drop" loses
	// every fifth item it acknowledges, "dup" stores every item twice.
	fault  string
	writes int
}

type memSink[T any] struct {
	st     *memStore[T]
	mu     sync.Mutex
	closed bool
}

func (s *memSink[T]) Write(ctx context.Context, items []T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return errors.New("closed")
	}
	return s.st.put(items)
}

// put stores items, all or (broken) none.
func (st *memStore[T]) put(items []T) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.broken {
		return errors.New("storage unavailable")
	}
	for _, it := range items {
		st.writes++
		switch {
		case st.fault == "drop" && st.writes%5 == 0:
			continue
		case st.fault == "dup":
			st.items = append(st.items, it, it)
			continue
		}
		if k := st.key(it); !st.seen[k] {
			st.seen[k] = true
			st.items = append(st.items, it)
		}
	}
	return nil
}

func (s *memSink[T]) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (st *memStore[T]) read() []T {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]T(nil), st.items...)
}

func (st *memStore[T]) setBroken(b bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.broken = b
}

// memDeferred is the reference sinks.DeferredRowSink: Accept keeps a deep
// copy of the rows, Flush and Close store them in a memStore and then tell
// each Accept's durable. It refuses rows holding a NaN. fault makes it
// faulty for the negative self-test (see deferredFaults).
type memDeferred struct {
	st    *memStore[record.Row]
	fault string
	// flushMu makes flushes one at a time, which keeps each shard's rows
	// in the order they were accepted.
	flushMu sync.Mutex
	mu      sync.Mutex
	closed  bool
	pending []pendingAccept
}

type pendingAccept struct {
	rows    []record.Row
	durable func(error)
}

var _ sinks.DeferredRowSink = (*memDeferred)(nil)

func (s *memDeferred) Accept(ctx context.Context, rows []record.Row, durable func(error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return errors.New("memDeferred: Accept after Close")
	}
	p := pendingAccept{durable: durable}
	var refused []int
	for i := range rows {
		if slices.ContainsFunc(rows[i].Fields, func(f record.Field) bool { v, ok := f.Value.(float64); return ok && math.IsNaN(v) }) {
			refused = append(refused, i)
			continue
		}
		p.rows = append(p.rows, s.keep(rows[i]))
	}
	if s.fault == "early" {
		durable(nil)
		p.durable = func(error) {}
	}
	s.mu.Lock()
	s.pending = append(s.pending, p)
	s.mu.Unlock()
	if refused != nil {
		return &sinks.RejectedError{Index: refused, Err: errors.New("NaN is no value memDeferred holds")}
	}
	return nil
}

// keep copies r as Accept must, unless fault says otherwise.
func (s *memDeferred) keep(r record.Row) record.Row {
	switch s.fault {
	case "keeps-rows":
		return r
	case "keeps-values":
		r.Fields = slices.Clone(r.Fields)
		return r
	}
	r.Fields = copyFields(r.Fields, s.fault == "keeps-bytes")
	return r
}

func copyFields(fs []record.Field, keepBytes bool) []record.Field {
	if fs == nil {
		return nil
	}
	out := make([]record.Field, len(fs))
	for i, f := range fs {
		out[i] = record.Field{Name: f.Name, Value: copyValue(f.Value, keepBytes)}
	}
	return out
}

// copyValue copies v deep; a scalar is boxed anew, since the caller's box
// may be reused. keepBytes is a fault: []byte values are kept.
func copyValue(v any, keepBytes bool) any {
	switch x := v.(type) {
	case bool:
		return x
	case int64:
		return x
	case float64:
		return x
	case string:
		return x
	case time.Time:
		return x
	case record.Date:
		return x
	case record.Decimal:
		return x
	case []byte:
		if keepBytes {
			return x
		}
		return slices.Clone(x)
	case []float64:
		return slices.Clone(x)
	case []any:
		if x == nil {
			return x
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = copyValue(e, keepBytes)
		}
		return out
	case map[string]any:
		if x == nil {
			return x
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = copyValue(e, keepBytes)
		}
		return out
	case []record.Field:
		return copyFields(x, keepBytes)
	}
	return v
}

func (s *memDeferred) Flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	todo := s.pending
	s.pending = nil
	s.mu.Unlock()
	var rows []record.Row
	for _, p := range todo {
		rows = append(rows, p.rows...)
	}
	if err := s.st.put(rows); err != nil {
		s.mu.Lock()
		s.pending = append(todo, s.pending...)
		s.mu.Unlock()
		return err
	}
	for _, p := range todo {
		p.durable(nil)
		if s.fault == "twice" {
			p.durable(nil)
		}
	}
	return nil
}

// Write is Accept, Flush and the wait for durable.
func (s *memDeferred) Write(ctx context.Context, rows []record.Row) error {
	told := make(chan error, 2) // "twice" tells twice
	err := s.Accept(ctx, rows, func(err error) { told <- err })
	if _, refused := sinks.IsRejected(err); err != nil && !refused {
		return err
	}
	if ferr := s.Flush(ctx); ferr != nil {
		return ferr
	}
	if derr := <-told; derr != nil {
		return derr
	}
	return err
}

// Close flushes; what it cannot store is told so.
func (s *memDeferred) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	var err error
	if s.fault == "close-drops" {
		// As a sink that cancels its uploads at Close: what is buffered is
		// told an error, and Close says nothing of it.
		s.mu.Lock()
		todo := s.pending
		s.pending = nil
		s.mu.Unlock()
		for _, p := range todo {
			p.durable(errors.New("memDeferred closed before these rows were stored"))
		}
		return nil
	}
	err = s.Flush(context.Background())
	if err != nil {
		s.mu.Lock()
		todo := s.pending
		s.pending = nil
		s.mu.Unlock()
		for _, p := range todo {
			p.durable(fmt.Errorf("memDeferred closed before these rows were stored: %w", err))
		}
	}
	return err
}

// deferredHarness runs the suite on a memDeferred with fault.
func deferredHarness(fault string) RowHarness {
	var st *memStore[record.Row]
	return RowHarness{
		New: func(t *testing.T) sinks.RowSink {
			st = &memStore[record.Row]{seen: map[key]bool{}, key: func(r record.Row) key { return keyOf(r.Origin) }}
			return &memDeferred{st: st, fault: fault}
		},
		Reopen:  func(t *testing.T) sinks.RowSink { return &memDeferred{st: st, fault: fault} },
		Read:    func(t *testing.T) []record.Row { return st.read() },
		Dedupes: true,
		Break:   func(t *testing.T) { st.setBroken(true) },
		Heal:    func(t *testing.T) { st.setBroken(false) },
		Refuse: func(r record.Row) record.Row {
			r.Fields = slices.Clone(r.Fields)
			r.Fields[0].Value = math.NaN()
			return r
		},
	}
}

func TestSuiteOnReferenceSinks(t *testing.T) {
	t.Run("rows", func(t *testing.T) {
		var st *memStore[record.Row]
		RunRowSink(t, RowHarness{
			New: func(t *testing.T) sinks.RowSink {
				st = &memStore[record.Row]{seen: map[key]bool{}, key: func(r record.Row) key { return keyOf(r.Origin) }}
				return &memSink[record.Row]{st: st}
			},
			Reopen:  func(t *testing.T) sinks.RowSink { return &memSink[record.Row]{st: st} },
			Read:    func(t *testing.T) []record.Row { return st.read() },
			Dedupes: true,
			Break:   func(t *testing.T) { st.setBroken(true) },
			Heal:    func(t *testing.T) { st.setBroken(false) },
		})
	})
	t.Run("deferred rows", func(t *testing.T) {
		RunRowSink(t, deferredHarness(""))
	})
	t.Run("dead letters", func(t *testing.T) {
		var st *memStore[record.DeadLetter]
		RunDeadLetterSink(t, DeadLetterHarness{
			New: func(t *testing.T) sinks.DeadLetterSink {
				st = &memStore[record.DeadLetter]{seen: map[key]bool{}, key: func(d record.DeadLetter) key { return keyOf(d.Origin) }}
				return &memSink[record.DeadLetter]{st: st}
			},
			Reopen:  func(t *testing.T) sinks.DeadLetterSink { return &memSink[record.DeadLetter]{st: st} },
			Read:    func(t *testing.T) []record.DeadLetter { return st.read() },
			Dedupes: true,
		})
	})
}

// deferredFaults are the faults of memDeferred, and the subtest each fails.
var deferredFaults = map[string]string{
	// durable(nil) at Accept, before the rows are stored.
	"early": "--- FAIL: TestSuiteFailsAFaultySink/DurableMeansStored",
	// Keeps the caller's Fields slices.
	"keeps-rows": "--- FAIL: TestSuiteFailsAFaultySink/AcceptCopies",
	// Copies Fields but keeps their values: the caller's []byte, boxes.
	"keeps-values": "--- FAIL: TestSuiteFailsAFaultySink/AcceptCopies",
	// Copies all but the []byte values.
	"keeps-bytes": "--- FAIL: TestSuiteFailsAFaultySink/AcceptCopies",
	// Close stores nothing, tells each buffered Accept an error and
	// returns nil.
	"close-drops": "--- FAIL: TestSuiteFailsAFaultySink/CloseFlushesBuffered",
	// Tells each Accept's durable twice.
	"twice": "--- FAIL: TestSuiteFailsAFaultySink/AcceptThenFlush",
}

// The suite fails a sink that drops or duplicates rows, or, deferred, tells
// durable early or twice or keeps the caller's memory: run, in a child
// process of this test binary, on a reference sink with that fault; the
// child must fail, and in the subtests that check it. A synchronous sink
// runs no deferred subtest.
func TestSuiteFailsAFaultySink(t *testing.T) {
	if fault := os.Getenv("SINKTEST_FAULT"); deferredFaults[fault] != "" {
		RunRowSink(t, deferredHarness(fault))
		return
	} else if fault != "" {
		var st *memStore[record.Row]
		RunRowSink(t, RowHarness{
			New: func(t *testing.T) sinks.RowSink {
				st = &memStore[record.Row]{seen: map[key]bool{}, key: func(r record.Row) key { return keyOf(r.Origin) }, fault: fault}
				return &memSink[record.Row]{st: st}
			},
			Reopen:  func(t *testing.T) sinks.RowSink { return &memSink[record.Row]{st: st} },
			Read:    func(t *testing.T) []record.Row { return st.read() },
			Dedupes: true,
		})
		return
	}
	faults := map[string]string{
		"drop": "--- FAIL: TestSuiteFailsAFaultySink/DurableBeforeAck",
		"dup":  "--- FAIL: TestSuiteFailsAFaultySink/ReplayIdempotence",
	}
	maps.Copy(faults, deferredFaults)
	for fault, failing := range faults {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSuiteFailsAFaultySink$", "-test.v")
		cmd.Env = append(os.Environ(), "SINKTEST_FAULT="+fault)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), failing) {
			t.Errorf("a sink with fault %q: the suite exited with %v; want a failure with %q in:\n%s", fault, err, failing, out)
		}
		_, isDeferred := deferredFaults[fault]
		if ran := strings.Contains(string(out), "/AcceptThenFlush"); ran != isDeferred {
			t.Errorf("a sink with fault %q (deferred: %v) ran the deferred subtests: %v", fault, isDeferred, ran)
		}
	}
}

func TestMatchValue(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)
	for _, tc := range []struct {
		want, got any
		ok        bool
	}{
		{nil, nil, true},
		{nil, "", false},
		{int64(5), json.Number("5"), true},
		{int64(5), json.Number("5.0"), false},
		{int64(5), int64(6), false},
		{int64(math.MaxInt64), float64(math.MaxInt64), false}, // not exactly representable
		{1.5, json.Number("1.5"), true},
		{1.5, 1.25, false},
		{"a", "a", true},
		{"a", []byte("a"), false},
		{[]byte{1, 2}, "AQI=", true},
		{[]byte{1, 2}, "AQM=", false},
		{[]byte(nil), nil, true},
		{ts, "2024-01-02T03:04:05.000006Z", true},
		{ts, "2024-01-02T03:04:05.000007Z", false},
		{ts, ts.In(time.FixedZone("X", 3600)), true},
		{record.Date{Year: 2024, Month: 2, Day: 29}, "2024-02-29", true},
		{record.Date{Year: 2024, Month: 2, Day: 29}, "2024-02-28", false},
		{record.Decimal("1.10"), "1.10", true},
		{record.Decimal("1.10"), "1.1", false},
		{[]float64{1, 2}, []any{json.Number("1"), json.Number("2")}, true},
		{[]float64{1, 2}, []any{json.Number("1")}, false},
		{[]any{"a", nil}, []any{"a", nil}, true},
		{[]any{"a", nil}, []any{nil, "a"}, false},
		{map[string]any{"a": int64(1), "b": "x"}, []record.Field{{Name: "a", Value: json.Number("1")}, {Name: "b", Value: "x"}}, true},
		{map[string]any{"a": int64(1)}, []record.Field{{Name: "a", Value: json.Number("2")}}, false},
		{map[string]any{"a": int64(1)}, []record.Field{{Name: "a", Value: json.Number("1")}, {Name: "b", Value: nil}}, false},
		{[]record.Field{{Name: "a", Value: int64(1)}, {Name: "b", Value: true}}, []record.Field{{Name: "a", Value: json.Number("1")}, {Name: "b", Value: true}}, true},
		{[]record.Field{{Name: "a", Value: int64(1)}, {Name: "b", Value: true}}, []record.Field{{Name: "b", Value: true}, {Name: "a", Value: json.Number("1")}}, false},
		{[]record.Field{{Name: "a", Value: int64(1)}}, map[string]any{"a": int64(1)}, true},
		{[]record.Field{{Name: "a", Value: int64(1)}}, map[string]any{"a": int64(2)}, false},
	} {
		err := matchValue(tc.want, tc.got)
		if (err == nil) != tc.ok {
			t.Errorf("matchValue(%#v, %#v) = %v, want ok=%v", tc.want, tc.got, err, tc.ok)
		}
	}
}

func TestBefore(t *testing.T) {
	if !before(key{seq: "9"}, key{seq: "10"}) || before(key{seq: "10"}, key{seq: "9"}) {
		t.Error("sequence numbers must compare as numbers")
	}
	if !before(key{seq: "10", sub: 0}, key{seq: "10", sub: 1}) || before(key{seq: "10", sub: 1}, key{seq: "10", sub: 1}) {
		t.Error("sub-sequence breaks ties, strictly")
	}
}
