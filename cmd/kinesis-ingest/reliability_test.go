package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/efoproxy"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// waitExit waits for the worker to exit by itself and returns its Wait error.
func (w *worker) waitExit(timeout time.Duration) error {
	w.t.Helper()
	select {
	case <-w.exited:
		return w.err
	case <-time.After(timeout):
		w.t.Fatalf("worker %s did not exit by itself within %s", w.id, timeout)
		return nil
	}
}

// summaryRows reads the "total rows N" of the summary a bounded run printed;
// -1 if it printed none.
func (w *worker) summaryRows() int {
	b, _ := os.ReadFile(w.log)
	m := summaryTotalRE.FindSubmatch(b)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// checkpointedAt reports whether every shard of last has a checkpoint at or
// past its sequence number (SHARD_END included).
func (e *env) checkpointedAt(last map[string]string) bool {
	cps := e.checkpoints()
	for shard, seq := range last {
		cp := cps[shard].Checkpoint
		if cp != "SHARD_END" && (cp == "" || seqLess(cp, seq)) {
			return false
		}
	}
	return true
}

// waitCheckpointed waits until every shard of last is checkpointed at or past
// its sequence number: everything put there up to it is durable.
func (e *env) waitCheckpointed(last map[string]string, timeout time.Duration) {
	e.t.Helper()
	waitFor(e.t, timeout, fmt.Sprintf("checkpoints at %v", last), func() bool { return e.checkpointedAt(last) })
}

// withShutdownTimeout sets consumer.shutdown_timeout in the config at path.
func withShutdownTimeout(t *testing.T, path, d string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(string(b), "consumer:\n", "consumer:\n  shutdown_timeout: "+d+"\n", 1)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A bounded job run again under the same application (more records put
// since its last run, same config) reads what came since and only that: the
// idle marks the first run left in the lease table do not make the second
// one done before it read anything.
func TestBoundedRunAgainReadsWhatCameSince(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	cfg := e.boundedConfig("trim_horizon", "3s")
	data, keys, _ := orders(0, 100, false)
	e.put(data, keys)
	w1 := e.start(cfg, "w1")
	if err := w1.waitExit(120 * time.Second); err != nil {
		t.Fatalf("first run: exit %v, want 0", err)
	}
	if m := missing(idsOf(e.rows()), 0, 100, nil); len(m) > 0 {
		t.Fatalf("first run exited with %d of 100 records not rows", len(m))
	}

	// More than a batch per shard (max_records 200): the run must read on
	// past its first batches.
	const more = 1000
	data, keys, _ = orders(100, more, false)
	e.put(data, keys)
	w2 := e.start(cfg, "w2")
	err := w2.waitExit(120 * time.Second)
	got := more - len(missing(idsOf(e.rows()), 100, more, nil))
	if err != nil || got != more {
		t.Errorf("second run of the bounded job: exit %v, read %d of the %d records put since the first run; want exit 0 and all", err, got, more)
	}
	if n := w2.summaryRows(); n != more {
		t.Errorf("second run's summary says %d rows, want %d (what came since the first run)", n, more)
	}
	if lost, dups := report(t, e.rows(), 100+more); len(lost) > 0 || dups > 0 {
		t.Errorf("two bounded runs: %d lost, %d read twice; want 0 and 0", len(lost), dups)
	}
}

// A bounded run never says "done" and exits 0 while a batch is not durable:
// records that come as the shard is about to count as idle, and whose
// delivery then waits for a sink that is down, keep the run going until
// they are rows.
func TestBoundedRunNeverFinishesWithABatchInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	cfg := e.boundedConfig("trim_horizon", "15s")
	withShutdownTimeout(t, cfg, "2s")
	data, keys, _ := orders(0, 50, false)
	e.put(data, keys)
	w := e.start(cfg, "w1")
	shard := "shardId-000000000000"
	waitFor(t, 60*time.Second, "50 rows and the shard marked idle", func() bool {
		return len(missing(idsOf(e.rows()), 0, 50, nil)) == 0 && !e.checkpoints()[shard].IdleSince.IsZero()
	})

	restore := e.breakRowSink()
	data, keys, _ = orders(50, 50, false)
	e.put(data, keys)
	// The sink stays down until the worker exits or the shard is no longer
	// marked idle (it has records in flight).
	waitFor(t, 90*time.Second, "the worker to exit, or the shard's idle mark to go", func() bool {
		select {
		case <-w.exited:
			return true
		default:
		}
		b, _ := os.ReadFile(w.log)
		return strings.Contains(string(b), "sink write failed; retrying") && e.checkpoints()[shard].IdleSince.IsZero()
	})
	select {
	case <-w.exited:
		lost := missing(idsOf(readLines(t, e.rowsDir()+".away", func(*rowLine, string) {})), 0, 100, nil)
		t.Fatalf("bounded run exited (%v, summary rows %d) during the sink outage with %d of 100 records neither row nor dead letter", w.err, w.summaryRows(), len(lost))
	default:
	}
	restore()
	if err := w.waitExit(120 * time.Second); err != nil {
		t.Fatalf("bounded run after the outage: exit %v, want 0", err)
	}
	if lost := missing(idsOf(e.rows()), 0, 100, nil); len(lost) > 0 {
		t.Errorf("bounded run exited 0 with %d of 100 records not rows", len(lost))
	}
	if n := w.summaryRows(); n != 100 {
		t.Errorf("summary says %d rows, want 100", n)
	}
}

// `reset --to latest` reads, at the next start, every record put after the
// reset, including those put before any worker started again.
func TestResetToLatestReadsWhatComesAfterTheReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	cfg := e.config("trim_horizon")
	data, keys, _ := orders(0, 100, false)
	last := e.put(data, keys)
	w1 := e.start(cfg, "w1")
	e.waitCheckpointed(last, 90*time.Second)
	w1.stop(30 * time.Second)
	time.Sleep(1100 * time.Millisecond) // arrival timestamps have 1 s resolution on some emulators

	out, errOut, code := e.cli("reset", "--config", cfg, "--to", "latest", "--yes")
	if code != 0 || !strings.Contains(out, "2 shards rewound") {
		t.Fatalf("reset --to latest: exit %d, %s%s", code, out, errOut)
	}
	if err := os.Rename(e.rowsDir(), e.rowsDir()+".before-reset"); err != nil {
		t.Fatal(err)
	}
	data, keys, _ = orders(100, 100, false) // after the reset, before any worker runs
	last = e.put(data, keys)
	w2 := e.start(cfg, "w2")
	for deadline := time.Now().Add(90 * time.Second); !e.checkpointedAt(last); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Logf("reset --to latest: %d of the 100 records put after the reset (before the next start) not read in 90 s", len(missing(idsOf(e.rows()), 100, 100, nil)))
			break
		}
	}
	w2.stop(30 * time.Second)
	ids := idsOf(e.rows())
	if m := missing(ids, 100, 100, nil); len(m) > 0 {
		t.Errorf("reset --to latest: %d of the 100 records put after the reset (before the next start) were skipped", len(m))
	}
	for id := range ids {
		if id < 100 {
			t.Fatalf("row %d was put before the reset --to latest; it must not be read again", id)
		}
	}
}

// trimProxy stands in front of kinesis-mock and leaves shards out of
// ListShards answers, as Kinesis does once a closed shard's records are past
// the retention (the emulator keeps them listed, and its retention is 24 h
// at least).
func trimProxy(t *testing.T, target string, trimmed ...string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if efoproxy.Operation(resp.Request) != "ListShards" || resp.StatusCode != http.StatusOK {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		var body map[string]json.RawMessage
		if err := json.Unmarshal(b, &body); err != nil {
			return fmt.Errorf("trimproxy: ListShards answer: %w", err)
		}
		var shards []map[string]json.RawMessage
		if err := json.Unmarshal(body["Shards"], &shards); err != nil {
			return fmt.Errorf("trimproxy: ListShards shards: %w", err)
		}
		shards = slices.DeleteFunc(shards, func(s map[string]json.RawMessage) bool {
			var id string
			_ = json.Unmarshal(s["ShardId"], &id)
			return slices.Contains(trimmed, id)
		})
		body["Shards"], _ = json.Marshal(shards)
		b, _ = json.Marshal(body)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

// cliVia runs a kinesis-ingest command with Kinesis at kinesisURL.
func (e *env) cliVia(kinesisURL string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(),
		"WORKER_ID=ops",
		"AWS_ENDPOINT_URL_KINESIS="+kinesisURL,
		"AWS_ENDPOINT_URL_DYNAMODB="+e.ddb.Endpoint,
		"AWS_ACCESS_KEY_ID="+testaws.Account,
		"AWS_SECRET_ACCESS_KEY=secret-must-not-leak",
		"AWS_REGION=us-east-1",
	)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), exitCode(err)
}

// A full reset of a resharded stream whose split parent Kinesis no longer
// lists (trimmed) leaves that parent finished: the next start reads the
// children again from the reset position without calling the parent's
// records lost to retention.
func TestResetLeavesShardsKinesisNoLongerLists(t *testing.T) {
	t.Parallel()
	skipIfExternal(t, "it puts a proxy in front of the emulator it starts")
	e := newEnv(t, 1)
	cfg := e.config("trim_horizon")
	parentID, children := e.splitBetweenPuts()
	if len(children) != 2 || children[parentID] != "" {
		t.Fatalf("records after the split landed on %v, want both children", children)
	}
	w1 := e.start(cfg, "w1")
	waitFor(t, 90*time.Second, "all 200 rows, the parent finished and the children checkpointed", func() bool {
		return len(missing(idsOf(e.rows()), 0, 200, nil)) == 0 && e.checkpoints()[parentID].Checkpoint == "SHARD_END" && e.checkpointedAt(children)
	})
	w1.stop(30 * time.Second)

	trimmed := trimProxy(t, e.kin.Endpoint, parentID)
	out, errOut, code := e.cliVia(trimmed, "reset", "--config", cfg, "--to", "trim_horizon", "--yes")
	if code != 0 || strings.Contains(out, parentID+" (finished)") || !strings.Contains(out, parentID+" (gone): left as it is") || !strings.Contains(out, "2 shards rewound") {
		t.Errorf("reset of a stream whose parent %s is trimmed: exit %d; want the 2 children rewound and the parent left alone:\n%s%s", parentID, code, out, errOut)
	}
	if cp := e.checkpoints()[parentID].Checkpoint; cp != "SHARD_END" {
		t.Errorf("after the reset the trimmed parent's checkpoint is %q, want SHARD_END kept", cp)
	}

	if err := os.Rename(e.rowsDir(), e.rowsDir()+".before-reset"); err != nil {
		t.Fatal(err)
	}
	w2 := e.startArgs(cfg, "w2", nil, []string{"AWS_ENDPOINT_URL_KINESIS=" + trimmed})
	addr := w2.metricsAddr()
	for deadline := time.Now().Add(90 * time.Second); len(missing(idsOf(e.rows()), 100, 100, nil)) > 0 || !e.checkpointedAt(children); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("after the reset, %d of the children's 100 records not read again in 90 s", len(missing(idsOf(e.rows()), 100, 100, nil)))
			break
		}
	}
	expired := counter(scrape(t, addr), "kinesis_ingest_shards_expired_unfinished_total")
	w2.stop(30 * time.Second)
	b, _ := os.ReadFile(w2.log)
	if expired != 0 || strings.Contains(string(b), "expired before it was read to its end") {
		t.Errorf("after a reset the next start called the trimmed parent lost to retention: shards_expired_unfinished_total %v, log says so: %v", expired, strings.Contains(string(b), "expired before it was read to its end"))
	}
}

// A child whose parent Kinesis no longer lists while the parent's row never
// reached SHARD_END (the worker was down longer than the stream's retention:
// the parent's records past its checkpoint are gone) is read all the same:
// every record of the children becomes a row, the loss is logged at Error
// and counted once, and the worker stops cleanly on SIGTERM.
func TestChildOfAParentLostToRetentionIsRead(t *testing.T) {
	t.Parallel()
	skipIfExternal(t, "it puts a proxy in front of the emulator it starts")
	e := newEnv(t, 1)
	cfg := e.config("trim_horizon")
	data, keys, _ := keyedOrders(0, 50)
	readTo := e.put(data, keys)
	data, keys, _ = keyedOrders(50, 50)
	e.put(data, keys)
	parent := e.openShards()[0]
	parentID := aws.ToString(parent.ShardId)
	mid := halfway(*parent.HashKeyRange.StartingHashKey, *parent.HashKeyRange.EndingHashKey)
	if _, err := e.kc.SplitShard(t.Context(), &kinesis.SplitShardInput{StreamName: aws.String(e.stream), ShardToSplit: parent.ShardId, NewStartingHashKey: aws.String(mid)}); err != nil {
		t.Fatalf("split shard: %v", err)
	}
	e.waitActive()
	data, keys, _ = keyedOrders(100, 100)
	children := e.put(data, keys)
	if len(children) != 2 || children[parentID] != "" {
		t.Fatalf("records after the split landed on %v, want both children", children)
	}
	// The parent's row as an earlier run left it: read to its 50th record,
	// not finished.
	if err := e.leaseTable(e.table).EnsureTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := testaws.Dynamo(e.ddb.Endpoint).PutItem(t.Context(), &dynamodb.PutItemInput{
		TableName: aws.String(e.table),
		Item: map[string]ddbtypes.AttributeValue{
			"ShardID":    &ddbtypes.AttributeValueMemberS{Value: parentID},
			"Checkpoint": &ddbtypes.AttributeValueMemberS{Value: readTo[parentID]},
		},
	}); err != nil {
		t.Fatalf("write the parent's unfinished row: %v", err)
	}

	trimmed := trimProxy(t, e.kin.Endpoint, parentID)
	w := e.startArgs(cfg, "w1", nil, []string{"AWS_ENDPOINT_URL_KINESIS=" + trimmed})
	addr := w.metricsAddr()
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		lost := missing(idsOf(e.rows()), 100, 100, nil)
		if len(lost) == 0 && e.checkpointedAt(children) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("child shards of a parent lost to retention: %d of their 100 records not read in 90 s, e.g. %v", len(lost), lost[:min(5, len(lost))])
			break
		}
	}
	expired := counter(scrape(t, addr), "kinesis_ingest_shards_expired_unfinished_total")
	w.stop(30 * time.Second)
	if expired != 1 {
		t.Errorf("kinesis_ingest_shards_expired_unfinished_total = %v, want 1 (the parent %s lost to retention)", expired, parentID)
	}
	b, _ := os.ReadFile(w.log)
	reported := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "level=ERROR") && strings.Contains(line, "expired before it was read to its end") && strings.Contains(line, "shard="+parentID) {
			reported = true
		}
	}
	if !reported {
		t.Errorf("the loss of parent %s to retention was not logged at Error", parentID)
	}
}

// An enhanced fan-out event without ContinuationSequenceNumber on an open
// shard (no child shards) is not the shard's end: the shard is not marked
// finished and what is put afterwards is read.
func TestEnhancedFanOutEventWithoutContinuationIsNotTheShardEnd(t *testing.T) {
	t.Parallel()
	skipIfExternal(t, "it puts the initial-response proxy in front of the emulator it starts")
	e := newEnv(t, 1)
	p := efoproxy.New(t, e.kin.Endpoint)
	cfg := e.efoConfig("trim_horizon", "orders-efo")
	w := e.startEFO(cfg, "w1", p)
	data, keys, _ := orders(0, 50, false)
	e.waitCheckpointed(e.put(data, keys), 90*time.Second)

	p.DropContinuation(1)
	data, keys, _ = orders(50, 50, false)
	e.put(data, keys)
	waitFor(t, 60*time.Second, "rows 50..99", func() bool { return len(missing(idsOf(e.rows()), 50, 50, nil)) == 0 })
	data, keys, _ = orders(100, 50, false)
	last := e.put(data, keys)
	shard := "shardId-000000000000"
	waitFor(t, 60*time.Second, "the records put after the event read, or the shard finished", func() bool {
		return e.checkpoints()[shard].Checkpoint == "SHARD_END" || e.checkpointedAt(last)
	})
	if cp := e.checkpoints()[shard].Checkpoint; cp == "SHARD_END" {
		lost := missing(idsOf(e.rows()), 100, 50, nil)
		t.Fatalf("an event without ContinuationSequenceNumber on an open shard wrote SHARD_END: %d of the 50 records put afterwards are never read", len(lost))
	}
	w.stop(60 * time.Second)
	if lost, dups := report(t, e.rows(), 150); len(lost) > 0 || dups > 0 {
		t.Errorf("%d lost, %d read twice; want 0 and 0", len(lost), dups)
	}
}

// shardsOf maps each id of rows to the shard it was read from.
func shardsOf(rows []rowLine) map[int64]string {
	m := map[int64]string{}
	for _, r := range rows {
		m[r.ID] = r.Shard
	}
	return m
}

// `reset --shard` rewinds that shard alone; a full `reset --to trim_horizon`
// of a resharded stream rewinds the finished split parent Kinesis still
// lists, so the next start reads every record once more, each parent's
// before its children's.
func TestResetOneShardThenAFinishedParent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	cfg := e.config("trim_horizon")
	parentID, children := e.splitBetweenPuts()
	if len(children) != 2 {
		t.Fatalf("records after the split landed on %v, want both children", children)
	}
	w1 := e.start(cfg, "w1")
	waitFor(t, 90*time.Second, "all 200 rows, the parent finished and the children checkpointed", func() bool {
		return len(missing(idsOf(e.rows()), 0, 200, nil)) == 0 && e.checkpoints()[parentID].Checkpoint == "SHARD_END" && e.checkpointedAt(children)
	})
	w1.stop(30 * time.Second)
	shardOf := shardsOf(e.rows())
	var child string
	for c := range children {
		child = max(child, c)
	}

	before := e.checkpoints()
	out, errOut, code := e.cli("reset", "--config", cfg, "--to", "trim_horizon", "--shard", child, "--yes")
	if code != 0 || !strings.Contains(out, "1 shards rewound") {
		t.Fatalf("reset --shard %s: exit %d, %s%s", child, code, out, errOut)
	}
	for id, l := range e.checkpoints() {
		if id != child && l.Checkpoint != before[id].Checkpoint {
			t.Errorf("reset --shard %s moved shard %s: %q -> %q", child, id, before[id].Checkpoint, l.Checkpoint)
		}
	}
	if err := os.Rename(e.rowsDir(), e.rowsDir()+".1"); err != nil {
		t.Fatal(err)
	}
	w2 := e.start(cfg, "w2")
	e.waitCheckpointed(children, 90*time.Second)
	w2.stop(30 * time.Second)
	var want, got []int64
	for id, s := range shardOf {
		if s == child {
			want = append(want, id)
		}
	}
	for _, r := range e.rows() {
		got = append(got, r.ID)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("after reset --shard %s the next start read %d rows %v, want exactly that shard's %d records %v", child, len(got), got, len(want), want)
	}

	out, errOut, code = e.cli("reset", "--config", cfg, "--to", "trim_horizon", "--yes")
	if code != 0 || !strings.Contains(out, "3 shards rewound") || !strings.Contains(out, parentID+" (finished): SHARD_END -> TRIM_HORIZON") {
		t.Fatalf("full reset: exit %d; want all 3 shards, the finished parent included, rewound:\n%s%s", code, out, errOut)
	}
	if err := os.Rename(e.rowsDir(), e.rowsDir()+".2"); err != nil {
		t.Fatal(err)
	}
	w3 := e.start(cfg, "w3")
	waitFor(t, 90*time.Second, "the parent finished again and the children checkpointed", func() bool {
		return e.checkpoints()[parentID].Checkpoint == "SHARD_END" && e.checkpointedAt(children)
	})
	w3.stop(30 * time.Second)
	rows := e.rows()
	if lost, dups := report(t, rows, 200); len(lost) > 0 || dups > 0 {
		t.Errorf("after a full reset the next start lost %d and read %d twice; want every record once", len(lost), dups)
	}
	lastParent, firstChild := -1, len(rows)
	for i, r := range rows {
		if r.Shard == parentID {
			lastParent = i
		} else {
			firstChild = min(firstChild, i)
		}
	}
	if lastParent > firstChild {
		t.Errorf("after a full reset a child was read (row %d) before its parent was finished (its last row %d)", firstChild, lastParent)
	}
}

// holdProxy forwards to a DynamoDB endpoint and holds the first UpdateItem
// that writes a start position (reset's first rewind) until release is
// closed; held is closed once it is held.
func holdProxy(t *testing.T, target string) (proxyURL string, held, release chan struct{}) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	held, release = make(chan struct{}), make(chan struct{})
	var first sync.Once
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".UpdateItem") {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			if bytes.Contains(b, []byte(`"StartAt"`)) {
				first.Do(func() {
					close(held)
					<-release
				})
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, held, release
}

// A worker that takes the leases while a reset runs (after the reset found
// no live lease, before it rewrote the shards) keeps them and reads on from
// the checkpoints; the reset says which shards it did not rewind and exits 1.
func TestResetRacingAWorkerTakingALease(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	cfg := e.config("trim_horizon")
	data, keys, _ := orders(0, 100, false)
	last := e.put(data, keys)
	w1 := e.start(cfg, "w1")
	e.waitCheckpointed(last, 90*time.Second)
	w1.stop(30 * time.Second)
	before := e.checkpoints()

	ddb, held, release := holdProxy(t, e.ddb.Endpoint)
	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	go func() {
		cmd := exec.Command(binary, "reset", "--config", cfg, "--to", "trim_horizon", "--yes")
		cmd.Env = append(os.Environ(), "WORKER_ID=ops", "AWS_ENDPOINT_URL_KINESIS="+e.kin.Endpoint, "AWS_ENDPOINT_URL_DYNAMODB="+ddb,
			"AWS_ACCESS_KEY_ID="+testaws.Account, "AWS_SECRET_ACCESS_KEY=secret-must-not-leak", "AWS_REGION=us-east-1")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		done <- result{out.String(), errb.String(), exitCode(err)}
	}()
	select {
	case <-held:
	case r := <-done:
		t.Fatalf("reset ended before its first rewind: exit %d, %s%s", r.code, r.out, r.errOut)
	case <-time.After(60 * time.Second):
		t.Fatal("reset never came to its first rewind")
	}
	w2 := e.start(cfg, "w2")
	waitFor(t, 60*time.Second, "w2 holding both shards mid-reset", func() bool { return e.owners()["w2"] == 2 })
	close(release)
	r := <-done
	if r.code != 1 || !strings.Contains(r.errOut, "2 of 2 shards not rewound") || !strings.Contains(r.errOut, `worker "w2" holds its lease`) {
		t.Errorf("reset racing w2: exit %d; want 1, saying both shards were not rewound because w2 holds them:\n%s%s", r.code, r.out, r.errOut)
	}
	data, keys, _ = orders(100, 20, false)
	e.waitCheckpointed(e.put(data, keys), 60*time.Second)
	w2.stop(30 * time.Second)
	for id, l := range e.checkpoints() {
		if l.StartAt != "" {
			t.Errorf("shard %s held by w2 was rewound anyway (start %s, checkpoint before %s)", id, l.StartAt, before[id].Checkpoint)
		}
	}
	if lost, dups := report(t, e.rows(), 120); len(lost) > 0 || dups > 0 {
		t.Errorf("a reset racing a worker: %d lost, %d read twice; want the worker to read on from its checkpoints", len(lost), dups)
	}
}

// splitBetweenPuts puts ids 0..99 on the env's only shard, splits it, and
// puts ids 100..199 after the split; it returns the parent's id and where the
// second put landed (shard id by record).
func (e *env) splitBetweenPuts() (parentID string, children map[string]string) {
	e.t.Helper()
	data, keys, _ := keyedOrders(0, 100)
	e.put(data, keys)
	parent := e.openShards()[0]
	mid := halfway(*parent.HashKeyRange.StartingHashKey, *parent.HashKeyRange.EndingHashKey)
	if _, err := e.kc.SplitShard(e.t.Context(), &kinesis.SplitShardInput{StreamName: aws.String(e.stream), ShardToSplit: parent.ShardId, NewStartingHashKey: aws.String(mid)}); err != nil {
		e.t.Fatalf("split shard: %v", err)
	}
	e.waitActive()
	data, keys, _ = keyedOrders(100, 100)
	return aws.ToString(parent.ShardId), e.put(data, keys)
}
