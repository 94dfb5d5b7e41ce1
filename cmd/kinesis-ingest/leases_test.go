package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/leaseview"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// cli runs a kinesis-ingest command against the test's emulators.
func (e *env) cli(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(),
		"WORKER_ID=ops",
		"AWS_ENDPOINT_URL_KINESIS="+e.kin.Endpoint,
		"AWS_ENDPOINT_URL_DYNAMODB="+e.ddb.Endpoint,
		"AWS_ACCESS_KEY_ID="+testaws.Account,
		"AWS_SECRET_ACCESS_KEY=secret-must-not-leak",
		"AWS_REGION=us-east-1",
	)
	cmd.Env = append(cmd.Env, e.extra...) // what the config refers to (${ICEBERG_CATALOG_DSN}...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), exitCode(err)
}

func maxSeqs(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for shard, seq := range m {
			if seqLess(out[shard], seq) {
				out[shard] = seq
			}
		}
	}
	return out
}

// TestLeasesAndReset: while two workers run on 4 shards, `leases` shows each
// shard's true owner (each worker's own leases_held agrees) and checkpoint
// (the last sequence number put on the shard, once everything is a row);
// `reset` is refused while they hold leases, naming both; after they stop,
// `reset --to T` makes the next start read exactly the records that arrived
// after T.
func TestLeasesAndReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4)
	cfgPath := e.config("trim_horizon")
	const n = 200
	batch := func(from int) ([][]byte, []string) {
		var data [][]byte
		var keys []string
		for i := from; i < from+n; i++ {
			data = append(data, []byte(`{"id":`+itoa(i)+`,"amount":1.5,"ts":"2026-11-01T12:00:00Z"}`))
			keys = append(keys, "k-"+itoa(i))
		}
		return data, keys
	}
	first := e.put(batch(0))
	time.Sleep(1500 * time.Millisecond)
	resetAt := time.Now().UTC().Truncate(time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	last := maxSeqs(first, e.put(batch(n)))
	if len(last) != 4 {
		t.Fatalf("records landed on %d shards, want 4", len(last))
	}

	w1, w2 := e.start(cfgPath, "w1"), e.start(cfgPath, "w2")
	a1, a2 := w1.metricsAddr(), w2.metricsAddr()
	waitFor(t, 90*time.Second, "every record a row, checkpointed, and both workers holding leases", func() bool {
		cps := e.checkpoints()
		for shard, seq := range last {
			if cps[shard].Checkpoint != seq {
				return false
			}
		}
		h1 := metricValue(scrape(t, a1), `kinesis_ingest_leases_held{source="orders"}`)
		h2 := metricValue(scrape(t, a2), `kinesis_ingest_leases_held{source="orders"}`)
		return len(e.rows()) >= 2*n && h1 >= 1 && h2 >= 1 && h1+h2 == 4
	})

	out, errOut, code := e.cli("leases", "--config", cfgPath, "--json")
	if code != 0 {
		t.Fatalf("leases --json: exit %d: %s", code, errOut)
	}
	var shards []leaseview.Shard
	if err := json.Unmarshal([]byte(out), &shards); err != nil {
		t.Fatalf("leases --json output %q: %v", out, err)
	}
	held := map[string]int{}
	for _, s := range shards {
		held[s.Owner]++
		if s.State != leaseview.StateOpen || !s.LeaseLive || s.Checkpoint != last[s.ShardID] {
			t.Errorf("%s: %+v; want open, a live lease, checkpoint %s", s.ShardID, s, last[s.ShardID])
		}
		if s.MillisBehind == nil || *s.MillisBehind != 0 || s.NextArrival != nil {
			t.Errorf("%s: behind %v, next arrival %v; want caught up", s.ShardID, s.MillisBehind, s.NextArrival)
		}
	}
	// The owners the view shows are those each worker counts for itself.
	m1 := int(metricValue(scrape(t, a1), `kinesis_ingest_leases_held{source="orders"}`))
	m2 := int(metricValue(scrape(t, a2), `kinesis_ingest_leases_held{source="orders"}`))
	if len(shards) != 4 || held["w1"] != m1 || held["w2"] != m2 {
		t.Errorf("leases shows %d shards owned %v; the workers hold w1=%d w2=%d", len(shards), held, m1, m2)
	}
	text, _, code := e.cli("leases", "--config", cfgPath)
	if code != 0 || !strings.Contains(text, "SHARD") || strings.Count(text, "shardId-") != 4 {
		t.Errorf("leases (text): exit %d:\n%s", code, text)
	}
	if !strings.Contains(text, "workers of orders") || !strings.Contains(text, "  w1  announced until") || !strings.Contains(text, "  w2  announced until") {
		t.Errorf("leases (text) does not list the running workers w1 and w2:\n%s", text)
	}

	to := resetAt.Format(time.RFC3339Nano)
	_, errOut, code = e.cli("reset", "--config", cfgPath, "--to", to, "--yes")
	if code != 1 || !strings.Contains(errOut, "refusing to reset") || !strings.Contains(errOut, "w1 (") || !strings.Contains(errOut, "w2 (") {
		t.Errorf("reset while workers run: exit %d, %q; want exit 1 naming w1 and w2", code, errOut)
	}
	if cps := e.checkpoints(); cps["shardId-000000000000"].Checkpoint != last["shardId-000000000000"] {
		t.Errorf("a refused reset moved a checkpoint: %+v", cps["shardId-000000000000"])
	}
	w1.stop(30 * time.Second)
	w2.stop(30 * time.Second)
	// Stopped cleanly, both deleted their worker rows.
	if text, _, _ := e.cli("leases", "--config", cfgPath); !strings.Contains(text, "workers of orders: none announced") {
		t.Errorf("leases (text) after both workers stopped still lists workers:\n%s", text)
	}

	before := e.checkpoints()
	out, errOut, code = e.cli("reset", "--config", cfgPath, "--to", to)
	if code != 0 || !strings.Contains(out, "nothing changed: run again with --yes") || strings.Count(out, "-> AT_TIMESTAMP") != 4 {
		t.Errorf("reset without --yes: exit %d, %s%s", code, out, errOut)
	}
	if after := e.checkpoints(); !maps.EqualFunc(before, after, func(a, b leases.Lease) bool { return a.Checkpoint == b.Checkpoint && a.StartAt == b.StartAt }) {
		t.Errorf("reset without --yes changed the table")
	}
	out, errOut, code = e.cli("reset", "--config", cfgPath, "--to", to, "--yes")
	if code != 0 || !strings.Contains(out, "4 shards rewound") {
		t.Fatalf("reset --yes: exit %d, %s%s", code, out, errOut)
	}

	if err := os.Rename(e.rowsDir(), e.rowsDir()+".before-reset"); err != nil {
		t.Fatal(err)
	}
	w3 := e.start(cfgPath, "w3")
	waitFor(t, 90*time.Second, "the records after the reset read again and checkpointed", func() bool {
		cps := e.checkpoints()
		for shard, seq := range last {
			if cps[shard].Checkpoint != seq {
				return false
			}
		}
		return len(e.rows()) >= n
	})
	w3.stop(30 * time.Second)
	var got []int64
	for _, r := range e.rows() {
		got = append(got, r.ID)
	}
	slices.Sort(got)
	want := make([]int64, 0, n)
	for i := n; i < 2*n; i++ {
		want = append(want, int64(i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("after reset --to %s the next start read %d rows %v, want exactly ids %d..%d", to, len(got), got, n, 2*n-1)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
