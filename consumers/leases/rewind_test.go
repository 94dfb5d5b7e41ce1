package leases_test

import (
	"errors"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
)

// A rewind is refused while a lease is live, replaces a checkpoint (SHARD_END
// included) by a start position the next owner starts at, and gives way to
// the first real checkpoint; the previous owner's next checkpoint is refused.
func TestRewind(t *testing.T) {
	e := newEnv(t)
	const lease = 400 * time.Millisecond
	w1, ops := e.worker("w1", lease, nil), e.worker("ops", lease, nil)
	at := time.Date(2026, 12, 2, 1, 0, 0, 123456000, time.UTC)
	pos := leases.Position{Type: leases.AtTimestamp, Timestamp: at}

	s1, s2 := status("shard-1", ""), status("shard-2", "")
	mustLease(t, w1, s1, "w1")
	if err := checkpointAt(t, w1, s1, "500"); err != nil {
		t.Fatal(err)
	}
	mustLease(t, w1, s2, "w1")
	if err := checkpointAt(t, w1, s2, checkpoint.ShardEnd); err != nil {
		t.Fatal(err)
	}
	if err := w1.RemoveLeaseOwner("shard-2"); err != nil {
		t.Fatal(err)
	}

	err := ops.Rewind(t.Context(), "shard-1", pos, time.Now())
	if !errors.Is(err, leases.ErrLeaseLive) {
		t.Fatalf("rewind of a live lease: %v, want ErrLeaseLive", err)
	}
	if r := e.row(ops, "shard-1"); r.Checkpoint != "500" || r.StartAt != "" {
		t.Fatalf("refused rewind changed the row: %+v", r)
	}
	// A released shard, a finished one, one without a row, and one whose
	// lease expired are rewound.
	if err := ops.Rewind(t.Context(), "shard-2", pos, time.Now()); err != nil {
		t.Fatalf("rewind of a released shard: %v", err)
	}
	if err := ops.Rewind(t.Context(), "shard-3", leases.Position{Type: leases.TrimHorizon}, time.Now()); err != nil {
		t.Fatalf("rewind of a shard without a row: %v", err)
	}
	time.Sleep(lease + 100*time.Millisecond)
	if err := ops.Rewind(t.Context(), "shard-1", pos, time.Now()); err != nil {
		t.Fatalf("rewind after the lease expired: %v", err)
	}
	// w1 still runs its consumer of shard-1 (its lease expired unrenewed):
	// its next checkpoint is refused, and the rewind stands.
	if err := checkpointAt(t, w1, s1, "700"); !errors.Is(err, leases.ErrLeaseLost) {
		t.Fatalf("checkpoint of the rewound shard's previous owner: %v, want ErrLeaseLost", err)
	}
	for _, id := range []string{"shard-1", "shard-2"} {
		if r := e.row(ops, id); r.Checkpoint != "" || r.StartAt != "AT_TIMESTAMP 2026-12-02T01:00:00.123456Z" {
			t.Fatalf("%s after rewind: %+v", id, r)
		}
	}

	// The next owner sees the start position as its checkpoint, which the
	// GetShardIterator guard turns into AT_TIMESTAMP, and cannot write it.
	w2 := e.worker("w2", lease, nil)
	n1 := status("shard-1", "")
	mustLease(t, w2, n1, "w2")
	if err := w2.FetchCheckpoint(n1); err != nil {
		t.Fatal(err)
	}
	got, ok := leases.FromStartMarker(n1.GetCheckpoint())
	if !ok || got.Type != leases.AtTimestamp || !got.Timestamp.Equal(at) {
		t.Fatalf("checkpoint handed to the KCL %q: %+v, %v", n1.GetCheckpoint(), got, ok)
	}
	if err := w2.CheckpointSequence(n1); err == nil {
		t.Fatal("the start marker was written as a checkpoint")
	}
	if err := checkpointAt(t, w2, n1, "600"); err != nil {
		t.Fatal(err)
	}
	if err := w2.FetchCheckpoint(n1); err != nil || n1.GetCheckpoint() != "600" {
		t.Fatalf("after a real checkpoint: %q, %v", n1.GetCheckpoint(), err)
	}
	n3 := status("shard-3", "")
	mustLease(t, w2, n3, "w2")
	if err := w2.FetchCheckpoint(n3); err != nil {
		t.Fatal(err)
	}
	if p, ok := leases.FromStartMarker(n3.GetCheckpoint()); !ok || p.Type != leases.TrimHorizon {
		t.Fatalf("shard-3 start %q", n3.GetCheckpoint())
	}
}
