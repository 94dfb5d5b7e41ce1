package file

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestPartialWriteCutOff makes the kernel refuse a write half way (a real
// EFBIG from RLIMIT_FSIZE, which binds root too, standing in for a full disk)
// and checks that the torn tail is cut off and the retried batch is stored once
// the limit is lifted, without a restart. The limit applies to a whole
// process, so the faulty part runs in a child process of the test binary.
func TestPartialWriteCutOff(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPartialWriteChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "FILESINK_PARTIAL_WRITE_DIR="+dir)
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestPartialWriteChild") {
		t.Fatal("child did not run")
	}
	rows := readRows(t, dir, "orders") // fails on a torn line
	if len(rows) != 20 {
		t.Fatalf("%d rows stored, want 20", len(rows))
	}
	for i, r := range rows {
		if seq := rowInt(t, r, "seq"); seq != int64(i) {
			t.Errorf("row %d has seq %d", i, seq)
		}
	}
}

func TestPartialWriteChild(t *testing.T) {
	dir := os.Getenv("FILESINK_PARTIAL_WRITE_DIR")
	if dir == "" {
		t.Skip("runs as a child of TestPartialWriteCutOff")
	}
	var logBuf syncBuffer
	s, err := NewRowSink(Config{Dir: dir, WorkerID: testWorker, Prefix: "orders"}, slog.New(slog.NewTextHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Write(ctx, testBatch("shardId-1", 0, 0, 10)); err != nil {
		t.Fatal(err)
	}
	fs := files(t, dir, "orders")
	if len(fs) != 1 {
		t.Fatalf("files %v", fs)
	}
	st, err := os.Stat(fs[0])
	if err != nil {
		t.Fatal(err)
	}
	good := st.Size()

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	// From here until the limit is restored, nothing but the sink's file may
	// be written to (t.Log output goes to a pipe, but keep quiet anyway).
	lim := old
	lim.Cur = uint64(good) + 100 // room for part of the first line only
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	werr := s.Write(ctx, testBatch("shardId-1", 1, 10, 10))
	st2, serr := os.Stat(fs[0])
	rerr := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old)
	if rerr != nil {
		t.Fatal(rerr)
	}

	if werr == nil {
		t.Fatal("Write past RLIMIT_FSIZE succeeded")
	}
	t.Logf("Write under the limit: %v", werr)
	for _, w := range []string{fs[0], "file too large", "100 bytes of it were written"} {
		if !strings.Contains(werr.Error(), w) {
			t.Errorf("error %q does not mention %q", werr, w)
		}
	}
	if serr != nil {
		t.Fatal(serr)
	}
	if st2.Size() != good {
		t.Errorf("file is %d bytes after the failed write, want it cut back to %d", st2.Size(), good)
	}
	if !strings.Contains(logBuf.String(), "level=WARN") {
		t.Errorf("no warning logged: %s", logBuf.String())
	}
	if err := s.Write(ctx, testBatch("shardId-1", 1, 10, 10)); err != nil {
		t.Fatalf("retry after lifting the limit: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(files(t, dir, "orders")); n != 1 {
		t.Errorf("%d files: the repaired file should have been kept", n)
	}
}
