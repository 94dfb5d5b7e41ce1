// Package sinktest is the conformance suite that every sinks.RowSink and
// sinks.DeadLetterSink implementation runs from its tests:
//
//	func TestConformance(t *testing.T) {
//		sinktest.RunRowSink(t, sinktest.RowHarness{New: ..., Reopen: ..., Read: ...})
//	}
//
// The subtests are: RoundTrip (every value type), EmptyBatch, DurableBeforeAck,
// ReplayIdempotence, OrderPerShard, OutageAndRecovery (when the harness can
// cause a real outage), CloseFlushes, WriteAfterClose and CancelledContext.
// A row sink that is a sinks.DeferredRowSink runs the deferred subtests too
// (deferred.go): EmptyAccept, AcceptThenFlush, DurableMeansStored,
// AcceptCopies, ReplayWhileBuffered, AcceptOrderPerShard, WriteAmongAccepts,
// RefusedRows (when the harness can make a row the sink refuses),
// OutageWhileBuffered and CloseDuringOutage (when it can cause an outage),
// CloseFlushesBuffered, AcceptAfterClose and AcceptCancelledContext.
// Subtests run one after the other, each on fresh storage from New. The suite
// closes every sink it gets from New or Reopen.
package sinktest

import (
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
)

// RowHarness connects the suite to one RowSink implementation. The t passed
// to Reopen, Read, Break and Heal is the one New got for the same subtest.
type RowHarness struct {
	// New returns a fresh sink on fresh, empty storage.
	New func(t *testing.T) sinks.RowSink
	// Reopen returns a new sink instance on the storage of the last New, as
	// after a restart. The earlier instance may still be open (an abrupt drop
	// of a process that never called Close).
	Reopen func(t *testing.T) sinks.RowSink
	// Read returns everything durable in the storage, in storage order (for
	// rows of one shard written by one sink: the order they were written in).
	// Per row it must fill Fields and Origin's Source, ShardID, SequenceNumber,
	// SubSequence and ArrivalTime; other Origin fields and Dataset are not
	// compared. Values may come back in their stored form (a string for a
	// time, base64 for bytes, json.Number, []record.Field or map[string]any for
	// objects): the suite compares them by the type that was written. Read
	// must fail the test if the storage holds anything it cannot parse, such as
	// a torn line.
	Read func(t *testing.T) []record.Row
	// Dedupes says the sink stores each (ShardID, SequenceNumber, SubSequence)
	// once however often it is written.
	Dedupes bool
	// Break causes a real outage of the storage and Heal ends it; nil (both)
	// skips OutageAndRecovery, OutageWhileBuffered and CloseDuringOutage.
	Break, Heal func(t *testing.T)
	// Refuse returns r changed (keeping its Origin) so that the sink refuses
	// it for itself, with a *sinks.RejectedError: a value its format cannot
	// hold. nil skips RefusedRows, which only a sinks.DeferredRowSink runs.
	Refuse func(r record.Row) record.Row
	// RoundTrip, when set, replaces the RoundTrip subtest's rows: a sink
	// typed by a dataset's columns (Iceberg) holds only rows of them, so it
	// gives rows of every type its columns take, nulls included. Every
	// other subtest writes rows of Columns.
	RoundTrip func() []record.Row
	// Typed says the storage has a column per field of Columns: Read
	// returns every column of a row, null where the row had no such field,
	// and such nulls are not extra fields.
	Typed bool
}

// DeadLetterHarness is RowHarness for a DeadLetterSink. Read must fill every
// field of record.DeadLetter.
type DeadLetterHarness struct {
	New, Reopen func(t *testing.T) sinks.DeadLetterSink
	Read        func(t *testing.T) []record.DeadLetter
	Dedupes     bool
	Break, Heal func(t *testing.T)
}

// RunRowSink runs the conformance suite against a RowSink, and the deferred
// subtests when it is a sinks.DeferredRowSink: to know which, it calls New
// once with t itself and closes what it returns, so that a -run filter
// naming a deferred subtest finds it.
func RunRowSink(t *testing.T, h RowHarness) {
	t.Helper()
	if h.New == nil || h.Reopen == nil || h.Read == nil {
		t.Fatal("sinktest: RowHarness needs New, Reopen and Read")
	}
	if (h.Break == nil) != (h.Heal == nil) {
		t.Fatal("sinktest: RowHarness needs both Break and Heal, or neither")
	}
	probe := h.New(t)
	if probe == nil {
		t.Fatal("sinktest: harness returned a nil sink")
	}
	_, isDeferred := probe.(sinks.DeferredRowSink)
	if err := probe.Close(); err != nil {
		t.Fatalf("Close of a sink that took nothing: %v", err)
	}
	s := &suite[record.Row]{
		what:      "row",
		new:       func(t *testing.T) writer[record.Row] { return h.New(t) },
		reopen:    func(t *testing.T) writer[record.Row] { return h.Reopen(t) },
		read:      h.Read,
		dedupes:   h.Dedupes,
		brk:       h.Break,
		heal:      h.Heal,
		key:       func(r record.Row) key { return keyOf(r.Origin) },
		make:      makeRow,
		compare:   compareRow,
		roundTrip: roundTripRows,
	}
	if h.RoundTrip != nil {
		s.roundTrip = h.RoundTrip
	}
	if h.Typed {
		s.compare = compareTypedRow
	}
	run(t, *s)
	if isDeferred {
		runDeferred(t, &deferred{s: s, refuse: h.Refuse})
	}
}

// RunDeadLetterSink runs the conformance suite against a DeadLetterSink.
func RunDeadLetterSink(t *testing.T, h DeadLetterHarness) {
	t.Helper()
	if h.New == nil || h.Reopen == nil || h.Read == nil {
		t.Fatal("sinktest: DeadLetterHarness needs New, Reopen and Read")
	}
	if (h.Break == nil) != (h.Heal == nil) {
		t.Fatal("sinktest: DeadLetterHarness needs both Break and Heal, or neither")
	}
	run(t, suite[record.DeadLetter]{
		what:      "dead letter",
		new:       func(t *testing.T) writer[record.DeadLetter] { return h.New(t) },
		reopen:    func(t *testing.T) writer[record.DeadLetter] { return h.Reopen(t) },
		read:      h.Read,
		dedupes:   h.Dedupes,
		brk:       h.Break,
		heal:      h.Heal,
		key:       func(d record.DeadLetter) key { return keyOf(d.Origin) },
		make:      makeDeadLetter,
		compare:   compareDeadLetter,
		roundTrip: roundTripDeadLetters,
	})
}
