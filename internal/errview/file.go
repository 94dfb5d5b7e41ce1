package errview

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

// Scan reads every file whole, keeping of each letter only what t keeps;
// t applies q. Only regular files are read: a FIFO, a device or a symlink
// (to /dev/zero, say) named like a dead-letter file is counted in
// ScanStats.SkippedFiles and left alone, since reading it could block or
// never end.
func (s FileSource) Scan(ctx context.Context, _ Query, t *Tally) (ScanStats, error) {
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
	var buf []byte
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		skipped, err := scanFile(ctx, name, &buf, t)
		st.Skipped += skipped
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

// lineLetter is a dead-letter line as the view decodes it: the data is not
// decoded whole (dataHead).
type lineLetter struct {
	record.Origin
	Dataset string        `json:"dataset"`
	Reason  record.Reason `json:"reason"`
	Error   string        `json:"error"`
	Data    dataHead      `json:"data"`
}

// dataHead decodes of a base64 JSON string only its first HeadBytes bytes
// and its length: a 1 MiB record costs no 1 MiB buffer.
type dataHead struct {
	size int
	head []byte
}

func (h *dataHead) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = dataHead{}
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' || bytes.IndexByte(b, '\\') >= 0 {
		// Escapes are not base64 as the sinks write it: decode it the slow way.
		var full []byte
		if err := json.Unmarshal(b, &full); err != nil {
			return err
		}
		*h = dataHead{size: len(full), head: bytes.Clone(full[:min(len(full), HeadBytes)])}
		return nil
	}
	return h.decode(b[1 : len(b)-1])
}

// decode reads the size and head of standard base64 enc.
func (h *dataHead) decode(enc []byte) error {
	size, err := base64Len(enc)
	if err != nil {
		return err
	}
	n := min(len(enc), (HeadBytes+2)/3*4)
	head := make([]byte, base64.StdEncoding.DecodedLen(n))
	m, err := base64.StdEncoding.Decode(head, enc[:n])
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	*h = dataHead{size: size, head: head[:min(m, HeadBytes)]}
	return nil
}

// dataKey starts the data field, the last of a line the file sink writes.
const dataKey = `,"data":"`

// decodeLine decodes a dead-letter line into d. A line as the file sink
// writes it, {...,"data":"<base64>"}, is cut before its data, so that the
// megabyte of base64 is checked once by base64Len rather than scanned twice
// by encoding/json; any other line is decoded by encoding/json whole. The
// cut is safe: inside a JSON string every '"' is escaped, so the first
// unescaped `,"data":"` is a key of the object or of a nested one, and in
// the second case what follows holds a '"', which is not base64.
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

func scanFile(ctx context.Context, name string, buf *[]byte, t *Tally) (skipped int, err error) {
	f, err := openRegular(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 256<<10)
	var scratch []byte
	for n := 0; ; n++ {
		if n%64 == 0 && ctx.Err() != nil {
			return skipped, ctx.Err()
		}
		line, err := readLine(r, (*buf)[:0])
		if cap(line) > cap(*buf) {
			*buf = line[:0] // one buffer for every line of the scan
		}
		if errors.Is(err, io.EOF) {
			return skipped, nil // a partial last line is a write in progress
		}
		if err != nil {
			return skipped, fmt.Errorf("read dead letters from %s: %w", name, err)
		}
		var d lineLetter
		if err := decodeLine(line, &scratch, &d); err != nil || d.Reason == "" {
			skipped++
			continue
		}
		t.Add(&Letter{Origin: d.Origin, Dataset: d.Dataset, Reason: d.Reason, Error: clipBytes(d.Error, MaxErrorBytes+1),
			Size: d.Data.size, Head: d.Data.head})
	}
}

// readLine returns the next complete line (without its newline), appended
// to buf, or io.EOF when only a partial line (or nothing) is left. A line may
// be of any length: a dead letter of a 10 MiB record is a line of about
// 14 MiB, and a line skipped for its size would be a dead letter nobody sees.
// A file is bounded by the sink's rotation, and so is the longest line.
func readLine(r *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		chunk, err := r.ReadSlice('\n')
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return buf[:0], err
		}
	}
}

func sortBy[T any](s []T, less func(a, b T) bool) {
	sort.SliceStable(s, func(i, j int) bool { return less(s[i], s[j]) })
}
