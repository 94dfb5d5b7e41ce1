package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/buildinfo"
)

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := flags("version", "kinesis-ingest version: print the module version, VCS revision and time, and Go version\nthe binary was built from (runtime/debug.ReadBuildInfo); /metrics has the same as\nkinesis_ingest_build_info.", stderr)
	asJSON := fs.Bool("json", false, "print a JSON object")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "version takes no arguments, got %q\n", fs.Args())
		return 2
	}
	bi := buildinfo.Read()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{
			"version": bi.Version, "revision": bi.Revision, "time": bi.Time,
			"modified": bi.Modified, "go": bi.GoVersion,
		}); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(stdout, bi)
	return 0
}
