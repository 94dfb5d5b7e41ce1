package leases

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// hot is a shard of a throughput-balanced table: its owner, its fresh
// bytes/s (-1: missing or stale), and whether it is past its cool-down.
type hot struct {
	owner, claimer string
	rate           float64
	unsettled      bool // renewed fewer than balanceCooldown times by its owner
	measuring      bool // just taken, not renewed yet
}

// hotInput builds the plan input of me over shards s0, s1, ... with the
// throughput balance, every worker announcing it unless listed in byCount.
func hotInput(me string, workers []string, shards []hot, byCount ...string) planInput {
	in := planInput{me: me, maxTake: 50, stealing: true, balance: BalanceThroughput}
	for _, w := range workers {
		in.workers = append(in.workers, planWorker{id: w, throughput: !slices.Contains(byCount, w)})
	}
	for i, h := range shards {
		in.shards = append(in.shards, planShard{id: fmt.Sprintf("s%d", i), owner: h.owner, claimer: h.claimer, mine: h.owner == me,
			rate: h.rate, settled: !h.unsettled, measuring: h.measuring})
	}
	return in
}

// moves returns every worker's claims of one pass on the same view, as
// "shard>claimer", and how each planned.
func moves(workers []string, shards []hot, byCount ...string) (claims []string, how map[balanceOutcome]int) {
	how = map[balanceOutcome]int{}
	for _, w := range workers {
		p := makePlan(hotInput(w, workers, shards, byCount...))
		how[p.balance]++
		for _, s := range p.claim {
			claims = append(claims, s+">"+w)
		}
	}
	slices.Sort(claims)
	return claims, how
}

func TestPlanByThroughput(t *testing.T) {
	const kb = 1024.0
	four := []string{"a", "b", "c", "d"}
	// Two hot shards (40% each) and six cold ones, held two per worker as
	// count balance leaves them: a holds both hot ones.
	twoHot := []hot{
		{owner: "a", rate: 40 * kb}, {owner: "a", rate: 40 * kb},
		{owner: "b", rate: 10 * kb / 3}, {owner: "b", rate: 10 * kb / 3},
		{owner: "c", rate: 10 * kb / 3}, {owner: "c", rate: 10 * kb / 3},
		{owner: "d", rate: 10 * kb / 3}, {owner: "d", rate: 10 * kb / 3},
	}
	tests := []struct {
		name    string
		workers []string
		shards  []hot
		byCount []string
		want    []string
		how     balanceOutcome
	}{
		{
			name:    "the busiest gives the shard that narrows the spread most to the idlest (ties by id): one move per worker",
			workers: four, shards: twoHot,
			want: []string{"s0>b"}, how: byThroughput,
		},
		{
			name:    "a hot shard alone on its worker stays; cold shards leave a worker that holds one",
			workers: four,
			shards: []hot{
				{owner: "a", rate: 40 * kb}, {owner: "b", rate: 40 * kb},
				{owner: "b", rate: 10 * kb / 3}, {owner: "b", rate: 10 * kb / 3},
				{owner: "c", rate: 10 * kb / 3}, {owner: "c", rate: 10 * kb / 3},
				{owner: "d", rate: 10 * kb / 3}, {owner: "d", rate: 10 * kb / 3},
			},
			want: []string{"s2>c"}, how: byThroughput,
		},
		{
			name:    "at rest: hot shards alone, the cold ones spread; nothing moves",
			workers: four,
			shards: []hot{
				{owner: "a", rate: 40 * kb}, {owner: "b", rate: 40 * kb},
				{owner: "c", rate: 10 * kb / 3}, {owner: "c", rate: 10 * kb / 3}, {owner: "c", rate: 10 * kb / 3},
				{owner: "d", rate: 10 * kb / 3}, {owner: "d", rate: 10 * kb / 3}, {owner: "d", rate: 10 * kb / 3},
			},
			how: byThroughput,
		},
		{
			name:    "within the tolerance (loads 110% and 90% of the mean): no move, though counts differ",
			workers: []string{"a", "b"},
			shards:  []hot{{owner: "a", rate: 11 * kb}, {owner: "b", rate: 5 * kb}, {owner: "b", rate: 4 * kb}},
			how:     byThroughput,
		},
		{
			name:    "hysteresis: a move that would leave the receiver less than t/2 of the mean below the giver is not made",
			workers: []string{"a", "b"},
			// Mean 10: a at 12.5 is over 12, but its lightest shard (6) would
			// take b from 7.5 to 13.5, above a's 12.5 less 1.
			shards: []hot{{owner: "a", rate: 6.5 * kb}, {owner: "a", rate: 6 * kb}, {owner: "b", rate: 7.5 * kb}},
			how:    byThroughput,
		},
		{
			name:    "the idlest under (1-t) of the mean receives though nobody is over",
			workers: []string{"a", "b", "c"},
			shards: []hot{
				{owner: "a", rate: 5 * kb}, {owner: "a", rate: 5 * kb}, {owner: "a", rate: 2 * kb},
				{owner: "b", rate: 5 * kb}, {owner: "b", rate: 5 * kb}, {owner: "b", rate: 2 * kb},
				{owner: "c", rate: 6 * kb},
			},
			// Mean 10: c at 6 is under 8; a and b at 12 are not over 12.
			// a's 2 narrows the pair most (a 5 would leave c at 11, 1
			// below a's 12: allowed, but a gain of 1).
			want: []string{"s2>c"}, how: byThroughput,
		},
		{
			name:    "cool-down: a shard its owner has not renewed balanceCooldown times does not move; the next best does",
			workers: four,
			shards: []hot{
				{owner: "a", rate: 40 * kb, unsettled: true}, {owner: "a", rate: 40 * kb},
				{owner: "b", rate: 10 * kb / 3}, {owner: "b", rate: 10 * kb / 3},
				{owner: "c", rate: 10 * kb / 3}, {owner: "c", rate: 10 * kb / 3},
				{owner: "d", rate: 10 * kb / 3}, {owner: "d", rate: 10 * kb / 3},
			},
			want: []string{"s1>b"}, how: byThroughput,
		},
		{
			name:    "a move under way (a live claim) keeps its giver and receiver out of this pass; the others pair",
			workers: four,
			shards: []hot{
				{owner: "a", rate: 40 * kb, claimer: "b"}, {owner: "a", rate: 40 * kb},
				{owner: "b", rate: 10 * kb / 3}, {owner: "b", rate: 10 * kb / 3},
				{owner: "c", rate: 10 * kb / 3}, {owner: "c", rate: 10 * kb / 3},
				{owner: "d", rate: 10 * kb / 3}, {owner: "d", rate: 10 * kb / 3},
			},
			how: byThroughput,
		},
		{
			name:    "ties: equal loads and equal shards go by worker and shard id",
			workers: []string{"a", "b", "c", "d"},
			shards: []hot{
				{owner: "a", rate: 20 * kb}, {owner: "a", rate: 20 * kb},
				{owner: "b", rate: 20 * kb}, {owner: "b", rate: 20 * kb},
				{owner: "c", rate: 1 * kb}, {owner: "d", rate: 1 * kb},
			},
			want: []string{"s0>c", "s2>d"}, how: byThroughput,
		},
		{
			name:    "missing throughput on a held shard: count balance (a above its share of 2 gives one to d)",
			workers: four,
			shards: []hot{
				{owner: "a", rate: 40 * kb}, {owner: "a", rate: 40 * kb}, {owner: "a", rate: -1},
				{owner: "b", rate: 10 * kb / 3}, {owner: "b", rate: 10 * kb / 3},
				{owner: "c", rate: 10 * kb / 3}, {owner: "c", rate: 10 * kb / 3},
				{owner: "d", rate: 10 * kb / 3},
			},
			want: []string{"s0>d"}, how: byCount,
		},
		{
			name:    "a worker balancing by count: every worker balances by count (nothing to do at 2 each)",
			workers: four, shards: twoHot, byCount: []string{"d"},
			how: byCount,
		},
		{
			name:    "an idle stream (under 1 KiB/s per worker): no move, by throughput nor by count",
			workers: four,
			shards: []hot{
				{owner: "a", rate: 1000}, {owner: "a", rate: 1000}, {owner: "a", rate: 1000}, {owner: "a", rate: 1000},
				{owner: "b", rate: 0}, {owner: "b", rate: 0},
				{owner: "c", rate: 0}, {owner: "c", rate: 0},
			},
			how: waiting,
		},
		{
			name:    "a shard just taken and not yet measured by its new owner holds the moves back for a pass",
			workers: four,
			shards: []hot{
				{owner: "a", rate: 40 * kb}, {owner: "a", rate: 40 * kb},
				{owner: "b", rate: -1, measuring: true}, {owner: "b", rate: 10 * kb / 3},
				{owner: "c", rate: 10 * kb / 3}, {owner: "c", rate: 10 * kb / 3},
				{owner: "d", rate: 10 * kb / 3}, {owner: "d", rate: 10 * kb / 3},
			},
			how: waiting,
		},
		{
			name:    "free shards are taken (by count) first; the moves wait for the next pass",
			workers: four,
			shards: []hot{
				{owner: "a", rate: 40 * kb}, {owner: "a", rate: 40 * kb},
				{owner: "", rate: -1}, {owner: "b", rate: 10 * kb / 3},
				{owner: "c", rate: 10 * kb / 3}, {owner: "c", rate: 10 * kb / 3},
				{owner: "d", rate: 10 * kb / 3}, {owner: "d", rate: 10 * kb / 3},
			},
			how: waiting,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, how := moves(tc.workers, tc.shards, tc.byCount...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("claims = %v, want %v", got, tc.want)
			}
			if len(how) != 1 || how[tc.how] != len(tc.workers) {
				t.Errorf("planned %v (outcome: count), want every worker %v", how, tc.how)
			}
		})
	}
}

// Count balance is untouched by the option's absence: the same table with
// throughput figures plans exactly what it plans without them.
func TestPlanByCountIgnoresThroughput(t *testing.T) {
	shards := []hot{{owner: "a", rate: 40 << 10}, {owner: "a", rate: 40 << 10}, {owner: "a", rate: 1}, {owner: "b", rate: 1}}
	for _, me := range []string{"a", "b", "c"} {
		with := hotInput(me, []string{"a", "b", "c"}, shards)
		with.balance = ""
		without := with
		without.shards = slices.Clone(with.shards)
		for i := range without.shards {
			without.shards[i].rate, without.shards[i].settled = 0, false
		}
		p, q := makePlan(with), makePlan(without)
		if !slices.Equal(p.claim, q.claim) || !slices.Equal(p.take, q.take) || p.balance != byCount {
			t.Errorf("%s: count plan with figures %+v, without %+v", me, p, q)
		}
	}
}

// Moves by throughput settle and never ping-pong: random tables of shards
// with random rates, every round every worker plans on the same view, moves
// are carried out (claim, release, take), and a table comes to rest within
// a bounded number of moves, at which point every worker over (1+t) of the
// mean holds only shards too heavy to move (the bound in
// docs/coordination.md).
func TestPlanByThroughputSettlesWithinTheBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := range 300 {
		nw, ns := 2+rng.IntN(6), 1+rng.IntN(24)
		workers := make([]string, nw)
		for i := range workers {
			workers[i] = fmt.Sprintf("w%d", i)
		}
		shards := make([]hot, ns)
		for i := range shards {
			r := float64(rng.IntN(2000)) * 64
			if rng.IntN(5) == 0 {
				r *= 20 // a hot one
			}
			shards[i] = hot{owner: workers[rng.IntN(nw)], rate: r}
		}
		rounds := 0
		for ; rounds < 4*ns+4; rounds++ {
			claims, _ := moves(workers, shards)
			if len(claims) == 0 {
				break
			}
			for _, c := range claims {
				var i int
				var to string
				fmt.Sscanf(c, "s%d>%s", &i, &to)
				shards[i].owner = to
			}
		}
		if claims, _ := moves(workers, shards); len(claims) > 0 {
			t.Fatalf("trial %d: still moving after %d rounds: %v", trial, rounds, claims)
		}
		load := map[string]float64{}
		lightest := map[string]float64{}
		total := 0.0
		for _, s := range shards {
			load[s.owner] += s.rate
			total += s.rate
			if l, ok := lightest[s.owner]; !ok || s.rate < l {
				lightest[s.owner] = s.rate
			}
		}
		mean := total / float64(nw)
		if mean < minBalancedRate {
			continue
		}
		for _, w := range workers {
			if l := load[w]; l > (1+balanceTolerance)*mean && l >= (1+balanceMinGain)*mean+lightest[w] {
				t.Errorf("trial %d: %s at rest carries %.0f, over %.0f and over (1+t/2)·mean + its lightest shard (%.0f)", trial, w, l, (1+balanceTolerance)*mean, lightest[w])
			}
		}
	}
}

func TestMeterAveragesBytesPerSecond(t *testing.T) {
	start := time.Unix(1000, 0)
	m := meter{last: start}
	m.bytes = 10_000
	if got := m.sample(start.Add(time.Second), 10*time.Second); got != 10_000 {
		t.Fatalf("first sample = %.0f B/s, want 10000 (taken as it is)", got)
	}
	m.bytes = 0
	got := m.sample(start.Add(11*time.Second), 10*time.Second)
	// After one time constant of silence the average keeps 1/e of it.
	if got < 3600 || got > 3750 {
		t.Fatalf("after 10 s idle with tau 10 s = %.0f B/s, want about 3679", got)
	}
	seeded := meter{last: start, rate: 5000, seeded: true}
	seeded.bytes = 5000
	if got := seeded.sample(start.Add(time.Second), 10*time.Second); got != 5000 {
		t.Fatalf("a carried-over figure with the same rate moved to %.0f", got)
	}
}
