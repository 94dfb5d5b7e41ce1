// Package envtest starts the test environments of internal/testenv for a Go
// test: each helper stops what it started in t.Cleanup, logs an emulator's log
// tail when the test failed, and calls t.Fatal on error. The plain APIs it
// wraps (emulators, testaws) import no testing, so that the demo command can
// use them without linking the testing package into the worker binary.
package envtest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/emulators"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// startTimeout bounds an emulator's startup inside a test, npm install
// included.
const startTimeout = 3 * emulators.StartTimeout

// Kinesis starts kinesis-mock for a test.
func Kinesis(t testing.TB) *emulators.Server {
	t.Helper()
	return start(t, "kinesis-mock", "")
}

// Dynamo starts dynalite for a test.
func Dynamo(t testing.TB) *emulators.Server {
	t.Helper()
	return start(t, "dynalite", "")
}

// KinesisPersistent is Kinesis with kinesis-mock's persistence on: its state
// is saved under dir every 500ms and on a graceful Stop, and loaded again by
// Restart, so that a test can restart the emulator mid-run without losing the
// stream.
func KinesisPersistent(t testing.TB, dir string) *emulators.Server {
	t.Helper()
	return start(t, "kinesis-mock", dir)
}

// DynamoPersistent is Dynamo with dynalite's tables kept on disk under dir
// (LevelDB), so that Restart finds them again.
func DynamoPersistent(t testing.TB, dir string) *emulators.Server {
	t.Helper()
	return start(t, "dynalite", dir)
}

func start(t testing.TB, name, persistDir string) *emulators.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	s, err := emulators.Start(ctx, name, emulators.Options{LogDir: t.TempDir(), PersistDir: persistDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log tail (%s):\n%s", s.Name, s.LogPath, s.LogTail(emulators.LogTailBytes))
		}
		if err := s.Stop(); err != nil {
			t.Errorf("stop %s: %v", s.Name, err)
		}
	})
	return s
}

// CreateStream creates a provisioned stream with the given shard count, waits
// until it is ACTIVE and returns its ARN (testaws.CreateStreamCtx).
func CreateStream(t testing.TB, kc *kinesis.Client, name string, shards int) (arn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testaws.Timeout)
	defer cancel()
	arn, err := testaws.CreateStreamCtx(ctx, kc, name, shards)
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

// PutJSON puts records into stream (testaws.Put). Despite the name it does
// not look at the bytes: malformed JSON goes in as is, which is handy for
// decoder error tests.
func PutJSON(t testing.TB, kc *kinesis.Client, stream string, records [][]byte, partitionKeys []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testaws.Timeout)
	defer cancel()
	if err := testaws.Put(ctx, kc, stream, records, partitionKeys); err != nil {
		t.Fatal(err)
	}
}
