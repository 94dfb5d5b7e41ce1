package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/clitest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/emulators"
)

// demoBinary and workerBinary are built side by side, as `make build` and a
// release lay them out: the demo's next steps name the worker beside it.
var demoBinary, workerBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kinesis-ingest-demo-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	demoBinary = filepath.Join(dir, "kinesis-ingest-demo")
	workerBinary = filepath.Join(dir, "kinesis-ingest")
	for _, b := range []struct{ pkg, out string }{{".", demoBinary}, {"../kinesis-ingest", workerBinary}} {
		if err := clitest.Build(b.pkg, b.out); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	if err := emulators.EnsureInstalled(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cancel()
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
