package leases_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"
	"go.uber.org/goleak"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/emulators"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/faultproxy"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// One dynalite serves the whole test binary; every test uses its own table.
var (
	db       *dynamodb.Client
	endpoint string
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	srv, err := emulators.StartDynamo(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start dynalite:", err)
		os.Exit(1)
	}
	db, endpoint = testaws.Dynamo(srv.Endpoint), srv.Endpoint
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "dynalite log tail:\n%s\n", srv.LogTail(4<<10))
	}
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop dynalite:", err)
	}
	// Every Table's goroutines must end with its test; the SDK's idle
	// keep-alive connections close with dynalite.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var tableSeq atomic.Int64

// env is one test's lease table, shared by the test's workers.
type env struct {
	t     *testing.T
	table string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	name := fmt.Sprintf("leases-%s-%d", strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()), tableSeq.Add(1))
	if len(name) > 255 {
		name = name[:255]
	}
	e := &env{t: t, table: name}
	// Create it once up front, so that workers created later find it ACTIVE.
	e.worker("setup", time.Second, nil)
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// worker returns a Table for worker id with an active table.
func (e *env) worker(id string, leaseDur time.Duration, onRelease func(string)) *leases.Table {
	e.t.Helper()
	return e.newTable(leases.Config{WorkerID: id, LeaseDuration: leaseDur, OnRelease: onRelease})
}

// workerClock is worker with its own clock.
func (e *env) workerClock(id string, leaseDur time.Duration, now func() time.Time) *leases.Table {
	e.t.Helper()
	return e.newTable(leases.Config{WorkerID: id, LeaseDuration: leaseDur, Now: now})
}

// newTable returns a Table on the test's table for cfg (Client, Table and
// Logger filled in).
func (e *env) newTable(cfg leases.Config) *leases.Table {
	e.t.Helper()
	if cfg.AnnounceWait == 0 {
		cfg.AnnounceWait = time.Millisecond
	}
	if cfg.Client == nil {
		cfg.Client = db
	}
	cfg.Table = e.table
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tbl, err := leases.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(e.t.Context(), time.Minute)
	defer cancel()
	if err := tbl.EnsureTable(ctx); err != nil {
		e.t.Fatal(err)
	}
	return tbl
}

// row returns the lease row of shard (t.Fatal if absent).
func (e *env) row(tbl *leases.Table, shard string) leases.Lease {
	e.t.Helper()
	rows, err := tbl.Checkpoints(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	r, ok := rows[shard]
	if !ok {
		e.t.Fatalf("no row for shard %s; rows: %+v", shard, rows)
	}
	return r
}

func status(id, parent string) *par.ShardStatus {
	return &par.ShardStatus{ID: id, ParentShardId: parent, Mux: &sync.RWMutex{}}
}

// mustLease takes st's lease for worker as a running worker does: a lease
// pass over the shard (and its parent) when no consumer of it runs here,
// then the KCL's GetLease, which starts or renews it.
func mustLease(t *testing.T, tbl *leases.Table, st *par.ShardStatus, worker string) {
	t.Helper()
	// A worker row another worker left unrenewed counts in the plan until
	// this one sees it unchanged for a lease duration: take passes until then.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := take(t, tbl, st, worker)
		if err == nil {
			return
		}
		if !isNotAcquired(err) || errors.Is(err, leases.ErrLeaseLost) || time.Now().After(deadline) {
			t.Fatalf("%s: GetLease(%s): %v", worker, st.ID, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// take is mustLease returning the refusal.
func take(t *testing.T, tbl *leases.Table, st *par.ShardStatus, worker string) error {
	t.Helper()
	err := tbl.GetLease(st, worker)
	if err == nil || !isNotAcquired(err) || errors.Is(err, leases.ErrLeaseLost) {
		return err
	}
	if _, err := tbl.Pass(t.Context(), []leases.ShardInfo{{ID: st.ID, Parent: st.ParentShardId}}); err != nil {
		t.Fatalf("%s: pass: %v", worker, err)
	}
	return tbl.GetLease(st, worker)
}

// claim places claimer's steal claim on shard, as its lease pass does.
func (e *env) claim(shard, claimer string) error {
	e.t.Helper()
	_, err := db.UpdateItem(e.t.Context(), &dynamodb.UpdateItemInput{
		TableName:                 aws.String(e.table),
		Key:                       map[string]types.AttributeValue{"ShardID": &types.AttributeValueMemberS{Value: shard}},
		UpdateExpression:          aws.String("SET ClaimRequest = :c, ClaimTime = :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberS{Value: claimer}, ":t": &types.AttributeValueMemberS{Value: time.Now().UTC().Format("2006-01-02T15:04:05.000000000Z07:00")}},
	})
	return err
}

func checkpointAt(t *testing.T, tbl *leases.Table, st *par.ShardStatus, seq string) error {
	t.Helper()
	st.SetCheckpoint(seq)
	return tbl.CheckpointSequence(st)
}

func isNotAcquired(err error) bool {
	return errors.As(err, &checkpoint.ErrLeaseNotAcquired{})
}

func wantNotAcquired(t *testing.T, err error, cause error) {
	t.Helper()
	if err == nil {
		t.Fatal("lease acquired, want refusal")
	}
	if !isNotAcquired(err) {
		t.Fatalf("error %v (%T) does not match checkpoint.ErrLeaseNotAcquired", err, err)
	}
	if !errors.Is(err, checkpoint.ErrLeaseNotAcquired{}) {
		t.Fatalf("errors.Is(%v, ErrLeaseNotAcquired{}) = false", err)
	}
	if cause != nil && !errors.Is(err, cause) {
		t.Fatalf("error %v does not wrap %v", err, cause)
	}
}

// 1. A worker whose lease was taken over cannot move the checkpoint.
func TestLostLeaseCannotCheckpoint(t *testing.T) {
	e := newEnv(t)
	const lease = 300 * time.Millisecond
	w1, w2 := e.worker("w1", lease, nil), e.worker("w2", lease, nil)
	s1, s2 := status("shard-1", ""), status("shard-1", "")

	mustLease(t, w1, s1, "w1")
	if err := checkpointAt(t, w1, s1, "50"); err != nil {
		t.Fatalf("w1 checkpoint while owner: %v", err)
	}
	// w2 judges expiry by its own sighting of the lease: it must see it
	// unchanged for a lease duration.
	wantNotAcquired(t, take(t, w2, s2, "w2"), nil)
	time.Sleep(lease + 100*time.Millisecond)
	mustLease(t, w2, s2, "w2")
	if err := checkpointAt(t, w2, s2, "200"); err != nil {
		t.Fatalf("w2 checkpoint: %v", err)
	}

	err := checkpointAt(t, w1, s1, "100")
	if !errors.Is(err, leases.ErrLeaseLost) {
		t.Fatalf("w1 checkpoint after takeover: got %v, want ErrLeaseLost", err)
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("ErrLeaseLost does not wrap the ConditionalCheckFailedException: %v", err)
	}
	// SHARD_END goes through the same condition.
	if err := checkpointAt(t, w1, s1, checkpoint.ShardEnd); !errors.Is(err, leases.ErrLeaseLost) {
		t.Fatalf("w1 SHARD_END after takeover: got %v, want ErrLeaseLost", err)
	}
	if r := e.row(w1, "shard-1"); r.Checkpoint != "200" || r.Owner != "w2" {
		t.Fatalf("row after w1's late checkpoints: %+v, want checkpoint 200 owner w2", r)
	}

	// w1's renewal ends its consumer; its release leaves w2's lease alone.
	if err := w1.GetLease(s1, "w1"); !errors.Is(err, leases.ErrLeaseLost) {
		t.Fatalf("w1 renewal after takeover: got %v, want ErrLeaseLost", err)
	}
	if err := w1.RemoveLeaseOwner("shard-1"); err != nil {
		t.Fatalf("w1 release after takeover: %v", err)
	}
	if r := e.row(w1, "shard-1"); r.Checkpoint != "200" || r.Owner != "w2" {
		t.Fatalf("row after w1's release: %+v, want checkpoint 200 owner w2", r)
	}
}

// 2. Renewal by the owner extends the timeout; an unexpired foreign lease is
// not acquired.
func TestRenewalAndForeignLease(t *testing.T) {
	e := newEnv(t)
	w1, w2 := e.worker("w1", 5*time.Second, nil), e.worker("w2", 5*time.Second, nil)
	s1 := status("shard-1", "")

	mustLease(t, w1, s1, "w1")
	first := e.row(w1, "shard-1").LeaseTimeout
	if got := s1.GetLeaseTimeout(); !got.Equal(first) || s1.GetLeaseOwner() != "w1" {
		t.Fatalf("in-memory after acquire: owner %q timeout %v; row timeout %v", s1.GetLeaseOwner(), got, first)
	}
	time.Sleep(20 * time.Millisecond)
	mustLease(t, w1, s1, "w1")
	second := e.row(w1, "shard-1")
	if !second.LeaseTimeout.After(first) || second.Owner != "w1" {
		t.Fatalf("renewal: row %+v, first timeout %v", second, first)
	}
	if !s1.GetLeaseTimeout().Equal(second.LeaseTimeout) {
		t.Fatalf("in-memory timeout %v, row %v", s1.GetLeaseTimeout(), second.LeaseTimeout)
	}

	err := take(t, w2, status("shard-1", ""), "w2")
	wantNotAcquired(t, err, nil)
	if r := e.row(w1, "shard-1"); r.Owner != "w1" || !r.LeaseTimeout.Equal(second.LeaseTimeout) {
		t.Fatalf("row changed by a refused acquisition: %+v", r)
	}

	// A Table refuses calls for another worker ID.
	if err := w1.GetLease(s1, "w2"); err == nil || isNotAcquired(err) {
		t.Fatalf("GetLease for a foreign worker ID: %v", err)
	}
}

// A draining worker renews what it holds but takes no new lease, so that a
// lease it just released goes to another worker instead of coming back to it
// for a moment.
func TestDrainRefusesNewLeases(t *testing.T) {
	e := newEnv(t)
	w1, w2 := e.worker("w1", 5*time.Second, nil), e.worker("w2", 5*time.Second, nil)
	held, free := status("shard-1", ""), status("shard-2", "")
	mustLease(t, w1, held, "w1")
	w1.Drain()
	wantNotAcquired(t, take(t, w1, free, "w1"), nil)
	before := e.row(w1, "shard-1").LeaseTimeout
	time.Sleep(20 * time.Millisecond)
	mustLease(t, w1, held, "w1")
	if after := e.row(w1, "shard-1").LeaseTimeout; !after.After(before) {
		t.Fatalf("a draining worker's renewal did not extend its lease: %v then %v", before, after)
	}
	mustLease(t, w2, free, "w2")
}

// 4. A checkpoint does not erase the claim; a lease write does not erase the
// checkpoint.
func TestWritesKeepOtherColumns(t *testing.T) {
	e := newEnv(t)
	const lease = 5 * time.Second
	w1, w2 := e.worker("w1", lease, nil), e.worker("w2", lease, nil)
	s1 := status("shard-1", "parent-0")
	// The parent row is missing and Kinesis does not list it: the child is
	// leased.
	mustLease(t, w1, s1, "w1")
	if err := checkpointAt(t, w1, s1, "100"); err != nil {
		t.Fatal(err)
	}
	s2 := status("shard-1", "")
	s2.SetLeaseOwner("w1")
	if err := e.claim(s2.ID, "w2"); err != nil {
		t.Fatal(err)
	}
	claimTime := e.row(w1, "shard-1").ClaimTime

	if err := checkpointAt(t, w1, s1, "150"); err != nil {
		t.Fatalf("owner's checkpoint under a claim: %v", err)
	}
	r := e.row(w1, "shard-1")
	if r.Checkpoint != "150" || r.ClaimRequest != "w2" || !r.ClaimTime.Equal(claimTime) || r.Owner != "w1" || r.ParentShardID != "parent-0" {
		t.Fatalf("row after checkpoint under claim: %+v", r)
	}

	// Renewal (refused under the claim) and acquisition keep the checkpoint.
	if err := w1.GetLease(s1, "w1"); !errors.Is(err, leases.ErrClaimed) {
		t.Fatalf("renewal under claim: %v", err)
	}
	if err := w1.RemoveLeaseOwner("shard-1"); err != nil {
		t.Fatal(err)
	}
	mustLease(t, w2, s2, "w2")
	if r := e.row(w1, "shard-1"); r.Checkpoint != "150" || r.Owner != "w2" || r.ParentShardID != "parent-0" {
		t.Fatalf("row after w2 acquired: %+v", r)
	}
	mustLease(t, w2, s2, "w2") // renewal
	if r := e.row(w1, "shard-1"); r.Checkpoint != "150" {
		t.Fatalf("row after renewal: %+v", r)
	}
	// The new owner resumes from the checkpoint.
	s2.SetCheckpoint("")
	if err := w2.FetchCheckpoint(s2); err != nil || s2.GetCheckpoint() != "150" {
		t.Fatalf("FetchCheckpoint: %v, checkpoint %q", err, s2.GetCheckpoint())
	}
}

// While the KCL ends a consumer (between its clearing of the in-memory owner
// and the end of RemoveLeaseOwner, which includes OnRelease), the worker does
// not lease the shard again; checkpoints from OnRelease succeed, later ones
// fail.
func TestReleaseWindow(t *testing.T) {
	e := newEnv(t)
	var w1 *leases.Table
	s1 := status("shard-1", "")
	var inRelease []error
	w1 = e.worker("w1", 5*time.Second, func(id string) {
		inRelease = append(inRelease,
			w1.GetLease(s1, "w1"),          // the event loop retrying: refused
			checkpointAt(t, w1, s1, "300"), // the final drain: written
		)
	})
	mustLease(t, w1, s1, "w1")
	if err := checkpointAt(t, w1, s1, "200"); err != nil {
		t.Fatal(err)
	}

	// The KCL's releaseLease clears the in-memory owner first; its event loop
	// may then probe the shard before RemoveLeaseOwner is called.
	s1.SetLeaseOwner("")
	if err := w1.FetchCheckpoint(s1); err != nil {
		t.Fatal(err)
	}
	wantNotAcquired(t, take(t, w1, s1, "w1"), nil)

	if err := w1.RemoveLeaseOwner("shard-1"); err != nil {
		t.Fatal(err)
	}
	if len(inRelease) != 2 {
		t.Fatalf("OnRelease not called: %v", inRelease)
	}
	wantNotAcquired(t, inRelease[0], nil)
	if inRelease[1] != nil {
		t.Fatalf("checkpoint from OnRelease: %v", inRelease[1])
	}
	if err := checkpointAt(t, w1, s1, "400"); !errors.Is(err, leases.ErrLeaseLost) {
		t.Fatalf("checkpoint after release: %v, want ErrLeaseLost", err)
	}
	if r := e.row(w1, "shard-1"); r.Checkpoint != "300" || r.Owner != "" {
		t.Fatalf("row after release: %+v", r)
	}
	// Once released, the shard can be leased again.
	mustLease(t, w1, s1, "w1")
}

// A row naming this worker without a running consumer (a restart with the
// same WorkerID) is taken back, not just renewed.
func TestRetakeOwnRowAfterRestart(t *testing.T) {
	e := newEnv(t)
	old := e.worker("w1", 5*time.Second, nil)
	mustLease(t, old, status("shard-1", ""), "w1")
	restarted := e.worker("w1", 5*time.Second, nil)
	s := status("shard-1", "")
	if err := restarted.FetchCheckpoint(s); !errors.Is(err, checkpoint.ErrSequenceIDNotFound) {
		t.Fatal(err)
	}
	// Shown as free, so that the KCL's event loop tries to lease it.
	if o := s.GetLeaseOwner(); o != "" {
		t.Fatalf("in-memory owner of an own row without a consumer: %q", o)
	}
	mustLease(t, restarted, s, "w1") // acquisition
	mustLease(t, restarted, s, "w1") // renewal
}

func TestRemoveLeaseInfoAndOwner(t *testing.T) {
	e := newEnv(t)
	w1 := e.worker("w1", 5*time.Second, nil)
	mustLease(t, w1, status("shard-1", ""), "w1")
	if err := w1.RemoveLeaseInfo("shard-1"); err != nil {
		t.Fatal(err)
	}
	rows, err := w1.Checkpoints(t.Context())
	if err != nil || len(rows) != 0 {
		t.Fatalf("rows after RemoveLeaseInfo: %v, %v", rows, err)
	}
	if err := w1.RemoveLeaseInfo("shard-1"); err != nil {
		t.Fatalf("RemoveLeaseInfo of a missing row: %v", err)
	}
	if err := w1.RemoveLeaseOwner("never-leased"); err != nil {
		t.Fatalf("RemoveLeaseOwner of a missing row: %v", err)
	}
}

func TestEnsureTable(t *testing.T) {
	e := newEnv(t)
	w := e.worker("w1", time.Second, nil)
	if err := w.Init(); err != nil {
		t.Fatalf("Init on an existing table: %v", err)
	}
	out, err := db.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(e.table)})
	if err != nil {
		t.Fatal(err)
	}
	if out.Table.TableStatus != types.TableStatusActive || out.Table.BillingModeSummary == nil || out.Table.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Fatalf("table: status %s billing %+v", out.Table.TableStatus, out.Table.BillingModeSummary)
	}

	// Concurrent creation by several workers.
	name := e.table + "-concurrent"
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		tbl, err := leases.New(leases.Config{Client: db, Table: name, WorkerID: fmt.Sprint("w", i), LeaseDuration: time.Second, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = tbl.EnsureTable(t.Context())
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	// A table with another key is rejected.
	other := e.table + "-other"
	if _, err := db.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(other),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	tbl, err := leases.New(leases.Config{Client: db, Table: other, WorkerID: "w1", LeaseDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.EnsureTable(t.Context()); err == nil || !strings.Contains(err.Error(), "not a lease table") {
		t.Fatalf("EnsureTable on a foreign table: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []leases.Config{
		{Table: "t", WorkerID: "w", LeaseDuration: time.Second},
		{Client: db, WorkerID: "w", LeaseDuration: time.Second},
		{Client: db, Table: "t", LeaseDuration: time.Second},
		{Client: db, Table: "t", WorkerID: "w"},
		{Client: db, Table: "t", WorkerID: "w", LeaseDuration: time.Second, ClaimTimeout: time.Millisecond},
	} {
		if _, err := leases.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", cfg)
		}
	}
	if _, err := leases.New(leases.Config{Client: db, Table: "t", WorkerID: "w", LeaseDuration: time.Second}); err != nil {
		t.Fatal(err)
	}
}

// A worker whose clock is an hour ahead (or behind) never takes a lease its
// owner keeps renewing, and takes it once the owner stops renewing, a lease
// duration after it last saw a renewal.
func TestClockSkewTakesNoLiveLease(t *testing.T) {
	for _, offset := range []time.Duration{time.Hour, -time.Hour} {
		t.Run(offset.String(), func(t *testing.T) {
			e := newEnv(t)
			const lease = time.Second
			owner := e.worker("owner", lease, nil)
			skewed := e.workerClock("skewed", lease, func() time.Time { return time.Now().Add(offset) })
			own := status("shard-1", "")
			mustLease(t, owner, own, "owner")

			// The owner renews every lease/4 for 3 lease durations while the
			// skewed worker tries to acquire every 50 ms.
			deadline := time.Now().Add(3 * lease)
			lastRenew := time.Now()
			for time.Now().Before(deadline) {
				if time.Since(lastRenew) >= lease/4 {
					mustLease(t, owner, own, "owner")
					lastRenew = time.Now()
				}
				err := take(t, skewed, status("shard-1", ""), "skewed")
				if err == nil {
					t.Fatalf("worker with clock offset %v took a lease renewed %v ago", offset, time.Since(lastRenew))
				}
				wantNotAcquired(t, err, nil)
				time.Sleep(50 * time.Millisecond)
			}
			// The owner dies: no more renewals. The skewed worker takes the
			// shard about one lease duration after the last renewal it saw.
			waitFor(t, 5*lease, "the skewed worker to take the abandoned lease", func() bool {
				return take(t, skewed, status("shard-1", ""), "skewed") == nil
			})
			took := time.Since(lastRenew)
			if took < lease {
				t.Errorf("taken %v after the last renewal, before the lease duration %v", took, lease)
			}
			t.Logf("clock offset %v: lease taken %v after the owner's last renewal (lease duration %v)", offset, took.Round(10*time.Millisecond), lease)
		})
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A claim placed while the owner delivers a batch waits for the batch: the
// owner keeps renewing (the claimer cannot take the shard, not even after a
// lease duration), refuses the next batch once the one in flight ends, and
// only then gives the lease up to the claimer.
func TestClaimWaitsForTheBatchInFlight(t *testing.T) {
	e := newEnv(t)
	const lease = time.Second
	// Claims outlive the slow batch here; an expired claim is simply placed
	// again by the KCL.
	owner := e.newTable(leases.Config{WorkerID: "owner", LeaseDuration: lease, ClaimTimeout: 10 * lease})
	claimer := e.newTable(leases.Config{WorkerID: "claimer", LeaseDuration: lease, ClaimTimeout: 10 * lease})
	own := status("shard-1", "")
	mustLease(t, owner, own, "owner")
	if !owner.BeginBatch("shard-1") {
		t.Fatal("BeginBatch refused on an unclaimed shard")
	}
	theirs := status("shard-1", "")
	if err := claimer.FetchCheckpoint(theirs); err != nil && !errors.Is(err, checkpoint.ErrSequenceIDNotFound) {
		t.Fatal(err)
	}
	if err := e.claim(theirs.ID, "claimer"); err != nil {
		t.Fatalf("ClaimShard: %v", err)
	}
	// A slow delivery: three lease durations of renewals.
	for end := time.Now().Add(3 * lease); time.Now().Before(end); time.Sleep(lease / 4) {
		if err := owner.GetLease(own, "owner"); err != nil {
			t.Fatalf("renewal during the batch in flight: %v", err)
		}
		if err := take(t, claimer, status("shard-1", ""), "claimer"); err == nil {
			t.Fatal("the claimer took the shard while its owner's batch was in flight")
		}
	}
	if err := checkpointAt(t, owner, own, "42"); err != nil {
		t.Fatalf("checkpoint of the batch in flight: %v", err)
	}
	owner.EndBatch("shard-1")
	if owner.BeginBatch("shard-1") {
		t.Fatal("BeginBatch allowed another batch after the claimed one")
	}
	if err := owner.GetLease(own, "owner"); !errors.Is(err, leases.ErrClaimed) {
		t.Fatalf("renewal after the batch: %v, want ErrClaimed", err)
	}
	if err := owner.RemoveLeaseOwner("shard-1"); err != nil {
		t.Fatal(err)
	}
	mine := status("shard-1", "")
	mustLease(t, claimer, mine, "claimer")
	if err := claimer.FetchCheckpoint(mine); err != nil || mine.GetCheckpoint() != "42" {
		t.Fatalf("the claimer resumes at %q (%v), want the owner's last checkpoint 42", mine.GetCheckpoint(), err)
	}
}

// One failed call during a renewal is retried, not the end of the shard's
// consumer: every second UpdateItem fails (throttled, and the client makes no
// retries of its own), and every renewal still succeeds. A renewal reads
// nothing: it is one conditional write.
func TestRenewalRetriesAFailedCall(t *testing.T) {
	e := newEnv(t)
	proxy := faultproxy.New(t, endpoint, faultproxy.Rule{Operation: "UpdateItem", Every: 2, Code: "ProvisionedThroughputExceededException"})
	// The lease is taken on the emulator directly (a pass makes two writes),
	// then every call goes through the proxy.
	var flaky atomic.Bool
	proxied, err := url.Parse(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	client := dynamodb.New(db.Options(), func(o *dynamodb.Options) {
		o.RetryMaxAttempts = 1
		o.HTTPClient = &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
			if flaky.Load() {
				r.URL.Scheme, r.URL.Host = proxied.Scheme, proxied.Host
			}
			return http.DefaultTransport.RoundTrip(r)
		})}
	})
	w := e.newTable(leases.Config{WorkerID: "w1", LeaseDuration: 2 * time.Second, Client: client})
	st := status("shard-1", "")
	mustLease(t, w, st, "w1")
	flaky.Store(true)
	reads := proxy.Calls("GetItem")
	for i := range 6 {
		if err := w.GetLease(st, "w1"); err != nil {
			t.Fatalf("renewal %d with every second write failing: %v", i, err)
		}
	}
	if n := proxy.Calls("UpdateItem"); n < 7 {
		t.Errorf("6 renewals with every second write failing made %d UpdateItem calls, want at least 7", n)
	}
	if n := proxy.Calls("GetItem") - reads; n != 0 {
		t.Errorf("6 renewals made %d GetItem calls, want none", n)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Two workers racing to take over the same expired lease: exactly one wins,
// every round, and the row names it.
func TestTakeoverRaceOnAnExpiredLease(t *testing.T) {
	e := newEnv(t)
	const lease = 300 * time.Millisecond
	dead := e.worker("dead", lease, nil)
	w := []*leases.Table{e.worker("w1", lease, nil), e.worker("w2", lease, nil)}
	ids := []string{"w1", "w2"}
	wins := map[string]int{}
	for round := range 10 {
		id := fmt.Sprintf("shard-%d", round)
		mustLease(t, dead, status(id, ""), "dead")
		// Both see the dead worker's lease, then wait for it to expire.
		for i := range w {
			wantNotAcquired(t, take(t, w[i], status(id, ""), ids[i]), nil)
		}
		time.Sleep(lease + 50*time.Millisecond)
		errs := make([]error, 2)
		var start, done sync.WaitGroup
		start.Add(1)
		for i := range 2 {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				errs[i] = take(t, w[i], status(id, ""), ids[i])
			}()
		}
		start.Done()
		done.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: both workers took over %s", round, id)
				}
				winner = i
			case !isNotAcquired(err):
				t.Fatalf("round %d: %s: unexpected error %v", round, ids[i], err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody took over the expired lease of %s: %v", round, id, errs)
		}
		wins[ids[winner]]++
		if r := e.row(w[0], id); r.Owner != ids[winner] {
			t.Fatalf("round %d: row owner %q, winner %s", round, r.Owner, ids[winner])
		}
		if err := w[winner].RemoveLeaseOwner(id); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("takeover wins: %v", wins)
}

// Once a batch was refused for a handover, the consumer ends at its next
// renewal even if the claim expired meanwhile: it delivers nothing more, and
// keeping the lease would stall the shard.
func TestRefusedBatchEndsTheConsumerEvenIfTheClaimExpired(t *testing.T) {
	e := newEnv(t)
	const lease = 300 * time.Millisecond
	owner := e.newTable(leases.Config{WorkerID: "owner", LeaseDuration: lease, ClaimTimeout: lease})
	own := status("shard-1", "")
	mustLease(t, owner, own, "owner")
	owner.BeginBatch("shard-1")
	theirs := status("shard-1", "")
	theirs.SetLeaseOwner("owner")
	if err := e.claim(theirs.ID, "claimer"); err != nil {
		t.Fatal(err)
	}
	if err := owner.GetLease(own, "owner"); err != nil {
		t.Fatalf("renewal with the batch in flight: %v", err)
	}
	owner.EndBatch("shard-1")
	if owner.BeginBatch("shard-1") {
		t.Fatal("BeginBatch allowed a batch after a claimed one")
	}
	time.Sleep(lease + 50*time.Millisecond) // the claim expires; the claimer never came
	if err := owner.GetLease(own, "owner"); !errors.Is(err, leases.ErrClaimed) {
		t.Fatalf("renewal after a refused batch: %v, want ErrClaimed (the consumer must end)", err)
	}
}

// A renewal whose write is still in flight when the KCL ends the shard's
// consumer (its releaseLease marks the in-memory owner "" before it calls
// RemoveLeaseOwner) must not mark the shard as running here again once the
// write lands: the KCL's loop skips every shard it believes this worker
// owns, so the shard would never be started here again while every pass
// gave it back to this worker (seen after a Kinesis outage ended every
// consumer at once: one shard unread for minutes).
func TestRenewalLandingAfterTheReleaseLeavesTheShardFree(t *testing.T) {
	e := newEnv(t)
	st := status("shard-1", "")
	var during atomic.Bool
	client := dynamodb.New(db.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("release-during-renewal",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					out, md, err := next.HandleFinalize(ctx, in)
					if during.Load() {
						// The write has landed; its answer is not back yet.
						st.SetLeaseOwner("")
					}
					return out, md, err
				}), middleware.After)
		})
	})
	w := e.newTable(leases.Config{WorkerID: "w1", LeaseDuration: 2 * time.Second, Client: client})
	mustLease(t, w, st, "w1")
	during.Store(true)
	if err := w.GetLease(st, "w1"); err != nil {
		t.Fatalf("renewal: %v", err)
	}
	during.Store(false)
	if owner := st.GetLeaseOwner(); owner != "" {
		t.Fatalf("after a renewal that landed during the consumer's release, the KCL sees the shard owned by %q: its loop never starts it again; want it free", owner)
	}
	if err := w.RemoveLeaseOwner(st.ID); err != nil {
		t.Fatal(err)
	}
}
