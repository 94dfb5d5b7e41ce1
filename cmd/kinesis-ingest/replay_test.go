package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// replayTemplate is a bounded replay of a window: init_position at its start
// (arrival time), until at its end (the payload's ts), its own application.
const replayTemplate = `
sources:
  - name: orders
    bounded: true
    idleness: 3s
    kinesis:
      stream_arn: %[1]s
      init_position: %[2]s
datasets:
  - name: orders
    source: orders
    timestamp: ts
    until: %[3]s
    fields:
      - {name: id, type: int}
      - {name: ts, type: datetime}
    sink: replay_file
sinks:
  - name: replay_file
    file: {path: %[4]s}
dead_letter:
  file: {path: %[5]s}
consumer:
  application: orders-replay-window
  worker_id: ${WORKER_ID}
  shard_sync_interval: 500ms
  lease_duration: 4s
  lease_refresh: 1s
  idle_between_reads: 100ms
metrics:
  listen: 127.0.0.1:0
errors:
  listen: 127.0.0.1:0
`

// TestReplayWindow: records A, B and C are put a few seconds apart, each
// stamped with the time it was put, and a producer goes on putting records
// every 250 ms, so the stream is never idle. A bounded replay with
// init_position at the start of B and until at the end of B, under a new
// application, puts exactly B into its sink and exits 0 by itself, once every
// shard delivered a record that arrived past until + idleness.
func TestReplayWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	put := func(from int) {
		ts := time.Now().UTC().Format(time.RFC3339Nano)
		var data [][]byte
		var keys []string
		for i := from; i < from+100; i++ {
			data = append(data, fmt.Appendf(nil, `{"id":%d,"ts":%q}`, i, ts))
			keys = append(keys, "k-"+strconv.Itoa(i))
		}
		e.put(data, keys)
	}
	put(0)
	time.Sleep(1500 * time.Millisecond)
	start := time.Now().UTC().Truncate(time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	put(100)
	time.Sleep(1500 * time.Millisecond)
	end := time.Now().UTC().Truncate(time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	put(200)

	dir := filepath.Join(e.dir, "replay")
	cfg := filepath.Join(e.dir, "replay.yaml")
	body := fmt.Sprintf(replayTemplate, e.arn, start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano), filepath.Join(dir, "rows"), filepath.Join(dir, "letters"))
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	// A live producer keeps the stream busy (never idle for the 3 s
	// idleness): the replay ends because it is past its window.
	stopProducer := make(chan struct{})
	produced := make(chan int)
	go func() {
		i := 1000
		defer func() { produced <- i - 1000 }()
		for {
			select {
			case <-stopProducer:
				return
			case <-time.After(250 * time.Millisecond):
			}
			rec := fmt.Appendf(nil, `{"id":%d,"ts":%q}`, i, time.Now().UTC().Format(time.RFC3339Nano))
			e.put([][]byte{rec, rec}, []string{"k-" + strconv.Itoa(i), "j-" + strconv.Itoa(i)})
			i++
		}
	}()
	w := e.start(cfg, "replay")
	defer func() {
		close(stopProducer)
		t.Logf("the producer put %d pairs of records while the replay ran", <-produced)
	}()
	select {
	case <-w.exited:
		if w.err != nil {
			t.Fatalf("replay exited with %v, want 0", w.err)
		}
	case <-time.After(120 * time.Second):
		t.Fatal("the bounded replay did not exit by itself")
	}
	if b, _ := os.ReadFile(w.log); strings.Count(string(b), "shard past its window, done") < 2 {
		t.Errorf("the replay did not end by its window on both shards (a producer kept the stream busy); log tail:\n%s", tail(string(b), 15))
	}
	var ids []int64
	for _, r := range readLines(t, filepath.Join(dir, "rows"), func(*idRow, string) {}) {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	want := make([]int64, 0, 100)
	for i := 100; i < 200; i++ {
		want = append(want, int64(i))
	}
	if !slices.Equal(ids, want) {
		t.Errorf("replay of [%s, %s) wrote %d rows %v, want exactly ids 100..199", start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano), len(ids), ids)
	}
	if letters := readLines(t, filepath.Join(dir, "letters"), func(*routedLetter, string) {}); len(letters) != 0 {
		t.Errorf("the replay wrote %d dead letters, want none", len(letters))
	}
}
