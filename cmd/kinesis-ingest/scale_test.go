package main

import (
	"context"
	"fmt"
	"maps"
	"math/big"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// leaseDuration is the harness config's consumer.lease_duration.
const leaseDuration = 4 * time.Second

// owners counts live leases per worker.
func (e *env) owners() map[string]int {
	m := map[string]int{}
	for _, l := range e.checkpoints() {
		if l.Owner != "" && l.LeaseTimeout.After(time.Now()) {
			m[l.Owner]++
		}
	}
	return m
}

func balanced(o map[string]int, want map[string]int) bool { return maps.Equal(o, want) }

// waitBalanced waits for the wanted split and returns how long it took.
func (e *env) waitBalanced(want map[string]int, timeout time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	waitFor(e.t, timeout, fmt.Sprintf("leases split as %v", want), func() bool { return balanced(e.owners(), want) })
	return time.Since(start)
}

// report counts, for ids [0, n), lost and duplicated rows.
func report(t *testing.T, rows []rowLine, n int) (lost []int, dups int) {
	ids := idsOf(rows)
	for i := 0; i < n; i++ {
		switch c := ids[int64(i)]; {
		case c == 0:
			lost = append(lost, i)
		case c > 1:
			dups += c - 1
		}
	}
	t.Logf("%d records: %d lost, %d duplicate rows", n, len(lost), dups)
	return lost, dups
}

func TestBalanceThreeWorkersOnTwelveShardsThenAFourthJoins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 12)
	cfg := e.config("trim_horizon")
	e.start(cfg, "w1")
	e.start(cfg, "w2")
	e.start(cfg, "w3")
	took := e.waitBalanced(map[string]int{"w1": 4, "w2": 4, "w3": 4}, 90*time.Second)
	t.Logf("3 workers started together reached 4/4/4 in %s (%.1f lease periods)", took.Round(100*time.Millisecond), took.Seconds()/leaseDuration.Seconds())

	data, keys, _ := orders(0, 600, false)
	e.put(data, keys)
	e.start(cfg, "w4")
	took = e.waitBalanced(map[string]int{"w1": 3, "w2": 3, "w3": 3, "w4": 3}, 90*time.Second)
	t.Logf("a fourth worker took its share by stealing in %s (%.1f lease periods)", took.Round(100*time.Millisecond), took.Seconds()/leaseDuration.Seconds())

	data, keys, _ = orders(600, 600, false)
	e.put(data, keys)
	waitFor(t, 90*time.Second, "all 1200 rows", func() bool { return len(missing(idsOf(e.rows()), 0, 1200, nil)) == 0 })
	lost, dups := report(t, e.rows(), 1200)
	if len(lost) > 0 {
		t.Fatalf("lost %d records during rebalancing, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}
	// A stolen shard is given up at a batch boundary, after its checkpoint, and
	// taken only once released: no two workers ever read it at once, so a
	// rebalance writes nothing twice.
	if dups > 0 {
		t.Errorf("rebalancing wrote %d duplicate rows: a shard was read by two workers at once", dups)
	}
}

func TestBalanceWorkersStartedOneByOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 12)
	cfg := e.config("trim_horizon")
	e.start(cfg, "w1")
	e.waitBalanced(map[string]int{"w1": 12}, 60*time.Second)
	e.start(cfg, "w2")
	e.waitBalanced(map[string]int{"w1": 6, "w2": 6}, 90*time.Second)
	e.start(cfg, "w3")
	took := e.waitBalanced(map[string]int{"w1": 4, "w2": 4, "w3": 4}, 90*time.Second)
	t.Logf("the third worker got its share in %s (%.1f lease periods)", took.Round(100*time.Millisecond), took.Seconds()/leaseDuration.Seconds())
}

// producer puts orders with ids from 0 upwards in small batches until stopped,
// with per-key counters so that order per partition key can be checked.
type producer struct {
	e    *env
	gen  func(from, n int) ([][]byte, []string, map[string]string)
	mu   sync.Mutex
	next int
	stop chan struct{}
	done chan struct{}
}

func (e *env) produce(every time.Duration, batch int) *producer {
	p := &producer{e: e, stop: make(chan struct{}), done: make(chan struct{}), gen: func(from, n int) ([][]byte, []string, map[string]string) {
		return orders(from, n, false)
	}}
	go p.run(every, batch)
	return p
}

// produceFrom is produce starting at id from.
func (e *env) produceFrom(every time.Duration, batch, from int) *producer {
	p := &producer{e: e, next: from, stop: make(chan struct{}), done: make(chan struct{}), gen: func(from, n int) ([][]byte, []string, map[string]string) {
		return orders(from, n, false)
	}}
	go p.run(every, batch)
	return p
}

func (p *producer) run(every time.Duration, batch int) {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		case <-time.After(every):
		}
		p.mu.Lock()
		from := p.next
		p.mu.Unlock()
		data, keys, _ := p.gen(from, batch)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := testaws.Put(ctx, p.e.kc, p.e.stream, data, keys)
		cancel()
		if err != nil {
			// The stream may be resharding or the emulator restarting: put
			// the same ids again (a duplicate put is a duplicate row, never a
			// lost one).
			continue
		}
		p.mu.Lock()
		p.next += batch
		p.mu.Unlock()
	}
}

// halt stops producing and returns how many records were put (ids [0, n)).
func (p *producer) halt() int {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next
}

func TestRollingRestartOfThreeWorkersLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 6)
	cfg := e.config("trim_horizon")
	workers := []*worker{e.start(cfg, "a1"), e.start(cfg, "b1"), e.start(cfg, "c1")}
	e.waitBalanced(map[string]int{"a1": 2, "b1": 2, "c1": 2}, 90*time.Second)
	p := e.produce(100*time.Millisecond, 20)

	for i, name := range []string{"a", "b", "c"} {
		time.Sleep(2 * time.Second)
		old := workers[i]
		stopped := time.Now()
		old.stop(30 * time.Second)
		// Its released leases go to the others well before they would expire.
		waitFor(t, 30*time.Second, "the stopped worker's shards taken over", func() bool {
			o := e.owners()
			total := 0
			for _, c := range o {
				total += c
			}
			return o[old.id] == 0 && total == 6
		})
		t.Logf("%s stopped; its shards were taken over %s after SIGTERM (lease duration %s)", old.id, time.Since(stopped).Round(100*time.Millisecond), leaseDuration)
		workers[i] = e.start(cfg, name+"2")
	}
	n := p.halt()
	waitFor(t, 90*time.Second, fmt.Sprintf("all %d rows", n), func() bool { return len(missing(idsOf(e.rows()), 0, n, nil)) == 0 })
	lost, dups := report(t, e.rows(), n)
	if len(lost) > 0 {
		t.Fatalf("a rolling restart lost %d records", len(lost))
	}
	if dups > 0 {
		t.Errorf("a rolling restart of graceful stops wrote %d duplicate rows", dups)
	}
}

// openShards returns the open shards sorted by their hash key range.
func (e *env) openShards() []types.Shard {
	e.t.Helper()
	out, err := e.kc.ListShards(e.t.Context(), &kinesis.ListShardsInput{StreamName: aws.String(e.stream),
		ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
	if err != nil {
		e.t.Fatalf("list shards: %v", err)
	}
	shards := out.Shards
	sort.Slice(shards, func(i, j int) bool {
		return len(*shards[i].HashKeyRange.StartingHashKey) < len(*shards[j].HashKeyRange.StartingHashKey) ||
			len(*shards[i].HashKeyRange.StartingHashKey) == len(*shards[j].HashKeyRange.StartingHashKey) &&
				*shards[i].HashKeyRange.StartingHashKey < *shards[j].HashKeyRange.StartingHashKey
	})
	return shards
}

func (e *env) waitActive() {
	e.t.Helper()
	waitFor(e.t, 30*time.Second, "stream ACTIVE", func() bool {
		out, err := e.kc.DescribeStreamSummary(e.t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(e.stream)})
		return err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
	})
}

func TestReshardWhileRecordsFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	// Records put before the split stay in the closed parent: they must be
	// read, not skipped, and before any of the children's.
	data, keys, _ := keyedOrders(0, 200)
	e.put(data, keys)
	first := e.openShards()
	parent := first[0]
	mid := halfway(*parent.HashKeyRange.StartingHashKey, *parent.HashKeyRange.EndingHashKey)
	if _, err := e.kc.SplitShard(t.Context(), &kinesis.SplitShardInput{StreamName: aws.String(e.stream), ShardToSplit: parent.ShardId, NewStartingHashKey: aws.String(mid)}); err != nil {
		t.Fatalf("split shard: %v", err)
	}
	e.waitActive()

	e.start(e.config("trim_horizon"), "w1")
	p := e.produceKeyed(100*time.Millisecond, 20, 200)
	waitFor(t, 60*time.Second, "rows flowing", func() bool { return len(e.rows()) > 400 })

	open := e.openShards()
	if len(open) != 3 {
		t.Fatalf("%d open shards after the split, want 3", len(open))
	}
	// The split's upper child and the other original shard are adjacent.
	if _, err := e.kc.MergeShards(t.Context(), &kinesis.MergeShardsInput{StreamName: aws.String(e.stream),
		ShardToMerge: open[1].ShardId, AdjacentShardToMerge: open[2].ShardId}); err != nil {
		t.Fatalf("merge shards: %v", err)
	}
	e.waitActive()
	time.Sleep(3 * time.Second)
	n := p.halt()
	waitFor(t, 90*time.Second, fmt.Sprintf("all %d rows", n), func() bool { return len(missing(idsOf(e.rows()), 0, n, nil)) == 0 })
	rows := e.rows()
	if lost, _ := report(t, rows, n); len(lost) > 0 {
		t.Fatalf("resharding lost %d records", len(lost))
	}

	all, err := e.kc.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
	if err != nil {
		t.Fatal(err)
	}
	closed := []string{*parent.ShardId, *open[1].ShardId, *open[2].ShardId}
	waitFor(t, 30*time.Second, "closed parents checkpointed at SHARD_END", func() bool {
		cps := e.checkpoints()
		for _, id := range closed {
			if cps[id].Checkpoint != "SHARD_END" {
				return false
			}
		}
		return true
	})

	// One worker writes rows in processing order: every row of a parent comes
	// before the first row of each of its children.
	firstIdx, lastIdx := map[string]int{}, map[string]int{}
	for i, r := range rows {
		if _, ok := firstIdx[r.Shard]; !ok {
			firstIdx[r.Shard] = i
		}
		lastIdx[r.Shard] = i
	}
	for _, sh := range all.Shards {
		for _, par := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if par == nil {
				continue
			}
			c, pa := *sh.ShardId, *par
			if _, ok := firstIdx[c]; !ok {
				continue
			}
			if lastIdx[pa] > firstIdx[c] {
				t.Errorf("child %s was read (row %d) before its parent %s was finished (row %d)", c, firstIdx[c], pa, lastIdx[pa])
			}
		}
	}
	// And so, per partition key, records are written in the order they were put.
	lastByKey := map[string]int64{}
	seen := map[int64]bool{}
	for _, r := range rows {
		if seen[r.ID] { // a re-put after a failed put: a duplicate, not a reordering
			continue
		}
		seen[r.ID] = true
		key := "k" + strconv.FormatInt(r.ID%keyCount, 10)
		if last, ok := lastByKey[key]; ok && r.ID < last {
			t.Errorf("key %s: id %d written after id %d", key, r.ID, last)
		}
		lastByKey[key] = r.ID
	}
}

const keyCount = 20

// keyedOrders are orders spread over keyCount partition keys, so that each
// key's records cross shard boundaries when the stream is resharded.
func keyedOrders(from, n int) (data [][]byte, keys []string, _ map[string]string) {
	data, _, _ = orders(from, n, false)
	for i := from; i < from+n; i++ {
		keys = append(keys, "k"+strconv.Itoa(i%keyCount))
	}
	return data, keys, nil
}

// produceKeyed is produce with keyedOrders, starting at id from.
func (e *env) produceKeyed(every time.Duration, batch, from int) *producer {
	p := &producer{e: e, next: from, stop: make(chan struct{}), done: make(chan struct{}), gen: keyedOrders}
	go p.run(every, batch)
	return p
}

// halfway returns the midpoint of two decimal 128-bit hash keys.
func halfway(lo, hi string) string {
	a, _ := new(big.Int).SetString(lo, 10)
	b, _ := new(big.Int).SetString(hi, 10)
	return new(big.Int).Rsh(new(big.Int).Add(a, b), 1).String()
}
