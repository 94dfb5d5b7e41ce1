package leases

import (
	"cmp"
	"slices"
)

// A pass's plan: from one scan of the table, every worker computes the same
// assignment of the leasable shards to the live workers, and carries out only
// its own part of it (takes of free shards, claims on shards of workers above
// their share). With the same view, two workers never reach for the same
// shard; with views apart by a pass (eventual consistency, a worker that
// judges a lease expired a pass before another), the conditional writes
// decide and the next pass plans again.
//
// Why it settles: the only moves are made by workers below their target,
// taking free shards or claiming from workers above theirs; a worker never
// gives a shard up on its own. The targets differ by at most one and go to
// the workers already holding the most, so a balanced table plans no move,
// and every claim narrows the spread between the busiest and the idlest.

// planShard is a leasable shard as the pass sees it.
type planShard struct {
	id string
	// owner holds a live lease on it ("" if none: free, released or
	// expired); claimer holds a live claim ("" if none).
	owner, claimer string
	// mine says the lease is this worker's and its consumer runs here (or
	// was taken and waits for the KCL to start it).
	mine bool
	// avoid is a worker whose consumer of the shard recently ended in
	// failure: the shard goes to another worker if there is one.
	avoid string
	// For the throughput balance (balance.go): rate is the shard's fresh
	// bytes/s (-1: missing or stale); measuring says it was just taken and
	// its new owner has not renewed it yet; settled that its owner renewed
	// it balanceCooldown times since taking it.
	rate               float64
	measuring, settled bool
}

// planWorker is a live worker: one holding a live lease, or whose worker row
// is live (a worker announces itself before it holds anything).
type planWorker struct {
	id string
	// cap is its max_leases (0: none), from its worker row.
	cap int
	// throughput says it announced the throughput balance.
	throughput bool
}

// planInput is what one pass plans from.
type planInput struct {
	me       string
	shards   []planShard
	workers  []planWorker
	maxTake  int  // takes plus claims per pass, > 0
	stealing bool // claims allowed
	balance  Balance
}

// plan is this worker's part of the assignment.
type plan struct {
	take  []string // free shards (or released ones this worker claimed) to lease now
	claim []string // shards to claim from their owners
	// target is this worker's share; held what it counts as held (leases
	// plus live claims).
	target, held int
	// balance is how the claims were planned (byCount without the
	// throughput balance).
	balance balanceOutcome
}

// holder is who a shard counts for: the claimer of a claimed shard (the
// move is under way), else its owner.
func (s planShard) holder(live map[string]bool) string {
	if s.claimer != "" && live[s.claimer] {
		return s.claimer
	}
	return s.owner
}

func makePlan(in planInput) plan {
	live := make(map[string]bool, len(in.workers)+1)
	caps := map[string]int{}
	for _, w := range in.workers {
		live[w.id] = true
		caps[w.id] = w.cap
	}
	if !live[in.me] {
		// Draining, or not announced yet: this worker plans nothing.
		return plan{}
	}
	count := map[string]int{}
	var free []string
	var mineNow []string
	for _, s := range in.shards {
		h := s.holder(live)
		if h == "" || !live[h] {
			free = append(free, s.id)
			continue
		}
		count[h]++
		if h == in.me && !s.mine && (s.owner == "" || s.owner == in.me) {
			// Released to this worker's claim, or a row still naming it
			// (a restart with the same id): take it back now.
			mineNow = append(mineNow, s.id)
		}
	}
	target := targets(in.workers, count, len(in.shards))

	// The free shards go to the workers below their target, in id order:
	// every worker slices the same list the same way.
	ids := make([]string, 0, len(in.workers))
	for _, w := range in.workers {
		ids = append(ids, w.id)
	}
	slices.Sort(ids)
	slices.Sort(free)
	deficit := map[string]int{}
	for _, id := range ids {
		if d := target[id] - count[id]; d > 0 {
			deficit[id] = d
		}
	}
	p := plan{target: target[in.me], held: count[in.me], take: mineNow}
	avoid := map[string]string{}
	for _, s := range in.shards {
		if s.avoid != "" && live[s.avoid] {
			avoid[s.id] = s.avoid
		}
	}
	given := make([]bool, len(free))
	first := 0 // free[:first] are all given
	for _, id := range ids {
		for i := first; i < len(free) && deficit[id] > 0; i++ {
			if given[i] || avoid[free[i]] == id {
				continue
			}
			given[i] = true
			deficit[id]--
			count[id]++
			if id == in.me {
				p.take = append(p.take, free[i])
			}
		}
		for first < len(free) && given[first] {
			first++
		}
	}
	// A free shard that only its avoider wanted goes to the least loaded
	// other worker (beyond its target: the balance then moves another shard
	// instead), or, without one, to its avoider after all.
	for i, sid := range free {
		if given[i] || avoid[sid] == "" {
			continue
		}
		to := ""
		for _, id := range ids {
			if id != avoid[sid] && (to == "" || count[id] < count[to]) && (caps[id] == 0 || count[id] < caps[id]) {
				to = id
			}
		}
		if to == "" {
			to = avoid[sid]
		}
		count[to]++
		if to == in.me {
			p.take = append(p.take, sid)
		}
	}

	if in.stealing {
		p.balance = byCount
		if in.balance == BalanceThroughput {
			p.claim, p.balance = throughputClaims(in, ids, live, count, caps, avoid)
			if p.balance == byThroughput && len(free) > 0 {
				// Takes first: the moves are planned at the next pass, on
				// the loads with these shards.
				p.claim, p.balance = nil, waiting
			}
		}
		if p.balance == byCount && deficit[in.me] > 0 {
			p.claim = claims(in, ids, live, count, target, deficit, avoid)
		}
	}
	room := max(in.maxTake, 1)
	if len(p.take) > room {
		p.take = p.take[:room]
	}
	room -= len(p.take)
	if len(p.claim) > room {
		p.claim = p.claim[:room]
	}
	return p
}

// targets shares n shards among the workers: as even as their caps allow,
// the odd shards to the workers holding the most already (then by id), so
// that a balanced assignment is its own plan.
func targets(workers []planWorker, count map[string]int, n int) map[string]int {
	t := make(map[string]int, len(workers))
	open := slices.Clone(workers)
	slices.SortFunc(open, func(a, b planWorker) int {
		return cmp.Or(cmp.Compare(count[b.id], count[a.id]), cmp.Compare(a.id, b.id))
	})
	left := n
	for len(open) > 0 {
		share := left / len(open)
		capped := false
		rest := open[:0:0]
		for _, w := range open {
			if w.cap > 0 && w.cap <= share {
				t[w.id] = w.cap
				left -= w.cap
				capped = true
				continue
			}
			rest = append(rest, w)
		}
		open = rest
		if capped {
			continue
		}
		extra := left % len(open)
		for i, w := range open {
			t[w.id] = share
			if i < extra {
				t[w.id]++
			}
		}
		break
	}
	return t
}

// claims is this worker's part of matching the workers still below their
// target with the shards of those above theirs: deficits in id order, each
// served from the busiest surplus first, shards of a victim in id order,
// never a shard already claimed.
func claims(in planInput, ids []string, live map[string]bool, count, target, deficit map[string]int, avoid map[string]string) []string {
	byOwner := map[string][]string{}
	for _, s := range in.shards {
		if s.owner != "" && live[s.owner] && (s.claimer == "" || !live[s.claimer]) && s.owner != in.me {
			byOwner[s.owner] = append(byOwner[s.owner], s.id)
		}
	}
	type victim struct {
		id      string
		surplus int
		shards  []string
	}
	var vs []*victim
	for _, id := range ids {
		if sp := count[id] - target[id]; sp > 0 && len(byOwner[id]) > 0 {
			sh := byOwner[id]
			slices.Sort(sh)
			vs = append(vs, &victim{id: id, surplus: min(sp, len(sh)), shards: sh})
		}
	}
	slices.SortStableFunc(vs, func(a, b *victim) int { return cmp.Compare(b.surplus, a.surplus) })
	var mine []string
	for _, id := range ids {
		d := deficit[id]
		for _, v := range vs {
			for d > 0 && v.surplus > 0 {
				j := slices.IndexFunc(v.shards, func(s string) bool { return avoid[s] != id })
				if j < 0 {
					break
				}
				if id == in.me {
					mine = append(mine, v.shards[j])
				}
				v.shards = slices.Delete(v.shards, j, j+1)
				v.surplus--
				d--
			}
		}
		if id == in.me {
			break
		}
	}
	return mine
}
