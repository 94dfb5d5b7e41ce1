package main

import (
	"crypto/md5"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// partitionKeys returns a partition key for each half of the hash key range:
// on a 2-shard stream each names one shard (Kinesis maps MD5(key) to a shard).
func partitionKeys() (low, high string) {
	half := new(big.Int).Lsh(big.NewInt(1), 127)
	for i := 0; low == "" || high == ""; i++ {
		k := fmt.Sprintf("p%d", i)
		sum := md5.Sum([]byte(k))
		if new(big.Int).SetBytes(sum[:]).Cmp(half) < 0 {
			low = cmp(low, k)
		} else {
			high = cmp(high, k)
		}
	}
	return low, high
}

func cmp(have, k string) string {
	if have != "" {
		return have
	}
	return k
}

// TestLateRowsSameOnReplay: a dataset with disorder: 1h on a 2-shard stream.
// Records more than an hour older than the newest one seen so far in their
// shard are late dead letters. The worker is killed (SIGKILL) once its
// checkpoints cover the first records; the worker that resumes from those
// checkpoints judges the records after them against the watermarks stored
// with the checkpoints (some records are late only against what came before
// the kill). A second application replaying the stream from trim_horizon
// dead-letters exactly the same records.
func TestLateRowsSameOnReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	laneA, laneB := partitionKeys()
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	type rec struct {
		id   int
		lane string
		at   string // hh:mm on base's day
	}
	first := []rec{
		{0, laneA, "10:00"}, {1, laneA, "12:00"}, {2, laneA, "10:00"}, {3, laneA, "11:30"},
		{4, laneB, "08:00"}, {5, laneB, "08:10"}, {6, laneB, "06:10"},
	}
	// 7 and 11 are late only against the newest before the kill.
	second := []rec{
		{7, laneA, "10:00"}, {8, laneA, "11:10"}, {9, laneA, "14:00"}, {10, laneA, "12:00"},
		{11, laneB, "06:00"}, {12, laneB, "07:30"},
	}
	ts := func(hhmm string) time.Time {
		d, err := time.ParseDuration(strings.Replace(hhmm, ":", "h", 1) + "m")
		if err != nil {
			t.Fatal(err)
		}
		return base.Add(d)
	}
	var wantLate []string
	newest := map[string]time.Time{}
	for _, r := range append(slices.Clone(first), second...) {
		at := ts(r.at)
		if n, ok := newest[r.lane]; ok && at.Before(n.Add(-time.Hour)) {
			wantLate = append(wantLate, fmt.Sprint(r.id))
			continue
		}
		if at.After(newest[r.lane]) {
			newest[r.lane] = at
		}
	}
	put := func(rs []rec) map[string]string {
		var data [][]byte
		var keys []string
		for _, r := range rs {
			data = append(data, fmt.Appendf(nil, `{"id":%d,"amount":1.25,"ts":%q}`, r.id, ts(r.at).Format(time.RFC3339)))
			keys = append(keys, r.lane)
		}
		return e.put(data, keys)
	}
	withDisorder := func(path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(b), "    timestamp: ts\n", "    timestamp: ts\n    disorder: 1h\n", 1)
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	late := func(dir string) []string {
		var nums []int
		for _, l := range readLines(t, dir, func(*letterLine, string) {}) {
			if l.Reason != "late" || !strings.Contains(l.Error, "older than the shard's watermark") {
				t.Errorf("dead letter %s/%s: %s %q, want a late one naming the watermark", l.ShardID, l.SequenceNumber, l.Reason, l.Error)
			}
			var id int
			if _, err := fmt.Sscanf(string(l.Data), `{"id":%d`, &id); err != nil {
				t.Fatalf("dead letter data %q: %v", l.Data, err)
			}
			nums = append(nums, id)
		}
		slices.Sort(nums)
		var ids []string
		for _, n := range nums {
			ids = append(ids, fmt.Sprint(n))
		}
		return ids
	}
	checkpointed := func(last map[string]string) func() bool {
		return func() bool {
			cps := e.checkpoints()
			for shard, seq := range last {
				if cps[shard].Checkpoint != seq {
					return false
				}
			}
			return true
		}
	}

	last := put(first)
	cfg := e.config("trim_horizon")
	withDisorder(cfg)
	w1 := e.start(cfg, "w1")
	waitFor(t, 60*time.Second, "the first records checkpointed", checkpointed(last))
	w1.kill()
	for shard, seq := range put(second) {
		last[shard] = seq
	}
	w2 := e.start(cfg, "w2")
	waitFor(t, 60*time.Second, "every record checkpointed", checkpointed(last))
	w2.stop(30 * time.Second)
	if got := late(e.lettersDir()); !slices.Equal(got, wantLate) {
		t.Errorf("late records %v, want %v", got, wantLate)
	}
	if n := len(e.rows()); n != len(first)+len(second)-len(wantLate) {
		t.Errorf("%d rows, want the %d records that are not late", n, len(first)+len(second)-len(wantLate))
	}

	// The replay: a fresh application, its own output.
	b, _ := os.ReadFile(cfg)
	replay := strings.NewReplacer(e.rowsDir(), filepath.Join(e.dir, "replay-rows"), e.lettersDir(), filepath.Join(e.dir, "replay-letters"),
		"application: "+e.table, "application: orders-replay").Replace(string(b))
	rcfg := filepath.Join(e.dir, "replay.yaml")
	if err := os.WriteFile(rcfg, []byte(replay), 0o644); err != nil {
		t.Fatal(err)
	}
	w3 := e.start(rcfg, "w3")
	table := e.table
	e.table = "orders-replay"
	waitFor(t, 60*time.Second, "the replay checkpointed", checkpointed(last))
	e.table = table
	w3.stop(30 * time.Second)
	if got := late(filepath.Join(e.dir, "replay-letters")); !slices.Equal(got, wantLate) {
		t.Errorf("replay: late records %v, want %v as the first time", got, wantLate)
	}
}
