package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/kinesis-ingest/kinesis-ingest/sinks/letterjson"
)

// Reader reads back what file sinks wrote to Dir: the <Prefix>-*.jsonl files
// of every worker sharing it, in name order (so each worker's in time order).
// The sinks' format is this package's alone: the errors view, the demo, the
// benchmarks and the tests read it through here.
//
// A last line without its newline is a write in progress (or cut off by a
// crash and not yet repaired by the sink): it is not read, and counted in
// ReadStats.Partial. Only regular files are read: a FIFO, a device or a
// symlink (to /dev/zero, say) named like a sink's file is counted in
// ReadStats.SkippedFiles and left alone, since reading it could block or
// never end. A missing Dir holds nothing yet.
type Reader struct {
	Dir string
	// Prefix selects one sink's files: a dataset's name, or "dead-letters"
	// (the dead-letter sink's default); "" reads every file sink's files.
	Prefix string
}

// ReadStats says what a read found.
type ReadStats struct {
	Files int // files read
	// SkippedLines are lines that are not what was asked for (DeadLetters:
	// lines that are not dead letters).
	SkippedLines int
	// SkippedFiles are names like a sink's files that are not regular files.
	SkippedFiles int
	// Partial counts the files whose last line is not complete yet.
	Partial int
}

func (s *ReadStats) add(o ReadStats) {
	s.Files += o.Files
	s.SkippedLines += o.SkippedLines
	s.SkippedFiles += o.SkippedFiles
	s.Partial += o.Partial
}

// Lines calls fn with each complete line of every file, without its newline:
// a row sink's rows as JSON objects (see RowSink), or a dead-letter sink's
// letters (see DeadLetterSink). line is valid only during the call; an error
// from fn stops the read and is returned. Lines may be of any length.
func (r Reader) Lines(ctx context.Context, fn func(file string, line []byte) error) (ReadStats, error) {
	return r.read(ctx, nil, fn)
}

// Files lists the files Lines reads, sorted.
func (r Reader) Files() ([]string, error) {
	if fi, err := os.Stat(r.Dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil // nothing written yet
		}
		return nil, fmt.Errorf("file sink directory %s: %w", r.Dir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("file sink directory %s is not a directory", r.Dir)
	}
	pattern := "*.jsonl"
	if r.Prefix != "" {
		pattern = r.Prefix + "-*.jsonl"
	}
	names, err := filepath.Glob(filepath.Join(r.Dir, pattern))
	if err != nil {
		return nil, fmt.Errorf("list the files in %s: %w", r.Dir, err)
	}
	slices.Sort(names)
	return names, nil
}

// Tail reads what the sinks appended since its last read: a benchmark or a
// test that polls a growing directory reads each line once.
type Tail struct {
	Reader
	next map[string]int64 // per file, the offset after its last complete line read
}

// Lines is Reader.Lines for the lines completed since the last call.
func (t *Tail) Lines(ctx context.Context, fn func(file string, line []byte) error) (ReadStats, error) {
	if t.next == nil {
		t.next = map[string]int64{}
	}
	return t.read(ctx, t.next, fn)
}

// read reads every file, from from[name] when from is not nil (advancing it).
func (r Reader) read(ctx context.Context, from map[string]int64, fn func(file string, line []byte) error) (ReadStats, error) {
	var st ReadStats
	names, err := r.Files()
	if err != nil {
		return st, err
	}
	var buf []byte
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		fst, err := readFile(ctx, name, from, &buf, fn)
		st.add(fst)
		switch {
		case errors.Is(err, os.ErrNotExist):
			continue // removed since the listing
		case errors.Is(err, errNotRegular):
			st.SkippedFiles++
			continue
		case err != nil:
			return st, err
		}
		st.Files++
	}
	return st, nil
}

var errNotRegular = errors.New("not a regular file")

// openRegular opens name for reading only if it is a regular file itself (not
// a symlink), without blocking on a FIFO.
func openRegular(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|openNoFollow|openNonBlock, 0)
	if err != nil {
		if isSymlinkRefused(err) {
			return nil, errNotRegular
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errNotRegular
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// readFile calls fn with each complete line of name; buf is one buffer for
// every line of a read.
func readFile(ctx context.Context, name string, from map[string]int64, buf *[]byte, fn func(file string, line []byte) error) (st ReadStats, err error) {
	f, err := openRegular(name)
	if err != nil {
		return st, err
	}
	defer f.Close()
	var off int64
	if from != nil {
		if off = from[name]; off > 0 {
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				return st, fmt.Errorf("read %s: %w", name, err)
			}
		}
		defer func() { from[name] = off }()
	}
	r := bufio.NewReaderSize(f, 256<<10)
	for n := 0; ; n++ {
		if n%64 == 0 && ctx.Err() != nil {
			return st, ctx.Err()
		}
		line, partial, err := readLine(r, (*buf)[:0])
		if cap(line) > cap(*buf) {
			*buf = line[:0]
		}
		if errors.Is(err, io.EOF) {
			if partial {
				st.Partial++
			}
			return st, nil
		}
		if err != nil {
			return st, fmt.Errorf("read %s: %w", name, err)
		}
		off += int64(len(line)) + 1
		if err := fn(name, line); err != nil {
			return st, err
		}
	}
}

// readLine returns the next complete line (without its newline), appended
// to buf, or io.EOF when only a partial line (partial) or nothing is left. A
// line may be of any length: a dead letter of a 10 MiB record is a line of
// about 14 MiB, and a line skipped for its size would be a dead letter nobody
// sees. A file is bounded by the sink's rotation, and so is the longest line.
func readLine(r *bufio.Reader, buf []byte) (line []byte, partial bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return buf[:len(buf)-1], false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return buf[:0], len(buf) > 0, err
		}
	}
}

// Letter is a dead letter read back. Its Data may be only the start of the
// record's data (DeadLetters' head); Size is the length of all of it.
type Letter = letterjson.Letter

// DeadLetters calls fn with each dead letter of the files, its Data cut to
// its first head bytes (all of it when head < 0): a scan of letters of 1 MiB
// records then decodes none of them whole. A line that is not a dead letter
// is counted in ReadStats.SkippedLines. l is valid only during the call.
func (r Reader) DeadLetters(ctx context.Context, head int, fn func(l *Letter) error) (ReadStats, error) {
	dec := letterjson.Decoder{Head: head}
	skipped := 0
	st, err := r.Lines(ctx, func(_ string, line []byte) error {
		var l Letter
		if err := dec.Decode(line, &l); err != nil {
			skipped++
			return nil
		}
		return fn(&l)
	})
	st.SkippedLines += skipped
	return st, err
}
