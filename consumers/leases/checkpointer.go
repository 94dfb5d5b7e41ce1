package leases

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/kinesis-ingest/kinesis-ingest/retry"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"
)

// names maps the #placeholders used in expressions to the column names, so
// that no column name can collide with a DynamoDB reserved word.
var names = map[string]string{
	"#sid": colShardID,
	"#o":   colOwner,
	"#lt":  colLeaseTimeout,
	"#cp":  colCheckpoint,
	"#p":   colParent,
	"#c":   colClaim,
	"#ct":  colClaimTime,
	"#ap":  colAdjacent,
	"#x":   colExpired,
	"#sa":  colStartAt,
	"#is":  colIdleSince,
	"#st":  colState,
	"#fo":  colFailedOn,
	"#fa":  colFailedAt,
	"#tp":  colThroughput,
	"#tpa": colThroughputAt,
	"#rn":  colRenewals,
	"#bal": colBalance,
}

// update builds an UpdateItem input, with only the #names the expressions use
// (DynamoDB rejects unused ones).
func (t *Table) update(shardID, updateExpr, condExpr string, values map[string]types.AttributeValue) *dynamodb.UpdateItemInput {
	used := map[string]string{}
	for ph, col := range names {
		if containsPlaceholder(updateExpr, ph) || containsPlaceholder(condExpr, ph) {
			used[ph] = col
		}
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                 aws.String(t.table),
		Key:                       key(shardID),
		UpdateExpression:          aws.String(updateExpr),
		ExpressionAttributeNames:  used,
		ExpressionAttributeValues: values,
	}
	if condExpr != "" {
		in.ConditionExpression = aws.String(condExpr)
	}
	if len(values) == 0 {
		in.ExpressionAttributeValues = nil
	}
	return in
}

// containsPlaceholder reports whether expr uses placeholder ph as a whole
// token ("#c" must not match inside "#cp").
func containsPlaceholder(expr, ph string) bool {
	for i := 0; ; {
		j := strings.Index(expr[i:], ph)
		if j < 0 {
			return false
		}
		end := i + j + len(ph)
		if end == len(expr) || !isNameChar(expr[end]) {
			return true
		}
		i = end
	}
}

func isNameChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isConditionFailed(err error) (*types.ConditionalCheckFailedException, bool) {
	var ccf *types.ConditionalCheckFailedException
	return ccf, errors.As(err, &ccf)
}

// claimLive reports whether r carries a steal claim that has not expired. A
// claim without ClaimTime (written by the KCL's own checkpointer) counts as
// expired: its age is unknown.
func (t *Table) claimLive(r row, now time.Time) bool {
	return r.ClaimRequest != "" && !r.ClaimTime.IsZero() && now.Before(r.ClaimTime.Add(t.claimTimeout))
}

func (t *Table) checkWorker(op, worker string) error {
	if worker != t.me {
		return fmt.Errorf("leases: %s called for worker %q on the lease table %q of worker %q; set Config.WorkerID to the KCL's WorkerID", op, worker, t.table, t.me)
	}
	return nil
}

// Init creates the lease table if needed and waits until it is active
// (EnsureTable, bounded by two minutes). The KCL calls it when the worker
// starts.
func (t *Table) Init() error {
	ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
	defer cancel()
	return t.EnsureTable(ctx)
}

// GetLease starts or renews this worker's lease on shard. The KCL calls it
// from its event loop for every shard it does not run, and from each shard
// consumer's renewal loop; any error from a renewal ends that consumer.
//
// Start (no consumer of the shard runs here): it hands the loop a lease a
// pass took (Pass) and refuses every other shard, without a call to
// DynamoDB, with an error matching the KCL's checkpoint.ErrLeaseNotAcquired.
//
// Renewal (a consumer of the shard runs in this worker): if another worker
// holds a live claim it returns ErrClaimed (so the consumer ends and releases
// the shard); if the row names another owner, or none, ErrLeaseLost;
// otherwise it extends LeaseTimeout under the condition AssignedTo = this
// worker. Transient DynamoDB errors are retried while the lease lasts.
func (t *Table) GetLease(shard *par.ShardStatus, worker string) error {
	if err := t.checkWorker("GetLease", worker); err != nil {
		return err
	}
	t.mu.Lock()
	local := t.running[shard.ID]
	releasing := local != nil && local.releasing
	draining := t.draining
	t.mu.Unlock()
	switch {
	case releasing:
		return t.notAcquired(nil, "shard %q in table %q: this worker is still releasing it (its consumer is ending); retry later", shard.ID, t.table)
	case draining && local == nil:
		return t.notAcquired(nil, "shard %q in table %q: this worker is stopping and takes no new lease", shard.ID, t.table)
	case local == nil:
		return t.startPending(shard)
	case shard.GetLeaseOwner() != t.me:
		// A consumer of the shard runs here, yet the KCL does not see this
		// worker as its owner: the call is its loop's (which would start a
		// second consumer on success), or a renewal racing the consumer's
		// end (releaseLease already marked it).
		return t.notAcquired(nil, "shard %q in table %q: a consumer of it runs here or is ending; no second one starts", shard.ID, t.table)
	}
	ctx, cancel := t.callCtx()
	defer cancel()
	return t.renew(ctx, shard)
}

// BeginBatch tells the table that the consumer of shard starts delivering a
// batch. While a delivery is in flight the lease keeps being renewed even if
// another worker claimed the shard, so that a steal never lands in the middle
// of a batch (the new owner would read it again). It returns false once the
// shard is being handed over to a claimer: the batch must not be delivered
// (its records are read by the new owner from the checkpoint).
func (t *Table) BeginBatch(shardID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.running[shardID]
	if l == nil {
		return true
	}
	if l.yield {
		l.refused = true
		return false
	}
	l.inFlight = true
	return true
}

// EndBatch ends what BeginBatch began, after the batch's checkpoint. If a
// claim was seen during the batch, the shard is handed over now: no further
// batch is delivered and the next renewal ends the consumer (ErrClaimed),
// whose exit releases the lease to the claimer.
func (t *Table) EndBatch(shardID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l := t.running[shardID]; l != nil {
		l.inFlight = false
		if l.claimed {
			l.yield = true
		}
	}
}

// Drain makes the table refuse every new lease from now on; leases already
// held are still renewed until released. A stopping worker calls it first:
// the KCL's loop keeps taking free leases while its shard consumers drain,
// and a lease taken then (often the very shard this worker just released) is
// read for a moment and abandoned, so its batch is read twice and the shard
// waits a whole lease duration for its next owner.
func (t *Table) Drain() {
	t.mu.Lock()
	already := t.draining
	t.draining = true
	t.mu.Unlock()
	if !already {
		t.retire()
	}
}

// renew extends this worker's lease on a shard it runs: one conditional
// write (AssignedTo = this worker) and no read before it. The write returns
// the row as it now is (ReturnValues costs no read capacity), which tells
// whether another worker claimed the shard; the claim is honoured at the next
// batch boundary (keepForBatch). Transient errors are retried while the lease
// lasts, so one failed call does not end the shard's consumer.
func (t *Table) renew(ctx context.Context, shard *par.ShardStatus) error {
	id := shard.ID
	deadline := shard.GetLeaseTimeout()
	var out *dynamodb.UpdateItemOutput
	var newTimeout time.Time
	// Sampled once, before the retries: a retried write carries the same
	// figure.
	expr, extra := t.renewExpr(id)
	// The waits end with the lease (on this worker's clock); a call under
	// way then may still land, and its condition decides.
	waits, cancel := context.WithTimeout(ctx, deadline.Sub(t.now()))
	defer cancel()
	err := renewPolicy.Do(waits, retry.Options{
		Retryable: func(err error) bool { _, ccf := isConditionFailed(err); return !ccf },
		OnRetry: func(a retry.Attempt) {
			t.log.Warn("lease renewal failed; retrying", "shard", id, "attempt", a.N, "lease_timeout", deadline, "err", a.Err)
		},
	}, func(context.Context) error {
		newTimeout = t.now().Add(t.leaseDur)
		values := map[string]types.AttributeValue{
			":lt": s(fmtTime(newTimeout)),
			":me": s(t.me),
		}
		maps.Copy(values, extra)
		in := t.update(id, expr, "#o = :me", values)
		in.ReturnValues = types.ReturnValueAllNew
		var err error
		out, err = t.db.UpdateItem(ctx, in)
		return err
	})
	if ccf, ok := isConditionFailed(err); ok {
		t.log.Info("lease lost", "shard", id)
		return t.notAcquired(fmt.Errorf("%w: %w", ErrLeaseLost, ccf), "renew lease on shard %q in table %q: the row no longer names this worker (another worker took it, or it was released); its consumer must stop", id, t.table)
	}
	if err != nil {
		return fmt.Errorf("leases: renew lease on shard %q in table %q (lease until %s): %w (DynamoDB unreachable or throttled; the KCL ends this consumer and the shard is leased again)", id, t.table, fmtTime(deadline), err)
	}
	shard.Mux.Lock()
	// The owner the KCL sees is left alone: it marks a consumer's end with
	// "" (releaseLease, before RemoveLeaseOwner) while a renewal of that
	// consumer may still be in flight, and writing this worker back over
	// that mark would make its loop skip the shard for good.
	shard.LeaseTimeout = newTimeout
	shard.Mux.Unlock()
	t.log.Debug("lease renewed", "shard", id, "lease_timeout", newTimeout)
	r, err := t.parse(out.Attributes)
	if err != nil {
		return err
	}
	if t.handOver(id, t.claimLive(r, t.now()) && r.ClaimRequest != t.me) {
		t.log.Info("lease claimed by another worker; giving it up", "shard", id, "claimer", r.ClaimRequest, "claim_time", r.ClaimTime)
		return fmt.Errorf("leases: renew lease on shard %q in table %q: worker %q claimed the shard (at %s); ending this consumer so that it can take over: %w", id, t.table, r.ClaimRequest, fmtTime(r.ClaimTime), ErrClaimed)
	}
	return nil
}

// renewPolicy retries a failed renewal while the lease lasts, so that one
// failed call does not end the shard's consumer.
var renewPolicy = retry.Policy{Initial: 50 * time.Millisecond, Max: time.Second}

// handOver reports, after a renewal, whether the shard's consumer must end
// so that a claimer can take the shard. A claim seen while a batch is in
// flight waits for it (EndBatch then hands over); otherwise the shard is
// handed over now (BeginBatch refuses from now on). Once BeginBatch has
// refused a batch, the consumer ends even if the claim has expired meanwhile:
// it delivers nothing more, so it must not keep the lease.
func (t *Table) handOver(id string, claimed bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.running[id]
	switch {
	case l == nil:
		return claimed
	case l.yield && !claimed && !l.refused:
		// The claim expired before any batch was refused: nothing was
		// skipped, the consumer goes on.
		l.yield, l.claimed = false, false
		return false
	case l.yield:
		return true
	case !claimed:
		return false
	case l.inFlight:
		if !l.claimed {
			t.log.Info("lease claimed by another worker; handing it over after the batch in flight", "shard", id)
		}
		l.claimed = true
		return false
	}
	l.yield = true
	return true
}

// acquireWrite writes this worker as the owner of r's shard with a fresh
// LeaseTimeout (and its parents), removing any claim, under the condition
// that the row is still as read: owner, timeout and claim unchanged, not
// finished. Exactly one of several racing workers wins.
func (t *Table) acquireWrite(ctx context.Context, r row, parent, adjacent string) (time.Time, error) {
	id := r.ShardID
	newTimeout := t.now().Add(t.leaseDur)
	values := map[string]types.AttributeValue{
		":me": s(t.me),
		":lt": s(fmtTime(newTimeout)),
	}
	set := "SET #o = :me, #lt = :lt"
	if parent != "" {
		set += ", #p = :p"
		values[":p"] = s(parent)
	}
	if adjacent != "" {
		set += ", #ap = :ap"
		values[":ap"] = s(adjacent)
	}
	remove := " REMOVE #c, #ct"
	set, remove = t.takeThroughput(r, set, remove, values)
	updateExpr := set + remove

	var conds []string
	switch {
	case !r.exists:
		conds = append(conds, "attribute_not_exists(#sid)")
	default:
		if r.Owner == "" {
			// The KCL's checkpointer may have written AssignedTo = "".
			conds = append(conds, "(attribute_not_exists(#o) OR #o = :empty)")
			values[":empty"] = s("")
		} else {
			conds = append(conds, "#o = :oldOwner")
			values[":oldOwner"] = s(r.Owner)
			if r.rawTimeout == "" {
				conds = append(conds, "attribute_not_exists(#lt)")
			} else {
				conds = append(conds, "#lt = :oldTimeout")
				values[":oldTimeout"] = s(r.rawTimeout)
			}
		}
		// The claim is still what was read: a claim placed since then on an
		// expired lease must not be wiped.
		if r.ClaimRequest == "" {
			conds = append(conds, "attribute_not_exists(#c)")
		} else {
			conds = append(conds, "#c = :oldClaim")
			values[":oldClaim"] = s(r.ClaimRequest)
			if r.rawClaimTime == "" {
				conds = append(conds, "attribute_not_exists(#ct)")
			} else {
				conds = append(conds, "#ct = :oldClaimTime")
				values[":oldClaimTime"] = s(r.rawClaimTime)
			}
		}
		conds = append(conds, "(attribute_not_exists(#cp) OR #cp <> :end)")
		values[":end"] = s(checkpoint.ShardEnd)
	}

	_, err := t.db.UpdateItem(ctx, t.update(id, updateExpr, strings.Join(conds, " AND "), values))
	if ccf, ok := isConditionFailed(err); ok {
		t.log.Debug("lease not acquired: the row changed since it was read", "shard", id)
		return time.Time{}, t.notAcquired(ccf, "acquire lease on shard %q in table %q: the row changed since it was read (another worker acquired or claimed it)", id, t.table)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("leases: acquire lease on shard %q in table %q: %w (DynamoDB error; retried at the next shard sync)", id, t.table, err)
	}
	return newTimeout, nil
}

// reportExpired logs and counts, once across all workers (a conditional
// mark on the parent's row), a parent lost to retention before its end.
func (t *Table) reportExpired(ctx context.Context, child string, p row) {
	t.mu.Lock()
	t.lost[p.ShardID] = true
	t.mu.Unlock()
	in := t.update(p.ShardID, "SET #x = :now", "attribute_exists(#sid) AND attribute_not_exists(#x)", map[string]types.AttributeValue{":now": s(fmtTime(t.now()))})
	_, err := t.db.UpdateItem(ctx, in)
	if _, ok := isConditionFailed(err); ok {
		return // another worker (or an earlier child) reported it
	}
	if err != nil {
		t.log.Warn("could not mark an expired parent as reported; it may be reported again", "shard", p.ShardID, "err", err)
	}
	t.log.Error("parent shard expired before it was read to its end: its records after the checkpoint were lost to the stream's retention; its child is leased anyway",
		"shard", p.ShardID, "checkpoint", p.Checkpoint, "child", child,
		"fix", "keep workers running (or raise the stream's retention) so that no shard waits longer than the retention")
	if t.onExpired != nil {
		t.onExpired(p.ShardID, p.Checkpoint)
	}
}

// CheckpointSequence writes shard.GetCheckpoint() (a sequence number, or
// SHARD_END at the end of the shard) as the shard's checkpoint, only if this
// worker owns the lease (condition AssignedTo = this worker). Otherwise it
// writes nothing and returns an error wrapping ErrLeaseLost and the DynamoDB
// ConditionalCheckFailedException. It touches no other column.
func (t *Table) CheckpointSequence(shard *par.ShardStatus) error {
	id := shard.ID
	cp := shard.GetCheckpoint()
	if cp == "" {
		return fmt.Errorf("leases: checkpoint of shard %q in table %q: empty sequence number; checkpoint the sequence number of the last processed record, or nil at the end of the shard", id, t.table)
	}
	if _, ok := FromStartMarker(cp); ok {
		return fmt.Errorf("leases: checkpoint of shard %q in table %q: %q is the start position of a rewound shard, not a sequence number; checkpoint the sequence number of a processed record", id, t.table, cp)
	}
	ctx, cancel := t.callCtx()
	defer cancel()
	set, values := "SET #cp = :cp", map[string]types.AttributeValue{":cp": s(cp), ":me": s(t.me)}
	if st, ok := t.stagedState(id, cp); ok {
		// The state belongs to this checkpoint: both in one write.
		if len(st) > 0 {
			set += ", #st = :st"
			values[":st"] = &types.AttributeValueMemberB{Value: st}
		} else {
			set += " REMOVE #st"
		}
	}
	in := t.update(id, set, "#o = :me", values)
	_, err := t.db.UpdateItem(ctx, in)
	if ccf, ok := isConditionFailed(err); ok {
		owner := "unknown"
		if r, err := t.get(ctx, id); err == nil {
			owner = r.Owner
		}
		t.log.Warn("checkpoint refused: lease lost", "shard", id, "checkpoint", cp, "owner", owner)
		return fmt.Errorf("leases: checkpoint %s of shard %q in table %q not written: worker %q no longer owns the lease (owner now %q); stop processing the shard, its owner resumes from its own checkpoint: %w: %w", cp, id, t.table, t.me, owner, ErrLeaseLost, ccf)
	}
	if err != nil {
		return fmt.Errorf("leases: write checkpoint %s of shard %q in table %q: %w (DynamoDB error; checkpoint again, a later checkpoint covers this one)", cp, id, t.table, err)
	}
	if cp == checkpoint.ShardEnd {
		t.log.Info("shard finished", "shard", id)
	} else {
		t.log.Debug("checkpoint written", "shard", id, "checkpoint", cp)
	}
	return nil
}

// FetchCheckpoint reads the shard's row (consistent read) into shard:
// Checkpoint, AssignedTo (shown as "" if it names this worker but no consumer
// of the shard runs here, so that the KCL tries to lease it again),
// LeaseTimeout and ClaimRequest (the claimer, if the claim is live, else "";
// the KCL's own checkpointer never sets it, which breaks its steal logic). It returns checkpoint.ErrSequenceIDNotFound
// (unwrapped: the KCL compares with ==) when the row has no checkpoint.
//
// For a shard whose consumer runs in this worker, the in-memory Checkpoint is
// left alone unless the consumer itself asks (the KCL's event loop probing the
// shard would otherwise overwrite a checkpoint the consumer is writing), and
// a probe seeing AssignedTo "" means the KCL is ending that consumer: the
// shard is then not leased again until RemoveLeaseOwner returns.
//
// A shard that does not run here and that a pass found lost to retention
// (reportExpired) reads as SHARD_END: the KCL's wait on it, from the
// consumer of a child the pass leased, ends. Once the worker is stopping
// (Drain), the KCL's wait on the unfinished parent of a child running here
// gets an error instead, so that the wait ends and Worker.Shutdown returns.
func (t *Table) FetchCheckpoint(shard *par.ShardStatus) error {
	id := shard.ID
	shard.Mux.RLock()
	prevOwner := shard.AssignedTo
	shard.Mux.RUnlock()

	t.mu.Lock()
	local := t.running[id]
	ownFetch := true
	if local != nil && local.status == shard && prevOwner != t.me {
		ownFetch = false
		if prevOwner == "" && !local.releasing {
			local.releasing = true
			t.log.Debug("consumer ending: shard not leased again until released", "shard", id)
		}
	}
	// A consumer being released no longer runs here for the KCL's loop:
	// shown as its owner, the shard would never be offered again (the loop
	// skips shards it thinks it owns), though the release frees it.
	runs := local != nil && !local.releasing
	lost := local == nil && t.lost[id]
	var running []*par.ShardStatus
	if local == nil && t.draining {
		for _, l := range t.running {
			running = append(running, l.status)
		}
	}
	t.mu.Unlock()
	awaited := parentOfAny(id, running)

	var r row
	var err error
	if local == nil && shard.StartingSequenceNumber != "" {
		r = t.probe(id)
	} else {
		ctx, cancel := t.callCtx()
		r, err = t.get(ctx, id)
		cancel()
	}
	if err != nil {
		return err
	}
	claim := ""
	if t.claimLive(r, t.now()) {
		claim = r.ClaimRequest
	}
	cp := r.Checkpoint
	if lost && cp != checkpoint.ShardEnd {
		// The KCL waits for a child's parent until its row says SHARD_END;
		// a parent lost to retention never gets there, and the pass leased
		// the child because it is gone.
		cp = checkpoint.ShardEnd
	}
	if awaited && cp != checkpoint.ShardEnd {
		// The KCL's wait on a parent ignores the worker's stop and would
		// hold Worker.Shutdown; an error ends the wait and its consumer,
		// which releases the child unread.
		return fmt.Errorf("leases: shard %q in table %q is not finished and this worker is stopping: the wait of its child ends, the child is released unread and its next owner reads it once the parent is done", id, t.table)
	}
	if cp == "" && r.StartAt != "" {
		// A rewound shard: see startMarkerPrefix.
		if p, err := ParsePosition(r.StartAt); err == nil {
			cp = StartMarker(p)
		} else {
			t.log.Warn("malformed start position ignored; the shard starts at init_position", "shard", id, "start_at", r.StartAt, "err", err)
		}
	}
	shard.Mux.Lock()
	if ownFetch {
		shard.Checkpoint = cp
	}
	shard.AssignedTo = t.memOwner(r.Owner, runs)
	shard.LeaseTimeout = r.LeaseTimeout
	setClaim(shard, claim)
	shard.Mux.Unlock()
	if cp == "" {
		return checkpoint.ErrSequenceIDNotFound
	}
	return nil
}

// parentOfAny reports whether id is the parent of one of shards (the KCL's
// wait on a parent names it by ParentShardId alone).
func parentOfAny(id string, shards []*par.ShardStatus) bool {
	for _, s := range shards {
		s.Mux.RLock()
		parent := s.ParentShardId
		s.Mux.RUnlock()
		if parent == id {
			return true
		}
	}
	return false
}

// probe answers the KCL event loop's FetchCheckpoint of a shard that does not
// run here from the pass's one table scan (cachedScan) instead of a GetItem
// per shard: the loop only uses it to skip finished shards and to see owners
// and claims, and GetLease reads the row again (consistently) before taking
// it. The loop's ShardStatus comes from ListShards and carries the shard's
// sequence range; the KCL's parent wait builds one without it and gets a
// fresh read.
func (t *Table) probe(id string) row {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.passRows[id]; ok {
		return r
	}
	return row{Lease: Lease{ShardID: id}}
}

// RemoveLeaseOwner releases this worker's lease on the shard. The KCL calls it
// whenever a shard consumer ends. It first calls Config.OnRelease, then
// removes AssignedTo under the condition AssignedTo = this worker (if another
// worker owns the row by then, it does nothing and returns nil). It leaves
// any steal claim in place: a claim on a shard this worker owns is another
// worker's, and the release is what lets that worker take the shard. Errors
// are retried a few times; if the release still fails the lease expires after
// LeaseDuration.
func (t *Table) RemoveLeaseOwner(shardID string) error {
	t.mu.Lock()
	local := t.running[shardID]
	if local != nil {
		local.releasing = true
	}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if local != nil && t.running[shardID] == local {
			delete(t.running, shardID)
		}
	}()

	if t.onRelease != nil {
		t.onRelease(shardID)
	}

	ctx, cancel := t.callCtx()
	defer cancel()
	in := t.update(shardID, "REMOVE #o", "#o = :me", map[string]types.AttributeValue{":me": s(t.me)})
	failed := t.failedEnd(local)
	if failed {
		// Its consumer here ended in failure (no shard end, no stop, no
		// claim): the passes give the shard to another worker for a while,
		// as a read that hangs or fails on this worker's path would
		// otherwise come back to it at once.
		in = t.update(shardID, "SET #fo = :me, #fa = :now REMOVE #o", "#o = :me", map[string]types.AttributeValue{":me": s(t.me), ":now": s(fmtTime(t.now()))})
	}
	err := releasePolicy.Do(ctx, retry.Options{
		Retryable: func(err error) bool { _, ccf := isConditionFailed(err); return !ccf },
		OnRetry: func(a retry.Attempt) {
			t.log.Warn("lease release failed; retrying", "shard", shardID, "attempt", a.N, "err", a.Err)
		},
	}, func(ctx context.Context) error {
		_, err := t.db.UpdateItem(ctx, in)
		return err
	})
	switch _, ccf := isConditionFailed(err); {
	case ccf:
		t.log.Debug("lease release: this worker no longer owns the shard", "shard", shardID)
		return nil
	case err != nil:
		return fmt.Errorf("leases: release lease on shard %q in table %q: %w (the lease expires by itself after %v)", shardID, t.table, err, t.leaseDur)
	case failed:
		t.log.Warn("lease released after its consumer failed; lease passes give the shard to another worker first for a while", "shard", shardID, "for", t.failureMemory())
	default:
		t.log.Info("lease released", "shard", shardID)
	}
	return nil
}

// releasePolicy bounds the retries of a release; if it still fails, the
// lease expires by itself after LeaseDuration.
var releasePolicy = retry.Policy{Initial: 100 * time.Millisecond, Attempts: 3}

// failedEnd reports whether the consumer whose lease local is ended in
// failure: not at the shard's end, not because this worker stops, not
// handed over to a claim.
func (t *Table) failedEnd(local *localLease) bool {
	if local == nil || local.status == nil {
		return false
	}
	t.mu.Lock()
	draining, yield := t.draining, local.yield
	t.mu.Unlock()
	return !draining && !yield && local.status.GetCheckpoint() != checkpoint.ShardEnd
}

// failureMemory is how long lease passes remember a failed end.
func (t *Table) failureMemory() time.Duration { return 2 * t.leaseDur }

// RemoveLeaseInfo deletes the shard's row. The KCL calls it for a shard that
// Kinesis no longer lists. The deleted row is logged, so a checkpoint deleted
// by mistake can be restored.
func (t *Table) RemoveLeaseInfo(shardID string) error {
	t.mu.Lock()
	delete(t.started, shardID)
	t.mu.Unlock()
	ctx, cancel := t.callCtx()
	defer cancel()
	out, err := t.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:    aws.String(t.table),
		Key:          key(shardID),
		ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return fmt.Errorf("leases: delete the lease row of shard %q from table %q: %w (the KCL retries at its next shard sync)", shardID, t.table, err)
	}
	if out.Attributes != nil {
		t.log.Info("lease row deleted: shard no longer listed by Kinesis", "shard", shardID,
			"checkpoint", str(out.Attributes, colCheckpoint), "owner", str(out.Attributes, colOwner), "parent", str(out.Attributes, colParent))
	}
	return nil
}

// memOwner is the owner to show the KCL in a ShardStatus: the row's, except
// that a row naming this worker shows as free unless a consumer of the shard
// runs here. The KCL's event loop never tries to lease a shard whose in-memory
// owner is itself, so a row left naming this worker (a failed release, a
// restart with the same WorkerID, a failed acquisition) would otherwise be
// stuck until another worker takes it after expiry; GetLease takes such a row
// back.
func (t *Table) memOwner(rowOwner string, running bool) string {
	if rowOwner == t.me && !running {
		return ""
	}
	return rowOwner
}

// setClaim sets shard.ClaimRequest (shard.Mux held) only if it changes: the
// KCL reads the field without the lock (worker.go:318,331,398), from its event
// loop goroutine, while FetchCheckpoint also runs on consumer goroutines;
// skipping no-op writes keeps those unsynchronised reads from racing with us
// in the common case.
func setClaim(shard *par.ShardStatus, claim string) {
	if shard.ClaimRequest != claim {
		shard.ClaimRequest = claim
	}
}
