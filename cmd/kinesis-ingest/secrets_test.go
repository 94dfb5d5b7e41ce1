package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSecretsNeverEchoed feeds every credential-bearing setting (the schema
// registry's URL, username, password and token, every PostgreSQL DSN) a
// malformed or unusable value holding a password, and checks what validate,
// errors and run print (exit code aside, their whole output) for the
// password, and for the user of a URL's userinfo.
func TestSecretsNeverEchoed(t *testing.T) {
	t.Parallel()
	const secret = "Hunter2xyz"
	dir := t.TempDir()
	const source = `sources:
  - name: orders
    kinesis:
      stream_arn: arn:aws:kinesis:us-east-1:000000000000:stream/orders
      format: %FORMAT%
`
	const rest = `datasets:
  - name: orders
    source: orders
    fields: [{name: id, type: int}, {name: ts, type: datetime}]
    sink: out
sinks:
  - name: out
    %SINK%
dead_letter:
  %DL%
consumer: {application: orders-ingest, worker_id: w1}
metrics: {listen: ""}
errors: {listen: ""}
`
	fileSink := "file: {path: " + filepath.Join(dir, "rows") + "}"
	fileDL := "file: {path: " + filepath.Join(dir, "dl") + "}"
	tests := []struct {
		name, format, sink, dl string
		user                   string // a URL's user, which must not show either
	}{
		{name: "registry url with a bad port", format: `{avro: {registry: {url: "https://alice:` + secret + `@registry:bad/"}}}`, user: "alice"},
		{name: "registry url with a bad escape", format: `{avro: {registry: {url: "http://alice:` + secret + `%zz@registry/"}}}`, user: "alice"},
		{name: "registry url with a slash in the password", format: `{avro: {registry: {url: "https://alice:` + secret + `/x@registry"}}}`, user: "alice"},
		{name: "registry url without a scheme", format: `{avro: {registry: {url: "alice:` + secret + `@registry:8081"}}}`, user: "alice"},
		{name: "registry url unreachable", format: `{avro: {registry: {url: "http://alice:` + secret + `@127.0.0.1:1"}}}`, user: "alice"},
		{name: "registry password without user", format: `{avro: {registry: {url: "https://registry", password: "` + secret + `"}}}`},
		{name: "registry token with user and password", format: `{avro: {registry: {url: "https://registry", token: "` + secret + `", username: u, password: "` + secret + `"}}}`},
		{name: "sink dsn with a bad port", sink: `postgres: {dsn: "postgres://alice:` + secret + `@127.0.0.1:99999/db", table: orders}`},
		{name: "sink dsn with a bad escape", sink: `postgres: {dsn: "postgres://alice:` + secret + `%zz@127.0.0.1/db", table: orders}`},
		{name: "sink dsn unreachable", sink: `postgres: {dsn: "postgres://alice:` + secret + `@127.0.0.1:1/db?connect_timeout=2", table: orders}`},
		{name: "dead-letter dsn with a bad port", dl: `postgres: {dsn: "host=127.0.0.1 port=notaport user=alice password=` + secret + `", table: dl}`},
		{name: "dead-letter dsn unreachable", dl: `postgres: {dsn: "host=127.0.0.1 port=1 user=alice password=` + secret + ` dbname=x connect_timeout=2", table: dl}`},
		{name: "dead-letter dsn garbled", dl: `postgres: {dsn: "password='` + secret + ` host=", table: dl}`},
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		// Nothing answers: no call reaches AWS.
		"AWS_ENDPOINT_URL=http://127.0.0.1:1", "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_MAX_ATTEMPTS=1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			format, sink, dl := "json", fileSink, fileDL
			if tt.format != "" {
				format = tt.format
			}
			if tt.sink != "" {
				sink = tt.sink
			}
			if tt.dl != "" {
				dl = tt.dl
			}
			body := strings.ReplaceAll(source, "%FORMAT%", format) +
				strings.NewReplacer("%SINK%", sink, "%DL%", dl).Replace(rest)
			cfg := filepath.Join(dir, "config"+string(rune('a'+i))+".yaml")
			if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range []string{"validate", "errors", "run"} {
				var r result
				if cmd == "run" {
					r = runUntilRetrying(t, env, "--config", cfg)
				} else {
					r = runCmd(t, env, cmd, "--config", cfg)
				}
				if r.code == 0 && cmd != "errors" { // errors reads only the dead letters
					t.Errorf("%s exited 0 on a config that cannot work:\n%s", cmd, r.out)
				}
				if strings.Contains(r.out, secret) {
					t.Errorf("%s printed the password:\n%s", cmd, r.out)
				}
				if tt.user != "" && strings.Contains(r.out, tt.user) {
					t.Errorf("%s printed the URL's user %q:\n%s", cmd, tt.user, r.out)
				}
			}
		})
	}
}

// runUntilRetrying runs `run`, which, with a dependency down at start, waits
// for it (unready) and never exits by itself: it is stopped once it has
// logged its second wait, so that its output holds the start-up checks and
// the waiting worker's retries, the lines that would carry a secret.
func runUntilRetrying(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"run"}, args...)...)
	cmd.Env = env
	var mu sync.Mutex
	var out bytes.Buffer
	w := lockedWriter{mu: &mu, b: &out}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	snapshot := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	waitFor(t, time.Minute, "run to exit or to wait for its dependencies twice", func() bool {
		select {
		case <-exited:
			return true
		default:
			return strings.Count(snapshot(), "retrying") >= 2
		}
	})
	cmd.Process.Kill()
	<-exited
	return result{out: snapshot(), code: cmd.ProcessState.ExitCode()}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
