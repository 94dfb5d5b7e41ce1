package leases

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"
)

// The leases are taken in passes, not by the KCL's event loop. The loop takes one lease per shard sync and then
// stops (worker.go's break after the first acquisition), so one worker needs
// a tick per shard: 48 shards took 263 s at the default interval, 1,000
// shards would take over an hour, and a dead worker's shards came back at one
// per tick per survivor. A pass instead reads the table once, plans the
// whole assignment (plan.go) and takes every lease this worker is due at
// once; the KCL's loop is then only the launcher of shard consumers: its
// GetLease hands it the shards the pass took (pending), one per loop tick,
// and refuses every other shard without a call to DynamoDB. consumers/kcl
// runs the passes and paces the loop (it ticks again at once while leases
// wait to be started, once per pass otherwise).

// workerKeyPrefix starts the ShardID of a worker row: each worker
// announces itself (and its max_leases) every pass, so that a worker holding
// no lease yet counts in everyone's share. Shard IDs never start with "#".
const workerKeyPrefix = "#worker#"

// colMaxLeases is a worker row's cap on its leases (N; absent: none).
const colMaxLeases = "MaxLeases"

// defaults of the pass.
const (
	defaultMaxLeasesPerPass = 50
	defaultAnnounceWait     = 2 * time.Second
	// passWriters bounds the conditional writes a pass has in flight.
	passWriters = 8
)

// ShardInfo is a shard as Kinesis lists it.
type ShardInfo struct {
	ID             string
	Parent         string
	AdjacentParent string
}

// PassReport says what one pass saw and did.
type PassReport struct {
	Pass int // 1 for the first pass of this Table
	// Workers is the number of live workers, Leasable the open shards whose
	// parents are done; Target is this worker's share of them, Held what it
	// counted as its own before the pass (leases and live claims).
	Workers, Leasable, Target, Held int
	Taken                           []string // leases taken (free, expired, released to a claim, or a row of ours)
	Claimed                         []string // claims placed on other workers' shards
	Refused                         int      // takes and claims whose condition failed (the row changed since the scan)
	// Expired counts the leases taken over from an owner whose lease
	// expired.
	Expired int
	// Balance is how the pass planned its moves: "count", "throughput", or
	// "waiting" (throughput balance, a shard not yet measured by its new
	// owner, or free shards taken first: no move).
	Balance string
}

// pendingLease is a lease a pass took whose consumer the KCL has not
// started yet.
type pendingLease struct {
	taken   time.Time
	timeout time.Time
	parent  string
	// seed is the shard's fresh throughput as the take carried it over
	// (throughput balance), or -1.
	seed float64
}

// errNotPlanned refuses a shard the passes did not
// give this worker. One value: the KCL's loop asks for every shard it does
// not run on every tick, and only tests the error's type.
var errNotPlanned = &notAcquiredError{msg: "leases: shard not assigned to this worker by the last lease pass; passes take leases, the KCL's loop only starts them"}

// Pass announces this worker, reads the table once (an eventually consistent
// scan), plans the assignment of the leasable shards among the live workers
// and carries out this worker's part: it takes its free shards and places
// its claims, at most MaxLeasesPerPass in all, each a conditional write on
// the row as scanned. Leases taken wait for the KCL to start them
// (GetLease). shards is the stream's complete listing (ListShards). The first
// pass waits AnnounceWait between the announcement and the scan, so that
// workers started together see each other before anyone takes a lease.
func (t *Table) Pass(ctx context.Context, shards []ShardInfo) (PassReport, error) {
	t.mu.Lock()
	t.passes++
	rep := PassReport{Pass: t.passes}
	draining := t.draining
	t.mu.Unlock()

	if !draining {
		if err := t.announce(ctx); err != nil {
			return rep, err
		}
		if rep.Pass == 1 && t.announceWait > 0 {
			select {
			case <-ctx.Done():
				return rep, context.Cause(ctx)
			case <-time.After(t.announceWait):
			}
		}
	}
	rows, workers, err := t.scanRows(ctx, false)
	if err != nil {
		return rep, err
	}
	now := t.now()
	byID := make(map[string]row, len(rows))
	for _, r := range rows {
		byID[r.ShardID] = r
	}
	listed := make(map[string]bool, len(shards))
	adjacent := map[string]string{}
	for _, s := range shards {
		listed[s.ID] = true
		if s.AdjacentParent != "" {
			adjacent[s.ID] = s.AdjacentParent
		}
	}
	t.mu.Lock()
	t.passRows = byID
	for c, p := range adjacent {
		t.adjacent[c] = p
	}
	t.mu.Unlock()

	in, orphans := t.planInput(shards, byID, listed, workers, now)
	rep.Workers, rep.Leasable = len(in.workers), len(in.shards)
	p := makePlan(in)
	rep.Target, rep.Held = p.target, p.held
	rep.Balance = [...]string{byCount: "count", byThroughput: "throughput", waiting: "waiting"}[p.balance]

	t.expirePending(ctx, now)
	t.sweepWorkers(ctx, workers)
	if len(p.take) > 0 || len(p.claim) > 0 {
		t.execute(ctx, p, byID, shards, orphans, &rep)
	}
	return rep, nil
}

// planInput builds the plan's view of the scan: the open, listed shards
// whose parents are done, their live owners and claims, and the live
// workers. orphans are, per child, its parents found unfinished though
// Kinesis no longer lists them (lost to retention; reported when taken).
func (t *Table) planInput(shards []ShardInfo, byID map[string]row, listed map[string]bool, workers []row, now time.Time) (planInput, map[string][]row) {
	t.mu.Lock()
	local := make(map[string]bool, len(t.running)+len(t.pending))
	for id := range t.running {
		local[id] = true
	}
	for id := range t.pending {
		local[id] = true
	}
	draining := t.draining
	t.mu.Unlock()

	in := planInput{me: t.me, maxTake: t.maxPerPass, stealing: t.stealing, balance: t.balance}
	live := map[string]int{}
	byThroughput := map[string]bool{}
	if !draining {
		live[t.me] = t.maxLeases
		byThroughput[t.me] = t.balance == BalanceThroughput
	}
	for _, w := range workers {
		id := strings.TrimPrefix(w.ShardID, workerKeyPrefix)
		if w.Owner == id && id != t.me && t.live(w.Lease) {
			live[id] = w.maxLeases
			byThroughput[id] = w.balance == BalanceThroughput
		}
	}
	orphans := map[string][]row{}
	for _, s := range shards {
		r, ok := byID[s.ID]
		if ok && r.Checkpoint == checkpoint.ShardEnd {
			continue
		}
		parents := []string{orElse(s.Parent, r.ParentShardID), orElse(s.AdjacentParent, r.AdjacentParentShardID)}
		blocked := false
		for _, pid := range parents {
			if pid == "" {
				continue
			}
			pr, has := byID[pid]
			switch {
			case has && pr.Checkpoint == checkpoint.ShardEnd:
			case listed[pid]:
				blocked = true
			case has:
				orphans[s.ID] = append(orphans[s.ID], pr)
			}
		}
		if blocked {
			continue
		}
		ps := planShard{id: s.ID}
		if local[s.ID] {
			ps.owner, ps.mine = t.me, true
		} else if ok && t.live(r.Lease) {
			ps.owner = r.Owner
		}
		if ok && t.claimLive(r, now) {
			ps.claimer = r.ClaimRequest
		}
		if ok && r.FailedOn != "" && now.Before(r.FailedAt.Add(t.failureMemory())) {
			ps.avoid = r.FailedOn
		}
		ps.rate = -1
		if ok && r.throughputFresh() {
			ps.rate = r.throughput
		}
		ps.measuring = ps.rate < 0 && ok && r.hasRenewals && r.renewals == 0
		ps.settled = ok && r.renewals >= balanceCooldown
		if ps.owner != "" && ps.owner != t.me {
			if _, known := live[ps.owner]; !known {
				live[ps.owner] = 0
			}
		}
		in.shards = append(in.shards, ps)
	}
	for id, c := range live {
		in.workers = append(in.workers, planWorker{id: id, cap: c, throughput: byThroughput[id]})
	}
	return in, orphans
}

// orElse returns a, or b if a is empty.
func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// execute carries out this worker's part of a plan, a few writes at a time.
func (t *Table) execute(ctx context.Context, p plan, byID map[string]row, shards []ShardInfo, orphans map[string][]row, rep *PassReport) {
	info := make(map[string]ShardInfo, len(shards))
	for _, s := range shards {
		info[s.ID] = s
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, passWriters)
	run := func(f func()) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f()
		}()
	}
	for _, id := range p.take {
		r, ok := byID[id]
		if !ok {
			r = row{Lease: Lease{ShardID: id}}
		}
		run(func() {
			expired := r.Owner != "" && r.Owner != t.me
			err := t.take(ctx, r, info[id])
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				rep.Taken = append(rep.Taken, id)
				if expired && r.ClaimRequest != t.me {
					rep.Expired++
				}
			case errors.As(err, new(checkpoint.ErrLeaseNotAcquired)):
				rep.Refused++
			default:
				t.log.Warn("lease pass: take failed; planned again at the next pass", "shard", id, "err", err)
			}
		})
	}
	for _, id := range p.claim {
		r := byID[id]
		run(func() {
			err := t.claimRow(ctx, id, r.Owner)
			mu.Lock()
			defer mu.Unlock()
			if _, ok := isConditionFailed(err); ok {
				rep.Refused++
			} else if err != nil {
				t.log.Warn("lease pass: claim failed; planned again at the next pass", "shard", id, "err", err)
			} else {
				rep.Claimed = append(rep.Claimed, id)
			}
		})
	}
	wg.Wait()
	for _, id := range rep.Taken {
		for _, pr := range orphans[id] {
			t.reportExpired(ctx, id, pr)
		}
	}
}

// take leases a shard the plan gave this worker: one conditional write on
// the row as the pass's scan read it (acquireWrite), so that of several
// workers planning from views that differ, at most one wins. The lease then
// waits for the KCL to start its consumer.
func (t *Table) take(ctx context.Context, r row, s ShardInfo) error {
	parent := orElse(s.Parent, r.ParentShardID)
	adjacent := orElse(s.AdjacentParent, r.AdjacentParentShardID)
	newTimeout, err := t.acquireWrite(ctx, r, parent, adjacent)
	if err != nil {
		return err
	}
	t.mu.Lock()
	if t.draining {
		t.mu.Unlock()
		t.release(ctx, r.ShardID)
		return t.notAcquired(nil, "shard %q in table %q: this worker began stopping during the pass", r.ShardID, t.table)
	}
	seed := -1.0
	if t.balance == BalanceThroughput && r.throughputFresh() {
		seed = r.throughput
	}
	t.pending[r.ShardID] = &pendingLease{taken: t.now(), timeout: newTimeout, parent: parent, seed: seed}
	t.mu.Unlock()
	t.log.Info("lease taken", "shard", r.ShardID, "previous_owner", r.Owner, "previous_lease_timeout", r.LeaseTimeout,
		"claimed", r.ClaimRequest == t.me, "checkpoint", r.Checkpoint, "parent", parent, "adjacent_parent", adjacent, "lease_timeout", newTimeout)
	return nil
}

// claimRow places this worker's claim on a shard owner holds, as the scan
// read it (see ClaimShard for the conditions).
func (t *Table) claimRow(ctx context.Context, id, owner string) error {
	now := t.now()
	in := t.update(id, "SET #c = :me, #ct = :now",
		"#o = :owner AND (attribute_not_exists(#c) OR attribute_not_exists(#ct) OR #ct < :expired) AND (attribute_not_exists(#cp) OR #cp <> :end)",
		map[string]types.AttributeValue{
			":me":      s(t.me),
			":now":     s(fmtTime(now)),
			":owner":   s(owner),
			":expired": s(fmtTime(now.Add(-t.claimTimeout))),
			":end":     s(checkpoint.ShardEnd),
		})
	_, err := t.db.UpdateItem(ctx, in)
	if err == nil {
		t.log.Info("steal claim placed", "shard", id, "owner", owner)
	}
	return err
}

// startPending hands the KCL's loop a lease a pass took: the shard now runs
// here. A lease that waited long for its start is renewed first.
func (t *Table) startPending(shard *par.ShardStatus) error {
	t.mu.Lock()
	p := t.pending[shard.ID]
	if p == nil {
		t.mu.Unlock()
		return errNotPlanned
	}
	delete(t.pending, shard.ID)
	l := &localLease{status: shard}
	l.meter.last = t.now()
	if p.seed >= 0 {
		l.meter.rate, l.meter.seeded = p.seed, true
	}
	t.running[shard.ID] = l
	t.started[shard.ID] = shard
	t.mu.Unlock()
	shard.Mux.Lock()
	shard.AssignedTo = t.me
	shard.LeaseTimeout = p.timeout
	if shard.ParentShardId == "" {
		shard.ParentShardId = p.parent
	}
	setClaim(shard, "")
	shard.Mux.Unlock()
	if t.now().Sub(p.taken) < t.leaseDur/3 {
		return nil
	}
	ctx, cancel := t.callCtx()
	defer cancel()
	if err := t.renew(ctx, shard); err != nil {
		t.mu.Lock()
		delete(t.running, shard.ID)
		t.mu.Unlock()
		return t.notAcquired(err, "shard %q in table %q: the lease taken %v ago could not be renewed before its start", shard.ID, t.table, t.now().Sub(p.taken).Round(time.Millisecond))
	}
	return nil
}

// expirePending gives up leases the KCL did not start within half a lease
// duration (its loop stalled, or no longer lists the shard): nobody would
// renew them.
func (t *Table) expirePending(ctx context.Context, now time.Time) {
	t.mu.Lock()
	var stale []string
	stuck := map[string]*par.ShardStatus{}
	for id, p := range t.pending {
		if now.Sub(p.taken) > t.leaseDur/2 {
			stale = append(stale, id)
			delete(t.pending, id)
			if st := t.started[id]; st != nil && t.running[id] == nil {
				stuck[id] = st
			}
		}
	}
	t.mu.Unlock()
	for _, id := range stale {
		t.log.Warn("lease taken by a pass was not started by the KCL in time; released", "shard", id)
		t.release(ctx, id)
		// The KCL's loop skips a shard it believes runs here: if its view
		// says so while no consumer of it runs, no pass could ever get it
		// started again. Corrected, and said loudly: it is a bug.
		if st := stuck[id]; st != nil && st.GetLeaseOwner() == t.me {
			st.SetLeaseOwner("")
			t.log.Error("the KCL saw a shard as running here while no consumer of it ran; its view is corrected and the next pass starts it", "shard", id)
		}
	}
}

// Pending is the number of leases taken by passes and not yet started.
func (t *Table) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// release removes this worker as the shard's owner (conditional).
func (t *Table) release(ctx context.Context, id string) {
	in := t.update(id, "REMOVE #o", "#o = :me", map[string]types.AttributeValue{":me": s(t.me)})
	if _, err := t.db.UpdateItem(ctx, in); err != nil {
		if _, ok := isConditionFailed(err); !ok {
			t.log.Warn("could not release a lease; it expires by itself", "shard", id, "err", err)
		}
	}
}

// announce writes this worker's row: its id and cap, live while it keeps
// changing (judged like a lease, by this reader's clock).
func (t *Table) announce(ctx context.Context) error {
	set := "SET #o = :me, #lt = :lt"
	values := map[string]types.AttributeValue{
		":me": s(t.me),
		":lt": s(fmtTime(t.now().Add(t.leaseDur))),
	}
	if t.maxLeases > 0 {
		set += ", " + colMaxLeases + " = :ml"
		values[":ml"] = &types.AttributeValueMemberN{Value: strconv.Itoa(t.maxLeases)}
	}
	if t.balance == BalanceThroughput {
		set += ", #bal = :bal"
		values[":bal"] = s(string(t.balance))
	}
	_, err := t.db.UpdateItem(ctx, t.update(workerKeyPrefix+t.me, set, "", values))
	if err != nil {
		return fmt.Errorf("leases: announce worker %q in table %q: %w (DynamoDB unreachable or throttled; the pass is retried)", t.me, t.table, err)
	}
	return nil
}

// staleWorkerRows is how long a worker row must be seen unchanged before a
// pass deletes it: a worker killed without retiring leaves its row behind,
// and workers come and go (a deployment's pods get new ids), so without this
// every scan would carry the rows of all the workers that ever ran.
const staleWorkerRows = 10

// sweepWorkers deletes the worker rows this worker has seen unchanged for
// staleWorkerRows lease durations, each under the condition that it is
// still as read (a worker that came back keeps its row).
func (t *Table) sweepWorkers(ctx context.Context, workers []row) {
	for _, w := range workers {
		if w.Owner == t.me || t.unchangedFor(w.Lease) < staleWorkerRows*t.leaseDur {
			continue
		}
		_, err := t.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 aws.String(t.table),
			Key:                       key(w.ShardID),
			ConditionExpression:       aws.String("#lt = :lt"),
			ExpressionAttributeNames:  map[string]string{"#lt": colLeaseTimeout},
			ExpressionAttributeValues: map[string]types.AttributeValue{":lt": s(w.rawTimeout)},
		})
		if _, ok := isConditionFailed(err); err != nil && !ok {
			t.log.Debug("could not delete a stale worker row; tried again at the next pass", "row", w.ShardID, "err", err)
			continue
		}
		if err == nil {
			t.log.Info("stale worker row deleted", "worker", w.Owner, "unchanged_for", t.unchangedFor(w.Lease).Round(time.Second))
		}
	}
}

// retire deletes this worker's row and gives up the leases taken but not
// started: a stopping worker leaves the share to the others at their next
// pass instead of after a lease duration.
func (t *Table) retire() {
	t.mu.Lock()
	pending := make([]string, 0, len(t.pending))
	for id := range t.pending {
		pending = append(pending, id)
	}
	clear(t.pending)
	t.mu.Unlock()
	ctx, cancel := t.callCtx()
	defer cancel()
	for _, id := range pending {
		t.release(ctx, id)
	}
	if _, err := t.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(t.table),
		Key:       key(workerKeyPrefix + t.me),
	}); err != nil {
		t.log.Warn("could not delete this worker's row; it expires by itself", "err", err)
	}
}

// Worker is a worker row: a worker as it last announced itself.
type Worker struct {
	ID string
	// MaxLeases is its cap (0: none).
	MaxLeases int
	// Until is the LeaseTimeout of its last announcement, on its clock: a
	// running worker keeps moving it forward every pass.
	Until time.Time
}

// Workers reads the worker rows (one consistent scan), by id. A worker that
// stopped cleanly deleted its row; a killed one's row stays until passes
// sweep it (staleWorkerRows lease durations).
func (t *Table) Workers(ctx context.Context) ([]Worker, error) {
	_, rows, err := t.scanRows(ctx, true)
	if err != nil {
		return nil, err
	}
	out := make([]Worker, 0, len(rows))
	for _, r := range rows {
		out = append(out, Worker{ID: strings.TrimPrefix(r.ShardID, workerKeyPrefix), MaxLeases: r.maxLeases, Until: r.LeaseTimeout})
	}
	slices.SortFunc(out, func(a, b Worker) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
