package leases

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// sim is a lease table in memory: owner and claimer per shard, the workers
// alive. Each round every worker plans from the same state (one scan), its
// takes and claims are applied in turn under the same conditions the
// DynamoDB writes carry, and then owners hand claimed shards over (release),
// as renewals at the next batch boundary do.
type sim struct {
	shards  []string
	owner   map[string]string
	claim   map[string]string
	workers []planWorker
	maxTake int
	moves   int
}

func newSim(nShards int, workers ...string) *sim {
	s := &sim{owner: map[string]string{}, claim: map[string]string{}, maxTake: 1000}
	for i := range nShards {
		s.shards = append(s.shards, fmt.Sprintf("shardId-%012d", i))
	}
	for _, w := range workers {
		s.workers = append(s.workers, planWorker{id: w})
	}
	return s
}

func (s *sim) input(me string) planInput {
	in := planInput{me: me, workers: s.workers, maxTake: s.maxTake, stealing: true}
	for _, id := range s.shards {
		in.shards = append(in.shards, planShard{id: id, owner: s.owner[id], claimer: s.claim[id], mine: s.owner[id] == me})
	}
	return in
}

// round runs one pass of every worker on the same view; it returns the
// number of takes and claims that succeeded.
func (s *sim) round(t *testing.T) int {
	t.Helper()
	plans := map[string]plan{}
	for _, w := range s.workers {
		plans[w.id] = makePlan(s.input(w.id))
	}
	acts := 0
	for _, w := range s.workers {
		p := plans[w.id]
		for _, id := range p.take {
			if s.owner[id] != "" && s.owner[id] != w.id {
				t.Fatalf("%s planned to take %s, held by %s", w.id, id, s.owner[id])
			}
			if c := s.claim[id]; c != "" && c != w.id {
				t.Fatalf("%s planned to take %s, claimed by %s", w.id, id, c)
			}
			s.owner[id], s.claim[id] = w.id, ""
			acts++
			s.moves++
		}
		for _, id := range p.claim {
			if s.claim[id] != "" {
				t.Fatalf("%s planned to claim %s, already claimed by %s", w.id, id, s.claim[id])
			}
			s.claim[id] = w.id
			acts++
		}
	}
	for id, c := range s.claim {
		if c != "" && s.owner[id] != c {
			s.owner[id] = "" // the owner yields at its next batch boundary
		}
	}
	return acts
}

func (s *sim) counts() map[string]int {
	c := map[string]int{}
	for _, id := range s.shards {
		if o := s.owner[id]; o != "" {
			c[o]++
		}
	}
	return c
}

// balanced fails unless every shard is held and the counts differ by at most
// one (within the caps).
func (s *sim) balanced(t *testing.T) {
	t.Helper()
	c := s.counts()
	lo, hi := len(s.shards), 0
	for _, w := range s.workers {
		if w.cap > 0 {
			continue
		}
		lo, hi = min(lo, c[w.id]), max(hi, c[w.id])
	}
	held := 0
	for _, n := range c {
		held += n
	}
	if held != len(s.shards) || hi-lo > 1 {
		t.Fatalf("not balanced: %d of %d shards held, counts %v", held, len(s.shards), c)
	}
}

// converge runs rounds until one plans nothing, failing after max.
func (s *sim) converge(t *testing.T, max int) int {
	t.Helper()
	for r := 1; r <= max+1; r++ {
		if s.round(t) == 0 {
			return r - 1
		}
	}
	t.Fatalf("still moving after %d rounds: %v", max, s.counts())
	return 0
}

func TestPlanConverges(t *testing.T) {
	tests := []struct {
		name    string
		shards  int
		workers []string
		setup   func(*sim)
		rounds  int // rounds with moves, at most
	}{
		{name: "one worker, 48 shards", shards: 48, workers: []string{"a"}, rounds: 1},
		{name: "four workers together, 96 shards", shards: 96, workers: []string{"a", "b", "c", "d"}, rounds: 1},
		{name: "three join one holding all", shards: 96, workers: []string{"a", "b", "c", "d"}, rounds: 2, setup: func(s *sim) {
			for _, id := range s.shards {
				s.owner[id] = "a"
			}
		}},
		{name: "balanced already", shards: 16, workers: []string{"a", "b", "c", "d", "e", "f", "g", "h"}, rounds: 0, setup: func(s *sim) {
			for i, id := range s.shards {
				s.owner[id] = s.workers[i%8].id
			}
		}},
		{name: "uneven, odd shards stay put", shards: 10, workers: []string{"a", "b", "c", "d"}, rounds: 2, setup: func(s *sim) {
			for i, id := range s.shards {
				s.owner[id] = []string{"a", "a", "a", "b", "b", "b", "c", "c", "c", "d"}[i]
			}
		}},
		{name: "a dead worker's shards, free", shards: 24, workers: []string{"a", "b", "c"}, rounds: 1, setup: func(s *sim) {
			for i, id := range s.shards {
				if o := []string{"a", "b", "c", "dead"}[i%4]; o != "dead" {
					s.owner[id] = o
				}
			}
		}},
		{name: "more workers than shards", shards: 3, workers: []string{"a", "b", "c", "d", "e"}, rounds: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(tc.shards, tc.workers...)
			if tc.setup != nil {
				tc.setup(s)
			}
			before := s.counts()
			if got := s.converge(t, tc.rounds); got > tc.rounds {
				t.Fatalf("moved for %d rounds, want at most %d (from %v)", got, tc.rounds, before)
			}
			s.balanced(t)
			// Stable: more rounds plan nothing.
			if n := s.round(t); n != 0 {
				t.Fatalf("a balanced table planned %d moves", n)
			}
		})
	}
}

// Random starting tables with random worker sets: every one settles balanced
// within two rounds of moves (claims, then takes of what they freed), and no
// shard changes hands more than the imbalance needs: no ping-pong.
func TestPlanNeverPingPongs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		nShards, nWorkers := 1+r.IntN(64), 1+r.IntN(12)
		var ws []string
		for w := range nWorkers {
			ws = append(ws, fmt.Sprintf("w%02d", w))
		}
		s := newSim(nShards, ws...)
		for _, id := range s.shards {
			// Held by a live worker, or free (never leased, or expired).
			if x := r.IntN(nWorkers + 2); x < nWorkers {
				s.owner[id] = ws[x]
			}
		}
		start := s.counts()
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			s.converge(t, 2)
			s.balanced(t)
			// Each shard moved at most once: the number of takes is at most
			// the shards that had to change hands.
			need := 0
			share := nShards / nWorkers
			for _, w := range ws {
				if c := start[w]; c > share+1 {
					need += c - share - 1
				}
			}
			free := nShards
			for _, n := range start {
				free -= n
			}
			if s.moves > need+free+nWorkers {
				t.Fatalf("%d takes for %d free shards and %d over the share (start %v, end %v)", s.moves, free, need, start, s.counts())
			}
		})
	}
}

func TestPlanCapsAndBounds(t *testing.T) {
	t.Run("cap", func(t *testing.T) {
		s := newSim(10, "a", "b")
		s.workers[0].cap = 3
		s.converge(t, 1)
		if c := s.counts(); c["a"] != 3 || c["b"] != 7 {
			t.Fatalf("counts %v, want a 3 (its cap), b 7", c)
		}
	})
	t.Run("per pass", func(t *testing.T) {
		s := newSim(48, "a")
		s.maxTake = 20
		if n := s.round(t); n != 20 {
			t.Fatalf("first pass took %d, want the bound 20", n)
		}
		if n := s.converge(t, 2); n != 2 {
			t.Fatalf("took the rest in %d passes, want 2", n)
		}
		s.balanced(t)
	})
	t.Run("no stealing", func(t *testing.T) {
		in := newSim(8, "a", "b").input("b")
		in.stealing = false
		for i := range in.shards {
			in.shards[i].owner = "a"
		}
		if p := makePlan(in); len(p.claim) != 0 || len(p.take) != 0 {
			t.Fatalf("plan %+v, want nothing without stealing", p)
		}
	})
	t.Run("not live", func(t *testing.T) {
		in := newSim(8, "a").input("b")
		if p := makePlan(in); len(p.take) != 0 {
			t.Fatalf("a worker not among the live ones planned %v", p.take)
		}
	})
	t.Run("own row back", func(t *testing.T) {
		in := newSim(2, "a").input("a")
		in.shards[0].owner = "a" // a row naming this worker, no consumer here
		in.shards[0].mine = false
		p := makePlan(in)
		if !slices.Contains(p.take, in.shards[0].id) {
			t.Fatalf("plan %+v does not take back its own row", p)
		}
	})
}

// BenchmarkPlan is one worker's plan of a pass: the CPU a pass costs beyond
// its calls, O(S log S + W log W) for S shards and W workers.
//
//	go test -run '^$' -bench '^BenchmarkPlan$' ./consumers/leases
func BenchmarkPlan(b *testing.B) {
	for _, c := range []struct{ shards, workers int }{{16, 8}, {1000, 100}, {4000, 100}} {
		b.Run(fmt.Sprintf("shards=%d/workers=%d", c.shards, c.workers), func(b *testing.B) {
			var ws []string
			for w := range c.workers {
				ws = append(ws, fmt.Sprintf("worker-%03d", w))
			}
			s := newSim(c.shards, ws...)
			for i, id := range s.shards {
				if i%10 != 0 { // a tenth free: a worker died
					s.owner[id] = ws[i%c.workers]
				}
			}
			in := s.input(ws[0])
			b.ReportAllocs()
			for b.Loop() {
				makePlan(in)
			}
		})
	}
}

// A shard whose consumer just failed on a worker (a read hanging on its
// path) goes to another worker, and the balance moves another shard back
// instead of the failing one.
func TestPlanAvoidsTheWorkerAShardFailedOn(t *testing.T) {
	shard := func(id, owner, avoid string) planShard {
		return planShard{id: id, owner: owner, avoid: avoid, mine: false}
	}
	workers := []planWorker{{id: "a"}, {id: "b"}}
	shards := []planShard{shard("s0", "", "a"), shard("s1", "b", "")}
	// In the same pass b takes it and a, left with nothing, claims b's
	// other shard.
	for _, tc := range []struct {
		me          string
		take, claim []string
	}{
		{me: "a", claim: []string{"s1"}},
		{me: "b", take: []string{"s0"}},
	} {
		in := planInput{me: tc.me, workers: workers, shards: slices.Clone(shards), maxTake: 10, stealing: true}
		for i := range in.shards {
			in.shards[i].mine = in.shards[i].owner == tc.me
		}
		p := makePlan(in)
		if !slices.Equal(p.take, tc.take) || !slices.Equal(p.claim, tc.claim) {
			t.Errorf("%s: plan %+v, want take %v, claim %v", tc.me, p, tc.take, tc.claim)
		}
	}
	// b took it: a, now without a shard, claims b's other one.
	in := planInput{me: "a", workers: workers, maxTake: 10, stealing: true,
		shards: []planShard{shard("s0", "b", "a"), shard("s1", "b", "")}}
	if p := makePlan(in); !slices.Equal(p.claim, []string{"s1"}) {
		t.Errorf("a's plan %+v, want a claim on s1, not on s0 which failed on it", p)
	}
	// Alone, a takes it back all the same.
	in = planInput{me: "a", workers: workers[:1], maxTake: 10, stealing: true, shards: []planShard{shard("s0", "", "a")}}
	if p := makePlan(in); !slices.Equal(p.take, []string{"s0"}) {
		t.Errorf("a alone: plan %+v, want s0 taken", p)
	}
}
