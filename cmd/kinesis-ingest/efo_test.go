package main

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/efoproxy"
)

// efoConfig is the harness config with the source reading through enhanced
// fan-out as consumer name.
func (e *env) efoConfig(initPosition, name string) string {
	e.t.Helper()
	path := e.config(initPosition)
	b, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	body := strings.Replace(string(b), "      format: json\n", "      format: json\n      efo: {consumer_name: "+name+"}\n", 1)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// startEFO starts a worker whose Kinesis calls go through the proxy (the
// DynamoDB ones straight to dynalite).
func (e *env) startEFO(cfg, id string, p *efoproxy.Proxy) *worker {
	e.t.Helper()
	return e.startArgs(cfg, id, nil, []string{"AWS_ENDPOINT_URL_KINESIS=" + p.URL})
}

// twoEFOWorkers starts two enhanced fan-out workers on a 2-shard stream
// holding n records, through the initial-response proxy, and waits until they
// split the shards and every record is a row.
func twoEFOWorkers(t *testing.T, n int) (*env, *efoproxy.Proxy, string, *worker, *worker) {
	t.Helper()
	e := newEnv(t, 2)
	p := efoproxy.New(t, e.kin.Endpoint)
	cfg := e.efoConfig("trim_horizon", "orders-efo")
	data, keys, _ := orders(0, n, false)
	last := e.put(data, keys)
	w1 := e.startEFO(cfg, "w1", p)
	w2 := e.startEFO(cfg, "w2", p)
	e.waitBalanced(map[string]int{"w1": 1, "w2": 1}, 90*time.Second)
	waitFor(t, 60*time.Second, fmt.Sprintf("the first %d rows", n), func() bool { return len(missing(idsOf(e.rows()), 0, n, nil)) == 0 })
	// Rows are readable before the sink has fsynced them and checked that
	// their file is still in place; only the checkpoint says the batch is
	// done. A test that breaks the sink next must not break that check (the
	// batch would be written again, rightly, and its first copy come back
	// with the restored directory).
	e.waitCheckpointed(last, 60*time.Second)
	return e, p, cfg, w1, w2
}

// counter sums a counter's samples whose labels contain every one of labels
// (e.g. `reason="expired"`).
func counter(metrics, name string, labels ...string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? (\S+)$`)
	var sum float64
	for _, m := range re.FindAllStringSubmatch(metrics, -1) {
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(m[1], l)
		}
		if v, err := strconv.ParseFloat(m[2], 64); err == nil && ok {
			sum += v
		}
	}
	return sum
}

// Two workers read a 2-shard stream through enhanced fan-out; one is killed
// with SIGKILL while records flow and the other takes its shard over; a
// third, started after the survivor stops gracefully, resumes from the
// checkpoints. Every record is a row, and no GetRecords call is ever made.
func TestEnhancedFanOutSurvivesKillAndResumes(t *testing.T) {
	t.Parallel()
	skipIfExternal(t, "it puts the initial-response proxy in front of the emulator it starts")
	e, p, cfg, w1, w2 := twoEFOWorkers(t, 200)

	prod := e.produceFrom(100*time.Millisecond, 10, 200)
	time.Sleep(2 * time.Second)
	w1.kill()
	waitFor(t, 60*time.Second, "w1's shard taken over by w2", func() bool {
		o := e.owners()
		return o["w1"] == 0 && o["w2"] == 2
	})
	time.Sleep(2 * time.Second)
	n := prod.halt()
	waitFor(t, 90*time.Second, fmt.Sprintf("all %d rows", n), func() bool { return len(missing(idsOf(e.rows()), 0, n, nil)) == 0 })
	metrics := scrape(t, w2.metricsAddr())
	w2.stop(60 * time.Second)
	lost, dupsBefore := report(t, e.rows(), n)
	if len(lost) > 0 {
		t.Fatalf("enhanced fan-out lost %d records across a kill -9", len(lost))
	}

	// A restart resumes from the checkpoints: what was durable before the
	// graceful stop is not read again.
	data, keys, _ := orders(n, 50, false)
	last := e.put(data, keys)
	w3 := e.startEFO(cfg, "w3", p)
	waitFor(t, 90*time.Second, "the 50 rows put while no worker ran", func() bool { return len(missing(idsOf(e.rows()), 0, n+50, nil)) == 0 })
	// Counted once w3 checkpointed past them and exited: it writes nothing more.
	e.waitCheckpointed(last, 60*time.Second)
	w3.stop(60 * time.Second)
	_, dupsAfter := report(t, e.rows(), n+50)
	if dupsAfter != dupsBefore {
		t.Errorf("the restart re-read %d durable records; it must resume after the checkpoints", dupsAfter-dupsBefore)
	}

	if got := p.Calls("GetRecords"); got != 0 {
		t.Errorf("GetRecords calls = %d in enhanced fan-out mode, want 0", got)
	}
	if got := p.Calls("SubscribeToShard"); got < 3 {
		t.Errorf("SubscribeToShard calls = %d, want at least one per shard per owner", got)
	}
	if got := p.Calls("RegisterStreamConsumer"); got < 1 {
		t.Errorf("RegisterStreamConsumer calls = %d: the consumer was never registered", got)
	}
	if got := counter(metrics, "kinesis_ingest_efo_subscriptions_started_total"); got < 1 {
		t.Errorf("kinesis_ingest_efo_subscriptions_started_total = %v, want > 0", got)
	}
}

// Subscriptions that Kinesis ends early (as AWS does after 5 minutes) and a
// subscription refused with ResourceInUseException are resumed from where
// they were: nothing is lost and nothing is read twice.
func TestEnhancedFanOutResubscribes(t *testing.T) {
	t.Parallel()
	skipIfExternal(t, "it puts the initial-response proxy in front of the emulator it starts")
	e := newEnv(t, 2)
	p := efoproxy.New(t, e.kin.Endpoint)
	p.EndAfterEvents(4)
	p.FailNextSubscribe("ResourceInUseException")
	cfg := e.efoConfig("trim_horizon", "orders-efo")
	w := e.startEFO(cfg, "w1", p)
	prod := e.produceFrom(150*time.Millisecond, 5, 0)
	waitFor(t, 90*time.Second, "subscriptions ended early at least 4 times", func() bool {
		_, ended := p.Streams()
		return ended >= 4
	})
	n := prod.halt()
	// Ten more, whose checkpoints say every record before them is durable.
	data, keys, _ := orders(n, 10, false)
	last := e.put(data, keys)
	n += 10
	waitFor(t, 90*time.Second, fmt.Sprintf("all %d rows", n), func() bool { return len(missing(idsOf(e.rows()), 0, n, nil)) == 0 })
	e.waitCheckpointed(last, 60*time.Second)
	metrics := scrape(t, w.metricsAddr())
	// Counted once the worker exited: it writes nothing more.
	w.stop(60 * time.Second)
	lost, dups := report(t, e.rows(), n)
	if len(lost) > 0 || dups > 0 {
		t.Fatalf("resubscriptions lost %d records and read %d twice, want 0 and 0", len(lost), dups)
	}
	if got := counter(metrics, "kinesis_ingest_efo_subscriptions_ended_total", `reason="expired"`); got < 4 {
		t.Errorf("efo_subscriptions_ended_total{reason=expired} = %v, want >= 4", got)
	}
	if got := counter(metrics, "kinesis_ingest_efo_subscribe_retries_total", `code="ResourceInUseException"`); got != 1 {
		t.Errorf("efo_subscribe_retries_total{code=ResourceInUseException} = %v, want 1", got)
	}
	if got := counter(metrics, "kinesis_ingest_efo_resubscribe_delay_seconds_count"); got < 4 {
		t.Errorf("efo_resubscribe_delay_seconds_count = %v, want >= 4", got)
	}
	if got := p.Calls("GetRecords"); got != 0 {
		t.Errorf("GetRecords calls = %d in enhanced fan-out mode, want 0", got)
	}
}

// validate checks the enhanced fan-out consumer: a name not yet registered
// (the first worker registers it), one registered and ACTIVE, an ARN that
// names no consumer, and a stream at Kinesis's limit of 20 consumers.
func TestValidateEnhancedFanOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	const check = "source orders: enhanced fan-out consumer"
	r := e.validate(e.efoConfig("trim_horizon", "orders-efo"))
	if r.code != 0 {
		t.Fatalf("validate with an unregistered consumer name: exit %d\n%s", r.code, r.out)
	}
	wantLines(t, r, map[string][]string{"ok    " + check: {`"orders-efo"`, "not registered yet", "0 of 20"}})

	for i := range 20 {
		name := fmt.Sprintf("other-%02d", i)
		if _, err := e.kc.RegisterStreamConsumer(t.Context(), &kinesis.RegisterStreamConsumerInput{StreamARN: &e.arn, ConsumerName: &name}); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
	}
	r = e.validate(e.efoConfig("trim_horizon", "orders-efo"))
	if r.code != 1 {
		t.Fatalf("validate with the stream at its consumer limit: exit %d, want 1\n%s", r.code, r.out)
	}
	wantLines(t, r, map[string][]string{"FAIL  " + check + " [limit_exceeded]": {"20 consumers", "fix:"}})

	waitFor(t, 30*time.Second, "other-00 ACTIVE", func() bool {
		d, err := e.kc.DescribeStreamConsumer(t.Context(), &kinesis.DescribeStreamConsumerInput{StreamARN: &e.arn, ConsumerName: aws.String("other-00")})
		return err == nil && d.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive
	})
	r = e.validate(e.efoConfig("trim_horizon", "other-00"))
	if r.code != 0 {
		t.Fatalf("validate with a registered consumer: exit %d\n%s", r.code, r.out)
	}
	wantLines(t, r, map[string][]string{"ok    " + check: {`"other-00"`, "ACTIVE"}})

	cfg := e.efoConfig("trim_horizon", "x")
	b, _ := os.ReadFile(cfg)
	missingARN := e.arn + "/consumer/gone:1700000000"
	os.WriteFile(cfg, []byte(strings.Replace(string(b), "efo: {consumer_name: x}", "efo: {consumer_arn: \""+missingARN+"\"}", 1)), 0o644)
	r = e.validate(cfg)
	if r.code != 1 {
		t.Fatalf("validate with a consumer ARN that does not exist: exit %d, want 1\n%s", r.code, r.out)
	}
	wantLines(t, r, map[string][]string{"FAIL  " + check + " [not_found]": {missingARN, "register-stream-consumer"}})
}

// Under `latest` an enhanced fan-out consumer starts where the application
// first started, as a polling one does: records put before the first start
// are not read, and records put while no worker ran are, on shards that were
// never checkpointed.
func TestEnhancedFanOutLatestStartsAtTheFirstStart(t *testing.T) {
	t.Parallel()
	skipIfExternal(t, "it puts the initial-response proxy in front of the emulator it starts")
	e := newEnv(t, 2)
	p := efoproxy.New(t, e.kin.Endpoint)
	cfg := e.efoConfig("latest", "orders-efo")
	data, keys, _ := orders(1000, 40, false) // before the application exists
	e.put(data, keys)
	time.Sleep(1100 * time.Millisecond) // arrival timestamps have 1 s resolution on some emulators
	w1 := e.startEFO(cfg, "w1", p)
	e.waitBalanced(map[string]int{"w1": 2}, 90*time.Second)
	waitFor(t, 60*time.Second, "both shards subscribed", func() bool { served, _ := p.Streams(); return served >= 2 })
	w1.stop(60 * time.Second)

	data, keys, _ = orders(0, 100, false) // while no worker runs
	last := e.put(data, keys)
	w2 := e.startEFO(cfg, "w2", p)
	waitFor(t, 90*time.Second, "the 100 rows put while no worker ran", func() bool { return len(missing(idsOf(e.rows()), 0, 100, nil)) == 0 })
	e.waitCheckpointed(last, 60*time.Second)
	w2.stop(60 * time.Second)
	for id := range idsOf(e.rows()) {
		if id >= 1000 {
			t.Fatalf("row %d was put before the application's first start; latest must not read it", id)
		}
	}
	if lost, _ := report(t, e.rows(), 100); len(lost) > 0 {
		t.Fatalf("lost %d records put while no worker ran", len(lost))
	}
}

// A delivery longer than the lease duration (the sink is down for three
// lease durations) keeps its lease in enhanced fan-out mode, although the
// KCL's fan-out consumer renews only between events: no shard changes hands
// during the outage and nothing is read twice after it.
func TestEnhancedFanOutSlowDeliveryKeepsTheLease(t *testing.T) {
	t.Parallel()
	skipIfExternal(t, "it puts the initial-response proxy in front of the emulator it starts")
	e, _, _, w1, w2 := twoEFOWorkers(t, 100)
	owners := func() map[string]string {
		m := map[string]string{}
		for id, l := range e.checkpoints() {
			m[id] = l.Owner
		}
		return m
	}
	before := owners()

	restore := e.breakRowSink()
	data, keys, _ := orders(100, 100, false)
	last := e.put(data, keys)
	waitFor(t, 30*time.Second, "both workers retrying the sink", func() bool {
		b1, _ := os.ReadFile(w1.log)
		b2, _ := os.ReadFile(w2.log)
		return strings.Contains(string(b1), "sink write failed; retrying") && strings.Contains(string(b2), "sink write failed; retrying")
	})
	for end := time.Now().Add(3 * leaseDuration); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if now := owners(); !maps.Equal(now, before) {
			t.Fatalf("a shard changed hands during a slow delivery: owners %v, before %v", now, before)
		}
	}
	restore()
	waitFor(t, 60*time.Second, "all 200 rows after the outage", func() bool { return len(missing(idsOf(e.rows()), 0, 200, nil)) == 0 })
	// Counted once both checkpointed past them and exited: they write
	// nothing more.
	e.waitCheckpointed(last, 60*time.Second)
	w1.stop(60 * time.Second)
	w2.stop(60 * time.Second)
	if lost, dups := report(t, e.rows(), 200); len(lost) > 0 || dups > 0 {
		t.Fatalf("after a slow delivery: %d lost, %d read twice; want 0 and 0", len(lost), dups)
	}
}
