package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
)

// severalSourcesTemplate is Fennel's stacked @source decorators: one
// dataset fed by two streams, the first in prod and staging, the second in
// prod only. Both are bounded, so that run exits once it has read them.
const severalSourcesTemplate = `
sources:
  - name: orders_a
    env: [prod, staging]
    bounded: true
    idleness: 2s
    kinesis: {stream_arn: %[1]s, init_position: trim_horizon}
  - name: orders_b
    env: [prod]
    bounded: true
    idleness: 2s
    kinesis: {stream_arn: %[2]s, init_position: trim_horizon}
datasets:
  - name: orders
    source: [orders_a, orders_b]
    fields:
      - {name: id, type: int}
      - {name: ts, type: datetime}
    sink: rows
sinks:
  - name: rows
    file: {path: %[3]s/rows}
dead_letter:
  file: {path: %[3]s/letters}
consumer:
  application: %[4]s
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

// TestDatasetOfSeveralSources: records put on two streams land in the one
// dataset listing both sources, each row from the source it was put on and
// each bad record that source's dead letter; run with an --env that selects
// one of the sources, only that source's records land.
func TestDatasetOfSeveralSources(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	arnB := envtest.CreateStream(t, e.kc, "orders_b", 1)
	const n = 60
	records := func(from int) ([][]byte, []string) {
		var data [][]byte
		var keys []string
		for i := from; i < from+n; i++ {
			rec := fmt.Sprintf(`{"id":%d,"ts":"2026-11-01T12:00:00Z"}`, i)
			if i%n == 17 {
				rec = fmt.Sprintf(`{"id":"%d","ts":"2026-11-01T12:00:00Z"}`, i)
			}
			data, keys = append(data, []byte(rec)), append(keys, "k-"+strconv.Itoa(i))
		}
		return data, keys
	}
	e.put(records(0))
	a := e.stream
	e.stream = "orders_b" // put writes to e.stream
	e.put(records(1000))
	e.stream = a

	type row struct {
		ID     int64  `json:"id"`
		Source string `json:"_source"`
	}
	for _, tc := range []struct {
		env     string
		sources map[string]int // the sources whose records land: the first id put on each
	}{
		{env: "prod", sources: map[string]int{"orders_a": 0, "orders_b": 1000}},
		{env: "staging", sources: map[string]int{"orders_a": 0}},
	} {
		dir := filepath.Join(e.dir, tc.env)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cfgPath := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(cfgPath, fmt.Appendf(nil, severalSourcesTemplate, e.arn, arnB, dir, "several-"+tc.env), 0o644); err != nil {
			t.Fatal(err)
		}
		w := e.startArgs(cfgPath, "w-"+tc.env, []string{"--env", tc.env}, nil)
		select {
		case <-w.exited:
			if w.err != nil {
				b, _ := os.ReadFile(w.log)
				t.Fatalf("--env %s: run exited with %v, want 0; log tail:\n%s", tc.env, w.err, tail(string(b), 20))
			}
		case <-time.After(120 * time.Second):
			t.Fatalf("--env %s: run did not exit by itself once its bounded sources were read", tc.env)
		}

		got := map[string]string{} // id: the source of its row or dead letter
		var dups []string
		note := func(id, what string) {
			if got[id] != "" {
				dups = append(dups, id)
			}
			got[id] = what
		}
		for _, r := range readLines(t, filepath.Join(dir, "rows"), func(*row, string) {}) {
			note(strconv.FormatInt(r.ID, 10), "row from "+r.Source)
		}
		for _, l := range readLines(t, filepath.Join(dir, "letters"), func(*letterLine, string) {}) {
			id, _ := strconv.Atoi(l.PartitionKey[len("k-"):])
			note(strconv.Itoa(id), l.Reason+" from "+l.Source)
		}
		want := map[string]string{}
		for src, from := range tc.sources {
			for i := from; i < from+n; i++ {
				want[strconv.Itoa(i)] = "row from " + src
				if i%n == 17 {
					want[strconv.Itoa(i)] = "schema_error from " + src
				}
			}
		}
		if len(dups) > 0 {
			t.Errorf("--env %s: ids landed twice: %v", tc.env, dups)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			missing, extra := 0, 0
			for id, w := range want {
				if got[id] != w {
					missing++
				}
			}
			for id := range got {
				if _, ok := want[id]; !ok {
					extra++
				}
			}
			t.Errorf("--env %s: %d of %d ids landed (%d not as wanted, %d not wanted):\n got %v\nwant %v", tc.env, len(got), len(want), missing, extra, got, want)
		}
	}
}
