package redrive

import (
	"context"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/postgres"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/s3"
)

// FileSource reads the letters of the file dead-letter sink: every
// <Prefix>-*.jsonl file in Dir (all workers' files), through the sink's
// reader; the filter is applied here.
type FileSource struct {
	Dir, Prefix string
}

var _ Source = FileSource{}

func (s FileSource) Letters(ctx context.Context, f Filter, fn func(*record.DeadLetter) error) (Stats, error) {
	st, err := file.Reader{Dir: s.Dir, Prefix: s.Prefix}.DeadLetters(ctx, -1, func(l *file.Letter) error {
		if !f.Match(&l.DeadLetter) {
			return nil
		}
		return fn(&l.DeadLetter)
	})
	return Stats{Unreadable: st.SkippedLines + st.SkippedFiles}, err
}

// PostgresSource reads the dead-letter table of the PostgreSQL dead-letter
// sink through the sink's reader, the reasons, shard and times filtered by
// the server.
type PostgresSource struct {
	Reader postgres.Reader
}

var _ Source = PostgresSource{}

func (s PostgresSource) Letters(ctx context.Context, f Filter, fn func(*record.DeadLetter) error) (Stats, error) {
	q := postgres.LetterQuery{Reasons: f.Reasons, Shard: f.Shard, Since: f.Since, Until: f.Until}
	st, err := s.Reader.DeadLetters(ctx, q, -1, func(l *postgres.Letter) error {
		if !f.Match(&l.DeadLetter) {
			return nil
		}
		return fn(&l.DeadLetter)
	})
	return Stats{Unreadable: st.Skipped}, err
}

// S3Source reads the letters of the S3 dead-letter sink through the
// sink's reader (with a shard, only that shard's chains are listed).
type S3Source struct {
	Reader s3.LetterReader
}

var _ Source = S3Source{}

func (s S3Source) Letters(ctx context.Context, f Filter, fn func(*record.DeadLetter) error) (Stats, error) {
	st, err := s.Reader.DeadLetters(ctx, f.Shard, -1, func(l *s3.Letter) error {
		if !f.Match(&l.DeadLetter) {
			return nil
		}
		return fn(&l.DeadLetter)
	})
	return Stats{Unreadable: st.SkippedLines + st.SkippedObjects}, err
}
