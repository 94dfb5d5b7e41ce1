package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// passLine is one "lease pass" log line of a worker.
type passLine struct {
	pass, workers, share, taken, expired, claimed int
}

// passes reads a worker's lease passes that took or claimed something (the
// worker logs those at info, the others at debug).
func (w *worker) passes() []passLine {
	w.t.Helper()
	b, err := os.ReadFile(w.log)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []passLine
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, `msg="lease pass"`) {
			continue
		}
		field := func(name string) int {
			i := strings.Index(line, " "+name+"=")
			if i < 0 {
				return -1
			}
			v, _ := strconv.Atoi(strings.Fields(line[i+len(name)+2:])[0])
			return v
		}
		p := passLine{pass: field("pass"), workers: field("workers"), share: field("share"), taken: field("taken"), expired: field("expired"), claimed: field("claimed")}
		if p.taken > 0 || p.claimed > 0 {
			out = append(out, p)
		}
	}
	return out
}

// lastActivePass is the number of the last pass that took or claimed a
// lease, and the leases taken in all.
func lastActivePass(ps []passLine) (last, taken int) {
	for _, p := range ps {
		last = max(last, p.pass)
		taken += p.taken
	}
	return last, taken
}

// bulkConfig is the harness config with the defaults' pace of reads (a
// 96-shard stream polled every 100 ms by every shard would keep the emulator
// busy for nothing).
func (e *env) bulkConfig() string {
	e.t.Helper()
	path := e.config("trim_horizon")
	b, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	body := strings.Replace(string(b), "idle_between_reads: 100ms", "idle_between_reads: 1s", 1)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// startWorkers starts workers w1..wn on cfg together.
func (e *env) startWorkers(cfg string, n int) []*worker {
	e.t.Helper()
	ws := make([]*worker, 0, n)
	for i := 1; i <= n; i++ {
		ws = append(ws, e.start(cfg, fmt.Sprintf("w%d", i)))
	}
	return ws
}

// One worker takes all 48 shards of a stream in its first lease pass (the
// default max_leases_per_pass, 50), where the library alone takes one per
// shard sync; every record is read.
func TestOneWorkerLeases48ShardsInAtMostThreePasses(t *testing.T) {
	e := newEnv(t, 48)
	data, keys, _ := orders(0, 480, false)
	e.put(data, keys)
	w := e.start(e.bulkConfig(), "w1")
	e.waitBalanced(map[string]int{"w1": 48}, 90*time.Second)
	// The table shows the last take a moment before the worker logs its
	// pass: wait for the log to catch up.
	waitFor(t, 15*time.Second, "the pass lines to account for 48 takes", func() bool {
		_, taken := lastActivePass(w.passes())
		return taken >= 48
	})
	last, taken := lastActivePass(w.passes())
	t.Logf("48 shards leased by one worker; last pass that took a lease: %d; passes: %+v", last, w.passes())
	if taken != 48 || last > 3 {
		t.Fatalf("took %d leases, the last in pass %d; want 48 within 3 passes", taken, last)
	}
	waitFor(t, 90*time.Second, "all 480 rows", func() bool { return len(missing(idsOf(e.rows()), 0, 480, nil)) == 0 })
}

// Four workers started together converge on 24 shards each of 96 within
// three passes each, and nothing is lost.
func TestFourWorkersConvergeOn96ShardsInAtMostThreePasses(t *testing.T) {
	e := newEnv(t, 96)
	ws := e.startWorkers(e.bulkConfig(), 4)
	e.waitBalanced(map[string]int{"w1": 24, "w2": 24, "w3": 24, "w4": 24}, 120*time.Second)
	for _, w := range ws {
		last, _ := lastActivePass(w.passes())
		t.Logf("%s: passes that took or claimed: %+v", w.id, w.passes())
		if last > 3 {
			t.Errorf("%s still took or claimed leases in pass %d; want convergence within 3 passes", w.id, last)
		}
	}
	data, keys, _ := orders(0, 960, false)
	e.put(data, keys)
	waitFor(t, 90*time.Second, "all 960 rows", func() bool { return len(missing(idsOf(e.rows()), 0, 960, nil)) == 0 })
	if lost, _ := report(t, e.rows(), 960); len(lost) > 0 {
		t.Fatalf("lost %d records", len(lost))
	}
}

// kill -9 of one of four workers while records flow: once its leases
// expire, the survivors take all its shards over, each its share in one
// pass, and take or claim nothing else (nothing moves between survivors), and
// no record is lost (counted by id).
func TestKilledWorkersShardsAreTakenOverInOnePass(t *testing.T) {
	e := newEnv(t, 24)
	ws := e.startWorkers(e.bulkConfig(), 4)
	e.waitBalanced(map[string]int{"w1": 6, "w2": 6, "w3": 6, "w4": 6}, 90*time.Second)
	p := e.produce(100*time.Millisecond, 20)
	// The table shows the takes a moment before the workers log their
	// passes: wait until the logs account for the 24 shards, so that every
	// pass line from here on is a pass after the balance.
	waitFor(t, 15*time.Second, "the pass lines to account for the 24 shards", func() bool {
		sum := 0
		for _, w := range ws {
			_, taken := lastActivePass(w.passes())
			sum += taken
		}
		return sum >= 24
	})
	time.Sleep(2 * time.Second)
	// before holds each survivor's pass lines up to the kill: a balanced
	// table moves nothing, so none may follow until the dead worker's leases
	// expire.
	before := map[string]int{}
	for _, w := range ws[:3] {
		before[w.id] = len(w.passes())
	}
	ws[3].kill()
	e.waitBalanced(map[string]int{"w1": 8, "w2": 8, "w3": 8}, 90*time.Second)
	n := p.halt()
	since := func(w *worker) (after []passLine, expired int) {
		after = w.passes()[before[w.id]:]
		for _, pl := range after {
			expired += pl.expired
		}
		return after, expired
	}
	// The table shows the takes a moment before the workers log their
	// passes: wait until the logs account for the dead worker's 6 shards.
	waitFor(t, 15*time.Second, "the pass lines to account for the dead worker's 6 shards", func() bool {
		sum := 0
		for _, w := range ws[:3] {
			_, expired := since(w)
			sum += expired
		}
		return sum >= 6
	})
	for _, w := range ws[:3] {
		after, _ := since(w)
		t.Logf("%s: passes that took or claimed since the kill: %+v", w.id, after)
		if len(after) != 1 || after[0].expired != 2 || after[0].taken != 2 || after[0].claimed != 0 {
			t.Errorf("%s since the kill: passes that took or claimed %+v; want one, taking the dead worker's 2 expired leases and nothing else", w.id, after)
		}
	}
	waitFor(t, 90*time.Second, fmt.Sprintf("all %d rows", n), func() bool { return len(missing(idsOf(e.rows()), 0, n, nil)) == 0 })
	if lost, _ := report(t, e.rows(), n); len(lost) > 0 {
		t.Fatalf("lost %d of %d records after the kill", len(lost), n)
	}
}

// Eight workers started one by one on 16 shards settle at two each and stay
// there: every move goes from a worker above its share to one below it, so
// nothing moves once balanced (the earlier steal loop ping-ponged here).
func TestEightWorkersStartedOneByOneSettleWithoutPingPong(t *testing.T) {
	e := newEnv(t, 16)
	cfg := e.bulkConfig()
	var ws []*worker
	want := map[string]int{}
	for i := 1; i <= 8; i++ {
		id := fmt.Sprintf("w%d", i)
		ws = append(ws, e.start(cfg, id))
		want[id] = 2
		time.Sleep(700 * time.Millisecond)
	}
	e.waitBalanced(want, 120*time.Second)
	moves := func() (n int) {
		for _, w := range ws {
			for _, p := range w.passes() {
				n += p.taken + p.claimed
			}
		}
		return n
	}
	// The table shows the last move a moment before its worker logs the
	// pass: count once two reads half a second apart agree.
	settled := moves()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		n := moves()
		if n == settled {
			break
		}
		settled = n
	}
	time.Sleep(4 * time.Second) // eight passes of every worker
	if o := e.owners(); !balanced(o, want) {
		t.Fatalf("balance moved after settling: %v", o)
	}
	if n := moves(); n != settled {
		t.Fatalf("%d takes and claims after the table was balanced (%d before): a ping-pong", n-settled, settled)
	}
	t.Logf("16 shards over 8 workers started 0.7 s apart: balanced after %d takes and claims in all, none since", settled)
}
