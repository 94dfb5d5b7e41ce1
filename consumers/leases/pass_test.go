package leases_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
)

func listing(n int) []leases.ShardInfo {
	s := make([]leases.ShardInfo, n)
	for i := range s {
		s[i] = leases.ShardInfo{ID: fmt.Sprintf("shardId-%012d", i)}
	}
	return s
}

// coordinated is a coordinated Table for worker id on the test's table.
func (e *env) coordinated(id string, leaseDur time.Duration, now func() time.Time) *leases.Table {
	e.t.Helper()
	return e.newTable(leases.Config{WorkerID: id, LeaseDuration: leaseDur, Now: now, AnnounceWait: 300 * time.Millisecond})
}

func (e *env) pass(tbl *leases.Table, shards []leases.ShardInfo) leases.PassReport {
	e.t.Helper()
	rep, err := tbl.Pass(e.t.Context(), shards)
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

// owners counts the live owners in the table (a consistent scan).
func (e *env) owners(tbl *leases.Table) map[string]int {
	e.t.Helper()
	rows, err := tbl.Checkpoints(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	c := map[string]int{}
	for _, r := range rows {
		if r.Owner != "" {
			c[r.Owner]++
		}
	}
	return c
}

// start hands every lease tbl's passes took to "the KCL" (GetLease, as its
// loop does), returning the shards' statuses.
func start(t *testing.T, tbl *leases.Table, worker string, ids []string) map[string]*par.ShardStatus {
	t.Helper()
	st := map[string]*par.ShardStatus{}
	for _, id := range ids {
		st[id] = status(id, "")
		mustLease(t, tbl, st[id], worker)
	}
	if n := tbl.Pending(); n != 0 {
		t.Fatalf("%s: %d leases still pending after starting all", worker, n)
	}
	return st
}

// Workers started together share the shards in their first pass, each with
// one scan and one conditional write per lease; the KCL's loop then gets
// exactly those leases, and every other shard is refused without a read.
func TestPassSharesShardsInBulk(t *testing.T) {
	e := newEnv(t)
	shards := listing(30)
	ids := []string{"a", "b", "c"}
	tables := map[string]*leases.Table{}
	for _, id := range ids {
		tables[id] = e.coordinated(id, 10*time.Second, nil)
	}
	reps := map[string]leases.PassReport{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			rep, err := tables[id].Pass(t.Context(), shards)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			reps[id] = rep
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, id := range ids {
		if r := reps[id]; len(r.Taken) != 10 || r.Workers != 3 || r.Target != 10 {
			t.Fatalf("%s's first pass: %+v, want 10 of 30 taken among 3 workers", id, r)
		}
	}
	if c := e.owners(tables["a"]); c["a"] != 10 || c["b"] != 10 || c["c"] != 10 {
		t.Fatalf("owners %v, want 10 each", c)
	}
	start(t, tables["a"], "a", reps["a"].Taken)
	err := tables["a"].GetLease(status(reps["b"].Taken[0], ""), "a")
	wantNotAcquired(t, err, nil)

	// Balanced: the next passes take and claim nothing.
	for _, id := range ids {
		if r := e.pass(tables[id], shards); len(r.Taken)+len(r.Claimed)+r.Refused != 0 {
			t.Fatalf("%s's second pass on a balanced table: %+v", id, r)
		}
	}
}

// A worker's shards, once its leases expire, are taken over by the survivors
// in one pass each, balanced.
func TestPassTakesOverADeadWorkerInOnePass(t *testing.T) {
	e := newEnv(t)
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	const lease = 10 * time.Second
	shards := listing(30)
	tables := map[string]*leases.Table{}
	running := map[string]map[string]*par.ShardStatus{}
	for _, id := range []string{"a", "b", "c"} {
		tables[id] = e.coordinated(id, lease, now)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for id, tbl := range tables {
		wg.Go(func() {
			rep, err := tbl.Pass(t.Context(), shards)
			if err != nil {
				t.Error(err)
				return
			}
			st := start(t, tbl, id, rep.Taken)
			mu.Lock()
			running[id] = st
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// c dies. The survivors renew and pass as time goes by.
	step := func(d time.Duration) map[string]leases.PassReport {
		offset.Add(int64(d))
		reps := map[string]leases.PassReport{}
		for _, id := range []string{"a", "b"} {
			for _, st := range running[id] {
				mustLease(t, tables[id], st, id)
			}
			reps[id] = e.pass(tables[id], shards)
		}
		return reps
	}
	// The first step's scan is where the survivors first see all of c's
	// leases (their first passes ran with c's).
	for _, d := range []time.Duration{time.Second, lease / 2} {
		if reps := step(d); len(reps["a"].Taken)+len(reps["b"].Taken) != 0 {
			t.Fatalf("a live lease was taken: %+v", reps)
		}
	}
	reps := step(lease/2 + time.Second)
	for _, id := range []string{"a", "b"} {
		if r := reps[id]; len(r.Taken) != 5 || r.Expired != 5 || r.Workers != 2 {
			t.Fatalf("%s's pass after c's leases expired: %+v, want 5 expired leases taken among 2 workers", id, r)
		}
	}
	if c := e.owners(tables["a"]); c["a"] != 15 || c["b"] != 15 {
		t.Fatalf("owners %v, want a 15, b 15 (c's shards, expired, shared)", c)
	}
}

// A worker that joins one holding every shard claims its share in one pass;
// the holder gives each claimed shard up at its next renewal, and the
// claimer takes them all at its next pass.
func TestPassClaimsItsShareAndTakesItWhenReleased(t *testing.T) {
	e := newEnv(t)
	shards := listing(12)
	a := e.coordinated("a", 10*time.Second, nil)
	ra := e.pass(a, shards)
	if len(ra.Taken) != 12 {
		t.Fatalf("a alone took %d of 12", len(ra.Taken))
	}
	st := start(t, a, "a", ra.Taken)

	b := e.coordinated("b", 10*time.Second, nil)
	rb := e.pass(b, shards)
	if len(rb.Claimed) != 6 || len(rb.Taken) != 0 {
		t.Fatalf("b's first pass: %+v, want 6 claims", rb)
	}
	released := 0
	for id, s := range st {
		err := a.GetLease(s, "a")
		switch {
		case err == nil:
		case errors.Is(err, leases.ErrClaimed):
			if err := a.RemoveLeaseOwner(id); err != nil {
				t.Fatal(err)
			}
			released++
		default:
			t.Fatalf("renewal of %s: %v", id, err)
		}
	}
	if released != 6 {
		t.Fatalf("a gave up %d shards, want the 6 claimed", released)
	}
	rb = e.pass(b, shards)
	if len(rb.Taken) != 6 {
		t.Fatalf("b's second pass: %+v, want the 6 released shards taken", rb)
	}
	if c := e.owners(a); c["a"] != 6 || c["b"] != 6 {
		t.Fatalf("owners %v, want 6 each", c)
	}
}

// A child is not leased while its parent is open, and is leased in the pass
// after the parent's SHARD_END.
func TestPassLeasesChildrenAfterTheirParents(t *testing.T) {
	e := newEnv(t)
	shards := []leases.ShardInfo{
		{ID: "shardId-000000000000"},
		{ID: "shardId-000000000001", Parent: "shardId-000000000000"},
		{ID: "shardId-000000000002", Parent: "shardId-000000000000"},
	}
	a := e.coordinated("a", 10*time.Second, nil)
	rep := e.pass(a, shards)
	if len(rep.Taken) != 1 || rep.Taken[0] != shards[0].ID {
		t.Fatalf("first pass took %v, want only the parent", rep.Taken)
	}
	st := start(t, a, "a", rep.Taken)[shards[0].ID]
	if rep := e.pass(a, shards); len(rep.Taken) != 0 {
		t.Fatalf("children taken while the parent is open: %v", rep.Taken)
	}
	st.SetCheckpoint("SHARD_END")
	if err := a.CheckpointSequence(st); err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveLeaseOwner(st.ID); err != nil {
		t.Fatal(err)
	}
	if rep := e.pass(a, shards); len(rep.Taken) != 2 {
		t.Fatalf("after the parent's end, took %v, want both children", rep.Taken)
	}
}

// The KCL's wait on a child's parent ignores the worker's stop: once the
// worker drains, the wait on an unfinished parent (here one rewound after
// its child was leased) gets an error, which ends the wait and the child's
// consumer, so that Worker.Shutdown returns.
func TestParentWaitEndsWhenTheWorkerStops(t *testing.T) {
	e := newEnv(t)
	shards := []leases.ShardInfo{
		{ID: "shardId-000000000000"},
		{ID: "shardId-000000000001", Parent: "shardId-000000000000"},
	}
	a := e.coordinated("a", 10*time.Second, nil)
	parent := start(t, a, "a", e.pass(a, shards).Taken)[shards[0].ID]
	parent.SetCheckpoint(checkpoint.ShardEnd)
	if err := a.CheckpointSequence(parent); err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveLeaseOwner(parent.ID); err != nil {
		t.Fatal(err)
	}
	child := start(t, a, "a", e.pass(a, shards).Taken)[shards[1].ID]
	if child == nil || child.ParentShardId != parent.ID {
		t.Fatalf("child not started with its parent: %+v", child)
	}
	if _, err := db.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{
		TableName:                 aws.String(e.table),
		Key:                       map[string]types.AttributeValue{"ShardID": &types.AttributeValueMemberS{Value: parent.ID}},
		UpdateExpression:          aws.String("SET #cp = :cp"),
		ExpressionAttributeNames:  map[string]string{"#cp": "Checkpoint"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":cp": &types.AttributeValueMemberS{Value: "100"}},
	}); err != nil {
		t.Fatal(err)
	}
	wait := status(parent.ID, "")
	if err := a.FetchCheckpoint(wait); err != nil || wait.GetCheckpoint() != "100" {
		t.Fatalf("running worker's wait on its unfinished parent: checkpoint %q, err %v; want 100 and no error (the wait goes on)", wait.GetCheckpoint(), err)
	}
	a.Drain()
	err := a.FetchCheckpoint(status(parent.ID, ""))
	if err == nil || errors.Is(err, checkpoint.ErrSequenceIDNotFound) {
		t.Fatalf("stopping worker's wait on an unfinished parent: err %v; want an error that ends the wait (not ErrSequenceIDNotFound, on which the KCL reads the child)", err)
	}
	if err := a.RemoveLeaseOwner(child.ID); err != nil {
		t.Fatal(err)
	}
}

// A stopping worker retires: its row and the leases it took but had not
// started are released at once, and the others share them at their next
// pass.
func TestDrainRetiresTheWorker(t *testing.T) {
	e := newEnv(t)
	shards := listing(8)
	a := e.coordinated("a", 10*time.Second, nil)
	b := e.coordinated("b", 10*time.Second, nil)
	var wg sync.WaitGroup
	for _, tbl := range []*leases.Table{a, b} {
		wg.Go(func() {
			if _, err := tbl.Pass(t.Context(), shards); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if a.Pending() != 4 {
		t.Fatalf("a has %d pending leases, want 4", a.Pending())
	}
	a.Drain()
	if c := e.owners(b); c["a"] != 0 {
		t.Fatalf("a still owns %d leases after Drain", c["a"])
	}
	if rep := e.pass(b, shards); len(rep.Taken) != 4 || rep.Workers != 1 {
		t.Fatalf("b's pass after a drained: %+v, want a's 4 shards", rep)
	}
}

// A worker killed without retiring leaves its row; once seen unchanged for
// ten lease durations, a pass deletes it, so scans do not grow with every
// worker that ever ran.
func TestPassSweepsStaleWorkerRows(t *testing.T) {
	e := newEnv(t)
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	a := e.coordinated("a", time.Second, now)
	c := e.coordinated("c", time.Second, now)
	shards := listing(2)
	e.pass(c, shards)
	e.pass(a, shards)
	rowOf := func(id string) bool {
		out, err := db.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(e.table), Key: map[string]types.AttributeValue{"ShardID": &types.AttributeValueMemberS{Value: "#worker#" + id}}, ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item != nil
	}
	if !rowOf("c") {
		t.Fatal("c's pass wrote no worker row")
	}
	offset.Add(int64(9 * time.Second))
	e.pass(a, shards)
	if !rowOf("c") {
		t.Fatal("c's row deleted after 9 lease durations, want 10")
	}
	offset.Add(int64(2 * time.Second))
	e.pass(a, shards)
	if rowOf("c") || !rowOf("a") {
		t.Fatalf("after 11 lease durations: c's row present %v, a's %v; want c's deleted, a's kept", rowOf("c"), rowOf("a"))
	}
}
