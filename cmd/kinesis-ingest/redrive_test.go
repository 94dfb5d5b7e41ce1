package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/redrive"
)

// giftOrders are n orders, of which every third has a string note ("gift")
// and every twentieth (i%20 == 7) is not JSON at all; the others have a
// null note. With note typed optional[int] the gifts become schema_error
// letters; with optional[str] they are rows. The non-JSON ones stay
// decode_error letters whatever the config.
func giftOrders(n int) (data [][]byte, keys []string, gifts, broken map[int]bool) {
	gifts, broken = map[int]bool{}, map[int]bool{}
	for i := range n {
		rec := fmt.Sprintf(`{"id":%d,"amount":%d.25,"ts":"2026-11-01T12:00:00Z","note":null}`, i, i)
		switch {
		case i%20 == 7:
			rec, broken[i] = fmt.Sprintf(`{"id":%d,`, i), true
		case i%3 == 0:
			rec, gifts[i] = fmt.Sprintf(`{"id":%d,"amount":%d.25,"ts":"2026-11-01T12:00:00Z","note":"gift"}`, i, i), true
		}
		data, keys = append(data, []byte(rec)), append(keys, "k-"+strconv.Itoa(i))
	}
	return data, keys, gifts, broken
}

// misconfigured writes a copy of the config at path with note typed
// optional[int], the mistake the tests fix.
func misconfigured(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(b), `{name: note, type: "optional[str]"}`, `{name: note, type: "optional[int]"}`, 1)
	if bad == string(b) {
		t.Fatal("the config template has no optional[str] note to get wrong")
	}
	out := strings.TrimSuffix(path, ".yaml") + "-bad.yaml"
	if err := os.WriteFile(out, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// redriveJSON runs `redrive --json` and decodes its summary (stdout alone;
// the log is on stderr).
func (e *env) redriveJSON(cfg string, args ...string) *redrive.Summary {
	e.t.Helper()
	cmd := exec.Command(binary, append([]string{"redrive", "--config", cfg, "--json"}, args...)...)
	cmd.Env = e.awsEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("redrive %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, &stdout, tail(stderr.String(), 20))
	}
	var s redrive.Summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		e.t.Fatalf("redrive --json: %v:\n%s", err, &stdout)
	}
	return &s
}

// TestRedriveAfterConfigFixIntoPostgres: a worker with note mistyped
// optional[int] dead-letters every order with a string note; with the config
// fixed (and the column migrated), redrive --dry-run says what redrive then
// does and writes nothing; redrive makes every such letter a row, with the
// origin of its record, and leaves the undecodable ones letters, counted; a
// second redrive adds no row (the sink counts them as already stored) and
// no run adds a letter.
func TestRedriveAfterConfigFixIntoPostgres(t *testing.T) {
	t.Parallel()
	e := newPGEnv(t, 2)
	const n = 150
	data, keys, gifts, broken := giftOrders(n)
	e.put(data, keys)
	good := e.pgConfig("orders-pg")
	bad := misconfigured(t, good)

	w := e.start(bad, "w1")
	waitFor(t, 90*time.Second, "every record a row or a dead letter", func() bool {
		rows, _ := e.query("SELECT count(*) FROM orders")
		letters, _ := e.query("SELECT count(*) FROM kinesis_ingest_dead_letters")
		return rows+letters >= n
	})
	w.stop(30 * time.Second)
	wantRows := n - len(gifts) - len(broken)
	if rows, schema, decode := e.mustQuery("SELECT count(*) FROM orders"),
		e.mustQuery("SELECT count(*) FROM kinesis_ingest_dead_letters WHERE reason = 'schema_error' AND error LIKE 'note:%'"),
		e.mustQuery("SELECT count(*) FROM kinesis_ingest_dead_letters WHERE reason = 'decode_error'"); rows != int64(wantRows) || schema != int64(len(gifts)) || decode != int64(len(broken)) {
		t.Fatalf("the misconfigured run made %d rows, %d note schema errors, %d decode errors; want %d, %d, %d", rows, schema, decode, wantRows, len(gifts), len(broken))
	}
	letters := e.mustQuery("SELECT count(*) FROM kinesis_ingest_dead_letters")

	// The fix: note is a string, its column text.
	alterTable(t, e.dsn, "ALTER TABLE orders ALTER COLUMN note TYPE text")

	dry := e.redriveJSON(good, "--dry-run")
	if dry.Records != len(gifts)+len(broken) || dry.Totals.Rows != len(gifts) || dry.Totals.Letters != len(broken) {
		t.Errorf("dry run: %d records, %d rows, %d failing again; want %d, %d, %d", dry.Records, dry.Totals.Rows, dry.Totals.Letters, len(gifts)+len(broken), len(gifts), len(broken))
	}
	if rows := e.mustQuery("SELECT count(*) FROM orders"); rows != int64(wantRows) {
		t.Fatalf("the dry run changed the table: %d rows, want %d", rows, wantRows)
	}

	first := e.redriveJSON(good)
	if first.Totals.Rows != len(gifts) || first.Totals.Duplicates != 0 || first.Totals.Letters != len(broken) {
		t.Errorf("redrive: %d rows (%d already stored), %d failed again; want %d, 0, %d", first.Totals.Rows, first.Totals.Duplicates, first.Totals.Letters, len(gifts), len(broken))
	}
	if len(first.Datasets) != 1 || len(first.Datasets[0].Kinds) != 1 || first.Datasets[0].Kinds[0].Reason != "decode_error" {
		t.Errorf("redrive's dataset blocks: %+v, want orders with one kind, decode_error", first.Datasets)
	}
	checkRows := func(when string) {
		t.Helper()
		if c, d := e.mustQuery("SELECT count(*) FROM orders"), e.mustQuery("SELECT count(DISTINCT id) FROM orders"); c != int64(n-len(broken)) || d != c {
			t.Errorf("%s: %d rows, %d distinct ids; want %d of each", when, c, d, n-len(broken))
		}
		// Every gift is a row now, with its note and the origin its letter had.
		if g := e.mustQuery(`SELECT count(*) FROM orders o JOIN kinesis_ingest_dead_letters l
			ON l.shard_id = o._shard_id AND l.sequence_number = o._sequence_number AND l.subsequence = o._subsequence
			WHERE o.note = 'gift' AND o.id % 3 = 0 AND l.reason = 'schema_error'`); g != int64(len(gifts)) {
			t.Errorf("%s: %d gift rows match their letter's origin, want %d", when, g, len(gifts))
		}
		if got := e.mustQuery("SELECT count(*) FROM kinesis_ingest_dead_letters"); got != letters {
			t.Errorf("%s: %d dead letters, want the %d there were: redrive writes none", when, got, letters)
		}
	}
	checkRows("after the first redrive")

	second := e.redriveJSON(good)
	if second.Totals.Rows != len(gifts) || second.Totals.Duplicates != len(gifts) || second.Totals.Letters != len(broken) {
		t.Errorf("redrive again: %d rows, %d already stored, %d failed again; want %d, %d, %d", second.Totals.Rows, second.Totals.Duplicates, second.Totals.Letters, len(gifts), len(gifts), len(broken))
	}
	checkRows("after the second redrive")

	// The text says so too.
	r := runCmd(t, e.awsEnv(), "redrive", "--config", good, "--reason", "schema_error")
	wantLines(t, r, map[string][]string{
		"total: records": {fmt.Sprintf("records %d, rows stored 0, already stored %d, failed again 0", len(gifts), len(gifts))},
	})
}

// TestRedriveIntoFileSink: the same fix with file sinks, which do not
// de-duplicate: redrive appends a row for every letter, and a second redrive
// appends them all again (same origin), as a record read again after a crash
// would be; the letters stay as they were.
func TestRedriveIntoFileSink(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	const n = 60
	data, keys, gifts, broken := giftOrders(n)
	e.put(data, keys)
	good := e.config("trim_horizon")
	bad := misconfigured(t, good)
	w := e.start(bad, "w1")
	waitFor(t, 60*time.Second, "every record a row or a dead letter", func() bool { return len(e.rows())+len(e.letters()) >= n })
	w.stop(30 * time.Second)
	before := len(e.letters())
	if rows := len(e.rows()); rows != n-len(gifts)-len(broken) || before != len(gifts)+len(broken) {
		t.Fatalf("the misconfigured run made %d rows and %d letters, want %d and %d", rows, before, n-len(gifts)-len(broken), len(gifts)+len(broken))
	}

	for round := 1; round <= 2; round++ {
		r := runCmd(t, e.awsEnv(), "redrive", "--config", good)
		if r.code != 0 {
			t.Fatalf("redrive %d: exit %d\n%s", round, r.code, r.out)
		}
		wantLines(t, r, map[string][]string{
			"total: records": {fmt.Sprintf("records %d, rows stored %d, already stored 0, failed again %d", len(gifts)+len(broken), len(gifts), len(broken))},
		})
		seqs := map[int64]map[string]int{}
		for _, row := range e.rows() {
			if seqs[row.ID] == nil {
				seqs[row.ID] = map[string]int{}
			}
			seqs[row.ID][row.Sequence]++
		}
		for i := range n {
			want := 1
			switch {
			case broken[i]:
				want = 0
			case gifts[i]:
				want = round
			}
			got := 0
			for _, c := range seqs[int64(i)] {
				got += c
			}
			if got != want || len(seqs[int64(i)]) > 1 {
				t.Errorf("after redrive %d: id %d has %d rows with sequence numbers %v, want %d of one", round, i, got, seqs[int64(i)], want)
			}
		}
		if got := len(e.letters()); got != before {
			t.Errorf("after redrive %d: %d dead letters, want the %d there were", round, got, before)
		}
	}
}

func alterTable(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestRedriveUsage covers redrive's flags without a stream: filters refused
// with the flag named, and a dead-letter sink with nothing in it.
func TestRedriveUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	body := strings.Replace(configTemplate, "worker_id: ${WORKER_ID}", "worker_id: w1", 1)
	if err := os.WriteFile(cfg, []byte(
		fmt.Sprintf(body, "arn:aws:kinesis:us-east-1:000000000000:stream/orders", "latest", filepath.Join(dir, "rows"), filepath.Join(dir, "dl"), "orders-ingest")), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		args        []string
		code        int
		outContains string
		errContains string
	}{
		{name: "no dead letters", args: []string{"--config", cfg}, code: 0, outContains: "redrive: 0 dead letters selected, 0 records"},
		{name: "dry run", args: []string{"--config", cfg, "--dry-run", "--reason", "schema_error,late", "--since", "1h"}, code: 0, outContains: "redrive (dry run: nothing written)"},
		{name: "json", args: []string{"--config", cfg, "--json"}, code: 0, outContains: `"letters": 0`},
		{name: "no config", args: nil, code: 2, errContains: "--config is required"},
		{name: "bad reason", args: []string{"--config", cfg, "--reason", "typo"}, code: 2, errContains: `--reason: unknown reason "typo"`},
		{name: "unknown dataset", args: []string{"--config", cfg, "--dataset", "nope"}, code: 2, errContains: `--dataset "nope": the config has no such dataset`},
		{name: "since after until", args: []string{"--config", cfg, "--since", "1h", "--until", "2h"}, code: 2, errContains: "is not before --until"},
		{name: "stray argument", args: []string{"--config", cfg, "schema_error"}, code: 2, errContains: "unexpected arguments"},
		{name: "help", args: []string{"--help"}, code: 0, errContains: "stays the letter it is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"redrive"}, tt.args...), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stdout %s; stderr %s", code, tt.code, &stdout, &stderr)
			}
			if !strings.Contains(stdout.String(), tt.outContains) {
				t.Errorf("stdout lacks %q:\n%s", tt.outContains, &stdout)
			}
			if !strings.Contains(stderr.String(), tt.errContains) {
				t.Errorf("stderr lacks %q:\n%s", tt.errContains, &stderr)
			}
		})
	}
}
