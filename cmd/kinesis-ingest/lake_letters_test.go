package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/errview"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// lettersConfig is lakeConfig with the dead letters in the bucket too, under
// dead-letters/.
func (e *lakeEnv) lettersConfig() string {
	e.t.Helper()
	b, err := os.ReadFile(e.lakeConfig())
	if err != nil {
		e.t.Fatal(err)
	}
	files := fmt.Sprintf("dead_letter:\n  file: {path: %s}\n", e.lettersDir())
	if !bytes.Contains(b, []byte(files)) {
		e.t.Fatalf("the lake config has no %q", files)
	}
	body := strings.Replace(string(b), files, fmt.Sprintf("dead_letter:\n  s3: {bucket: %s, compression: zstd, force_path_style: true}\n", e.bucket), 1)
	path := filepath.Join(e.dir, "lake-letters.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// errorsView runs `kinesis-ingest errors --json --limit 1000`, as an
// operator would, with the worker's credentials and S3 endpoint.
func (e *lakeEnv) errorsView(cfg string) errview.Summary {
	e.t.Helper()
	cmd := exec.Command(binary, "errors", "--config", cfg, "--json", "--limit", fmt.Sprint(errview.MaxLimit))
	cmd.Env = append(append(os.Environ(), "WORKER_ID=errors-view", "AWS_ACCESS_KEY_ID="+testaws.Account,
		"AWS_SECRET_ACCESS_KEY=secret-must-not-leak", "AWS_REGION=us-east-1"), e.extra...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		e.t.Fatalf("kinesis-ingest errors: %v: %s", err, &stderr)
	}
	var s errview.Summary
	if err := json.Unmarshal(out, &s); err != nil {
		e.t.Fatalf("kinesis-ingest errors --json: %v: %s", err, out)
	}
	return s
}

// everyLetterOnce fails the test unless the view lists each bad record
// (by its key, k-<id>) exactly once, with its reason, and nothing else.
func everyLetterOnce(t *testing.T, where string, s errview.Summary, bad map[string]string) {
	t.Helper()
	byKey := map[string]int{}
	for _, l := range s.Latest {
		byKey[l.PartitionKey]++
		if want, ok := bad[l.PartitionKey]; ok && l.Reason != want {
			t.Errorf("%s: %s is a %s letter, want %s", where, l.PartitionKey, l.Reason, want)
		}
	}
	wrong := 0
	for key := range bad {
		if n := byKey[key]; n != 1 {
			if wrong++; wrong <= 10 {
				t.Errorf("%s: bad record %s is listed %d times, want once", where, key, n)
			}
		}
	}
	for key, n := range byKey {
		if _, ok := bad[key]; !ok {
			t.Errorf("%s: %s is listed %d times, but is no bad record", where, key, n)
		}
	}
	if s.Total != len(bad) {
		t.Errorf("%s: %d dead letters counted, want %d", where, s.Total, len(bad))
	}
}

// TestLakeDeadLettersOnS3: rows and dead letters both go to the bucket. The
// errors command lists every bad record once; after `reset --to
// trim_horizon` the next worker reads the whole stream again and finds
// every letter of the first run already stored (counted as duplicates, not
// written again), and the command and the worker's errors view list each
// bad record of both runs once.
func TestLakeDeadLettersOnS3(t *testing.T) {
	t.Parallel()
	const n = 1000
	e := newLakeEnv(t, 2)
	bad := map[string]string{}
	last := e.putOrders(0, n/2, bad)
	firstBad := len(bad)
	cfg := e.lettersConfig()
	w1 := e.start(cfg, "w1")
	e.waitCheckpointed(90*time.Second, last)
	w1.stop(30 * time.Second)
	e.rowsOnce(n/2, bad)
	everyLetterOnce(t, "after the first run", e.errorsView(cfg), bad)

	out, errOut, code := e.cli("reset", "--config", cfg, "--to", "trim_horizon", "--yes")
	if code != 0 {
		t.Fatalf("reset --to trim_horizon: exit %d, %s%s", code, out, errOut)
	}
	last = maxSeqs(last, e.putOrders(n/2, n/2, bad))
	w2 := e.start(cfg, "w2")
	addr, errorsAddr := w2.metricsAddr(), w2.loggedAddr("errors view")
	e.waitCheckpointed(90*time.Second, last)
	e.rowsOnce(n, bad)
	if got := metricValue(scrape(t, addr), `kinesis_ingest_sink_duplicates_skipped_total{sink="dead_letter"}`); int(got) != firstBad {
		t.Errorf("the replay found %v dead letters already stored, want %d (the first run's)", got, firstBad)
	}
	var view errview.Summary
	r := httpGet(t, fmt.Sprintf("http://%s/errors?limit=%d", errorsAddr, errview.MaxLimit), "")
	if err := json.Unmarshal([]byte(r.body), &view); err != nil || r.code != 200 {
		t.Fatalf("/errors: %d %v: %s", r.code, err, r.body)
	}
	everyLetterOnce(t, "the worker's errors view", view, bad)
	w2.stop(30 * time.Second)
	everyLetterOnce(t, "after the replay", e.errorsView(cfg), bad)
	if ents, err := os.ReadDir(e.lettersDir()); err == nil && len(ents) > 0 {
		t.Errorf("dead letters went to files too: %d in %s", len(ents), e.lettersDir())
	}
}
