package sinktest

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
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
	st := s.st
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

// The suite fails a sink that drops or duplicates rows: run, in a child
// process of this test binary, on a reference sink with that fault; the
// child must fail, and in the subtests that check it.
func TestSuiteFailsAFaultySink(t *testing.T) {
	if fault := os.Getenv("SINKTEST_FAULT"); fault != "" {
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
	for fault, failing := range map[string]string{
		"drop": "--- FAIL: TestSuiteFailsAFaultySink/DurableBeforeAck",
		"dup":  "--- FAIL: TestSuiteFailsAFaultySink/ReplayIdempotence",
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSuiteFailsAFaultySink$", "-test.v")
		cmd.Env = append(os.Environ(), "SINKTEST_FAULT="+fault)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), failing) {
			t.Errorf("a sink that %ss rows: the suite exited with %v; want a failure with %q in:\n%s", fault, err, failing, out)
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
