// Package file implements sinks.RowSink and sinks.DeadLetterSink as JSON Lines
// files in a local directory.
//
// Every Write encodes its batch into one buffer, appends it to the current file,
// fsyncs the file and only then returns nil, so an acknowledged row is on disk.
// Concurrent Writes are committed by one goroutine that groups whatever is
// queued into one write+fsync (group commit); the lines of one Write stay
// contiguous and in order, and Writes from one shard (which the caller issues one
// after the other) keep their order.
//
// File names are <prefix>-<workerID>-<UTC start yyyymmddThhmmss>-<counter>.jsonl
// (the counter has at least 6 digits), so several workers can share a directory
// and the files of one worker sort by time. A file is rotated between batches
// when the next batch would make it exceed Config.MaxBytes; a batch is never
// split between files, so a single batch larger than MaxBytes gets a file of its
// own. A line is complete when it ends in '\n'.
//
// Outages (write or fsync errors, the directory removed or replaced) make Write
// return a wrapped, transient error that names the file. Before anything else
// is written, the sink truncates the file back to its last fsynced size, so no
// torn line stays behind. It checks on every Write that its file is still in
// the directory (and re-creates the directory if it is missing), so once the
// directory is usable again the next Write succeeds without a restart.
package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/freelist"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
)

// DefaultMaxBytes is the rotation size used when Config.MaxBytes is 0.
const DefaultMaxBytes int64 = 64 << 20

// Config configures a file sink.
type Config struct {
	// Dir is the directory the files go to; it is created if missing.
	Dir string
	// WorkerID is part of every file name, so that several workers can share a
	// directory. Required; letters, digits, '.', '_' and '-' only.
	WorkerID string
	// Prefix starts every file name, e.g. the dataset name for rows or
	// "dead-letters" for the dead letter queue. Defaults to "rows" for a RowSink
	// and "dead-letters" for a DeadLetterSink. Same characters as WorkerID.
	Prefix string
	// MaxBytes: rotate when the current file would exceed it. Default 64 MiB.
	MaxBytes int64
	// Mode is the permission of the files created (before the umask), 0600
	// when 0: they hold raw record payloads. Directories the sink creates get
	// it plus search (x) wherever it reads: 0700 for 0600, 0750 for 0640.
	// The owner must have read and write.
	Mode fs.FileMode
	// Changelog (a RowSink of a keyed dataset) adds "_op" to every line:
	// "upsert" or "delete". The file is then the dataset's changes in
	// arrival order, not its current state: a reader applies them by key,
	// the greatest timestamp winning, as the PostgreSQL sink does.
	Changelog bool
}

// DefaultMode is the permission of the files a sink creates: only the
// worker's user reads raw payloads.
const DefaultMode fs.FileMode = 0o600

// DirMode is the permission of a directory holding files of mode: mode plus
// search wherever it has read.
func DirMode(mode fs.FileMode) fs.FileMode {
	return mode | (mode&0o444)>>2
}

func (c Config) validate(defaultPrefix string) (Config, error) {
	if c.Dir == "" {
		return c, errors.New(`file sink: Config.Dir is "": set it to the directory the files go to`)
	}
	if c.WorkerID == "" {
		return c, errors.New(`file sink: Config.WorkerID is "": set it to a name unique among the workers sharing Config.Dir`)
	}
	if err := checkNamePart("WorkerID", c.WorkerID); err != nil {
		return c, err
	}
	if c.Prefix == "" {
		c.Prefix = defaultPrefix
	}
	if err := checkNamePart("Prefix", c.Prefix); err != nil {
		return c, err
	}
	switch {
	case c.Mode == 0:
		c.Mode = DefaultMode
	case c.Mode&^fs.ModePerm != 0 || c.Mode&0o600 != 0o600:
		return c, fmt.Errorf("file sink: Config.Mode is %#o: want permission bits only, with read and write for the owner (e.g. 0600, 0640)", uint32(c.Mode))
	}
	switch {
	case c.MaxBytes < 0:
		return c, fmt.Errorf("file sink: Config.MaxBytes is %d: must be positive (0 means the default, %d)", c.MaxBytes, DefaultMaxBytes)
	case c.MaxBytes == 0:
		c.MaxBytes = DefaultMaxBytes
	}
	return c, nil
}

func checkNamePart(field, v string) error {
	if v == "." || v == ".." {
		return fmt.Errorf("file sink: Config.%s is %q: not usable in a file name", field, v)
	}
	for _, r := range v {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return fmt.Errorf("file sink: Config.%s is %q: only letters, digits, '.', '_' and '-' are allowed in file names", field, v)
		}
	}
	return nil
}

// errClosed is returned by Write after Close.
var errClosed = errors.New("file sink: Write called after Close")

// request is one Write waiting for the committer.
type request struct {
	buf  []byte
	err  error
	done chan struct{}
}

// committer owns the files of one sink. Write calls enqueue encoded batches; a
// single goroutine (run) writes and fsyncs them, as many as are queued at once.
type committer struct {
	cfg  Config
	what string // "rows" or "dead letters", for messages
	log  *slog.Logger

	mu      sync.Mutex
	queue   []*request
	closing bool
	wake    chan struct{} // capacity 1
	stopped chan struct{} // closed when run returns
	closeMu sync.Mutex
	closed  bool
	// closeErr is set by run before it closes stopped.
	closeErr error

	// Owned by run.
	f         *os.File
	path      string
	info      os.FileInfo // of f when opened, to notice a replaced file
	size      int64       // fsynced size of f
	dirty     bool        // f may hold bytes after size: truncate before anything else
	drop      bool        // stop using f after repairing it
	counter   int
	lastStart time.Time

	// itemBytes is the encoded size of an item in the last batch written,
	// to size a batch's buffer once instead of doubling it up to its size.
	itemBytes atomic.Int64

	// noGroup turns group commit off (one fsync per Write), for the benchmark.
	noGroup bool
}

func newCommitter(cfg Config, defaultPrefix, what string, log *slog.Logger) (*committer, error) {
	cfg, err := cfg.validate(defaultPrefix)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	c := &committer{
		cfg:     cfg,
		what:    what,
		log:     log.With("sink_kind", "file", "dir", cfg.Dir, "prefix", cfg.Prefix),
		wake:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	if err := c.ensureDir(); err != nil {
		return nil, err
	}
	go c.run()
	return c, nil
}

// ensureDir creates Dir if it is missing (also after it was removed while the
// sink runs) and makes a newly created directory's entry durable.
func (c *committer) ensureDir() error {
	st, err := os.Stat(c.cfg.Dir)
	if err == nil {
		if !st.IsDir() {
			return fmt.Errorf("file sink: Config.Dir %q is not a directory: remove the file in its place or point Dir elsewhere", c.cfg.Dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file sink: Config.Dir %q: %w", c.cfg.Dir, err)
	}
	if err := os.MkdirAll(c.cfg.Dir, DirMode(c.cfg.Mode)); err != nil {
		return fmt.Errorf("file sink: creating Config.Dir %q: %w", c.cfg.Dir, err)
	}
	if err := syncDir(filepath.Dir(filepath.Clean(c.cfg.Dir))); err != nil {
		return fmt.Errorf("file sink: created Config.Dir %q but could not fsync its parent: %w", c.cfg.Dir, err)
	}
	return nil
}

// write hands an encoded batch to the committer and waits until it is durable.
// released reports whether the committer is done with buf.
func (c *committer) write(ctx context.Context, buf []byte) (released bool, err error) {
	if err := ctx.Err(); err != nil {
		return true, err
	}
	r := &request{buf: buf, done: make(chan struct{})}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return true, errClosed
	}
	c.queue = append(c.queue, r)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
		return true, r.err
	case <-ctx.Done():
	}
	select {
	case <-r.done: // finished anyway
		return true, r.err
	default:
	}
	// Take the batch back if the committer has not picked it up yet; otherwise
	// it may still be written, which the contract allows ("promises nothing").
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range c.queue {
		if q == r {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			return true, ctx.Err()
		}
	}
	return false, ctx.Err()
}

func (c *committer) close() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	<-c.stopped
	return c.closeErr
}

func (c *committer) run() {
	defer close(c.stopped)
	for {
		c.mu.Lock()
		batch := c.queue
		c.queue = nil
		closing := c.closing
		c.mu.Unlock()
		if len(batch) > 0 {
			c.commit(batch)
			continue
		}
		if closing {
			c.closeErr = c.closeFile()
			return
		}
		<-c.wake
	}
}

// commit writes the queued batches in order, each wholly into one file, with one
// fsync per file touched.
func (c *committer) commit(batch []*request) {
	for len(batch) > 0 {
		n := len(batch) // if the file cannot be made ready, fail everything queued
		err := c.prepare(int64(len(batch[0].buf)))
		if err == nil {
			n = 1
			total := int64(len(batch[0].buf))
			for n < len(batch) && !c.noGroup && c.size+total+int64(len(batch[n].buf)) <= c.cfg.MaxBytes {
				total += int64(len(batch[n].buf))
				n++
			}
			err = c.writeSync(batch[:n])
		}
		for _, r := range batch[:n] {
			r.err = err
			close(r.done)
		}
		batch = batch[n:]
	}
}

// prepare makes f a healthy file in Dir with room for a batch of size first
// (or an empty file, if the batch alone exceeds MaxBytes).
func (c *committer) prepare(first int64) error {
	if err := c.repair(); err != nil {
		return err
	}
	if c.f != nil {
		// Writing into a file that is no longer reachable from Dir (the
		// directory was removed, renamed or replaced) would not store anything
		// where it is read back: give it up and open a new file in Dir.
		st, err := os.Stat(c.path)
		if err != nil || !os.SameFile(st, c.info) {
			if err == nil {
				err = errors.New("a different file has taken its place")
			}
			c.log.Warn("file sink: current file is gone from the directory; opening a new one", "path", c.path, "err", err)
			c.closeCurrent()
		}
	}
	if c.f != nil && c.size > 0 && c.size+first > c.cfg.MaxBytes {
		c.closeCurrent()
	}
	if c.f == nil {
		return c.open()
	}
	return nil
}

// repair truncates f back to its fsynced size after a failed write and closes
// it if it must not be used any more.
func (c *committer) repair() error {
	if c.f == nil {
		return nil
	}
	if c.dirty {
		if err := c.f.Truncate(c.size); err != nil {
			return c.failure("cutting a torn line off (truncating to the last complete line)", c.path, err)
		}
		c.dirty = false
	}
	if c.drop {
		c.closeCurrent()
	}
	return nil
}

func (c *committer) closeCurrent() {
	if c.f == nil {
		return
	}
	if err := c.f.Close(); err != nil {
		// Everything in it was fsynced already; nothing is lost.
		c.log.Warn("file sink: closing file", "path", c.path, "err", err)
	}
	c.f, c.path, c.info, c.size, c.dirty, c.drop = nil, "", nil, 0, false, false
}

func (c *committer) open() error {
	start := time.Now().UTC().Truncate(time.Second)
	if start.Before(c.lastStart) { // the clock went back: keep names sorted
		start = c.lastStart
	}
	c.lastStart = start
	stamp := start.Format("20060102T150405")
	madeDir := false
	for tries := 0; ; tries++ {
		name := c.cfg.Prefix + "-" + c.cfg.WorkerID + "-" + stamp + "-" + pad6(c.counter) + ".jsonl"
		path := filepath.Join(c.cfg.Dir, name)
		// O_EXCL: never append to a file left by an earlier instance with the
		// same worker id, whose last line may be torn by a crash.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, c.cfg.Mode)
		if errors.Is(err, fs.ErrExist) && tries < 1000 {
			c.counter++
			continue
		}
		if errors.Is(err, fs.ErrNotExist) && !madeDir {
			// Dir was removed while the sink ran: create it again.
			madeDir = true
			if err := c.ensureDir(); err != nil {
				return c.failure("creating the directory for", path, err)
			}
			continue
		}
		if err != nil {
			return c.failure("creating", path, err)
		}
		c.counter++
		info, err := f.Stat()
		if err == nil {
			err = syncDir(c.cfg.Dir)
		}
		if err != nil {
			f.Close()
			os.Remove(path)
			return c.failure("creating", path, err)
		}
		c.f, c.path, c.info, c.size = f, path, info, 0
		c.log.Info("file sink: opened file", "path", path)
		return nil
	}
}

func (c *committer) writeSync(batch []*request) error {
	var written int64
	for _, r := range batch {
		n, err := c.f.Write(r.buf)
		written += int64(n)
		if err != nil {
			c.dirty = true
			if written > 0 {
				err = fmt.Errorf("%w (%d bytes of it were written; the sink cuts them off before writing anything else)", err, written)
			}
			err = c.failure("writing", c.path, err)
			c.repairNow()
			return err
		}
	}
	if err := c.f.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages:
		// nothing written since the last good fsync can be trusted, so cut it
		// off and continue in a new file.
		c.dirty, c.drop = true, true
		err = c.failure("fsyncing", c.path, err)
		c.repairNow()
		return err
	}
	var n int64
	for _, r := range batch {
		n += int64(len(r.buf))
	}
	c.size += n
	// The data is durable, but is it still where it will be looked for?
	st, err := os.Stat(c.path)
	if err != nil || !os.SameFile(st, c.info) {
		if err == nil {
			err = errors.New("a different file has taken its place")
		}
		c.drop = true
		return c.failure("checking after fsync that the file is still in the directory", c.path, fmt.Errorf("%s: %w", c.path, err))
	}
	return nil
}

// repairNow tries to cut a torn tail off right away, so that it does not stay
// behind even if no Write follows; if that fails (repair logs it), the next
// Write tries again before it writes anything.
func (c *committer) repairNow() { _ = c.repair() }

// failure logs a failed file operation and returns the error for Write: it
// names the file and says what to do.
func (c *committer) failure(op, path string, err error) error {
	c.log.Warn("file sink: "+op+" failed", "path", path, "err", err)
	what := op + " " + path
	if strings.Contains(err.Error(), path) { // an *fs.PathError names it already
		what = op
	}
	return fmt.Errorf("file sink: %s: %w (the %s of this Write were not acknowledged; make sure %s exists, is writable and has free space, then retry the Write: the sink recovers without a restart)",
		what, err, c.what, c.cfg.Dir)
}

func (c *committer) closeFile() error {
	if c.f == nil {
		return nil
	}
	if err := c.repair(); err != nil {
		c.f.Close()
		c.f = nil
		return err
	}
	if c.f == nil {
		return nil
	}
	path := c.path
	err := c.f.Sync()
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	c.f = nil
	if err != nil {
		c.log.Warn("file sink: closing file", "path", path, "err", err)
		return fmt.Errorf("file sink: closing %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

func pad6(n int) string {
	s := strconv.Itoa(n)
	for len(s) < 6 {
		s = "0" + s
	}
	return s
}

// encodeBatch encodes items into one buffer. Items that cannot be encoded are
// left out and listed in rejected, with the first such error.
func encodeBatch[T any](buf []byte, items []T, what string, enc func([]byte, *T) ([]byte, error)) (_ []byte, rejected []int, firstErr error) {
	for i := range items {
		start := len(buf)
		var err error
		buf, err = enc(buf, &items[i])
		if err != nil {
			buf = buf[:start]
			rejected = append(rejected, i)
			if firstErr == nil {
				firstErr = fmt.Errorf("file sink: %s %d: %w", what, i, err)
			}
		}
	}
	return buf, rejected, firstErr
}

// encodeBufs holds the encoded batches' buffers between Writes. A freelist,
// not a sync.Pool: one shard's batches come about as often as the worker
// collects garbage, which emptied the pool between them.
// It keeps 8, about the batches a worker has in its sinks at once, and only
// buffers of at most maxPooledBuf, so that it never holds over 32 MiB: what
// the worker's busiest moment needed anyway.
var encodeBufs = freelist.New[*[]byte](8)

// maxPooledBuf keeps an outsized batch's buffer out of encodeBufs.
const maxPooledBuf = 4 << 20

// writeBatch encodes items, writes and fsyncs them.
func writeBatch[T any](ctx context.Context, c *committer, items []T, what string, enc func([]byte, *T) ([]byte, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(items) == 0 {
		c.mu.Lock()
		closing := c.closing
		c.mu.Unlock()
		if closing {
			return errClosed
		}
		return nil
	}
	// A batch's encoded size is about its items times the last batch's size
	// per item; a new buffer gets that plus an eighth (one that doubled its
	// way there from 64 KiB left 1.9 times its size as garbage, and kept up
	// to twice what it needed). A kept buffer is replaced only when it is
	// short of the estimate itself, so that batches a little larger than
	// the last do not each replace it.
	need, want := 0, 64<<10
	if per := c.itemBytes.Load(); per > 0 {
		need = min(int(per)*len(items), maxPooledBuf)
		want = need + need/8
	}
	bp, ok := encodeBufs.Get()
	if !ok {
		b := make([]byte, 0, want)
		bp = &b
	} else if cap(*bp) < need {
		*bp = make([]byte, 0, want)
	}
	buf, rejected, rerr := encodeBatch((*bp)[:0], items, what, enc)
	if n := len(items) - len(rejected); n > 0 {
		c.itemBytes.Store(int64(len(buf) / n))
	}
	released, err := true, error(nil)
	if len(buf) > 0 {
		released, err = c.write(ctx, buf)
	} else if err = ctx.Err(); err == nil {
		c.mu.Lock()
		if c.closing {
			err = errClosed
		}
		c.mu.Unlock()
	}
	if released && cap(buf) <= maxPooledBuf {
		*bp = buf[:0]
		encodeBufs.Put(bp)
	}
	if err != nil {
		return err
	}
	if len(rejected) > 0 {
		return &sinks.RejectedError{Index: rejected, Err: rerr}
	}
	return nil
}
