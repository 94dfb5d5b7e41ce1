package pipeline_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/errview"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// tenMiB is the largest record Kinesis accepts (on a stream configured for it).
const tenMiB = 10 << 20

// bigRecord is a JSON record of exactly size bytes whose note fills it; id is
// written as given (a string id is a schema_error).
func bigRecord(id string, size int) []byte {
	head := `{"id":` + id + `,"amount":1.5,"ts":"2026-11-01T12:00:00Z","note":"`
	tail := `"}`
	return []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
}

// readLongLines reads every line of every .jsonl file in dir, of any length,
// and fails on a partial last line.
func readLongLines(t *testing.T, dir string) [][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	var out [][]byte
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(fh)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 && err != nil {
				t.Fatalf("%s: a partial line of %d bytes", f, len(line))
			}
			if err != nil {
				break
			}
			out = append(out, line[:len(line)-1])
		}
		fh.Close()
	}
	return out
}

// TestTenMiBRecords sends records of 10 MiB (a good one, one of the wrong
// shape, one that is not JSON) through the pipeline, on the JSON fast path and
// on the general path, into the file sinks: the good one must be a row with
// every byte of its note, the others dead letters with all their data, both
// paths must write the same, and the errors view must count the dead letters
// rather than skip their long lines.
func TestTenMiBRecords(t *testing.T) {
	good := bigRecord("1", tenMiB)
	wrongShape := bigRecord(`"2"`, tenMiB)
	notJSON := append(bigRecord("3", tenMiB)[:tenMiB-1], '!')
	outputs := map[bool][2][][]byte{}
	for _, fast := range []bool{true, false} {
		h := newHarness(t, func(c *pipeline.Config) {
			if !fast {
				r := &c.Sources[0].Routes[0]
				r.Schema = generalOnly{r.Schema}
			}
		})
		recs := records("shardId-0", string(good), string(wrongShape), string(notJSON))
		if err := h.p.Deliver(t.Context(), "orders", recs); err != nil {
			t.Fatal(err)
		}
		rows, letters := readLongLines(t, h.rowsDir), readLongLines(t, h.dlDir)
		outputs[fast] = [2][][]byte{rows, letters}
		if len(rows) != 1 {
			t.Fatalf("fast=%v: %d rows, want 1", fast, len(rows))
		}
		var row struct {
			ID   int64  `json:"id"`
			Note string `json:"note"`
		}
		if err := json.Unmarshal(rows[0], &row); err != nil {
			t.Fatal(err)
		}
		var in struct{ Note string }
		_ = json.Unmarshal(good, &in)
		if row.ID != 1 || row.Note != in.Note {
			t.Fatalf("fast=%v: row id %d with a note of %d bytes, want id 1 and %d bytes", fast, row.ID, len(row.Note), len(in.Note))
		}
		reasons := map[record.Reason][]byte{}
		for _, l := range letters {
			var d record.DeadLetter
			if err := json.Unmarshal(l, &d); err != nil {
				t.Fatal(err)
			}
			reasons[d.Reason] = d.Data
		}
		if string(reasons[record.ReasonSchema]) != string(wrongShape) || string(reasons[record.ReasonDecode]) != string(notJSON) {
			t.Fatalf("fast=%v: dead letters %d, want a schema_error and a decode_error with their 10 MiB of data", fast, len(letters))
		}
		s, err := errview.Summarize(context.Background(), errview.FileSource{Dir: h.dlDir, Prefix: "dl"}, errview.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Total != 2 || s.Stats.Skipped != 0 {
			t.Fatalf("fast=%v: errors view counted %d dead letters and skipped %d lines, want 2 and 0", fast, s.Total, s.Stats.Skipped)
		}
	}
	for i, what := range []string{"rows", "dead letters"} {
		f, g := outputs[true][i], outputs[false][i]
		if len(f) != len(g) {
			t.Fatalf("%s: %d on the fast path, %d on the general path", what, len(f), len(g))
		}
		for j := range f {
			if string(f[j]) != string(g[j]) {
				t.Errorf("%s differ between the fast and the general path (line %d)", what, j)
			}
		}
	}
}
