package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/kinesis-ingest/kinesis-ingest/record"
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
type Letter struct {
	record.DeadLetter
	Size int
}

// DeadLetters calls fn with each dead letter of the files, its Data cut to
// its first head bytes (all of it when head < 0): a scan of letters of 1 MiB
// records then decodes none of them whole. A line that is not a dead letter
// is counted in ReadStats.SkippedLines. l is valid only during the call.
func (r Reader) DeadLetters(ctx context.Context, head int, fn func(l *Letter) error) (ReadStats, error) {
	var (
		scratch []byte
		skipped int
	)
	st, err := r.Lines(ctx, func(_ string, line []byte) error {
		var d lineLetter
		d.Data.limit = head
		if err := decodeLine(line, &scratch, &d); err != nil || d.Reason == "" {
			skipped++
			return nil
		}
		return fn(&Letter{
			DeadLetter: record.DeadLetter{Origin: d.Origin, Dataset: d.Dataset, Reason: d.Reason, Error: d.Error, Data: d.Data.head},
			Size:       d.Data.size,
		})
	})
	st.SkippedLines += skipped
	return st, err
}

// lineLetter is a dead-letter line as DeadLetters decodes it: the data is
// not decoded whole (dataHead).
type lineLetter struct {
	record.Origin
	Dataset string        `json:"dataset"`
	Reason  record.Reason `json:"reason"`
	Error   string        `json:"error"`
	Data    dataHead      `json:"data"`
}

// dataHead decodes of a base64 JSON string only its first limit bytes (all
// when limit < 0) and its length: a 1 MiB record costs no 1 MiB buffer.
type dataHead struct {
	limit int
	size  int
	head  []byte
}

func (h *dataHead) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		h.size, h.head = 0, nil
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' || bytes.IndexByte(b, '\\') >= 0 {
		// Escapes are not base64 as the sinks write it: decode it the slow way.
		var full []byte
		if err := json.Unmarshal(b, &full); err != nil {
			return err
		}
		h.size, h.head = len(full), full[:h.cut(len(full))]
		if len(h.head) < len(full) {
			h.head = bytes.Clone(h.head)
		}
		return nil
	}
	return h.decode(b[1 : len(b)-1])
}

// cut is how many of size bytes of data the head keeps.
func (h *dataHead) cut(size int) int {
	if h.limit < 0 {
		return size
	}
	return min(size, h.limit)
}

// decode reads the size and head of standard base64 enc.
func (h *dataHead) decode(enc []byte) error {
	size, err := base64Len(enc)
	if err != nil {
		return err
	}
	n := len(enc)
	if h.limit >= 0 {
		n = min(n, (h.limit+2)/3*4)
	}
	head := make([]byte, base64.StdEncoding.DecodedLen(n))
	m, err := base64.StdEncoding.Decode(head, enc[:n])
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	h.size, h.head = size, head[:h.cut(m)]
	return nil
}

// dataKey starts the data field, the last of a line the sink writes.
const dataKey = `,"data":"`

// decodeLine decodes a dead-letter line into d. A line as the sink writes
// it, {...,"data":"<base64>"}, is cut before its data, so that the megabyte
// of base64 is checked once by base64Len rather than scanned twice by
// encoding/json; any other line is decoded by encoding/json whole. The cut is
// safe: inside a JSON string every '"' is escaped, so the first unescaped
// `,"data":"` is a key of the object or of a nested one, and in the second
// case what follows holds a '"', which is not base64.
func decodeLine(line []byte, scratch *[]byte, d *lineLetter) error {
	i := bytes.Index(line, []byte(dataKey))
	if i < 0 || !bytes.HasSuffix(line, []byte(`"}`)) || len(line)-2 < i+len(dataKey) {
		return json.Unmarshal(line, d)
	}
	if err := d.Data.decode(line[i+len(dataKey) : len(line)-2]); err != nil {
		return json.Unmarshal(line, d) // not base64 as the sink writes it
	}
	data := d.Data
	*scratch = append(append((*scratch)[:0], line[:i]...), '}')
	if err := json.Unmarshal(*scratch, d); err != nil {
		return err
	}
	d.Data = data
	return nil
}

// base64Len is the decoded length of standard, padded base64, checking
// every character (as a full decode would) without decoding.
func base64Len(enc []byte) (int, error) {
	if len(enc)%4 != 0 {
		return 0, errors.New("data: base64 length is not a multiple of 4")
	}
	pad := 0
	if len(enc) > 0 && enc[len(enc)-1] == '=' {
		pad++
		if enc[len(enc)-2] == '=' {
			pad++
		}
	}
	for i, c := range enc[:len(enc)-pad] {
		if !isBase64[c] {
			return 0, fmt.Errorf("data: %q at %d is not base64", c, i)
		}
	}
	return len(enc)/4*3 - pad, nil
}

// isBase64 is the standard alphabet.
var isBase64 = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = true
	}
	return t
}()
