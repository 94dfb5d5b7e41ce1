package sinkreg

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/errview"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/s3test"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// validate's S3 probe on a real server: a writable bucket passes and leaves
// nothing behind; a missing bucket and wrong credentials are told apart.
func TestS3Probe(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	bucket := srv.CreateBucket(t)
	probe := func(c config.S3Sink) Probe {
		k, err := Lookup("s3")
		if err != nil {
			t.Fatal(err)
		}
		c.ForcePathStyle = true
		return k.Probes(config.Sink{Name: "lake", Store: config.Store{S3: &c}}, nil)[0]
	}
	if ok, class, hint := check(probe(config.S3Sink{Bucket: bucket, Prefix: "raw/orders"})); !ok {
		t.Fatalf("probe of a writable bucket: %s: %s", class, hint)
	}
	out, err := srv.Client().ListObjectsV2(t.Context(), &awss3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 0 {
		t.Errorf("the probe left %d objects", len(out.Contents))
	}
	ups, err := srv.Client().ListMultipartUploads(t.Context(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Errorf("the probe left %d multipart uploads pending", len(ups.Uploads))
	}
	if ok, class, hint := check(probe(config.S3Sink{Bucket: "no-such-bucket"})); ok || class != ClassNotFound {
		t.Errorf("probe of a missing bucket: %v %s %s", ok, class, hint)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	if ok, class, hint := check(probe(config.S3Sink{Bucket: bucket})); ok || class != ClassCredentials {
		t.Errorf("probe with a wrong secret: %v %s %s", ok, class, hint)
	}
}

// dead_letter.s3 through the registry, as the worker, validate and the
// errors command use it: the probe passes, the opened sink stores letters
// (a replay of them is dropped and counted) and the errors view reads them
// back from the bucket.
func TestS3DeadLetters(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	bucket := srv.CreateBucket(t)
	k, err := Lookup("s3")
	if err != nil {
		t.Fatal(err)
	}
	dl := config.DeadLetter{Store: config.Store{S3: &config.S3Sink{Bucket: bucket, Prefix: "dead-letters", Format: config.S3FormatJSONL,
		Compression: "gzip", ForcePathStyle: true}}}
	if ok, class, hint := check(k.DeadLetterProbes(dl)[0]); !ok {
		t.Fatalf("probe of a writable bucket: %s: %s", class, hint)
	}
	dups := 0
	opened, err := k.DeadLetters(t.Context(), dl, Env{WorkerID: "w1", Log: slog.New(slog.DiscardHandler), OnDuplicates: func(n int) { dups += n }})
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Sink.Close()
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	var letters []record.DeadLetter
	for i := range 5 {
		letters = append(letters, record.DeadLetter{
			Origin: record.Origin{Source: "orders", ShardID: "shardId-000000000000", SequenceNumber: fmt.Sprint(100 + i), PartitionKey: fmt.Sprintf("k-%d", i), ArrivalTime: at},
			Reason: record.ReasonDecode, Error: "unexpected end of JSON input", Data: []byte(`{"id":`)})
	}
	for range 2 {
		if err := opened.Sink.Write(t.Context(), letters); err != nil {
			t.Fatal(err)
		}
	}
	if dups != len(letters) {
		t.Errorf("the replay reported %d letters as stored, want %d", dups, len(letters))
	}
	s, err := errview.Summarize(t.Context(), Errors(&config.Config{DeadLetter: dl}), errview.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total != len(letters) || len(s.Latest) != len(letters) || s.Stats.Files != 1 {
		t.Errorf("the errors view: %d letters, %d shown, from %d objects; want %d, %d, 1", s.Total, len(s.Latest), s.Stats.Files, len(letters), len(letters))
	}
}
