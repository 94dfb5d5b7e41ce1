package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// testConfig is a variant of the harness's configTemplate.
type testConfig struct {
	ARN          string // default e.arn
	InitPosition string // YAML scalar as written; default latest
	Table        string // consumer.application; default e.table
	Dir          string // rows go to Dir/rows, dead letters to Dir/dead-letters; default e.dir
	RowsDir      string // overrides Dir/rows
	RoleARN      string // role_arn, if set
	ExternalID   string // external_id, if set
}

// writeConfig writes c as config.yaml in c.Dir (created) and returns its path.
func (e *env) writeConfig(c testConfig) string {
	e.t.Helper()
	if c.ARN == "" {
		c.ARN = e.arn
	}
	if c.InitPosition == "" {
		c.InitPosition = "latest"
	}
	if c.Table == "" {
		c.Table = e.table
	}
	if c.Dir == "" {
		c.Dir = e.dir
	}
	if c.RowsDir == "" {
		c.RowsDir = filepath.Join(c.Dir, "rows")
	}
	body := fmt.Sprintf(configTemplate, c.ARN, c.InitPosition, c.RowsDir, filepath.Join(c.Dir, "dead-letters"), c.Table)
	var extra string
	if c.RoleARN != "" {
		extra += "\n      role_arn: " + c.RoleARN
	}
	if c.ExternalID != "" {
		extra += "\n      external_id: " + c.ExternalID
	}
	line := "      stream_arn: " + c.ARN
	if !strings.Contains(body, line) {
		e.t.Fatalf("configTemplate has no line %q", line)
	}
	body = strings.Replace(body, line, line+extra, 1)
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	path := filepath.Join(c.Dir, "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// awsEnv is the environment of a kinesis-ingest process talking to the
// test's emulators as account testaws.Account, plus extra.
func (e *env) awsEnv(extra ...string) []string {
	kin, ddb := "", ""
	if e.kin != nil {
		kin = e.kin.Endpoint
	}
	if e.ddb != nil {
		ddb = e.ddb.Endpoint
	}
	return append(append(os.Environ(), e.extra...), append([]string{
		"WORKER_ID=validator",
		"AWS_ENDPOINT_URL_KINESIS=" + kin,
		"AWS_ENDPOINT_URL_DYNAMODB=" + ddb,
		"AWS_ACCESS_KEY_ID=" + testaws.Account,
		"AWS_SECRET_ACCESS_KEY=secret-must-not-leak",
		"AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
	}, extra...)...)
}

// result is a finished kinesis-ingest command.
type result struct {
	out  string // stdout and stderr
	code int
	took time.Duration
}

// line returns the output line starting with prefix, or "".
func (r result) line(prefix string) string {
	for _, l := range strings.Split(r.out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// runCmd runs kinesis-ingest with args and env and waits up to a minute.
func runCmd(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r := result{out: string(out), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run %v: %v\n%s", args, err, out)
	}
	t.Logf("kinesis-ingest %s: exit %d after %s:\n%s", args[0], r.code, r.took.Round(time.Millisecond), tail(r.out, 30))
	return r
}

// validate runs kinesis-ingest validate on cfg with e's AWS environment plus extra.
func (e *env) validate(cfg string, extra ...string) result {
	e.t.Helper()
	return runCmd(e.t, e.awsEnv(extra...), "validate", "--config", cfg)
}

// wantLines requires a line starting with each prefix that also contains each
// of its words.
func wantLines(t *testing.T, r result, want map[string][]string) {
	t.Helper()
	for prefix, words := range want {
		l := r.line(prefix)
		if l == "" {
			t.Errorf("no line starting with %q in:\n%s", prefix, r.out)
			continue
		}
		for _, w := range words {
			if !strings.Contains(l, w) {
				t.Errorf("line %q lacks %q", l, w)
			}
		}
	}
}

// idsIn returns the sorted ids of the rows under dir, and how often each occurs.
func idsIn(t *testing.T, dir string) []int64 {
	t.Helper()
	rows := readLines(t, dir, func(r *rowLine, f string) { r.File = f })
	ids := make([]int64, 0, len(rows))
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	return ids
}

func idRange(from, to int) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, int64(i))
	}
	return out
}
