package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/duckread"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/faultproxy"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/s3test"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// lakeEnv is env plus a versitygw (a real S3 server over a directory) the
// worker writes Parquet objects to; dead letters stay in files.
type lakeEnv struct {
	*env
	s3     *s3test.Server
	bucket string
	// counts counts the lake's rows by id: lakeCounts, or for an Iceberg
	// table the rows of its current snapshot (icebergEnv).
	counts func() map[string]int
}

func newLakeEnv(t *testing.T, shards int) *lakeEnv {
	t.Helper()
	e := newEnv(t, shards)
	if e.kin == nil {
		t.Skip("the lake tests start their own S3 server beside the emulators")
	}
	// The worker calls Kinesis, DynamoDB and S3 with one set of credentials.
	srv := s3test.StartWith(t, testaws.Account, "secret-must-not-leak")
	le := &lakeEnv{env: e, s3: srv, bucket: srv.CreateBucket(t)}
	le.counts = le.lakeCounts
	e.extra = append(e.extra, "AWS_ENDPOINT_URL_S3="+srv.Endpoint)
	return le
}

// lakeConfig is the harness config (configTemplate) with its rows going to
// the bucket, partitioned by the dataset timestamp's date and hour; s3 adds
// keys to the sink's s3 mapping (by default max_interval: 1s, so that rows
// wait for their objects about a second, not the default minute).
func (e *lakeEnv) lakeConfig(s3 ...string) string {
	e.t.Helper()
	if len(s3) == 0 {
		s3 = []string{"max_interval: 1s"}
	}
	return e.lakeSinkConfig(fmt.Sprintf("s3: {bucket: %s, prefix: lake, force_path_style: true, partition_by: [date, hour], %s}", e.bucket, strings.Join(s3, ", ")))
}

// lakeSinkConfig writes the harness config (configTemplate) with the
// dataset's rows going to sink "lake" of one kind (sink: its one-line YAML
// mapping entry, e.g. "s3: {...}"), dead letters to files, and info logs.
func (e *lakeEnv) lakeSinkConfig(sink string) string {
	e.t.Helper()
	body := fmt.Sprintf(configTemplate, e.arn, "trim_horizon", "", e.lettersDir(), e.table)
	i, j := strings.Index(body, "sinks:\n"), strings.Index(body, "dead_letter:\n")
	if i < 0 || j < i {
		e.t.Fatal("configTemplate has no sinks: ... dead_letter: section")
	}
	body = body[:i] + "sinks:\n  - name: lake\n    " + sink + "\n" + body[j:]
	body = strings.Replace(body, "    sink: orders_file\n", "    sink: lake\n", 1)
	body = strings.Replace(body, "level: debug", "level: info", 1)
	path := filepath.Join(e.dir, "lake.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// lakeCounts counts the rows of every Parquet object under the prefix by
// id, as DuckDB's read_parquet('…/**/*.parquet') reads them: no manifest,
// no cleanup first.
func (e *lakeEnv) lakeCounts() map[string]int {
	e.t.Helper()
	return duckread.CountByID(e.t, filepath.Join(e.s3.BucketDir(e.bucket), "lake"), "id")
}

// waitCheckpointed waits until every shard's checkpoint is its last
// sequence number in last.
func (e *lakeEnv) waitCheckpointed(timeout time.Duration, last map[string]string) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		behind := e.notAt(last)
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for every record checkpointed: %v", timeout, behind)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// putOrders puts the harness's orders from..from+n-1 (every tenth bad),
// adds the bad ones' keys to bad, and returns each shard's last sequence
// number.
func (e *lakeEnv) putOrders(from, n int, bad map[string]string) map[string]string {
	e.t.Helper()
	data, keys, b := orders(from, n, true)
	for k, v := range b {
		bad[k] = v
	}
	return e.put(data, keys)
}

// notAt lists the shards of last whose checkpoint is not their sequence
// number in last.
func (e *lakeEnv) notAt(last map[string]string) map[string]string {
	e.t.Helper()
	cps := e.checkpoints()
	out := map[string]string{}
	for shard, seq := range last {
		if cps[shard].Checkpoint != seq {
			out[shard] = fmt.Sprintf("at %q, want %s", cps[shard].Checkpoint, seq)
		}
	}
	return out
}

// exactlyOnce fails the test unless each good id below n is in exactly one
// row of the lake and each bad one (want) is a dead letter and no row.
func (e *lakeEnv) exactlyOnce(n int, bad map[string]string) {
	e.t.Helper()
	e.rowsOnce(n, bad)
	letters := map[string]int{}
	for _, l := range e.letters() {
		letters[l.PartitionKey]++
	}
	for key, reason := range bad {
		if letters[key] < 1 {
			e.t.Errorf("bad record %s (%s) is not a dead letter", key, reason)
		}
	}
}

// rowsOnce fails the test unless each good id below n is in exactly one
// row of the lake and no bad one is.
func (e *lakeEnv) rowsOnce(n int, bad map[string]string) {
	e.t.Helper()
	counts := e.counts()
	wrong := 0
	for i := range n {
		want := 1
		if _, ok := bad["k-"+fmt.Sprint(i)]; ok {
			want = 0
		}
		if got := counts[fmt.Sprint(i)]; got != want {
			if wrong++; wrong <= 10 {
				e.t.Errorf("id %d: %d rows in the lake, want %d", i, got, want)
			}
		}
	}
	if wrong > 10 {
		e.t.Errorf("... %d ids wrong in all", wrong)
	}
}

// TestLakeTwoWorkersOneKilled: two workers write the lake; one is killed
// with SIGKILL while it writes, and the other takes its shards over and
// replays from their checkpoints. Every good record is in exactly one row,
// every bad one a dead letter.
func TestLakeTwoWorkersOneKilled(t *testing.T) {
	t.Parallel()
	const n = 4000
	e := newLakeEnv(t, 4)
	bad := map[string]string{}
	last := e.putOrders(0, n/2, bad)
	cfg := e.lakeConfig()
	w1 := e.start(cfg, "w1")
	e.start(cfg, "w2")
	waitFor(t, 60*time.Second, "the first objects in the lake", func() bool { return len(e.lakeCounts()) >= 200 })
	w1.kill()
	t.Logf("w1 killed with %d ids in the lake", len(e.lakeCounts()))

	last = maxSeqs(last, e.putOrders(n/2, n/2, bad))
	e.waitCheckpointed(120*time.Second, last)
	e.exactlyOnce(n, bad)
}

// TestLakeReplayAfterReset: after `reset --to trim_horizon` the next worker
// reads the whole stream again, in batches cut where they fall this time;
// it adds only the records that arrived since, once each.
func TestLakeReplayAfterReset(t *testing.T) {
	t.Parallel()
	const n = 2000
	e := newLakeEnv(t, 2)
	bad := map[string]string{}
	last := e.putOrders(0, n/2, bad)
	firstBad := len(bad)
	cfg := e.lakeConfig()
	w1 := e.start(cfg, "w1")
	e.waitCheckpointed(90*time.Second, last)
	w1.stop(30 * time.Second)
	e.exactlyOnce(n/2, bad)

	out, errOut, code := e.cli("reset", "--config", cfg, "--to", "trim_horizon", "--yes")
	if code != 0 {
		t.Fatalf("reset --to trim_horizon: exit %d, %s%s", code, out, errOut)
	}
	last = maxSeqs(last, e.putOrders(n/2, n/2, bad))
	w2 := e.start(cfg, "w2")
	addr := w2.metricsAddr()
	e.waitCheckpointed(90*time.Second, last)
	e.exactlyOnce(n, bad)
	good := n/2 - firstBad
	if got := metricValue(scrape(t, addr), `kinesis_ingest_sink_duplicates_skipped_total{sink="lake"}`); int(got) != good {
		t.Errorf("the replay reported %v rows already in the lake, want %d (the first run's good records)", got, good)
	}
}

// TestLakeS3Outage: the S3 server goes away for 20 s while records keep
// arriving, and comes back with its data: the worker retries, and every
// record ends in exactly one row.
func TestLakeS3Outage(t *testing.T) {
	t.Parallel()
	const n, outage = 3000, 20 * time.Second
	e := newLakeEnv(t, 2)
	bad := map[string]string{}
	last := e.putOrders(0, n/3, bad)
	w := e.start(e.lakeConfig(), "w1")
	waitFor(t, 60*time.Second, "the first objects in the lake", func() bool { return len(e.lakeCounts()) >= 100 })
	e.s3.Stop(t)
	stopped := time.Now()
	last = maxSeqs(last, e.putOrders(n/3, 2*n/3, bad))
	waitFor(t, outage, "the worker to notice the outage", func() bool {
		b, _ := os.ReadFile(w.log)
		// The deferred sink retries its own flushes.
		return strings.Contains(string(b), "flush to S3 failed")
	})
	// The outage lasts its full length whatever the worker does meanwhile.
	time.Sleep(time.Until(stopped.Add(outage)))
	e.s3.Start(t)
	e.waitCheckpointed(120*time.Second, last)
	e.exactlyOnce(n, bad)
	// The outage and the recovery show in the lake's metrics.
	m := scrape(t, w.metricsAddr())
	if got := metricValue(m, "kinesis_ingest_s3_upload_failures_total{"); got < 1 {
		t.Errorf("%v upload failures counted through a %s S3 outage, want at least 1", got, outage)
	}
	objects, bytes := metricValue(m, "kinesis_ingest_s3_objects_written_total{"), metricValue(m, "kinesis_ingest_s3_bytes_written_total{")
	if objects < 1 || bytes < objects*100 {
		t.Errorf("%v objects, %v bytes written counted; want the lake's objects (Parquet files of at least 100 bytes)", objects, bytes)
	}
}

// TestLakeCrashBetweenUploadAndCheckpoint makes the replay certain: the
// worker's checkpoint writes are refused (a fault proxy in front of
// DynamoDB) while it stores 2000 more records in the lake, and it is then
// killed with SIGKILL. Its successor reads those records again from the
// lagging checkpoints, with batches cut where they fall this time, and must
// find every one already in the lake: none twice, and the next 1000 once.
func TestLakeCrashBetweenUploadAndCheckpoint(t *testing.T) {
	t.Parallel()
	const before, lagging, after = 2000, 2000, 1000
	e := newLakeEnv(t, 4)
	dp := faultproxy.New(t, e.ddb.Endpoint)
	cfg := e.lakeConfig()

	data, keys, _ := orders(0, before, false)
	lastBefore := e.put(data, keys)
	w1 := e.startArgs(cfg, "w1", nil, []string{"AWS_ENDPOINT_URL_DYNAMODB=" + dp.URL})
	e.waitCheckpointed(90*time.Second, lastBefore)

	dp.SetRules(faultproxy.Rule{Operation: "UpdateItem", Every: 1, Code: "ProvisionedThroughputExceededException", BodyContains: checkpointWrite})
	data, keys, _ = orders(before, lagging, false)
	e.put(data, keys)
	waitFor(t, 90*time.Second, fmt.Sprintf("all %d rows in the lake and a checkpoint refused", before+lagging), func() bool {
		return len(e.lakeCounts()) >= before+lagging && dp.Throttled()["UpdateItem"] > 0
	})
	w1.kill()
	dp.SetRules()
	if off := e.notAt(lastBefore); len(off) != 0 {
		t.Fatalf("checkpoints moved while their writes were refused (%v): nothing left to replay", off)
	}

	w2 := e.start(cfg, "w2")
	data, keys, _ = orders(before+lagging, after, false)
	lastAfter := e.put(data, keys)
	e.waitCheckpointed(90*time.Second, lastAfter)
	e.exactlyOnce(before+lagging+after, nil)
	if got := metricValue(scrape(t, w2.metricsAddr()), `kinesis_ingest_sink_duplicates_skipped_total{sink="lake"}`); got != lagging {
		t.Errorf("the successor found %v rows already in the lake, want %d (those stored after the lagging checkpoints)", got, lagging)
	}
	w2.stop(30 * time.Second)
}
