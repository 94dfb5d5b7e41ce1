package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// hotProducer puts orders (ids from 0 upwards) to chosen shards through
// their hash keys: per round, hotPerRound records to each hot shard and coldPerRound
// to each other shard.
type hotProducer struct {
	e      *env
	shards []types.Shard
	hot    map[string]bool
	mu     sync.Mutex
	next   int
	rounds int
	stop   chan struct{}
	done   chan struct{}
}

// hotPerRound and coldPerRound make two hot shards of eight carry 80% of the
// records (and bytes): 2×24 of 2×24 + 6×2. Some 6 KB a round keeps the
// stream well over the balance's idle threshold (1 KiB/s per worker) even
// when a loaded emulator slows the puts down.
const hotPerRound, coldPerRound = 24, 2

func (e *env) produceHot(shards []types.Shard, hot map[string]bool, every time.Duration) *hotProducer {
	p := &hotProducer{e: e, shards: shards, hot: hot, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(every):
			}
			p.round()
		}
	}()
	return p
}

func (p *hotProducer) round() {
	p.mu.Lock()
	from := p.next
	p.mu.Unlock()
	var entries []types.PutRecordsRequestEntry
	for _, s := range p.shards {
		n := coldPerRound
		if p.hot[aws.ToString(s.ShardId)] {
			n = hotPerRound
		}
		for range n {
			data, keys, _ := orders(from+len(entries), 1, false)
			entries = append(entries, types.PutRecordsRequestEntry{Data: data[0], PartitionKey: aws.String(keys[0]), ExplicitHashKey: s.HashKeyRange.StartingHashKey})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := p.e.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(p.e.stream), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) > 0 {
		// Put the same ids again next round: a duplicate put is a
		// duplicate row, never a lost one.
		return
	}
	p.mu.Lock()
	p.next += len(entries)
	p.rounds++
	p.mu.Unlock()
}

func (p *hotProducer) roundsPut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rounds
}

// halt stops producing and returns how many records were put (ids [0, n)).
func (p *hotProducer) halt() int {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next
}

// shardBytes reads a worker's bytes_received_total per shard.
func shardBytes(t *testing.T, w *worker, addr string) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	for _, line := range strings.Split(scrape(t, addr), "\n") {
		if !strings.HasPrefix(line, "kinesis_ingest_bytes_received_total{") {
			continue
		}
		i := strings.Index(line, `shard="`)
		if i < 0 {
			continue
		}
		shard := line[i+7:]
		shard = shard[:strings.IndexByte(shard, '"')]
		v, err := strconv.ParseFloat(strings.Fields(line)[len(strings.Fields(line))-1], 64)
		if err != nil {
			t.Fatalf("worker %s: bad metric line %q", w.id, line)
		}
		m[shard] = v
	}
	return m
}

// share is one worker's part of the stream's bytes over a window.
type share struct {
	worker string
	frac   float64
	shards []string // the shards it read bytes of
}

// shares measures each worker's share of the bytes read by all over a
// window of rounds of p, from the workers' metrics.
func shares(t *testing.T, ws []*worker, p *hotProducer, rounds int) []share {
	t.Helper()
	addrs := make([]string, len(ws))
	before := make([]map[string]float64, len(ws))
	for i, w := range ws {
		addrs[i] = w.metricsAddr()
		before[i] = shardBytes(t, w, addrs[i])
	}
	from := p.roundsPut()
	waitFor(t, 120*time.Second, fmt.Sprintf("%d rounds of records put", rounds), func() bool { return p.roundsPut() >= from+rounds })
	out := make([]share, len(ws))
	total := 0.0
	for i, w := range ws {
		after := shardBytes(t, w, addrs[i])
		out[i].worker = w.id
		for shard, v := range after {
			if d := v - before[i][shard]; d > 0 {
				out[i].frac += d
				out[i].shards = append(out[i].shards, shard)
			}
		}
		slices.Sort(out[i].shards)
		total += out[i].frac
	}
	if total == 0 {
		t.Fatal("no bytes read during the window")
	}
	for i := range out {
		out[i].frac /= total
	}
	return out
}

func spread(ss []share) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "%s %.1f%% (%d shards) ", s.worker, 100*s.frac, len(s.shards))
	}
	return b.String()
}

// Two of eight shards carry 80% of the bytes and four workers read them.
// Balanced by count (the default), the worker that holds both hot shards
// reads 80% of the stream; balanced by throughput, every worker's share is
// within 20% of the mean (25%) unless it reads a single shard, which alone
// carries more (a shard is never split): the hot ones end on workers of
// their own. Measured from the workers' bytes_received_total over a window
// of the same records in both runs; nothing is lost or read twice on the
// way.
func TestHotShardsBalanceByThroughput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 8)
	shards := e.openShards()
	cfg := e.config("trim_horizon")
	ws := e.startWorkers(cfg, 4)
	e.waitBalanced(map[string]int{"w1": 2, "w2": 2, "w3": 2, "w4": 2}, 90*time.Second)

	// The hot shards are both of one worker's under count balance, as the
	// count may well leave them.
	hot := map[string]bool{}
	for id, l := range e.checkpoints() {
		if l.Owner == "w1" && l.LeaseTimeout.After(time.Now()) {
			hot[id] = true
		}
	}
	if len(hot) != 2 {
		t.Fatalf("w1 holds %v, want 2 shards", hot)
	}
	p := e.produceHot(shards, hot, 200*time.Millisecond)
	const window = 25 // rounds, 5 s
	byCount := shares(t, ws, p, window)
	t.Logf("balance: count: %s", spread(byCount))
	if !slices.Equal(e.ownersSorted(), []int{2, 2, 2, 2}) {
		t.Errorf("count balance moved shards: owners %v", e.owners())
	}
	for _, w := range ws {
		w.stop(60 * time.Second)
	}

	body, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(body), "  max_records: 200\n", "  max_records: 200\n  balance: throughput\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	ws = e.startWorkers(cfg, 4)
	start := time.Now()
	// At rest the planner moves nothing more: each hot shard alone (one
	// shard is never split), the six cold ones three and three (a worker
	// with four and one with two are 13% and 7% of the stream, the second
	// under (1-t) of the mean, and one cold shard narrows them).
	waitFor(t, 120*time.Second, "at rest: every shard leased, no move under way, each hot shard alone, the cold ones 3 and 3", func() bool {
		held := map[string][]string{}
		for id, l := range e.checkpoints() {
			if l.Owner == "" || !l.LeaseTimeout.After(time.Now()) || l.ClaimRequest != "" {
				return false
			}
			held[l.Owner] = append(held[l.Owner], id)
		}
		alone, three := 0, 0
		for _, ids := range held {
			switch {
			case len(ids) == 1 && hot[ids[0]]:
				alone++
			case len(ids) == 3:
				three++
			}
		}
		return alone == 2 && three == 2
	})
	t.Logf("balance: throughput: at rest %s after the start", time.Since(start).Round(100*time.Millisecond))
	byThroughput := shares(t, ws, p, window)
	t.Logf("balance: throughput: %s", spread(byThroughput))
	const mean, tolerance = 0.25, 0.2
	for _, s := range byThroughput {
		if s.frac > (1+tolerance)*mean && len(s.shards) != 1 {
			t.Errorf("balance: throughput: %s read %.1f%% of the bytes from %v, over %.0f%% of the mean from more than one shard", s.worker, 100*s.frac, s.shards, 100*(1+tolerance))
		}
	}
	worst := func(ss []share) float64 {
		w := 0.0
		for _, s := range ss {
			w = max(w, s.frac)
		}
		return w
	}
	if worst(byThroughput) >= worst(byCount) {
		t.Errorf("the busiest worker read %.1f%% by throughput, %.1f%% by count: no better", 100*worst(byThroughput), 100*worst(byCount))
	}

	n := p.halt()
	waitFor(t, 120*time.Second, fmt.Sprintf("all %d rows", n), func() bool { return len(missing(idsOf(e.rows()), 0, n, nil)) == 0 })
	lost, dups := report(t, e.rows(), n)
	if len(lost) > 0 {
		t.Fatalf("lost %d records, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}
	// Moves are claims handed over at a batch boundary after the shard's
	// sinks settle, and the stop between the runs is graceful: nothing is
	// read by two workers at once.
	if dups > 0 {
		t.Errorf("%d duplicate rows: a shard was read by two workers at once", dups)
	}
	for _, w := range ws {
		w.stop(60 * time.Second)
	}
}

// ownersSorted is the number of live leases of each worker, sorted.
func (e *env) ownersSorted() []int {
	var n []int
	for _, c := range e.owners() {
		n = append(n, c)
	}
	slices.Sort(n)
	return n
}
