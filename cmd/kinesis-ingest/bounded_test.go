package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// boundedConfig is the standard test config with the source bounded.
func (e *env) boundedConfig(initPosition, idleness string) string {
	e.t.Helper()
	path := e.config(initPosition)
	b, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	body := strings.Replace(string(b), "  - name: orders\n    kinesis:", "  - name: orders\n    bounded: true\n    idleness: "+idleness+"\n    kinesis:", 1)
	if body == string(b) {
		e.t.Fatal("config template changed: cannot make the source bounded")
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// boundedRecords are orders id from..to-1; every 40th is not JSON, every
// 25th has a string amount.
func boundedRecords(from, to int) ([][]byte, []string) {
	var data [][]byte
	var keys []string
	for i := from; i < to; i++ {
		rec := fmt.Sprintf(`{"id":%d,"amount":%d.5,"ts":"2026-11-01T12:00:00Z"}`, i, i)
		switch {
		case i%40 == 7:
			rec = fmt.Sprintf(`{"id":%d,`, i)
		case i%25 == 3:
			rec = fmt.Sprintf(`{"id":%d,"amount":"lots","ts":"2026-11-01T12:00:00Z"}`, i)
		}
		data, keys = append(data, []byte(rec)), append(keys, "k-"+strconv.Itoa(i))
	}
	return data, keys
}

var summaryTotalRE = regexp.MustCompile(`total\s+rows (\d+), dead letters (\d+)`)

// TestBoundedSourceExitsByItself: two workers on a bounded source of 4
// shards, one of them split while records are read, exit 0 by themselves
// once every record is a row or a dead letter and nothing new came for the
// idleness; their summaries add up to the rows and dead letters written.
func TestBoundedSourceExitsByItself(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4)
	cfgPath := e.boundedConfig("trim_horizon", "3s")
	const half, n = 400, 800
	e.put(boundedRecords(0, half))

	w1, w2 := e.start(cfgPath, "w1"), e.start(cfgPath, "w2")
	waitFor(t, 60*time.Second, "rows flowing", func() bool { return len(e.rows()) > 100 })
	parent := e.openShards()[0]
	mid := halfway(*parent.HashKeyRange.StartingHashKey, *parent.HashKeyRange.EndingHashKey)
	if _, err := e.kc.SplitShard(t.Context(), &kinesis.SplitShardInput{StreamName: aws.String(e.stream), ShardToSplit: parent.ShardId, NewStartingHashKey: aws.String(mid)}); err != nil {
		t.Fatalf("split shard: %v", err)
	}
	e.waitActive()
	e.put(boundedRecords(half, n))

	for _, w := range []*worker{w1, w2} {
		select {
		case <-w.exited:
			if w.err != nil {
				t.Fatalf("worker %s exited with %v, want 0", w.id, w.err)
			}
		case <-time.After(150 * time.Second):
			t.Fatalf("worker %s did not exit by itself", w.id)
		}
	}

	rows, letters := e.rows(), e.letters()
	seen := map[string]int{}
	for _, r := range rows {
		seen["k-"+strconv.FormatInt(r.ID, 10)]++
	}
	for _, l := range letters {
		seen[l.PartitionKey]++
	}
	var lost []string
	for i := range n {
		if seen["k-"+strconv.Itoa(i)] == 0 {
			lost = append(lost, "k-"+strconv.Itoa(i))
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d records neither row nor dead letter when the workers exited: %v", len(lost), lost)
	}
	sumRows, sumLetters := 0, 0
	for _, w := range []*worker{w1, w2} {
		b, _ := os.ReadFile(w.log)
		m := summaryTotalRE.FindSubmatch(b)
		if m == nil || !strings.Contains(string(b), "every bounded source is done") {
			t.Fatalf("worker %s printed no summary; log tail:\n%s", w.id, tail(string(b), 20))
		}
		r, _ := strconv.Atoi(string(m[1]))
		l, _ := strconv.Atoi(string(m[2]))
		sumRows, sumLetters = sumRows+r, sumLetters+l
	}
	if sumRows != len(rows) || sumLetters != len(letters) {
		t.Errorf("summaries say %d rows and %d dead letters; %d rows and %d dead letters were written", sumRows, sumLetters, len(rows), len(letters))
	}
	all, err := e.kc.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
	if err != nil || len(all.Shards) != 6 {
		t.Fatalf("list shards: %v (%d shards, want 6 after a split)", err, len(all.Shards))
	}
	if cps := e.checkpoints(); cps[aws.ToString(parent.ShardId)].Checkpoint != "SHARD_END" {
		t.Errorf("split parent %s ends with checkpoint %q, want SHARD_END", aws.ToString(parent.ShardId), cps[aws.ToString(parent.ShardId)].Checkpoint)
	}
	t.Logf("%d rows and %d dead letters from %d records (%d duplicates)", len(rows), len(letters), n, len(rows)+len(letters)-n)
}
