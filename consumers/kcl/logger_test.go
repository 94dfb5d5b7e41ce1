package kcl

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// The KCL's lines reach the worker's log one level lower, except its event
// loop's tick, which under the coordinator comes every few milliseconds and
// says nothing.
func TestKCLLinesInTheWorkersLog(t *testing.T) {
	tests := []struct {
		name  string
		log   func(slogAdapter)
		wants string // "" for nothing
	}{
		{"loop tick dropped", func(a slogAdapter) { a.Debugf("Waited %d ms to sync shards...", 2) }, ""},
		{"debug kept", func(a slogAdapter) { a.Debugf("Trying to read %d record from iterator: %v", 200, "it") }, "level=DEBUG msg=\"Trying to read 200 record from iterator: it\""},
		{"info lowered", func(a slogAdapter) { a.Infof("Found %d shards", 4) }, "level=DEBUG msg=\"Found 4 shards\""},
		{"rebalance lowered", func(a slogAdapter) { a.Warnf("Error in rebalance: %v", "x") }, "level=DEBUG"},
		{"warn kept", func(a slogAdapter) { a.Warnf("Couldn't fetch checkpoint: %v", "x") }, "level=WARN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			tc.log(slogAdapter{slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			switch {
			case tc.wants == "" && b.Len() > 0:
				t.Errorf("logged %q, want nothing", b.String())
			case tc.wants != "" && !strings.Contains(b.String(), tc.wants):
				t.Errorf("logged %q, want it to contain %q", b.String(), tc.wants)
			}
		})
	}
}
