// Package clitest holds what the tests of the commands (cmd/kinesis-ingest,
// cmd/kinesis-ingest-demo) share when they run a built binary: the build,
// the environment of a fresh shell, and the build-info series the binary
// must expose.
package clitest

import (
	"context"
	"path/filepath"
	"time"

	"encoding/json"
	"fmt"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/emulators"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Build builds the command in pkgDir into out with the go tool; its
// output goes to stderr. It is called from TestMain, before any test.
func Build(pkgDir, out string) error {
	build := exec.Command("go", "build", "-o", out, ".")
	build.Dir = pkgDir
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build %s: %w", pkgDir, err)
	}
	return nil
}

// UserEnv is this process's environment without AWS settings, as in a
// fresh shell: a command run with it must bring its own.
func UserEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return env
}

// VersionInfo is what `kinesis-ingest version --json` prints.
type VersionInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision"`
	Time     string `json:"time"`
	Modified bool   `json:"modified"`
	Go       string `json:"go"`
}

// Version runs `worker version --json`.
func Version(t testing.TB, worker string) VersionInfo {
	t.Helper()
	out, err := exec.Command(worker, "version", "--json").Output()
	if err != nil {
		t.Fatalf("version --json: %v", err)
	}
	var v VersionInfo
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("version --json: %v: %s", err, out)
	}
	return v
}

// BuildInfoSeries is the kinesis_ingest_build_info series a binary built
// from the same tree as worker should expose, from what worker's `version
// --json` says.
func BuildInfoSeries(t testing.TB, worker string) string {
	t.Helper()
	v := Version(t, worker)
	rev := v.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if v.Modified {
		rev += "-dirty"
	}
	return fmt.Sprintf(`kinesis_ingest_build_info{goversion=%q,revision=%q,version=%q} 1`, v.Go, rev, v.Version)
}

// Main is the TestMain of a command's tests: it builds each package dir of
// builds into a temporary folder under the file name given, installs the
// emulators, calls set with the binaries' paths (by file name), runs the
// tests and removes the folder. It exits the process.
func Main(m *testing.M, builds map[string]string, set func(paths map[string]string)) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "kinesis-ingest-bin")
	if err != nil {
		fail(err)
	}
	paths := map[string]string{}
	for pkg, name := range builds {
		paths[name] = filepath.Join(dir, name)
		if err := Build(pkg, paths[name]); err != nil {
			fail(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	if err := emulators.EnsureInstalled(ctx); err != nil {
		fail(err)
	}
	cancel()
	set(paths)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
