package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo runs `demo --keep` as a user would, from a directory of their
// own, and then pastes every command of its next steps into sh: each must
// exit 0 and show what the step promises. It also checks that the demo is
// quiet (no INFO lines on stderr; the log is in the file it names), that the
// URLs it prints answer, that /metrics carries the binary's build info, and
// that Ctrl-C stops the worker and both emulators.
func TestDemo(t *testing.T) {
	t.Parallel()
	const records = 300
	const bad = records / 10
	dir := t.TempDir()
	cmd := exec.Command(binary, "demo", "--keep", "--records", fmt.Sprint(records))
	cmd.Dir = dir
	cmd.Env = userEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	stdoutDone := make(chan string, 1)
	lines := make(chan string, 100)
	go func() {
		var all strings.Builder
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			lines <- sc.Text()
		}
		close(lines)
		stdoutDone <- all.String()
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
		}
	})
	go func() { exited <- cmd.Wait() }()

	var summary []string
	deadline := time.After(4 * time.Minute)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo exited before its next steps:\n%s\nstderr:\n%s", strings.Join(summary, "\n"), stderr.String())
			}
			summary = append(summary, l)
			if strings.HasPrefix(l, "Press Ctrl-C") {
				break wait
			}
		case <-deadline:
			t.Fatalf("no next steps after 4 minutes:\n%s\nstderr:\n%s", strings.Join(summary, "\n"), stderr.String())
		}
	}
	text := strings.Join(summary, "\n")
	t.Logf("demo output:\n%s", text)

	for _, want := range []string{
		fmt.Sprintf("rows:            %d  in demo-out/rows", records-bad),
		fmt.Sprintf("dead letters:     %d  in demo-out/dead-letters", bad),
		"config:  demo-out/demo.yaml  (the worker's log: demo-out/demo.log)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if strings.Contains(stderr.String(), "level=INFO") {
		t.Errorf("the demo is not quiet: INFO lines on stderr:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "ingesting: ") {
		t.Errorf("no progress line on stderr:\n%s", stderr.String())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "demo-out", "demo.log")); !bytes.Contains(b, []byte("level=INFO")) {
		t.Errorf("demo-out/demo.log has no INFO lines:\n%s", b)
	}

	// Each step's command, pasted into sh in the user's directory.
	var commands []string
	for _, l := range summary {
		if c, ok := strings.CutPrefix(strings.TrimSpace(l), "$ "); ok {
			commands = append(commands, c)
		}
	}
	wantOutput := map[string][]string{
		" errors ":       {fmt.Sprintf("dead letters: %d", bad), "schema_error", "decode_error", "by field (schema_error)"},
		" config print ": {"stream_arn: arn:aws:kinesis:us-east-1:000000000000:stream/demo-orders", "shutdown_timeout: 30s", "worker_id: demo-worker"},
		" validate ":     {"ok    source orders: stream exists", "ok    lease table demo-orders-ingest: reachable"},
	}
	ran := map[string]bool{}
	for _, c := range commands {
		sh := exec.Command("sh", "-c", c)
		sh.Dir = dir
		sh.Env = userEnv()
		got, err := sh.CombinedOutput()
		if err != nil {
			t.Errorf("next step %q failed: %v\n%s", c, err, got)
			continue
		}
		for k, wants := range wantOutput {
			if strings.Contains(c, k) {
				ran[k] = true
				for _, w := range wants {
					if !strings.Contains(string(got), w) {
						t.Errorf("next step %q: output lacks %q:\n%s", c, w, got)
					}
				}
			}
		}
		if strings.Contains(c, " validate ") && strings.Contains(string(got), "FAIL") {
			t.Errorf("validate fails on the demo's config:\n%s", got)
		}
	}
	for k := range wantOutput {
		if !ran[k] {
			t.Errorf("the next steps have no %q command: %q", strings.TrimSpace(k), commands)
		}
	}

	// The URLs it prints answer; /metrics says which build runs.
	urls := regexp.MustCompile(`http://127\.0\.0\.1:\d+/\S+`).FindAllString(text, -1)
	if len(urls) != 3 {
		t.Fatalf("want the /metrics, /readyz and /errors.html URLs, got %q", urls)
	}
	for _, u := range urls {
		r := httpGet(t, u, "")
		if r.code != 200 {
			t.Errorf("GET %s: %d %.200s", u, r.code, r.body)
		}
		switch {
		case strings.HasSuffix(u, "/metrics"):
			want := buildInfoSeries(t)
			if !strings.Contains(r.body, want) {
				t.Errorf("/metrics lacks %s; build_info lines: %q", want, regexp.MustCompile(`(?m)^kinesis_ingest_build_info.*$`).FindAllString(r.body, -1))
			}
		case strings.HasSuffix(u, "/errors.html"):
			if !strings.Contains(r.body, "schema_error") {
				t.Errorf("/errors.html shows no schema_error:\n%.500s", r.body)
			}
		}
	}

	// Ctrl-C stops everything.
	env, err := os.ReadFile(filepath.Join(dir, "demo-out", "demo.env"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("demo exited with %v after SIGINT, want 0\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatal("demo did not stop within 90s of SIGINT")
	}
	<-stdoutDone
	for _, m := range regexp.MustCompile(`AWS_ENDPOINT_URL_\w+=(\S+)`).FindAllStringSubmatch(string(env), -1) {
		if resp, err := http.Get(m[1]); err == nil {
			resp.Body.Close()
			t.Errorf("emulator at %s still answers after the demo stopped", m[1])
		}
	}

	// Without --keep the demo prints the same errors and config print steps
	// after its emulators are gone: they must work now too.
	for _, c := range commands {
		if strings.Contains(c, " validate ") {
			continue
		}
		sh := exec.Command("sh", "-c", c)
		sh.Dir = dir
		sh.Env = userEnv()
		if got, err := sh.CombinedOutput(); err != nil {
			t.Errorf("next step %q fails once the emulators are stopped: %v\n%s", c, err, got)
		}
	}
}

// userEnv is this process's environment without AWS settings, as in a
// fresh shell: the next steps must bring their own.
func userEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return env
}

// buildInfoSeries is the kinesis_ingest_build_info series the binary should
// expose, from what its `version --json` says.
func buildInfoSeries(t *testing.T) string {
	t.Helper()
	v := versionJSON(t)
	rev := v.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if v.Modified {
		rev += "-dirty"
	}
	return fmt.Sprintf(`kinesis_ingest_build_info{goversion=%q,revision=%q,version=%q} 1`, v.Go, rev, v.Version)
}

type versionInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision"`
	Time     string `json:"time"`
	Modified bool   `json:"modified"`
	Go       string `json:"go"`
}

func versionJSON(t *testing.T) versionInfo {
	t.Helper()
	out, err := exec.Command(binary, "version", "--json").Output()
	if err != nil {
		t.Fatalf("version --json: %v", err)
	}
	var v versionInfo
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("version --json: %v: %s", err, out)
	}
	return v
}

// TestVersion checks `version` against what the Go toolchain itself reads
// from the binary (`go version -m`): module version, VCS revision, time and
// modified flag, and the Go version.
func TestVersion(t *testing.T) {
	t.Parallel()
	v := versionJSON(t)
	out, err := exec.Command("go", "version", "-m", binary).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	want := versionInfo{Revision: "unknown", Time: "unknown"}
	for i, line := range strings.Split(string(out), "\n") {
		f := strings.Split(strings.TrimSpace(line), "\t")
		switch {
		case i == 0:
			want.Go = f[len(f)-1][strings.LastIndex(f[len(f)-1], " ")+1:]
		case len(f) >= 3 && f[0] == "mod":
			want.Version = f[2]
		case len(f) == 2 && f[0] == "build":
			k, val, _ := strings.Cut(f[1], "=")
			switch k {
			case "vcs.revision":
				want.Revision = val
			case "vcs.time":
				want.Time = val
			case "vcs.modified":
				want.Modified = val == "true"
			}
		}
	}
	if v != want {
		t.Errorf("version --json = %+v, go version -m says %+v\n%s", v, want, out)
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		got, err := exec.Command(binary, args...).Output()
		if err != nil {
			t.Fatalf("%s: %v", args, err)
		}
		line := fmt.Sprintf("kinesis-ingest %s (revision ", want.Version)
		if !strings.HasPrefix(string(got), line) || !strings.Contains(string(got), want.Go) {
			t.Errorf("%s = %q, want it to start with %q and name %s", args, got, line, want.Go)
		}
	}
	if err := exec.Command(binary, "version", "extra").Run(); err == nil {
		t.Error("version with an argument exits 0, want 2")
	}
}

// TestDemoLogger: without --verbose the demo's stderr gets warnings and
// errors only and its log file everything from info up; with it, both get
// debug and up.
func TestDemoLogger(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		verbose              bool
		wantFile, wantStderr []string
		notStderr            []string
	}{
		{false, []string{"level=INFO msg=leased", "level=WARN msg=retrying"}, []string{"level=WARN msg=retrying"}, []string{"INFO", "DEBUG"}},
		{true, []string{"level=DEBUG msg=read", "level=INFO msg=leased"}, []string{"level=DEBUG msg=read", "level=INFO msg=leased", "level=WARN msg=retrying"}, nil},
	} {
		var file, stderr bytes.Buffer
		log := demoLogger(&file, &stderr, tc.verbose).With("source", "orders")
		log.Debug("read")
		log.Info("leased")
		log.Warn("retrying")
		for _, w := range tc.wantFile {
			if !strings.Contains(file.String(), w) {
				t.Errorf("verbose=%v: log file lacks %q:\n%s", tc.verbose, w, file.String())
			}
		}
		for _, w := range tc.wantStderr {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("verbose=%v: stderr lacks %q:\n%s", tc.verbose, w, stderr.String())
			}
		}
		for _, w := range tc.notStderr {
			if strings.Contains(stderr.String(), w) {
				t.Errorf("verbose=%v: stderr has %q:\n%s", tc.verbose, w, stderr.String())
			}
		}
		if !strings.Contains(stderr.String(), "source=orders") {
			t.Errorf("verbose=%v: attributes lost on stderr:\n%s", tc.verbose, stderr.String())
		}
	}
}

// TestConfigCommands: `config schema` prints the committed schema (the file
// editors use), `config print` prints the effective config with secrets
// masked, and both report misuse with exit 2.
func TestConfigCommands(t *testing.T) {
	t.Parallel()
	committed, err := os.ReadFile("../../kinesis-ingest.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "config", "schema").Output()
	if err != nil {
		t.Fatalf("config schema: %v", err)
	}
	if !bytes.Equal(out, committed) {
		t.Error("config schema does not print kinesis-ingest.schema.json; regenerate it (go test ./internal/config -run TestSchemaFileIsCurrent -update)")
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "orders.yaml")
	if err := os.WriteFile(cfg, []byte(`
sources:
  - name: orders
    kinesis: {stream_arn: "${STREAM_ARN}"}
datasets:
  - {name: orders, source: orders, sink: pg, fields: [{name: ts, type: datetime}]}
sinks:
  - {name: pg, postgres: {dsn: "postgres://ingest:hunter2@db/x", table: orders}}
dead_letter:
  file: {path: errors}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "config", "print", "--config", cfg)
	cmd.Env = append(userEnv(), "STREAM_ARN=arn:aws:kinesis:eu-west-1:123456789012:stream/orders")
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("config print: %v", err)
	}
	for _, want := range []string{
		"stream_arn: arn:aws:kinesis:eu-west-1:123456789012:stream/orders",
		"dsn: postgres://*****@db/x",
		"path: " + filepath.Join(dir, "errors"),
		"init_position: latest",
		"batch_rows: 500",
		"application: orders",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("config print lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "hunter2") {
		t.Errorf("config print shows the DSN password:\n%s", out)
	}

	// --env selects as run would.
	envCfg := filepath.Join(dir, "envs.yaml")
	if err := os.WriteFile(envCfg, []byte(`
sources:
  - {name: orders, env: [prod], kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}}
  - {name: test_orders, env: [staging], kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/test-orders"}}
datasets:
  - {name: orders, source: orders, sink: out, fields: [{name: ts, type: datetime}]}
  - {name: test_orders, source: test_orders, sink: out, fields: [{name: ts, type: datetime}]}
sinks:
  - {name: out, file: {path: out}}
dead_letter:
  file: {path: errors}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(binary, "config", "print", "--config", envCfg, "--env", "staging").Output()
	if err != nil {
		t.Fatalf("config print --env staging: %v", err)
	}
	if !strings.Contains(string(out), "stream/test-orders") || strings.Contains(string(out), "stream/orders\n") {
		t.Errorf("config print --env staging does not print the staging source alone:\n%s", out)
	}

	for _, args := range [][]string{
		{"config", "print", "--config", envCfg, "--env", "qa"},
		{"config"},
		{"config", "frobnicate"},
		{"config", "print"},
		{"config", "print", "--config", filepath.Join(dir, "missing.yaml")},
	} {
		err := exec.Command(binary, args...).Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%q: %v, want exit 2", args, err)
		}
	}
}

// TestShellQuote: the paths the next steps print survive being pasted.
func TestShellQuote(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"demo-out/demo.yaml", "/tmp/x/kinesis-ingest", "my demo/it's.yaml", "", "a$b`c`\"d\\"} {
		out, err := exec.Command("sh", "-c", "printf %s "+shellQuote(s)).Output()
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if string(out) != s {
			t.Errorf("shellQuote(%q) = %s, which sh reads as %q", s, shellQuote(s), out)
		}
	}
	if got := shellQuote("demo-out/demo.yaml"); got != "demo-out/demo.yaml" {
		t.Errorf("a plain path is quoted: %s", got)
	}
}
