package main

import (
	"bytes"
	"context"
	"fmt"
	"github.com/kinesis-ingest/kinesis-ingest/consumers/kcl"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
)

// peakRSS is the process's VmHWM (its resident set's high-water mark) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read the worker's memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// rowIDs counts the rows of every id in dir's row files, reading only the id
// at the start of each line (rows of 1 MB records are too big to parse whole
// at every poll).
func rowIDs(t *testing.T, dir string) map[int64]int {
	t.Helper()
	ids := map[int64]int{}
	_, err := file.Reader{Dir: dir}.Lines(context.Background(), func(f string, line []byte) error {
		rest, ok := bytes.CutPrefix(line, []byte(`{"id":`))
		if !ok {
			return fmt.Errorf("%s: a row that does not start with its id: %.60q", f, line)
		}
		end := bytes.IndexByte(rest, ',')
		id, err := strconv.ParseInt(string(rest[:max(end, 0)]), 10, 64)
		if err != nil {
			return fmt.Errorf("%s: bad id in %.60q", f, line)
		}
		ids[id]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

const mib = 1 << 20

// TestInflightBudgetBoundsMemory backlogs 32 shards with records of about 1 MB
// and runs two workers over them (each with its own lease table and output)
// while their row sinks are down, so that every shard a worker leases reads
// and then waits on the sink: without a bound a worker holds every shard's
// batch at once. The worker with max_inflight_bytes at its minimum, 10 MiB,
// must peak under the budget plus a fixed overhead; the one with an unbounded
// budget is the baseline, and must peak above that bound, or the load proved
// nothing. Nothing may be lost.
func TestInflightBudgetBoundsMemory(t *testing.T) {
	t.Parallel()
	const (
		// 32 shards: since GetRecords is decoded without the SDK's
		// deserializer (consumers/getrecords), a batch takes less room, and
		// 16 shards left the unbounded worker at 48 MiB, under the bound;
		// 48 left it about 100 MiB over its base, but kinesis-mock takes
		// 0.7 s for each 1 MB put (32 s for 48 alone, 70 s beside the
		// workers), the most of this test's time.
		shards     = 32
		perShard   = 1
		recordSize = 1040_000 // under the emulator's 1 MiB limit with the JSON around it
		budget     = 10 * mib
		// batchRoom is the room a batch takes while it is decoded, beside
		// the budget that holds it: the answer's JSON and base64, the
		// record, the row and the sink's line, with the garbage
		// collector's headroom. The worker's own base (Go runtime, SDK,
		// KCL, sinks, the binary's pages) is measured, not assumed: it is
		// each worker's peak RSS once it holds every lease, before any
		// record is put, and it grows with what the binary links (35 MiB
		// idle in stop 30, about 40 after the lake, Iceberg and Glue).
		// Measured before the base was: bounded 51 MiB alone and 55 to 59
		// loaded, unbounded 137 to 143, at 48 shards.
		batchRoom = 16 * mib
	)
	e := newEnv(t, shards)
	out, err := e.kc.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Shards) != shards {
		t.Fatalf("%d shards, want %d", len(out.Shards), shards)
	}
	type run struct {
		name string
		w    *worker
		rows string
	}
	start := func(name string, maxInflight int64) run {
		dir := filepath.Join(e.dir, name)
		cfg := e.writeConfig(testConfig{InitPosition: "trim_horizon", Table: e.table + "-" + name, Dir: dir})
		// A loaded emulator takes seconds for a GetRecords of megabytes:
		// no timed-out read should blur the figures.
		withConsumerSettings(t, cfg, fmt.Sprintf("max_inflight_bytes: %d", maxInflight), "call_timeout: 60s")
		return run{name: name, w: e.start(cfg, name), rows: filepath.Join(dir, "rows")}
	}
	runs := []run{start("bounded", budget), start("unbounded", 1<<40)}
	for _, r := range runs {
		waitFor(t, 60*time.Second, r.name+" started", func() bool {
			b, _ := os.ReadFile(r.w.log)
			return strings.Contains(string(b), "consumer started")
		})
		// The outage: the rows directory becomes a regular file.
		if err := os.Rename(r.rows, r.rows+".away"); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(r.rows, []byte("in the way"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range runs {
		waitFor(t, 240*time.Second, fmt.Sprintf("%s holding all %d leases", r.name, shards), func() bool {
			o := 0
			for _, l := range e.checkpointsOf(e.table + "-" + r.name) {
				if l.Owner == r.name {
					o++
				}
			}
			return o == shards
		})
	}
	base := map[string]int64{}
	for _, r := range runs {
		base[r.name] = peakRSS(t, r.w.cmd.Process.Pid)
	}
	// The records go in once both sinks are down, so that no worker can
	// write one before the outage (each shard has a single record).
	note := strings.Repeat("x", recordSize)
	n := 0
	putStart := time.Now()
	for _, s := range out.Shards {
		var entries []types.PutRecordsRequestEntry
		for range perShard {
			rec := fmt.Sprintf(`{"id":%d,"amount":1.5,"ts":"2026-11-01T12:00:00Z","note":%q}`, n, note)
			entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(rec), PartitionKey: aws.String("k"), ExplicitHashKey: s.HashKeyRange.StartingHashKey})
			n++
		}
		res, err := e.kc.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String(e.stream), Records: entries})
		if err != nil {
			t.Fatalf("put 1 MB records: %v", err)
		}
		if aws.ToInt32(res.FailedRecordCount) != 0 {
			t.Fatalf("put 1 MB records: %d failed", aws.ToInt32(res.FailedRecordCount))
		}
	}
	t.Logf("put %d records of %d bytes in %s", n, recordSize, time.Since(putStart).Round(100*time.Millisecond))

	// Every shard has read, or waits for the budget: the unbounded worker
	// holds every record, the bounded one has read and made its next read
	// wait.
	gauge := func(r run, name string) float64 {
		return counter(httpGet(t, "http://"+r.w.metricsAddr()+"/metrics", "").body, name)
	}
	waitFor(t, 240*time.Second, fmt.Sprintf("unbounded holding all %d records", n), func() bool {
		return gauge(runs[1], "kinesis_ingest_records_received_total") >= float64(n)
	})
	// A read reserves kcl.MaxReadBytes (the whole budget here) first: once
	// the bounded worker holds a record, its next read waits.
	if budget > kcl.MaxReadBytes {
		t.Fatalf("the budget (%d) must not fit two reads (%d each) for one record to fill it", budget, kcl.MaxReadBytes)
	}
	waitFor(t, 240*time.Second, "bounded holding a record, its next read waiting", func() bool {
		return gauge(runs[0], "kinesis_ingest_records_received_total") >= 1
	})
	for _, r := range runs {
		os.Remove(r.rows)
		if err := os.Rename(r.rows+".away", r.rows); err != nil {
			t.Fatal(err)
		}
	}
	peaks := map[string]int64{}
	for _, r := range runs {
		waitFor(t, 180*time.Second, fmt.Sprintf("%s: all %d rows", r.name, n), func() bool {
			ids := rowIDs(t, r.rows)
			for i := range n {
				if ids[int64(i)] == 0 {
					return false
				}
			}
			return true
		})
		peaks[r.name] = peakRSS(t, r.w.cmd.Process.Pid)
	}
	bounded, unbounded := peaks["bounded"], peaks["unbounded"]
	t.Logf("peak RSS with max_inflight_bytes %d MiB: %d MiB (base %d MiB); unbounded: %d MiB (base %d MiB, %.2fx); %d records of %d bytes on %d shards",
		budget/mib, bounded/mib, base["bounded"]/mib, unbounded/mib, base["unbounded"]/mib, float64(unbounded)/float64(bounded), n, recordSize, shards)
	if limit := base["bounded"] + budget + batchRoom; bounded > limit {
		t.Errorf("peak RSS %d MiB with a budget of %d MiB: over base %d + budget + a batch's room %d MiB (%d MiB)", bounded/mib, budget/mib, base["bounded"]/mib, batchRoom/mib, limit/mib)
	}
	if limit := base["unbounded"] + budget + batchRoom; unbounded <= limit {
		t.Errorf("the unbounded worker peaked at %d MiB, under its base + budget + a batch's room (%d MiB): the load is too small to prove the budget", unbounded/mib, limit/mib)
	}
}
