package main

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/clitest"
	"io"
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
	cmd := exec.Command(demoBinary, "--keep", "--records", fmt.Sprint(records))
	cmd.Dir = dir
	cmd.Env = clitest.UserEnv()
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
		sh.Env = clitest.UserEnv()
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
		code, body := get(t, u)
		if code != 200 {
			t.Errorf("GET %s: %d %.200s", u, code, body)
		}
		switch {
		case strings.HasSuffix(u, "/metrics"):
			want := clitest.BuildInfoSeries(t, workerBinary)
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s; build_info lines: %q", want, regexp.MustCompile(`(?m)^kinesis_ingest_build_info.*$`).FindAllString(body, -1))
			}
		case strings.HasSuffix(u, "/errors.html"):
			if !strings.Contains(body, "schema_error") {
				t.Errorf("/errors.html shows no schema_error:\n%.500s", body)
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
		sh.Env = clitest.UserEnv()
		if got, err := sh.CombinedOutput(); err != nil {
			t.Errorf("next step %q fails once the emulators are stopped: %v\n%s", c, err, got)
		}
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

// get fetches url; a connection error is status 0.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
