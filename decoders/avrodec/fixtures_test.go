package avrodec

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

const jsDir = "testdata/js"

// TestAvscFixturesReproducible re-runs testdata/js/generate.js (npm avsc, an
// Avro implementation independent of goavro) and checks that it writes
// exactly the committed testdata/avsc files, so the fixtures the other tests
// decode are what avsc writes, not bytes edited by hand. It needs Node.js;
// it installs the pinned avsc (npm ci) when node_modules is missing.
func TestAvscFixturesReproducible(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found: Node.js 20+ is a prerequisite (README); it checks the fixtures against avsc: %v", err)
	}
	ensureAvsc(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "generate.js", out)
	cmd.Dir = jsDir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node generate.js: %v\n%s", err, b)
	}
	committed := listDir(t, "testdata/avsc")
	generated := listDir(t, out)
	if !slices.Equal(committed, generated) {
		t.Fatalf("generate.js writes %v, testdata/avsc has %v", generated, committed)
	}
	for _, name := range committed {
		want := readFile(t, filepath.Join("testdata", "avsc", name))
		if got := readFile(t, filepath.Join(out, name)); !bytes.Equal(got, want) {
			t.Errorf("%s differs from what generate.js writes now:\ncommitted % x\ngenerated % x\nrun `cd %s && node generate.js` and review the change", name, want, got, jsDir)
		}
	}
}

// ensureAvsc runs `npm ci` in testdata/js unless node_modules already has the
// avsc version package-lock.json pins.
func ensureAvsc(t *testing.T) {
	t.Helper()
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(jsDir, "package-lock.json")), &lock); err != nil {
		t.Fatal(err)
	}
	want := lock.Packages["node_modules/avsc"].Version
	var installed struct {
		Version string `json:"version"`
	}
	if b, err := os.ReadFile(filepath.Join(jsDir, "node_modules", "avsc", "package.json")); err == nil {
		_ = json.Unmarshal(b, &installed)
	}
	if want != "" && installed.Version == want {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("avsc %s is not installed in %s and npm is not found: run `npm ci` there", want, jsDir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = jsDir
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s (it needs the npm registry or a warm npm cache): %v\n%s", jsDir, err, b)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}
