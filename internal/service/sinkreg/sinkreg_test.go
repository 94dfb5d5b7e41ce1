package sinkreg

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
)

// check runs p as validate does: the class and hint of a failure.
func check(p Probe) (ok bool, class, hint string) {
	_, err := p.Run(context.Background())
	if err == nil {
		return true, "", ""
	}
	class, hint = p.Explain(err)
	return false, class, hint
}

func TestProbeDir(t *testing.T) {
	dir := t.TempDir()
	if ok, class, hint := check(dirProbe("sink x: writable", filepath.Join(dir, "a", "b"), 0o600)); !ok {
		t.Fatalf("probe of a new directory: %s: %s", class, hint)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "a", "b")); len(ents) != 0 {
		t.Errorf("probe left %v", ents)
	}
	// validate creates the directory as the sink would: not readable by others.
	if fi, err := os.Stat(filepath.Join(dir, "a", "b")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory created by the probe: %v %v, want 0700", fi.Mode().Perm(), err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if ok, class, hint := check(dirProbe("sink x: writable", filepath.Join(file, "rows"), 0o600)); ok || class != ClassNotWritable || !strings.Contains(hint, "is a file") {
		t.Errorf("probe under a file: %v %s %s", ok, class, hint)
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o555)
		if ok, class, hint := check(dirProbe("sink x: writable", ro, 0o600)); ok || class != ClassAccessDenied {
			t.Errorf("probe of a read-only directory: %v %s %s", ok, class, hint)
		}
	}
}

// TestEveryKindOfTheConfigIsRegistered: every sink kind the config accepts
// is registered (Register refuses a kind without every part), and a kind the
// build lacks is an error that names the kinds it has.
func TestEveryKindOfTheConfigIsRegistered(t *testing.T) {
	for _, kind := range config.SinkKinds() {
		if _, err := Lookup(kind); err != nil {
			t.Errorf("config sink kind %q: %v", kind, err)
		}
	}
	if got := strings.Join(Names(), ","); got != strings.Join(config.SinkKinds(), ",") {
		t.Errorf("registered kinds %s, the config's %v", got, config.SinkKinds())
	}
	_, err := Lookup("gcs")
	if err == nil || !strings.Contains(err.Error(), `"gcs"`) || !strings.Contains(err.Error(), "file") {
		t.Errorf("an unknown kind: %v", err)
	}
}
