package errview

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
)

// TestScanHeapOfLargeLetters: one view of 1,000 dead letters of 1 MiB each
// (the Kinesis maximum), all of them shown (limit=1000), holds a few MiB of
// heap at its peak, not the 1 GiB of data: a scan keeps of each letter only
// its preview and a clipped error. The peak is sampled with
// runtime.ReadMemStats while the scan runs.
func TestScanHeapOfLargeLetters(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1.3 GB of dead letters")
	}
	const n, size = 1000, 1 << 20
	start := time.Now()
	dir := t.TempDir()
	writeLargeLetters(t, dir, n, size)
	t.Logf("written in %s", time.Since(start))
	start = time.Now()

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
	s, err := Summarize(context.Background(), FileSource{Dir: dir, Prefix: "dead-letters"}, Query{Limit: MaxLimit})
	runtime.ReadMemStats(&ms)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if s.Total != n || len(s.Latest) != n || s.Latest[0].Size != size || !s.Latest[0].Preview.Truncated ||
		len(s.Latest[0].Preview.Text) != PreviewBytes || len(s.Latest[0].Error) > MaxErrorBytes+len("…") {
		t.Fatalf("view: total %d, %d latest, first %+v", s.Total, len(s.Latest), s.Latest[0])
	}
	t.Logf("scanned in %s", time.Since(start))
	grew := int64(max(peak.Load(), ms.HeapAlloc)) - int64(base)
	const bound = 64 << 20
	t.Logf("peak heap above the baseline during the scan: %.1f MiB for %d MiB of data (%.3f of it)",
		float64(grew)/(1<<20), n*size>>20, float64(grew)/float64(n*size))
	if grew > bound {
		t.Errorf("the scan's heap grew %d MiB, want under %d MiB: it holds the letters' data", grew>>20, bound>>20)
	}
}

// writeLargeLetters writes n schema_error dead letters of size bytes of
// (text) data with 4 KiB errors: one written by the real file sink, copied
// n times into one file (the sink's fsyncs would make the test slow, not
// truer).
func writeLargeLetters(t testing.TB, dir string, n, size int) {
	t.Helper()
	tmp := t.TempDir()
	sink, err := file.NewDeadLetterSink(file.Config{Dir: tmp, WorkerID: "w1", Prefix: "dead-letters"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte(`{"id":1,"note":"0123456789abcdef"}`), size/34+1)[:size]
	l := letter(0, "shardId-000000000000", record.ReasonSchema, "orders", fmt.Sprintf("note: want int, got string %q", bytes.Repeat([]byte("x"), 4096)), data)
	if err := sink.Write(context.Background(), []record.DeadLetter{l}); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	written, _ := file.Reader{Dir: tmp, Prefix: "dead-letters"}.Files()
	if len(written) != 1 {
		t.Fatalf("the sink wrote %v", written)
	}
	line, err := os.ReadFile(written[0])
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, filepath.Base(written[0])))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range n {
		if _, err := f.Write(line); err != nil {
			t.Fatal(err)
		}
	}
}

// countingSource counts the scans of a Source and how many ran at once; a
// scan waits for release, so that requests pile up behind it.
type countingSource struct {
	Source
	release        chan struct{}
	scans, running atomic.Int32
	mostAtOnce     atomic.Int32
}

func (c *countingSource) Scan(ctx context.Context, q Query, t *Tally) (ScanStats, error) {
	c.scans.Add(1)
	r := c.running.Add(1)
	defer c.running.Add(-1)
	if r > c.mostAtOnce.Load() {
		c.mostAtOnce.Store(r)
	}
	<-c.release
	return c.Source.Scan(ctx, q, t)
}

// TestConcurrentRequestsShareOneScan: 20 requests at once for the same view
// cost one scan (and the next ones within CacheTTL none); 20 requests for 20
// different views run one scan at a time, at most MaxPending of them, and
// the rest are told to retry (503, Retry-After).
func TestConcurrentRequestsShareOneScan(t *testing.T) {
	src := &countingSource{Source: FileSource{Dir: fixture(t), Prefix: "dead-letters"}, release: make(chan struct{})}
	c := newViewCache(src)
	srv := httptest.NewServer(c.handler(slog.New(slog.DiscardHandler)))
	defer srv.Close()

	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	// waitWaiters waits until n requests wait on the scan of key.
	waitWaiters := func(key string, n int32) {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			c.mu.Lock()
			f := c.flights[key]
			c.mu.Unlock()
			if f != nil && f.waiters.Load() >= n {
				return
			}
		}
		t.Fatalf("fewer than %d requests joined the scan of %s", n, key)
	}

	const clients = 20
	codes := make([]int, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() { codes[i], _ = get("/errors?limit=1000") })
	}
	waitWaiters(viewKey(map[string][]string{"limit": {"1000"}}), clients)
	close(src.release)
	wg.Wait()
	for i, code := range codes {
		if code != 200 {
			t.Errorf("request %d: %d, want 200", i, code)
		}
	}
	if code, _ := get("/errors?limit=1000"); code != 200 {
		t.Errorf("a request after them: %d", code)
	}
	if got := src.scans.Load(); got != 1 {
		t.Errorf("%d requests for one view ran %d scans, want 1", clients+1, got)
	}

	// Distinct views: one scan at a time, a bounded queue.
	src.scans.Store(0)
	src.release = make(chan struct{})
	var busy, ok atomic.Int32
	for i := range clients {
		wg.Go(func() {
			switch code, retry := get(fmt.Sprintf("/errors?limit=%d", i+1)); {
			case code == 200:
				ok.Add(1)
			case code == http.StatusServiceUnavailable && retry != "":
				busy.Add(1)
			default:
				t.Errorf("limit=%d: %d (Retry-After %q), want 200 or 503 with Retry-After", i+1, code, retry)
			}
		})
	}
	for deadline := time.Now().Add(30 * time.Second); busy.Load() < clients-MaxPending && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	close(src.release)
	wg.Wait()
	if ok.Load() != MaxPending || busy.Load() != clients-MaxPending || src.scans.Load() != MaxPending || src.mostAtOnce.Load() != 1 {
		t.Errorf("20 distinct views: %d served, %d told to retry, %d scans, at most %d at once; want %d, %d, %d, 1",
			ok.Load(), busy.Load(), src.scans.Load(), src.mostAtOnce.Load(), MaxPending, clients-MaxPending, MaxPending)
	}
}

// TestScanSkipsWhatIsNotARegularFile: a FIFO, a symlink to /dev/zero and a
// directory named like dead-letter files are skipped, not read (reading
// them would block or never end); the real files are read.
func TestScanSkipsWhatIsNotARegularFile(t *testing.T) {
	dir := fixture(t)
	if err := syscall.Mkfifo(filepath.Join(dir, "dead-letters-fifo.jsonl"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "dead-letters-zero.jsonl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "dead-letters-dir.jsonl"), 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Summarize(ctx, FileSource{Dir: dir, Prefix: "dead-letters"}, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total != 8 || s.Stats.SkippedFiles != 3 || s.Stats.Files != 3 {
		t.Errorf("total %d, %d files read, %d skipped; want 8, 3 and 3", s.Total, s.Stats.Files, s.Stats.SkippedFiles)
	}
}

// BenchmarkFileScan scans 100 dead letters of 1 MiB (the view's worst
// case per letter): throughput (-benchmem shows what one view allocates).
func BenchmarkFileScan(b *testing.B) {
	dir := b.TempDir()
	writeLargeLetters(b, dir, 100, 1<<20)
	info, _ := file.Reader{Dir: dir}.Files()
	fi, _ := os.Stat(info[0])
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Summarize(context.Background(), FileSource{Dir: dir, Prefix: "dead-letters"}, Query{Limit: MaxLimit}); err != nil {
			b.Fatal(err)
		}
	}
}
