package errview

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// FileSource reads the JSON Lines files of the file dead-letter sink: every
// <Prefix>-*.jsonl file in Dir, so the files of all workers sharing Dir. A
// last line without its newline is a write in progress (or cut off by a
// crash and not yet repaired) and is left out; a line that is not a dead
// letter is counted in ScanStats.Skipped.
type FileSource struct {
	Dir    string
	Prefix string
}

var _ Source = FileSource{}

// maxLine bounds one line: a dead letter holds a Kinesis record (at most 1
// MiB, base64 in the line) plus its error.
const maxLine = 8 << 20

// Scan reads every file whole: f is applied by the caller.
func (s FileSource) Scan(ctx context.Context, _ Filter, fn func(*record.DeadLetter) error) (ScanStats, error) {
	var st ScanStats
	if fi, err := os.Stat(s.Dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return st, nil // no dead letter written yet
		}
		return st, fmt.Errorf("dead-letter directory %s: %w", s.Dir, err)
	} else if !fi.IsDir() {
		return st, fmt.Errorf("dead-letter directory %s is not a directory", s.Dir)
	}
	names, err := filepath.Glob(filepath.Join(s.Dir, s.Prefix+"-*.jsonl"))
	if err != nil {
		return st, fmt.Errorf("list dead-letter files in %s: %w", s.Dir, err)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		skipped, err := scanFile(ctx, name, fn)
		st.Skipped += skipped
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since the listing
		}
		if err != nil {
			return st, err
		}
		st.Files++
	}
	return st, nil
}

func scanFile(ctx context.Context, name string, fn func(*record.DeadLetter) error) (skipped int, err error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 256<<10)
	for n := 0; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return skipped, ctx.Err()
		}
		line, tooLong, err := readLine(r)
		if errors.Is(err, io.EOF) {
			return skipped, nil // a partial last line is a write in progress
		}
		if err != nil {
			return skipped, fmt.Errorf("read dead letters from %s: %w", name, err)
		}
		if tooLong {
			skipped++
			continue
		}
		d := new(record.DeadLetter)
		if err := json.Unmarshal(line, d); err != nil || d.Reason == "" {
			skipped++
			continue
		}
		if err := fn(d); err != nil {
			return skipped, err
		}
	}
}

// readLine returns the next complete line (without its newline), or io.EOF
// when only a partial line (or nothing) is left. A line longer than maxLine
// is consumed and reported as tooLong.
func readLine(r *bufio.Reader) (line []byte, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) <= maxLine {
			buf = append(buf, chunk...)
		} else {
			tooLong = true
		}
		switch {
		case err == nil:
			if tooLong {
				return nil, true, nil
			}
			return buf[:len(buf)-1], false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, false, err
		}
	}
}

func sortBy[T any](s []T, less func(a, b T) bool) {
	sort.SliceStable(s, func(i, j int) bool { return less(s[i], s[j]) })
}
