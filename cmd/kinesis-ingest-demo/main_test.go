package main

import (
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/clitest"
)

// demoBinary and workerBinary are built side by side, as `make build` and a
// release lay them out: the demo's next steps name the worker beside it.
var demoBinary, workerBinary string

func TestMain(m *testing.M) {
	clitest.Main(m, map[string]string{".": "kinesis-ingest-demo", "../kinesis-ingest": "kinesis-ingest"}, func(p map[string]string) {
		demoBinary, workerBinary = p["kinesis-ingest-demo"], p["kinesis-ingest"]
	})
}
