package leases_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
)

// The first start of an application stores its start position once: of
// workers registering at the same time with different configs, exactly one
// writes the row and all of them get the same stored position; the row is
// not a shard to the lease logic.
func TestRegisterStoresOneStartPosition(t *testing.T) {
	e := newEnv(t)
	created := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	starts := []leases.Position{
		{Type: leases.Latest},
		{Type: leases.TrimHorizon},
		{Type: leases.AtTimestamp, Timestamp: created.Add(time.Hour)},
		{Type: leases.Latest},
	}
	apps := make([]leases.Application, len(starts))
	wrote := make([]bool, len(starts))
	errs := make([]error, len(starts))
	var wg sync.WaitGroup
	for i, p := range starts {
		tbl := e.worker("w"+string(rune('1'+i)), time.Second, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			apps[i], wrote[i], errs[i] = tbl.Register(t.Context(), leases.Application{Start: p, StreamARN: "arn:aws:kinesis:us-east-1:000000000000:stream/s", StreamCreated: created})
		}()
	}
	wg.Wait()
	writers := 0
	for i := range starts {
		if errs[i] != nil {
			t.Fatalf("worker %d: Register: %v", i, errs[i])
		}
		if wrote[i] {
			writers++
		}
		if apps[i].Start != apps[0].Start || !apps[i].FirstStart.Equal(apps[0].FirstStart) {
			t.Errorf("worker %d got start %v (first start %v), worker 0 got %v (%v)", i, apps[i].Start, apps[i].FirstStart, apps[0].Start, apps[0].FirstStart)
		}
	}
	if writers != 1 {
		t.Fatalf("%d workers wrote the application row, want exactly 1", writers)
	}
	if s := apps[0].Start; s.Type == leases.Latest && s.Timestamp.IsZero() {
		t.Errorf("stored latest has no instant: %+v", s)
	}
	// A later start with another init_position gets the stored one.
	later := e.worker("later", time.Second, nil)
	app, wroteLater, err := later.Register(t.Context(), leases.Application{Start: leases.Position{Type: leases.TrimHorizon}, StreamARN: "arn:aws:kinesis:us-east-1:000000000000:stream/s", StreamCreated: created})
	if err != nil || wroteLater || app.Start != apps[0].Start {
		t.Fatalf("later Register: %+v wrote=%v err=%v; want the stored %+v", app.Start, wroteLater, err, apps[0].Start)
	}
	// The metadata row is no shard: not in Checkpoints, not counted as open.
	rows, err := later.Checkpoints(t.Context())
	if err != nil || len(rows) != 0 {
		t.Fatalf("Checkpoints after Register: %v, %v; want no rows", rows, err)
	}
	if rep, err := later.Pass(t.Context(), nil); err != nil || rep.Leasable != 0 || len(rep.Taken) != 0 {
		t.Fatalf("pass with only the metadata row: %+v, %v; want nothing leasable", rep, err)
	}
}

// A table whose row names the stream with another creation time (the
// stream was deleted and recreated under the same name) is refused.
func TestRegisterRefusesARecreatedStream(t *testing.T) {
	e := newEnv(t)
	tbl := e.worker("w1", time.Second, nil)
	arn := "arn:aws:kinesis:us-east-1:000000000000:stream/s"
	first := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	if _, _, err := tbl.Register(t.Context(), leases.Application{Start: leases.Position{Type: leases.Latest}, StreamARN: arn, StreamCreated: first}); err != nil {
		t.Fatal(err)
	}
	_, _, err := tbl.Register(t.Context(), leases.Application{Start: leases.Position{Type: leases.Latest}, StreamARN: arn, StreamCreated: first.Add(time.Minute)})
	if !errors.Is(err, leases.ErrOtherStream) {
		t.Fatalf("Register for the recreated stream: %v, want ErrOtherStream", err)
	}
	if _, _, err := tbl.CheckStream(t.Context(), arn, first.Add(time.Minute)); !errors.Is(err, leases.ErrOtherStream) {
		t.Fatalf("CheckStream for the recreated stream: %v, want ErrOtherStream", err)
	}
	if _, _, err := tbl.CheckStream(t.Context(), arn, first); err != nil {
		t.Fatalf("CheckStream for the same stream: %v", err)
	}
}

// A parent whose row never reached SHARD_END but which Kinesis no longer
// lists (lost to retention) does not block its children: once the listing no
// longer has it they are leased, and the loss is reported once for both
// children of the split.
func TestOrphanParentDoesNotBlockItsChildren(t *testing.T) {
	e := newEnv(t)
	var reported []string
	var mu sync.Mutex
	w := e.newTable(leases.Config{WorkerID: "w1", LeaseDuration: time.Second, OnParentExpired: func(p, cp string) {
		mu.Lock()
		reported = append(reported, p+"@"+cp)
		mu.Unlock()
	}})
	parent := status("shard-p", "")
	mustLease(t, w, parent, "w1")
	if err := checkpointAt(t, w, parent, "100"); err != nil {
		t.Fatal(err)
	}
	if err := w.RemoveLeaseOwner("shard-p"); err != nil {
		t.Fatal(err)
	}
	// While Kinesis lists the parent, the children wait for it.
	c1, c2 := leases.ShardInfo{ID: "shard-c1", Parent: "shard-p"}, leases.ShardInfo{ID: "shard-c2", Parent: "shard-p"}
	rep, err := w.Pass(t.Context(), []leases.ShardInfo{{ID: "shard-p"}, c1, c2})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(rep.Taken, "shard-c1") || slices.Contains(rep.Taken, "shard-c2") {
		t.Fatalf("children taken while their parent is listed and open: %+v", rep)
	}
	wantNotAcquired(t, w.GetLease(status("shard-c1", "shard-p"), "w1"), nil)
	// Then the parent is gone from the listing.
	if _, err := w.Pass(t.Context(), []leases.ShardInfo{c1, c2}); err != nil {
		t.Fatal(err)
	}
	mustLease(t, w, status("shard-c1", "shard-p"), "w1")
	mustLease(t, w, status("shard-c2", "shard-p"), "w1")
	// The KCL's consumer of each child waits until the parent's checkpoint
	// reads SHARD_END, fetching it with a ShardStatus holding only its ID.
	wait := status("shard-p", "")
	if err := w.FetchCheckpoint(wait); err != nil || wait.GetCheckpoint() != checkpoint.ShardEnd {
		t.Errorf("the children's wait on their parent lost to retention reads checkpoint %q (err %v), want %s: they are leased but never read", wait.GetCheckpoint(), err, checkpoint.ShardEnd)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || reported[0] != "shard-p@100" {
		t.Fatalf("expired parents reported: %v, want [shard-p@100] once", reported)
	}
	if st, ok := w.StartOf("shard-c1"); ok && st.Type != leases.TrimHorizon {
		t.Errorf("child of an expired parent starts at %v, want TRIM_HORIZON", st)
	}
}

// A merged child is leased only when both its parent and its adjacent
// parent (which the KCL drops; the passes learn it from ListShards) are at
// SHARD_END.
func TestMergedChildWaitsForBothParents(t *testing.T) {
	e := newEnv(t)
	w := e.worker("w1", time.Second, nil)
	parents := map[string]*par.ShardStatus{}
	for _, id := range []string{"shard-p", "shard-a"} {
		parents[id] = status(id, "")
		mustLease(t, w, parents[id], "w1")
		if err := checkpointAt(t, w, parents[id], "7"); err != nil {
			t.Fatal(err)
		}
	}
	listing := []leases.ShardInfo{{ID: "shard-p"}, {ID: "shard-a"}, {ID: "shard-c", Parent: "shard-p", AdjacentParent: "shard-a"}}
	child := status("shard-c", "shard-p")
	refused := func(when string) {
		t.Helper()
		if _, err := w.Pass(t.Context(), listing); err != nil {
			t.Fatal(err)
		}
		if err := w.GetLease(child, "w1"); err == nil {
			t.Fatalf("merged child leased %s", when)
		}
	}
	refused("while both parents are open")
	if err := checkpointAt(t, w, parents["shard-p"], checkpoint.ShardEnd); err != nil {
		t.Fatal(err)
	}
	refused("while its adjacent parent is open")
	if err := checkpointAt(t, w, parents["shard-a"], checkpoint.ShardEnd); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Pass(t.Context(), listing); err != nil {
		t.Fatal(err)
	}
	mustLease(t, w, child, "w1")
	if r := e.row(w, "shard-c"); r.ParentShardID != "shard-p" || r.AdjacentParentShardID != "shard-a" {
		t.Fatalf("child row %+v: want both parents recorded", r)
	}
	if st, ok := w.StartOf("shard-c"); ok && st.Type != leases.TrimHorizon {
		t.Errorf("merged child starts at %v, want TRIM_HORIZON", st)
	}
}
