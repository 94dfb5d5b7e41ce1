// Package buildinfo says which build of kinesis-ingest is running, from what
// the Go toolchain stamps into every binary (runtime/debug.ReadBuildInfo):
// the main module's version, the VCS revision and time the tree was built
// from, whether it had local changes, and the Go version. Nothing is set by
// -ldflags, so a plain `go build` or `go install` reports the truth and no
// release step can forget to.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Unknown is the value of a field the binary does not carry (built without
// VCS information, e.g. with -buildvcs=false or outside a repository).
const Unknown = "unknown"

// Info describes one build.
type Info struct {
	// Version is the main module's version: a tag such as v1.2.3 for `go
	// install module@v1.2.3`, a pseudo-version when built in a tagged or
	// untagged repository, or "(devel)".
	Version   string
	Revision  string // vcs.revision, the full commit hash
	Time      string // vcs.time, RFC 3339
	Modified  bool   // vcs.modified: the tree had uncommitted changes
	GoVersion string // the toolchain that built the binary
}

// Read returns the running binary's build information.
func Read() Info {
	info := Info{Version: Unknown, Revision: Unknown, Time: Unknown, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	if bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// ShortRevision is Revision cut to 12 characters, with "-dirty" when the
// tree had local changes: enough to find the commit, short enough for a
// metric label.
func (i Info) ShortRevision() string {
	r := i.Revision
	if len(r) > 12 {
		r = r[:12]
	}
	if i.Modified {
		r += "-dirty"
	}
	return r
}

// String is the one line `kinesis-ingest version` prints.
func (i Info) String() string {
	return fmt.Sprintf("kinesis-ingest %s (revision %s, built %s, %s)", i.Version, i.ShortRevision(), i.Time, i.GoVersion)
}
