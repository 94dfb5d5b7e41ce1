package errview

import (
	"context"
	"fmt"
	"sort"

	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/letterjson"
)

// FileSource reads the dead letters of the file dead-letter sink: every
// <Prefix>-*.jsonl file in Dir, so the files of all workers sharing Dir,
// through the sink's own reader (file.Reader: what it skips, and why). A
// line that is not a dead letter is counted in ScanStats.Skipped.
type FileSource struct {
	Dir    string
	Prefix string
}

var _ Source = FileSource{}

// Scan reads every file whole, keeping of each letter only what t keeps;
// t applies q.
func (s FileSource) Scan(ctx context.Context, _ Query, t *Tally) (ScanStats, error) {
	st, err := file.Reader{Dir: s.Dir, Prefix: s.Prefix}.DeadLetters(ctx, HeadBytes, func(l *file.Letter) error {
		t.Add(letterOfLine(l))
		return nil
	})
	out := ScanStats{Files: st.Files, Skipped: st.SkippedLines, SkippedFiles: st.SkippedFiles}
	if err != nil {
		return out, fmt.Errorf("read dead letters: %w", err)
	}
	return out, nil
}

// letterOfLine keeps what the view needs of a letter read back from its
// JSON line (package letterjson: the file and S3 sinks'), whose Data is its
// head already.
func letterOfLine(l *letterjson.Letter) *Letter {
	return &Letter{Origin: l.Origin, Dataset: l.Dataset, Reason: l.Reason, Error: clipBytes(l.Error, MaxErrorBytes+1),
		Size: l.Size, Head: l.Data}
}

func sortBy[T any](s []T, less func(a, b T) bool) {
	sort.SliceStable(s, func(i, j int) bool { return less(s[i], s[j]) })
}
