package s3_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/s3test"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	s3sink "github.com/kinesis-ingest/kinesis-ingest/sinks/s3"
)

// observer counts what a sink reports.
type observer struct {
	uploads, multipart, failures, conflicts, duplicates atomic.Int64
}

func (o *observer) Uploaded(_ string, _ int64, _ time.Duration, multipart bool) {
	o.uploads.Add(1)
	if multipart {
		o.multipart.Add(1)
	}
}
func (o *observer) UploadFailed(string)        { o.failures.Add(1) }
func (o *observer) Conflict(string)            { o.conflicts.Add(1) }
func (o *observer) Duplicates(_ string, n int) { o.duplicates.Add(int64(n)) }
func (o *observer) Flushed(string, string)     {}
func (o *observer) Buffered(string, int64)     {}

// noteBytes makes each big row about 8 KiB of JSON, random so that nothing
// shrinks it: 1,400 rows are an 11.5 MiB object, three 5 MiB parts.
const noteBytes = 4 << 10

// bigRows are records from..to-1 of one shard whose note is random hex.
func bigRows(shard string, from, to int) []record.Row {
	rows := lakeRows(shard, from, to)
	rng := rand.New(rand.NewChaCha8([32]byte{byte(from)}))
	b := make([]byte, noteBytes)
	for i := range rows {
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		rows[i].Fields[3].Value = hex.EncodeToString(b)
	}
	return rows
}

// newMultipartLake is a sink of one chain per shard (no partitions) in
// uncompressed JSON Lines, going multipart above 5 MiB in 5 MiB parts.
func newMultipartLake(t *testing.T, api s3sink.API, bucket string, obs s3sink.Observer) *s3sink.RowSink {
	t.Helper()
	return newLake(t, api, bucket, func(c *s3sink.Config) {
		c.PartitionBy, c.Format, c.Compression = nil, s3sink.FormatJSONL, "none"
		c.MultipartThreshold, c.PartSize = s3sink.MinPartSize, s3sink.MinPartSize
		c.Observer = obs
	})
}

// checkLake fails the test unless the objects under lake/ hold exactly want,
// in order, with every byte of every note.
func checkLake(t *testing.T, c *s3.Client, bucket string, want []record.Row) {
	t.Helper()
	got := readJSONL(t, c, bucket, "lake/")
	if len(got) != len(want) {
		t.Fatalf("the lake holds %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if fmt.Sprint(got[i].Fields[0].Value) != fmt.Sprint(want[i].Fields[0].Value) || got[i].Fields[3].Value != want[i].Fields[3].Value ||
			got[i].Origin.SequenceNumber != want[i].Origin.SequenceNumber {
			t.Fatalf("row %d: id %v (sequence %s) with a note of %d characters, want id %v (%s) and its note of %d",
				i, got[i].Fields[0].Value, got[i].Origin.SequenceNumber, len(fmt.Sprint(got[i].Fields[3].Value)),
				want[i].Fields[0].Value, want[i].Origin.SequenceNumber, len(want[i].Fields[3].Value.(string)))
		}
	}
}

// pendingUploads lists the multipart uploads of bucket that were neither
// completed nor aborted.
func pendingUploads(t *testing.T, c *s3.Client, bucket string) []string {
	t.Helper()
	out, err := c.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}
	var ups []string
	for _, u := range out.Uploads {
		ups = append(ups, aws.ToString(u.Key)+" "+aws.ToString(u.UploadId))
	}
	return ups
}

// etag is the ETag of the only object under lake/.
func etag(t *testing.T, c *s3.Client, bucket string) string {
	t.Helper()
	keys := listKeys(t, c, bucket, "lake/")
	if len(keys) != 1 {
		t.Fatalf("%d objects under lake/, want 1: %q", len(keys), keys)
	}
	out, err := c.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(keys[0])})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ETag)
}

// An object above the threshold goes up in parts and reads back whole; its
// metadata continues the chain like a single PUT's: the next Write appends
// after it, and a new sink replaying from the start learns its head from it
// and drops every row.
func TestMultipartUpload(t *testing.T) {
	s := server(t)
	bucket := s.CreateBucket(t)
	c := s.Client()
	rows := bigRows("shardId-000000000010", 0, 1450)
	obs := &observer{}
	rs := newMultipartLake(t, c, bucket, obs)
	write(t, rs, rows[:1400], 1400)
	if tag := etag(t, c, bucket); !strings.HasSuffix(tag, `-3"`) {
		t.Errorf("the object's ETag is %s: S3 did not assemble it from 3 parts", tag)
	}
	write(t, rs, rows[1400:], 50) // 400 kB: one PutObject
	if m, u := obs.multipart.Load(), obs.uploads.Load(); m != 1 || u != 2 {
		t.Errorf("%d uploads, %d of them multipart; want 2 and 1", u, m)
	}
	checkLake(t, c, bucket, rows)

	replay := &observer{}
	write(t, newMultipartLake(t, c, bucket, replay), rows, 700)
	if d, u := replay.duplicates.Load(), replay.uploads.Load(); d != int64(len(rows)) || u != 0 {
		t.Errorf("the replay dropped %d rows and uploaded %d objects, want %d and none", d, u, len(rows))
	}
	checkLake(t, c, bucket, rows)
	if ups := pendingUploads(t, c, bucket); len(ups) != 0 {
		t.Errorf("multipart uploads left pending: %q", ups)
	}
}

// hookParts runs hook before the parts and the completion of multipart
// uploads, each time (part is 0 for the completion).
type hookParts struct {
	s3sink.API
	hook func(ctx context.Context, part int32)
}

func (h *hookParts) UploadPart(ctx context.Context, in *s3.UploadPartInput, opts ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	h.hook(ctx, aws.ToInt32(in.PartNumber))
	return h.API.UploadPart(ctx, in, opts...)
}

func (h *hookParts) CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	h.hook(ctx, 0)
	return h.API.CompleteMultipartUpload(ctx, in, opts...)
}

// A Write called off during its multipart upload (shutdown, a lost lease)
// leaves no object and no pending upload: the upload is aborted on a
// context of its own. It is not an upload failure.
func TestMultipartCancelled(t *testing.T) {
	s := server(t)
	bucket := s.CreateBucket(t)
	c := s.Client()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api := &hookParts{API: c, hook: func(_ context.Context, part int32) {
		if part == 2 {
			cancel()
		}
	}}
	obs := &observer{}
	err := newMultipartLake(t, api, bucket, obs).Write(ctx, bigRows("shardId-000000000011", 0, 1400))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write: %v, want context.Canceled", err)
	}
	if keys := listKeys(t, c, bucket, ""); len(keys) != 0 {
		t.Errorf("objects after a cancelled upload: %q", keys)
	}
	if ups := pendingUploads(t, c, bucket); len(ups) != 0 {
		t.Errorf("multipart uploads left pending: %q", ups)
	}
	if f, u := obs.failures.Load(), obs.uploads.Load(); f != 0 || u != 0 {
		t.Errorf("%d uploads, %d failures reported; want none", u, f)
	}
}

// S3 goes away during a multipart upload, so its abort cannot reach it
// either. The Write fails (the pipeline retries it) and the upload stays
// pending until S3 is back: the retried Write aborts it before uploading,
// and stores every row once.
func TestMultipartServerKilled(t *testing.T) {
	s := s3test.Start(t) // its own: it is stopped mid-test
	bucket := s.CreateBucket(t)
	c := s.Client()
	inPart, killed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	api := &hookParts{API: c, hook: func(_ context.Context, part int32) {
		once.Do(func() {
			close(inPart)
			<-killed
		})
	}}
	obs := &observer{}
	rs := newMultipartLake(t, api, bucket, obs)
	rows := bigRows("shardId-000000000012", 0, 1400)
	done := make(chan error, 1)
	go func() { done <- rs.Write(context.Background(), rows) }()
	<-inPart
	s.Stop(t)
	close(killed)
	if err := <-done; err == nil {
		t.Fatal("the Write succeeded with S3 down")
	}
	if f := obs.failures.Load(); f != 1 {
		t.Errorf("%d upload failures reported, want 1", f)
	}
	s.Start(t)
	if ups := pendingUploads(t, c, bucket); len(ups) != 1 {
		t.Fatalf("pending multipart uploads after the outage: %q, want the one cut off (the test did not kill S3 mid-upload)", ups)
	}
	if keys := listKeys(t, c, bucket, ""); len(keys) != 0 {
		t.Errorf("objects after a failed upload: %q", keys)
	}

	write(t, rs, rows, len(rows)) // the pipeline's retry
	if ups := pendingUploads(t, c, bucket); len(ups) != 0 {
		t.Errorf("multipart uploads left pending after the retry: %q", ups)
	}
	checkLake(t, c, bucket, rows)
}

// Two writers of one chain race for its next key, one with a single PUT,
// the other with a multipart upload that it completes second: S3 refuses
// the completion (If-None-Match: *), the sink takes it as a conflict, learns
// the other's object, drops its rows and aborts its upload. The first
// object stands.
func TestMultipartConflict(t *testing.T) {
	s := server(t)
	bucket := s.CreateBucket(t)
	c := s.Client()
	rows := bigRows("shardId-000000000013", 0, 1400)
	first := newLake(t, c, bucket, func(cfg *s3sink.Config) {
		cfg.PartitionBy, cfg.Format, cfg.Compression = nil, s3sink.FormatJSONL, "none"
	})
	var firstErr error
	var firstTag string
	api := &hookParts{API: c, hook: func(_ context.Context, part int32) {
		if part == 0 && firstTag == "" {
			firstErr = first.Write(context.Background(), rows)
			firstTag = etag(t, c, bucket)
		}
	}}
	obs := &observer{}
	if err := newMultipartLake(t, api, bucket, obs).Write(context.Background(), rows); err != nil {
		t.Fatalf("the second writer's Write: %v", err)
	}
	if firstErr != nil {
		t.Fatalf("the first writer's Write: %v", firstErr)
	}
	if tag := etag(t, c, bucket); tag != firstTag {
		t.Errorf("the object's ETag went from %s to %s: the refused completion replaced it", firstTag, tag)
	}
	if cf, d, u := obs.conflicts.Load(), obs.duplicates.Load(), obs.uploads.Load(); cf != 1 || d != int64(len(rows)) || u != 0 {
		t.Errorf("the second writer: %d conflicts, %d rows dropped, %d uploads; want 1, %d, 0", cf, d, u, len(rows))
	}
	if ups := pendingUploads(t, c, bucket); len(ups) != 0 {
		t.Errorf("multipart uploads left pending: %q", ups)
	}
	checkLake(t, c, bucket, rows)
}

// The upload settings are checked with the rest of the config.
func TestUploadConfig(t *testing.T) {
	for _, tc := range []struct {
		name        string
		threshold   int64
		part        int64
		errContains string
	}{
		{name: "defaults"},
		{name: "smallest part", threshold: 1, part: s3sink.MinPartSize},
		{name: "negative threshold", threshold: -1, errContains: "Config.MultipartThreshold is -1"},
		{name: "part below S3's minimum", part: s3sink.MinPartSize - 1, errContains: "Config.PartSize is 5242879: S3 takes parts of 5242880 to"},
		{name: "part above S3's maximum", part: s3sink.MaxPartSize + 1, errContains: "Config.PartSize is 5368709121"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s3sink.New(s3sink.Config{Client: &s3.Client{}, Bucket: "b", Dataset: "d", Format: s3sink.FormatJSONL,
				MultipartThreshold: tc.threshold, PartSize: tc.part}, testLogger(t))
			if tc.errContains == "" && err != nil || tc.errContains != "" && (err == nil || !strings.Contains(err.Error(), tc.errContains)) {
				t.Errorf("New: %v, want an error containing %q", err, tc.errContains)
			}
		})
	}
}
