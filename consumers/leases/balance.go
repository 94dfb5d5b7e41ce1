package leases

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Balance by throughput (Config.Balance = BalanceThroughput). Count balance
// gives two hot shards and six idle ones to four workers as two each, so one
// worker may carry most of the stream. With this balance every owner writes
// each shard's measured bytes/s (a moving average) into the row with each
// renewal, which it makes anyway, and the passes, still planning from their
// one scan, move shards from workers whose load (the sum of their shards'
// bytes/s) strays from the mean to lighter ones. The moves are the claims
// and handovers of count balance, so a shard changes hands only at a batch
// boundary, after its deferred sinks are settled, exactly as a steal does.
//
// Damping, so that noise in the measurements never makes shards wander:
//   - a worker moves shards only while the busiest is over (1+t) times the
//     mean or the idlest under (1-t) times it (t, balanceTolerance);
//   - a move must leave the receiver at least t/2 of the mean below the
//     giver's load before it (the minimum gain), so the same shard can
//     never go straight back;
//   - a worker gives or receives at most one shard per pass, and none while
//     one of its moves is under way (a live claim);
//   - a shard moves only after its owner renewed it balanceCooldown times
//     since taking it (counted in the row, so every worker agrees).
//
// The measurements must be complete and fresh: when a live worker does not
// announce this balance, a held shard's throughput is missing or was not
// written with its current lease (stale: an owner balancing by count
// renewed it), or the stream carries under minBalancedRate per worker, the
// pass balances by count, as without the option. A shard taken and not yet
// renewed by its new owner holds the moves back for that pass instead (its
// row carries the previous owner's figure when it was fresh).

// Balance is how lease passes share the shards among workers.
type Balance string

// The balances. The zero value balances by count.
const (
	BalanceCount      Balance = "count"
	BalanceThroughput Balance = "throughput"
)

// Columns of the throughput balance. A count-balancing worker neither writes
// nor reads them.
const (
	// colThroughput is the shard's bytes/s (N), a moving average measured
	// by its owner; colThroughputAt is the LeaseTimeout written in the same
	// update: the figure is fresh while the two are equal.
	colThroughput   = "Throughput"
	colThroughputAt = "ThroughputAt"
	// colRenewals counts the renewals by the current owner since it took
	// the lease (the cool-down).
	colRenewals = "Renewals"
	// colBalance is, on a worker row, the balance the worker plans by.
	colBalance = "Balance"
)

const (
	// balanceTolerance is t: how far a worker's load may stray from the
	// mean before shards move.
	balanceTolerance = 0.2
	// balanceMinGain: a move leaves the receiver at least this fraction of
	// the mean below the giver's load before it.
	balanceMinGain = balanceTolerance / 2
	// balanceCooldown is how many renewals a shard's owner makes after
	// taking it before the shard may move again.
	balanceCooldown = 5
	// minBalancedRate is the mean bytes/s per worker under which the
	// passes move nothing: an idle stream has nothing to balance.
	minBalancedRate = 1024.0
)

// meter measures one running shard's throughput: the bytes delivered since
// the last sample, and their moving average, sampled at each renewal.
type meter struct {
	bytes  int64
	last   time.Time
	rate   float64
	seeded bool
}

// sample folds the bytes delivered since the last sample into the moving
// average (time constant tau) and returns it in bytes/s. The first sample
// of a shard without a carried-over figure is taken as it is.
func (m *meter) sample(now time.Time, tau time.Duration) float64 {
	dt := now.Sub(m.last).Seconds()
	if dt <= 0 {
		return m.rate
	}
	inst := float64(m.bytes) / dt
	if m.seeded {
		m.rate += (1 - math.Exp(-dt/tau.Seconds())) * (inst - m.rate)
	} else {
		m.rate, m.seeded = inst, true
	}
	m.bytes, m.last = 0, now
	return m.rate
}

// RecordBytes counts n payload bytes of shardID delivered to the handler,
// for the throughput balance; with count balance it does nothing.
func (t *Table) RecordBytes(shardID string, n int) {
	if t.balance != BalanceThroughput {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if l := t.running[shardID]; l != nil {
		l.meter.bytes += int64(n)
	}
}

// throughputTau is the moving average's time constant.
func (t *Table) throughputTau() time.Duration { return 2 * t.leaseDur }

// renewExpr is a renewal's update, which sets LeaseTimeout (:lt); with the
// throughput balance it also writes the shard's measured bytes/s, stamped
// with that LeaseTimeout, and counts the renewal. extra are the values it
// uses besides :lt and :me.
func (t *Table) renewExpr(id string) (expr string, extra map[string]types.AttributeValue) {
	if t.balance != BalanceThroughput {
		return "SET #lt = :lt", nil
	}
	t.mu.Lock()
	rate := 0.0
	if l := t.running[id]; l != nil {
		rate = l.meter.sample(t.now(), t.throughputTau())
	}
	t.mu.Unlock()
	return "SET #lt = :lt, #tp = :tp, #tpa = :lt ADD #rn :one", map[string]types.AttributeValue{
		":tp":  num(int64(math.Round(rate))),
		":one": num(1),
	}
}

// takeThroughput is what a take adds with the throughput balance: the
// cool-down starts, and a fresh figure carries over to the new lease (the
// new owner's average starts from it); a stale one is removed.
func (t *Table) takeThroughput(r row, set, remove string, values map[string]types.AttributeValue) (string, string) {
	if t.balance != BalanceThroughput {
		return set, remove
	}
	values[":zero"] = num(0)
	set += ", #rn = :zero"
	if r.throughputFresh() {
		return set + ", #tpa = :lt", remove
	}
	return set, remove + ", #tp, #tpa"
}

// throughputFresh reports whether the row's throughput was written with its
// current lease.
func (r row) throughputFresh() bool {
	return r.hasThroughput && r.rawThroughputAt != "" && r.rawThroughputAt == r.rawTimeout
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// numAttr reads a number attribute; ok is false when it is absent or not a
// number.
func numAttr(item map[string]types.AttributeValue, name string) (float64, bool) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(v.Value, 64)
	return f, err == nil
}

// balanceOutcome is what throughputClaims decided.
type balanceOutcome int

const (
	// byCount: the measurements are incomplete, stale or too small, or a
	// worker balances by count: plan by count.
	byCount balanceOutcome = iota
	// byThroughput: the claims returned are this worker's moves.
	byThroughput
	// waiting: a shard was just taken and not yet measured by its new
	// owner, or the stream is idle: no move this pass.
	waiting
)

// throughputClaims is this worker's part of the throughput balance of a
// pass (see the top of this file): every worker computes the same moves from
// the same scan and places the claims of the moves it receives.
func throughputClaims(in planInput, ids []string, live map[string]bool, count, caps map[string]int, avoid map[string]string) ([]string, balanceOutcome) {
	if in.balance != BalanceThroughput || len(in.workers) == 0 {
		return nil, byCount
	}
	for _, w := range in.workers {
		if !w.throughput {
			return nil, byCount
		}
	}
	load := map[string]float64{}
	used := map[string]bool{}
	total, wait := 0.0, false
	for _, s := range in.shards {
		h := s.holder(live)
		if h == "" || !live[h] {
			continue
		}
		if s.rate < 0 {
			if s.measuring {
				wait = true
				continue
			}
			return nil, byCount
		}
		load[h] += s.rate
		total += s.rate
		if s.claimer != "" && live[s.claimer] {
			// A move under way: neither side takes part in another.
			used[s.claimer] = true
			used[s.owner] = true
		}
	}
	if wait {
		return nil, waiting
	}
	mean := total / float64(len(in.workers))
	if mean < minBalancedRate {
		// Nothing to balance, and no reason to balance by count instead:
		// a stream whose rate hovers about the threshold (a slow producer,
		// a loaded emulator) flipped every worker to count and back, each
		// flip moving shards the other undid.
		return nil, waiting
	}
	heavy := slices.Clone(ids)
	slices.SortFunc(heavy, func(a, b string) int { return cmp.Or(cmp.Compare(load[b], load[a]), cmp.Compare(a, b)) })
	light := slices.Clone(ids)
	slices.SortFunc(light, func(a, b string) int { return cmp.Or(cmp.Compare(load[a], load[b]), cmp.Compare(a, b)) })
	over, under := (1+balanceTolerance)*mean, (1-balanceTolerance)*mean
	var mine []string
	for _, a := range heavy {
		if used[a] {
			continue
		}
		for _, b := range light {
			if load[b] >= load[a] || (load[a] <= over && load[b] >= under) {
				break
			}
			if used[b] || (caps[b] > 0 && count[b] >= caps[b]) {
				continue
			}
			s := bestMove(in.shards, a, b, load[a], load[b], mean, live, avoid)
			if s == "" {
				continue
			}
			used[a], used[b] = true, true
			if b == in.me {
				mine = append(mine, s)
			}
			break
		}
	}
	return mine, byThroughput
}

// bestMove is the shard of a to move to b: settled, not claimed, not
// avoiding b, leaving b at least the minimum gain below a's load, and of
// those the one that narrows the pair's spread most (then by id); "" if
// none.
func bestMove(shards []planShard, a, b string, la, lb, mean float64, live map[string]bool, avoid map[string]string) string {
	best, bestGain := "", 0.0
	for _, s := range shards {
		if s.owner != a || (s.claimer != "" && live[s.claimer]) || !s.settled || avoid[s.id] == b || s.rate <= 0 {
			continue
		}
		if lb+s.rate > la-balanceMinGain*mean {
			continue
		}
		gain := min(s.rate, la-lb-s.rate)
		if gain > bestGain || (gain == bestGain && best != "" && s.id < best) {
			best, bestGain = s.id, gain
		}
	}
	return best
}
