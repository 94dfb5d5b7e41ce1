package s3test_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/s3test"
)

// The server refuses a second conditional create of a key (the lake relies
// on it), and keeps its objects over a Stop and Start.
func TestConditionalCreateAndRestart(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.CreateBucket(t)
	c := srv.Client()
	put := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/b.txt"),
			Body: strings.NewReader("hello"), IfNoneMatch: aws.String("*")})
		return err
	}
	if err := put(); err != nil {
		t.Fatalf("first conditional put: %v", err)
	}
	var ae smithy.APIError
	if err := put(); !errors.As(err, &ae) || ae.ErrorCode() != "PreconditionFailed" {
		t.Fatalf("second conditional put = %v, want PreconditionFailed", err)
	}

	srv.Stop(t)
	if err := put(); err == nil || errors.As(err, &ae) {
		t.Fatalf("put while stopped = %v, want a connection error", err)
	}
	srv.Start(t)
	out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/b.txt")})
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != "hello" {
		t.Errorf("object after restart = %q", b)
	}
}
