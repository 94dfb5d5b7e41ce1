package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/faultproxy"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// The limits of issue 31 on the emulators: max_record_age, a sink's
// max_retry_duration, the read-rate caps, and throttling made visible.

// output is where one worker of a test writes: its rows and dead letters.
type output struct {
	t   *testing.T
	dir string
}

func (o output) rows() []rowLine {
	return readLines(o.t, filepath.Join(o.dir, "rows"), func(r *rowLine, f string) { r.File = f })
}

func (o output) letters() []letterLine {
	return readLines(o.t, filepath.Join(o.dir, "dead-letters"), func(l *letterLine, f string) { l.File = f })
}

// letterIDs maps the id in each dead letter's payload to its reasons.
func (o output) letterIDs() map[int64][]string {
	out := map[int64][]string{}
	for _, l := range o.letters() {
		var rec struct{ ID int64 }
		if err := json.Unmarshal(l.Data, &rec); err != nil {
			o.t.Fatalf("dead letter of %s/%s holds no order: %q", l.ShardID, l.SequenceNumber, l.Data)
		}
		out[rec.ID] = append(out[rec.ID], l.Reason)
	}
	return out
}

// limitsConfig writes the harness's config for stream arn, lease table app
// and output under dir, with lines added to the source, the sink and the
// consumer sections.
func (e *env) limitsConfig(name, arn, app, dir string, source, sink, consumer []string) (path string, out output) {
	e.t.Helper()
	out = output{t: e.t, dir: dir}
	body := fmt.Sprintf(configTemplate, arn, "trim_horizon", filepath.Join(dir, "rows"), filepath.Join(dir, "dead-letters"), app)
	add := func(after, indent string, lines []string) {
		if !strings.Contains(body, after) {
			e.t.Fatalf("config template has no %q", after)
		}
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(indent + l + "\n")
		}
		body = strings.Replace(body, after, after+b.String(), 1)
	}
	add("      format: json\n", "    ", source)
	add("  - name: orders_file\n", "    ", sink)
	var more []string
	for _, l := range consumer {
		// A key the template sets already is replaced.
		k, _, _ := strings.Cut(l, ":")
		if i := strings.Index(body, "\n  "+k+":"); i >= 0 {
			end := i + 1 + strings.IndexByte(body[i+1:], '\n')
			body = body[:i+1] + "  " + l + body[end:]
			continue
		}
		more = append(more, l)
	}
	add("consumer:\n", "  ", more)
	path = filepath.Join(e.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path, out
}

// TestMaxRecordAge puts 100 records into two streams, waits until they are
// older than max_record_age, and then starts a worker on each from
// trim_horizon: with expired: dead_letter every one of them is an expired
// dead letter, by id; with expired: skip none is a row or a dead letter and
// records_expired_total counts all 100. Records put once the workers run
// are rows in both.
func TestMaxRecordAge(t *testing.T) {
	t.Parallel()
	skipIfExternal(t, "it creates a second stream on the emulator")
	// Long enough that a record put while the worker runs is read well
	// within it on a loaded machine (it is read within a second or so).
	const maxAge = 10 * time.Second
	e := newEnv(t, 2)
	skipStream := "orders-skip"
	skipARN := envtest.CreateStream(t, e.kc, skipStream, 2)
	data, keys, _ := orders(0, 100, false)
	e.put(data, keys)
	if err := testaws.Put(t.Context(), e.kc, skipStream, data, keys); err != nil {
		t.Fatal(err)
	}
	// The condition is the records' age itself: nothing else to wait on.
	time.Sleep(maxAge + time.Second)

	dlCfg, dl := e.limitsConfig("dead-letter", e.arn, "orders-expired-dl", filepath.Join(e.dir, "dl"),
		[]string{"max_record_age: " + maxAge.String()}, nil, nil)
	skipCfg, skip := e.limitsConfig("skip", skipARN, "orders-expired-skip", filepath.Join(e.dir, "skip"),
		[]string{"max_record_age: " + maxAge.String(), "expired: skip"}, nil, nil)
	w1 := e.start(dlCfg, "w1")
	w2 := e.start(skipCfg, "w2")
	a1, a2 := w1.metricsAddr(), w2.metricsAddr()

	waitFor(t, 90*time.Second, "100 expired dead letters", func() bool { return len(dl.letters()) >= 100 })
	waitFor(t, 90*time.Second, "100 records skipped as expired", func() bool {
		return counter(scrape(t, a2), "kinesis_ingest_records_expired_total", `result="skip"`) >= 100
	})
	data, keys, _ = orders(100, 50, false)
	e.put(data, keys)
	if err := testaws.Put(t.Context(), e.kc, skipStream, data, keys); err != nil {
		t.Fatal(err)
	}
	for _, o := range []output{dl, skip} {
		waitFor(t, 60*time.Second, "the 50 records put while the worker runs as rows", func() bool {
			return len(missing(idsOf(o.rows()), 100, 50, nil)) == 0
		})
	}

	letters := dl.letterIDs()
	for id := range int64(100) {
		if r := letters[id]; !slices.Equal(r, []string{"expired"}) {
			t.Errorf("record %d (older than max_record_age): dead letters %v, want one expired", id, r)
		}
	}
	if len(letters) != 100 {
		t.Errorf("%d records dead-lettered, want the 100 old ones", len(letters))
	}
	for _, o := range []output{dl, skip} {
		ids := idsOf(o.rows())
		for id, n := range ids {
			if id < 100 || n != 1 {
				t.Errorf("%s: record %d written as %d rows; want the records put after the workers started, once each", o.dir, id, n)
			}
		}
	}
	if n := len(skip.letters()); n != 0 {
		t.Errorf("expired: skip made %d dead letters, want none", n)
	}
	m1, m2 := scrape(t, a1), scrape(t, a2)
	if got := counter(m1, "kinesis_ingest_records_expired_total", `result="dead_letter"`); got != 100 {
		t.Errorf("dead_letter worker: records_expired_total{result=dead_letter} = %v, want 100", got)
	}
	if got := counter(m1, "kinesis_ingest_dead_letters_total", `reason="expired"`); got != 100 {
		t.Errorf("dead_letters_total{reason=expired} = %v, want 100", got)
	}
	if got := counter(m2, "kinesis_ingest_records_expired_total"); got != 100 {
		t.Errorf("skip worker: records_expired_total = %v, want 100 (skipped)", got)
	}
	for _, w := range []*worker{w1, w2} {
		if b, _ := os.ReadFile(w.log); !strings.Contains(string(b), "level=ERROR msg=\"records older than max_record_age") {
			t.Errorf("worker %s logged no Error for its expired records", w.id)
		}
	}
}

// TestMaxRetryDuration: with a file sink whose max_retry_duration is 10s,
// an outage shorter than that loses and dead-letters nothing; one longer
// makes every record written meanwhile a sink_failed dead letter (by id),
// the shard's checkpoint moves past them, and records put once the sink
// is back are rows.
func TestMaxRetryDuration(t *testing.T) {
	t.Parallel()
	const budget = 10 * time.Second
	e := newEnv(t, 2)
	cfg, _ := e.limitsConfig("budget", e.arn, e.table, e.dir, nil, []string{"max_retry_duration: " + budget.String()}, nil)
	data, keys, _ := orders(0, 50, false)
	e.put(data, keys)
	w := e.start(cfg, "w1")
	addr := w.metricsAddr()
	waitFor(t, 60*time.Second, "the first 50 rows", func() bool { return len(missing(idsOf(e.rows()), 0, 50, nil)) == 0 })

	// A short outage: the sink comes back as soon as the worker retries.
	restore := e.breakRowSink()
	data, keys, _ = orders(50, 50, false)
	e.put(data, keys)
	retries := func() int {
		b, _ := os.ReadFile(w.log)
		return strings.Count(string(b), "sink write failed; retrying")
	}
	waitFor(t, 30*time.Second, "the worker retrying the sink", func() bool { return retries() > 0 })
	restore()
	waitFor(t, 60*time.Second, "rows 50..99 after the short outage", func() bool { return len(missing(idsOf(e.rows()), 50, 50, nil)) == 0 })
	if n := len(e.letters()); n != 0 {
		t.Fatalf("an outage shorter than max_retry_duration made %d dead letters", n)
	}

	// An outage past the budget.
	restore = e.breakRowSink()
	data, keys, _ = orders(100, 50, false)
	last := e.put(data, keys)
	waitFor(t, 90*time.Second, "records 100..149 as sink_failed dead letters", func() bool { return len(e.letters()) >= 50 })
	e.waitCheckpointed(last, 60*time.Second)
	restore()
	data, keys, _ = orders(150, 50, false)
	e.put(data, keys)
	waitFor(t, 60*time.Second, "rows 150..199 once the sink is back", func() bool { return len(missing(idsOf(e.rows()), 150, 50, nil)) == 0 })

	letters := output{t: t, dir: e.dir}.letterIDs()
	for id := range int64(50) {
		if r := letters[100+id]; !slices.Equal(r, []string{"sink_failed"}) {
			t.Errorf("record %d (written during the long outage): dead letters %v, want one sink_failed", 100+id, r)
		}
	}
	if len(letters) != 50 {
		t.Errorf("%d records dead-lettered, want the 50 of the long outage", len(letters))
	}
	rows := idsOf(e.rows())
	for id := range int64(200) {
		if in := id >= 100 && id < 150; rows[id] == 0 && !in {
			t.Errorf("record %d lost: neither a row nor a dead letter", id)
		}
	}
	for _, l := range e.letters() {
		if !strings.Contains(l.Error, "max_retry_duration") || l.ShardID == "" || l.SequenceNumber == "" {
			t.Errorf("sink_failed letter %s/%s: error %q; want the budget, the sink's error, the shard and sequence number", l.ShardID, l.SequenceNumber, l.Error)
		}
	}
	m := scrape(t, addr)
	if got := counter(m, "kinesis_ingest_sink_retry_budget_spent_total", `sink="orders_file"`); got < 1 {
		t.Errorf("sink_retry_budget_spent_total = %v, want at least one batch", got)
	}
	if got := counter(m, "kinesis_ingest_dead_letters_total", `reason="sink_failed"`); got != 50 {
		t.Errorf("dead_letters_total{reason=sink_failed} = %v, want 50", got)
	}
	if b, _ := os.ReadFile(w.log); !strings.Contains(string(b), "level=ERROR msg=\"sink kept failing past max_retry_duration") {
		t.Error("the worker logged no Error when it gave the sink up")
	}
}

// shardIDs lists the stream's shards.
func (e *env) shardIDs() []string {
	e.t.Helper()
	out, err := e.kc.ListShards(e.t.Context(), &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, s := range out.Shards {
		ids = append(ids, aws.ToString(s.ShardId))
	}
	return ids
}

// TestReadRateCap reads a 2-shard stream through a proxy that counts the
// GetRecords calls of each shard, with min_read_interval 500ms (2 reads a
// second per shard) and max_reads_per_second 3 for the worker. Counts, not
// timing: between two looks at the counts, a shard's reads after its first
// start at least 500ms apart, and the worker's take one slot each of 3 a
// second, so the calls seen are bounded by the time between the looks
// (uncapped, the library reads up to 5 a second per shard). Every record
// is a row.
func TestReadRateCap(t *testing.T) {
	t.Parallel()
	skipIfExternal(t, "it puts a proxy in front of the emulators it starts")
	const gap, perSecond = 500 * time.Millisecond, 3
	e := newEnv(t, 2)
	kp := faultproxy.New(t, e.kin.Endpoint)
	cfg, _ := e.limitsConfig("capped", e.arn, e.table, e.dir, nil, nil,
		[]string{"min_read_interval: " + gap.String(), fmt.Sprintf("max_reads_per_second: %d", perSecond), "max_records: 10"})
	data, keys, _ := orders(0, 200, false)
	e.put(data, keys)
	e.startArgs(cfg, "w1", nil, []string{"AWS_ENDPOINT_URL_KINESIS=" + kp.URL})
	shards := e.shardIDs()
	calls := func() (per []int, total int) {
		for _, s := range shards {
			n := kp.CallsOn("GetRecords", s)
			per, total = append(per, n), total+n
		}
		return per, total
	}
	waitFor(t, 60*time.Second, "both shards read", func() bool {
		per, _ := calls()
		return per[0] > 0 && per[1] > 0
	})
	c1, t1 := calls()
	start := time.Now()
	waitFor(t, 90*time.Second, "all 200 rows", func() bool { return len(missing(idsOf(e.rows()), 0, 200, nil)) == 0 })
	waitFor(t, 60*time.Second, "15 more reads", func() bool { _, n := calls(); return n >= t1+15 })
	c2, t2 := calls()
	elapsed := time.Since(start)
	for i, s := range shards {
		// The first read counted may have taken its slot before the first
		// look; every later one took it after.
		if n, bound := c2[i]-c1[i], 2+int(elapsed/gap); n > bound {
			t.Errorf("shard %s: %d GetRecords in %s, more than min_read_interval %s allows (%d)", s, n, elapsed.Round(time.Millisecond), gap, bound)
		}
	}
	if n, bound := t2-t1, len(shards)+1+int(elapsed.Seconds()*perSecond); n > bound {
		t.Errorf("the worker made %d GetRecords in %s, more than max_reads_per_second %d allows (%d)", n, elapsed.Round(time.Millisecond), perSecond, bound)
	}
	t.Logf("GetRecords per shard %v in %s (%.1f/s for the worker; caps %s per shard, %d/s per worker)",
		[]int{c2[0] - c1[0], c2[1] - c1[1]}, elapsed.Round(time.Millisecond), float64(t2-t1)/elapsed.Seconds(), gap, perSecond)
	if lost, dups := report(t, e.rows(), 200); len(lost) > 0 || dups > 0 {
		t.Errorf("the capped worker lost %d records and wrote %d twice", len(lost), dups)
	}
}

// TestThrottlingIsCountedPerShard puts a proxy in front of the emulators
// that throttles one shard only: every third GetRecords
// (ProvisionedThroughputExceededException) and every second
// GetShardIterator (LimitExceededException) of it, and every fifth lease
// table update. Once the proxy stops, the worker's
// kinesis_ingest_kinesis_throttled_total shows exactly what it throttled,
// by API and shard, the other shard none, lease_table_throttled_total the
// updates, and every record is a row.
func TestThrottlingIsCountedPerShard(t *testing.T) {
	t.Parallel()
	skipIfExternal(t, "it puts a proxy in front of the emulators it starts")
	e := newEnv(t, 2)
	shards := e.shardIDs()
	hot, cold := shards[0], shards[1]
	kp := faultproxy.New(t, e.kin.Endpoint,
		faultproxy.Rule{Operation: "GetRecords", Every: 3, Code: "ProvisionedThroughputExceededException", Shard: hot},
		faultproxy.Rule{Operation: "GetShardIterator", Every: 2, Code: "LimitExceededException", Shard: hot},
	)
	dp := faultproxy.New(t, e.ddb.Endpoint, faultproxy.Rule{Operation: "UpdateItem", Every: 5, Code: "ProvisionedThroughputExceededException"})
	cfg, _ := e.limitsConfig("throttled", e.arn, e.table, e.dir, nil, nil, []string{"max_records: 20"})
	data, keys, _ := orders(0, 300, false)
	e.put(data, keys)
	w := e.startArgs(cfg, "w1", nil, []string{"AWS_ENDPOINT_URL_KINESIS=" + kp.URL, "AWS_ENDPOINT_URL_DYNAMODB=" + dp.URL})
	addr := w.metricsAddr()
	waitFor(t, 120*time.Second, "all 300 rows through the throttling", func() bool { return len(missing(idsOf(e.rows()), 0, 300, nil)) == 0 })
	kp.SetRules()
	dp.SetRules()
	getRecords, iterators, updates := kp.ThrottledOn("GetRecords", hot), kp.ThrottledOn("GetShardIterator", hot), dp.Throttled()["UpdateItem"]
	if getRecords == 0 || iterators == 0 || updates == 0 {
		t.Fatalf("the proxies throttled %d GetRecords, %d GetShardIterator, %d UpdateItem: the test proves nothing", getRecords, iterators, updates)
	}
	want := map[string]float64{
		`op="GetRecords",shard="` + hot + `"`:       float64(getRecords),
		`op="GetShardIterator",shard="` + hot + `"`: float64(iterators),
	}
	var m string
	waitFor(t, 30*time.Second, "the metrics to show every throttled call", func() bool {
		m = scrape(t, addr)
		for labels, n := range want {
			if counter(m, "kinesis_ingest_kinesis_throttled_total", labels) != n {
				return false
			}
		}
		return counter(m, "kinesis_ingest_lease_table_throttled_total", `op="UpdateItem"`) == float64(updates)
	})
	if got := counter(m, "kinesis_ingest_kinesis_throttled_total", `shard="`+cold+`"`); got != 0 {
		t.Errorf("kinesis_throttled_total{shard=%s} = %v, but the proxy never throttled that shard", cold, got)
	}
	if lost, dups := report(t, e.rows(), 300); len(lost) > 0 {
		t.Errorf("throttling lost %d records (%d duplicates)", len(lost), dups)
	}
	t.Logf("throttled: GetRecords %d, GetShardIterator %d on %s; lease table UpdateItem %d", getRecords, iterators, hot, updates)
}
