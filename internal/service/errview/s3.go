package errview

import (
	"context"
	"fmt"

	"github.com/kinesis-ingest/kinesis-ingest/sinks/s3"
)

// S3Source reads the dead letters of the S3 dead-letter sink through the
// sink's own reader (s3.LetterReader): the objects of every chain under its
// prefix (with a shard filter, only that shard's chains are listed), each
// read as a stream, of each letter only what t keeps. Like FileSource it
// reads every letter to count them, so a view costs a read of the prefix;
// ScanStats.Files counts objects, SkippedFiles keys under the prefix that
// are no dead letters' object.
type S3Source struct {
	Reader s3.LetterReader
}

var _ Source = S3Source{}

// Scan reads the letters of q.Shard (all when ""); t applies q.
func (s S3Source) Scan(ctx context.Context, q Query, t *Tally) (ScanStats, error) {
	st, err := s.Reader.DeadLetters(ctx, q.Shard, HeadBytes, func(l *s3.Letter) error {
		t.Add(letterOfLine(l))
		return nil
	})
	out := ScanStats{Files: st.Objects, Skipped: st.SkippedLines, SkippedFiles: st.SkippedObjects}
	if err != nil {
		return out, fmt.Errorf("read dead letters: %w", err)
	}
	return out, nil
}
