package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// windowTemplate feeds one source into a dataset with a time window
// (since/until on its ts field) and a sampled dataset (30% by id).
const windowTemplate = `
sources:
  - name: orders
    env: [prod, staging]
    kinesis:
      stream_arn: %[1]s
      init_position: trim_horizon
datasets:
  - name: prod_copy
    env: [prod]
    source: orders
    fields:
      - {name: id, type: int}
      - {name: ts, type: datetime}
    sink: prod_file
  - name: windowed
    source: orders
    timestamp: ts
    since: 2026-11-01T12:01:00Z
    until: "2026-11-01 12:03:00"
    fields: &fields
      - {name: id, type: int}
      - {name: amount, type: float}
      - {name: ts, type: datetime}
    sink: windowed_file
  - name: sampled
    source: orders
    sample: {rate: 0.3, using: [id]}
    fields: *fields
    sink: sampled_file
  - name: priced
    source: orders
    fields:
      - {name: id, type: int}
      - {name: amount, type: float}
      - {name: ts, type: datetime}
      - {name: doubled, type: float, expr: amount * 2}
      - {name: size, type: str, expr: 'amount >= 150 ? "big" : "small"'}
      - {name: ratio, type: float, expr: 100 / (amount - 150)}
      - {name: tripled, type: float, expr: raw * 3}
    inputs:
      - {name: raw, type: float, ref: amount}
    sink: priced_file
sinks:
  - name: priced_file
    file: {path: %[7]s}
  - name: prod_file
    file: {path: %[6]s}
  - name: windowed_file
    file: {path: %[2]s}
  - name: sampled_file
    file: {path: %[3]s}
dead_letter:
  file: {path: %[4]s}
consumer:
  application: %[5]s
  worker_id: ${WORKER_ID}
  shard_sync_interval: 500ms
  lease_duration: 4s
  lease_refresh: 1s
  idle_between_reads: 100ms
  max_records: 100
metrics:
  listen: 127.0.0.1:0
errors:
  listen: 127.0.0.1:0
`

type idRow struct {
	ID int64 `json:"id"`
}

type pricedRow struct {
	ID      int64    `json:"id"`
	Amount  float64  `json:"amount"`
	Doubled float64  `json:"doubled"`
	Size    string   `json:"size"`
	Ratio   float64  `json:"ratio"`
	Tripled float64  `json:"tripled"`
	Raw     *float64 `json:"raw"`
}

func ids[T any](rows []T, id func(T) int64) []int64 {
	out := make([]int64, 0, len(rows))
	for _, r := range rows {
		out = append(out, id(r))
	}
	slices.Sort(out)
	return out
}

// TestDatasetRules (since/until, sample, env, computed fields) puts records one second apart from 12:00:00 on both
// sides of a window [12:01, 12:03): the windowed dataset holds exactly the
// records inside it, a record outside it with a bad amount is neither row nor
// dead letter, one inside with a bad amount is a dead letter; the sampled
// dataset keeps about 30%, and a second application replaying the stream keeps
// exactly the same ids.
func TestDatasetRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	const n = 300
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	since, until := base.Add(time.Minute), base.Add(3*time.Minute)
	var data [][]byte
	var keys []string
	wantWindow, wantLetters := []int64{}, []int64{}
	before, after := 0, 0
	for i := range n {
		ts := base.Add(time.Duration(i) * time.Second)
		amount := strconv.Itoa(i)
		bad := i%25 == 3
		if bad {
			amount = `"lots"`
		}
		data = append(data, fmt.Appendf(nil, `{"id":%d,"amount":%s,"ts":%q}`, i, amount, ts.Format(time.RFC3339)))
		keys = append(keys, "k-"+strconv.Itoa(i))
		switch {
		case ts.Before(since):
			before++
		case !ts.Before(until):
			after++
		case bad:
			wantLetters = append(wantLetters, int64(i))
		default:
			wantWindow = append(wantWindow, int64(i))
		}
	}
	if before == 0 || after == 0 || len(wantWindow) == 0 || len(wantLetters) == 0 {
		t.Fatalf("test data lacks a case: %d before, %d after, %d inside, %d bad inside", before, after, len(wantWindow), len(wantLetters))
	}
	e.put(data, keys)

	// bad records are dead letters of the sampled dataset (it takes every
	// record), plus those inside the window for the windowed one.
	badTotal := 0
	for i := range n {
		if i%25 == 3 {
			badTotal++
		}
	}
	app := func(name string) (cfgPath, windowDir, sampleDir, lettersDir string) {
		dir := filepath.Join(e.dir, name)
		windowDir, sampleDir, lettersDir = filepath.Join(dir, "windowed"), filepath.Join(dir, "sampled"), filepath.Join(dir, "letters")
		cfgPath = filepath.Join(dir, "config.yaml")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf(windowTemplate, e.arn, windowDir, sampleDir, lettersDir, name, filepath.Join(dir, "prod"), filepath.Join(dir, "priced"))
		if err := os.WriteFile(cfgPath, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}

	var sampledRuns [][]int64
	for run, name := range []string{"orders-window", "orders-replay"} {
		cfgPath, windowDir, sampleDir, lettersDir := app(name)
		w := e.startArgs(cfgPath, "w"+strconv.Itoa(run), []string{"--env", "staging"}, nil)
		addr := w.metricsAddr()
		// Every record is accounted for once the filtered counters reach the
		// records outside the window and the sample's misses.
		var m string
		filtered := func(dataset, reason string) int {
			for _, line := range strings.Split(m, "\n") {
				if strings.HasPrefix(line, fmt.Sprintf(`kinesis_ingest_records_filtered_total{dataset=%q,reason=%q} `, dataset, reason)) {
					v, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
					return int(v)
				}
			}
			return 0
		}
		var windowed, sampled []int64
		var priced []pricedRow
		pricedDir := filepath.Join(filepath.Dir(cfgPath), "priced")
		letters := map[string][]int64{}
		waitFor(t, 90*time.Second, "every record as a row, a dead letter or filtered", func() bool {
			m = scrape(t, addr)
			windowed = ids(readLines(t, windowDir, func(*idRow, string) {}), func(r idRow) int64 { return r.ID })
			sampled = ids(readLines(t, sampleDir, func(*idRow, string) {}), func(r idRow) int64 { return r.ID })
			priced = readLines(t, pricedDir, func(*pricedRow, string) {})
			clear(letters)
			for _, l := range readLines(t, lettersDir, func(*routedLetter, string) {}) {
				id, _ := strconv.ParseInt(strings.TrimPrefix(l.PartitionKey, "k-"), 10, 64)
				letters[l.Dataset] = append(letters[l.Dataset], id)
			}
			return len(windowed)+len(letters["windowed"])+filtered("windowed", "since")+filtered("windowed", "until") >= n &&
				len(sampled)+len(letters["sampled"])+filtered("sampled", "sample") >= n &&
				len(priced)+len(letters["priced"]) >= n
		})
		w.stop(30 * time.Second)

		if !slices.Equal(windowed, wantWindow) {
			t.Errorf("%s: windowed rows %v, want %v", name, windowed, wantWindow)
		}
		slices.Sort(letters["windowed"])
		if !slices.Equal(letters["windowed"], wantLetters) {
			t.Errorf("%s: windowed dead letters %v, want only the bad records inside the window %v", name, letters["windowed"], wantLetters)
		}
		if got := filtered("windowed", "since"); got != before {
			t.Errorf("%s: filtered since %d, want %d", name, got, before)
		}
		if got := filtered("windowed", "until"); got != after {
			t.Errorf("%s: filtered until %d, want %d", name, got, after)
		}
		if got := len(letters["sampled"]); got != badTotal {
			t.Errorf("%s: sampled dataset has %d dead letters, want the %d bad records (sample applies to rows)", name, got, badTotal)
		}
		if got, good := len(sampled), n-badTotal; got < good*15/100 || got > good*45/100 {
			t.Errorf("%s: sample kept %d of %d rows, want about 30%%", name, got, good)
		}
		if got := filtered("sampled", "sample"); got != n-badTotal-len(sampled) {
			t.Errorf("%s: filtered sample %d, want %d", name, got, n-badTotal-len(sampled))
		}
		sampledRuns = append(sampledRuns, sampled)
		// Computed fields: every good record but amount 150 (ratio 100/0 is
		// no float) is a row with its computed values; 150 is a dead letter.
		sizes := map[string]int{}
		for _, r := range priced {
			wantSize := "small"
			if r.Amount >= 150 {
				wantSize = "big"
			}
			sizes[r.Size]++
			if r.Doubled != 2*r.Amount || r.Size != wantSize || r.Ratio != 100/(r.Amount-150) || r.Tripled != 3*r.Amount || r.Raw != nil || r.ID == 150 {
				t.Errorf("%s: priced row %+v: computed fields wrong", name, r)
			}
		}
		if len(priced) != n-badTotal-1 || sizes["big"] == 0 || sizes["small"] == 0 {
			t.Errorf("%s: %d priced rows (%v), want %d of both sizes", name, len(priced), sizes, n-badTotal-1)
		}
		if !slices.Contains(letters["priced"], 150) || len(letters["priced"]) != badTotal+1 {
			t.Errorf("%s: priced dead letters %v, want the %d bad records and 150", name, letters["priced"], badTotal)
		}
		// --env staging leaves out the prod-only dataset: not a row, not a
		// count, not even its sink's directory.
		if _, err := os.Stat(filepath.Join(filepath.Dir(cfgPath), "prod")); !os.IsNotExist(err) {
			t.Errorf("%s: the prod-only dataset's sink exists under --env staging (%v)", name, err)
		}
		if strings.Contains(m, `dataset="prod_copy"`) {
			t.Errorf("%s: metrics name the prod-only dataset under --env staging", name)
		}
	}
	// An env that nothing lists is refused before anything runs.
	cfgPath, _, _, _ := app("orders-typo")
	cmd := exec.Command(binary, "validate", "--offline", "--config", cfgPath, "--env", "prdo")
	cmd.Env = append(os.Environ(), "WORKER_ID=v")
	out, err := cmd.CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "--env prdo: no source or dataset lists it; the config's envs are prod, staging") {
		t.Errorf("validate --env prdo: exit %d, output %s; want exit 2 naming the envs", code, out)
	}
	if !slices.Equal(sampledRuns[0], sampledRuns[1]) {
		t.Errorf("the replay sampled other records:\nfirst  %v\nreplay %v", sampledRuns[0], sampledRuns[1])
	}
	t.Logf("window: %d before, %d inside (%d bad), %d after; sample kept %d of %d", before, len(wantWindow), len(wantLetters), after, len(sampledRuns[0]), n-badTotal)
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
