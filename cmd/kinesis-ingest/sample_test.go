package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// orderKinds is what orders(from, n, true) puts, counted from how it makes
// its records: rows, decode errors, and schema errors by field.
func orderKinds(from, n int) (rows, decode int, schemaByField map[string]int) {
	schemaByField = map[string]int{}
	for i := from; i < from+n; i++ {
		if i%10 != 9 {
			rows++
			continue
		}
		switch (i / 10) % 5 {
		case 0, 4:
			decode++
		case 1, 2: // amount missing, amount a string
			schemaByField["amount"]++
		case 3: // id a string
			schemaByField["id"]++
		}
	}
	return rows, decode, schemaByField
}

// sampleCounts reads the counts a sample prints for source orders and
// dataset orders.
type sampleCounts struct {
	rows, datasetLetters, sourceLetters, unrouted int
	kinds                                         map[string]int // "schema_error amount", "decode_error"
	dead, records                                 int
}

var (
	sampleDatasetRE = regexp.MustCompile(`(?m)^dataset orders \(source orders\): rows (\d+), dead letters (\d+), filtered 0, unrouted 0$`)
	sampleSourceRE  = regexp.MustCompile(`(?m)^source orders, no dataset: dead letters (\d+), unrouted (\d+)$`)
	sampleKindRE    = regexp.MustCompile(`(?m)^  ([a-z_]+(?: [a-z_.\[\]]+)?): (\d+)$`)
	sampleVerdictRE = regexp.MustCompile(`(?m)^(ok|FAIL)\s+sample: (\d+) of (\d+) records would become dead letters`)
)

func parseSample(t *testing.T, out string) sampleCounts {
	t.Helper()
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	var c sampleCounts
	m := sampleDatasetRE.FindStringSubmatch(out)
	s := sampleSourceRE.FindStringSubmatch(out)
	v := sampleVerdictRE.FindStringSubmatch(out)
	if m == nil || s == nil || v == nil {
		t.Fatalf("the sample's report lacks its dataset, source or verdict line:\n%s", out)
	}
	c.rows, c.datasetLetters, c.sourceLetters, c.unrouted = atoi(m[1]), atoi(m[2]), atoi(s[1]), atoi(s[2])
	c.dead, c.records = atoi(v[2]), atoi(v[3])
	c.kinds = map[string]int{}
	for _, k := range sampleKindRE.FindAllStringSubmatch(out, -1) {
		c.kinds[k[1]] += atoi(k[2])
	}
	return c
}

// TestSampleShowsWhatRunThenDoes: on a stream of good and bad records,
// `validate --sample` prints, per dataset and kind, the counts the test
// computes from what it put, and writes nothing (no row, no letter, no
// checkpoint); --max-dead-ratio fails it above the share of bad records
// and passes it below; `run` then makes exactly those rows and letters.
func TestSampleShowsWhatRunThenDoes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	const n = 300
	data, keys, want := orders(0, n, true)
	e.put(data, keys)
	wantRows, wantDecode, wantFields := orderKinds(0, n)
	wantSchema := wantFields["amount"] + wantFields["id"]
	if wantRows+wantDecode+wantSchema != n || len(want) != wantDecode+wantSchema {
		t.Fatalf("orderKinds disagrees with orders: %d rows, %d decode, %v schema; orders marks %d bad", wantRows, wantDecode, wantFields, len(want))
	}
	cfg := e.config("trim_horizon")

	sample := func(extra ...string) result {
		t.Helper()
		return runCmd(t, e.awsEnv(), append([]string{"validate", "--config", cfg, "--sample", "1000"}, extra...)...)
	}
	r := sample()
	if r.code != 0 {
		t.Fatalf("validate --sample: exit %d\n%s", r.code, r.out)
	}
	got := parseSample(t, r.out)
	wantKinds := map[string]int{"schema_error amount": wantFields["amount"], "schema_error id": wantFields["id"], "decode_error": wantDecode}
	if got.rows != wantRows || got.datasetLetters != wantSchema || got.sourceLetters != wantDecode || got.unrouted != 0 ||
		fmt.Sprint(got.kinds) != fmt.Sprint(wantKinds) || got.records != n || got.dead != wantDecode+wantSchema {
		t.Errorf("sample: rows %d, dataset letters %d, source letters %d, unrouted %d, kinds %v, %d dead of %d; want %d, %d, %d, 0, %v, %d of %d\n%s",
			got.rows, got.datasetLetters, got.sourceLetters, got.unrouted, got.kinds, got.dead, got.records,
			wantRows, wantSchema, wantDecode, wantKinds, wantDecode+wantSchema, n, r.out)
	}
	// Each kind shows an example: its error and a preview of its data.
	for _, w := range []string{"    e.g. shardId-", `    data (`, "/0: amount: ", `/0: id: want int, got string`} {
		if !strings.Contains(r.out, w) {
			t.Errorf("the sample's report lacks %q", w)
		}
	}
	if !strings.Contains(r.out, fmt.Sprintf("sample source orders: %d records of 2 shards", n)) {
		t.Errorf("no line saying what was read of the stream:\n%s", r.out)
	}
	for _, d := range []string{e.rowsDir(), e.lettersDir()} {
		if ents, _ := os.ReadDir(d); len(ents) != 0 {
			t.Errorf("%s holds %v after the sample, want nothing", d, ents)
		}
	}
	if cps := e.checkpoints(); len(cps) != 0 {
		t.Errorf("the sample wrote leases or checkpoints: %v", cps)
	}

	// The bad records are 10% of them.
	if r := sample("--max-dead-ratio", "0.05"); r.code != 1 || r.line("FAIL  sample:") == "" || !strings.Contains(r.line("FAIL  sample:"), "above --max-dead-ratio 0.05") {
		t.Errorf("--max-dead-ratio 0.05 with 10%% bad records: exit %d, want 1 and a FAIL line\n%s", r.code, r.out)
	}
	if r := sample("--max-dead-ratio", "0.2"); r.code != 0 || r.line("ok    sample:") == "" {
		t.Errorf("--max-dead-ratio 0.2 with 10%% bad records: exit %d, want 0\n%s", r.code, r.out)
	}
	// Fewer per shard: at most that many read of each.
	if got := parseSample(t, sample("--sample-from", "trim_horizon", "--sample", "5").out); got.records != 10 {
		t.Errorf("--sample 5 on 2 shards read %d records, want 10", got.records)
	}

	w := e.start(cfg, "w1")
	waitFor(t, 60*time.Second, fmt.Sprintf("%d rows and dead letters", n), func() bool { return len(e.rows())+len(e.letters()) >= n })
	w.stop(30 * time.Second)
	rows, letters := e.rows(), e.letters()
	runKinds := map[string]int{}
	for _, l := range letters {
		k := l.Reason
		if l.Reason == "schema_error" {
			k += " " + strings.SplitN(l.Error, ":", 2)[0]
		}
		runKinds[k]++
	}
	if len(rows) != got.rows || fmt.Sprint(runKinds) != fmt.Sprint(got.kinds) {
		t.Errorf("run made %d rows and letters %v; the sample said %d rows and %v", len(rows), runKinds, got.rows, got.kinds)
	}
}

// TestSampleUsage covers validate's sample flags without a stream.
func TestSampleUsage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args        []string
		errContains string
	}{
		{[]string{"--max-dead-ratio", "0.1"}, "--max-dead-ratio applies to --sample"},
		{[]string{"--sample", "10", "--offline"}, "cannot go with --offline"},
		{[]string{"--sample", "-1"}, "--sample -1"},
		{[]string{"--sample", "10", "--max-dead-ratio", "2"}, "between 0 and 1"},
		{[]string{"--sample", "10", "--sample-from", "soon"}, `--sample-from: "soon"`},
		{[]string{"--sample", "10", "--sample-from", "2999-01-01T00:00:00Z"}, "in the future"},
	} {
		var stdout, stderr strings.Builder
		if code := run(append([]string{"validate", "--config", "unused.yaml"}, tt.args...), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.errContains) {
			t.Errorf("validate %v: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr.String(), tt.errContains)
		}
	}
}
