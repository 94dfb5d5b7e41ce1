package main

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/clitest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersion checks `version` against what the Go toolchain itself reads
// from the binary (`go version -m`): module version, VCS revision, time and
// modified flag, and the Go version.
func TestVersion(t *testing.T) {
	t.Parallel()
	v := clitest.Version(t, binary)
	out, err := exec.Command("go", "version", "-m", binary).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	want := clitest.VersionInfo{Revision: "unknown", Time: "unknown"}
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
		t.Error("config schema does not print kinesis-ingest.schema.json; regenerate it (go test ./internal/service/config -run TestSchemaFileIsCurrent -update)")
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
	cmd.Env = append(clitest.UserEnv(), "STREAM_ARN=arn:aws:kinesis:eu-west-1:123456789012:stream/orders")
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
