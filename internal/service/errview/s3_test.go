package errview

import (
	"context"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/s3test"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/s3"
)

// TestS3Source reads back what the S3 dead-letter sink wrote to versitygw:
// the fixture's letters, written as the two workers wrote them to files,
// make the same view through S3Source as through FileSource, whatever the
// filter (reason, shard, time, limit); a shard filter reads that shard's
// objects only, and a deeper prefix's objects are not read.
func TestS3Source(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.CreateBucket(t)
	ctx := context.Background()
	dir := fixture(t)
	for _, worker := range []string{"w1", "w2"} {
		var letters []record.DeadLetter
		if _, err := (file.Reader{Dir: dir, Prefix: "dead-letters-" + worker}).DeadLetters(ctx, -1, func(l *file.Letter) error {
			letters = append(letters, l.DeadLetter)
			return nil
		}); err != nil || len(letters) != 4 {
			t.Fatalf("worker %s's letters: %d, %v", worker, len(letters), err)
		}
		sink, err := s3.NewDeadLetterSink(s3.LetterConfig{Client: srv.Client(), Bucket: bucket, Prefix: "errors", Compression: "zstd"}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.Write(ctx, letters); err != nil {
			t.Fatal(err)
		}
	}
	// Another deployment's dead letters, under a prefix below this one's.
	other := letter(9, "shardId-000000000000", record.ReasonDecode, "", "bad", []byte("x"))
	sink, err := s3.NewDeadLetterSink(s3.LetterConfig{Client: srv.Client(), Bucket: bucket, Prefix: "errors/x"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(ctx, []record.DeadLetter{other}); err != nil {
		t.Fatal(err)
	}

	fromFiles := FileSource{Dir: dir, Prefix: "dead-letters"}
	fromS3 := S3Source{Reader: s3.LetterReader{Client: srv.Client(), Bucket: bucket, Prefix: "errors"}}
	for _, q := range []Query{
		{},
		{Limit: 2},
		{Filter: Filter{Reasons: []string{"schema_error"}}},
		{Filter: Filter{Shard: "shardId-000000000001"}},
		{Filter: Filter{Reasons: []string{"decode_error", "no_route"}, Since: t0.Add(time.Minute), Until: t0.Add(7 * time.Minute)}},
	} {
		want, err := Summarize(ctx, fromFiles, q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Summarize(ctx, fromS3, q)
		if err != nil {
			t.Fatal(err)
		}
		if got.Total == 0 || !reflect.DeepEqual(got.Latest, want.Latest) || !reflect.DeepEqual(got.ByReason, want.ByReason) ||
			!reflect.DeepEqual(got.ByField, want.ByField) || got.Total != want.Total {
			t.Errorf("%+v: the S3 view differs from the files' view:\n got %+v\nwant %+v", q, got, want)
		}
		if q.Shard != "" && got.Stats.Files != 2 {
			t.Errorf("%+v: %d objects read, want the shard's 2", q, got.Stats.Files)
		}
	}
	// The other deployment's object is no chain of this prefix: counted,
	// not read.
	s, err := Summarize(ctx, fromS3, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Stats.Files != 4 || s.Stats.SkippedFiles != 1 {
		t.Errorf("read %d objects and skipped %d, want 4 and 1 (errors/x/...)", s.Stats.Files, s.Stats.SkippedFiles)
	}

	_, err = Summarize(ctx, S3Source{Reader: s3.LetterReader{Client: srv.Client(), Bucket: "no-such-bucket", Prefix: "errors"}}, Query{})
	if err == nil {
		t.Error("a missing bucket: no error")
	}
}
