package buildinfo

import (
	"runtime"
	"testing"
)

func TestShortRevision(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Info
		want string
	}{
		{"full hash", Info{Revision: "9c5d3d0bdf1bfc827037d99b3fb5d62727c69bc1"}, "9c5d3d0bdf1b"},
		{"local changes", Info{Revision: "9c5d3d0bdf1bfc827037d99b3fb5d62727c69bc1", Modified: true}, "9c5d3d0bdf1b-dirty"},
		{"no VCS information", Info{Revision: Unknown}, Unknown},
	} {
		if got := tc.in.ShortRevision(); got != tc.want {
			t.Errorf("%s: ShortRevision() = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestReadInTest: a test binary has build info too; its Go version is the
// running toolchain's.
func TestReadInTest(t *testing.T) {
	bi := Read()
	if bi.GoVersion != runtime.Version() {
		t.Errorf("GoVersion %q, want %q", bi.GoVersion, runtime.Version())
	}
	if bi.Version == "" || bi.Revision == "" || bi.Time == "" {
		t.Errorf("empty fields in %+v: want Unknown where the binary carries nothing", bi)
	}
}
