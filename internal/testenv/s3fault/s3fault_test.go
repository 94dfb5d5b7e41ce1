package s3fault_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/s3fault"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/s3test"
)

func TestRuleMatches(t *testing.T) {
	for _, tc := range []struct {
		name        string
		rule        s3fault.Rule
		method, key string
		want        bool
	}{
		{"file-name pattern, deep key", s3fault.Rule{Method: "PUT", Key: "*.metadata.json"}, "PUT", "wh/ns/t/metadata/00001-ab.metadata.json", true},
		{"file-name pattern, other file", s3fault.Rule{Method: "PUT", Key: "*.metadata.json"}, "PUT", "wh/ns/t/data/x.parquet", false},
		{"file-name pattern, manifest", s3fault.Rule{Method: "PUT", Key: "*.metadata.json"}, "PUT", "wh/ns/t/metadata/snap-1-ab.avro", false},
		{"other method", s3fault.Rule{Method: "PUT", Key: "*.metadata.json"}, "GET", "t/metadata/1.metadata.json", false},
		{"method case", s3fault.Rule{Method: "put", Key: "*.json"}, "PUT", "a.json", true},
		{"any method", s3fault.Rule{Key: "*.json"}, "DELETE", "a/b.json", true},
		{"path pattern matches the whole key", s3fault.Rule{Key: "wh/*/t/*.json"}, "PUT", "wh/ns/t/a.json", true},
		{"path pattern, deeper key", s3fault.Rule{Key: "wh/*.json"}, "PUT", "wh/ns/a.json", false},
		{"bucket request", s3fault.Rule{Key: "*"}, "PUT", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rule.Matches(tc.method, tc.key); got != tc.want {
				t.Errorf("%+v.Matches(%s, %q) = %v, want %v", tc.rule, tc.method, tc.key, got, tc.want)
			}
		})
	}
}

// Through the proxy, a refused PUT reaches the SDK as S3's SlowDown (503),
// nothing is stored, other keys go through; lifting the rule lets the
// refused key through as well.
func TestRefusesMetadataPuts(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.CreateBucket(t)
	p := s3fault.New(t, srv.Endpoint, s3fault.Rule{Method: "PUT", Key: "*.metadata.json"})
	// One attempt per call: the SDK retries SlowDown, and the count below is
	// of requests.
	c := s3.New(s3.Options{BaseEndpoint: aws.String(p.URL), Region: s3test.Region, UsePathStyle: true, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(srv.Access, srv.Secret, "")})
	put := func(key string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("x")})
		return err
	}
	const data, meta = "t/data/a.parquet", "t/metadata/00001-a.metadata.json"

	if err := put(data); err != nil {
		t.Fatalf("put %s through the proxy: %v", data, err)
	}
	err := put(meta)
	var ae smithy.APIError
	var re *smithyhttp.ResponseError
	if !errors.As(err, &ae) || ae.ErrorCode() != "SlowDown" || !errors.As(err, &re) || re.HTTPStatusCode() != 503 {
		t.Fatalf("put %s = %v, want SlowDown (503)", meta, err)
	}
	if _, err := os.Stat(filepath.Join(srv.BucketDir(bucket), meta)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused %s is on the server (stat: %v)", meta, err)
	}
	if _, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(data)}); err != nil {
		t.Errorf("get %s through the proxy: %v", data, err)
	}
	if got := p.Refused(); got != 1 {
		t.Errorf("Refused() = %d, want 1", got)
	}

	p.SetRules()
	if err := put(meta); err != nil {
		t.Fatalf("put %s after the rule was lifted: %v", meta, err)
	}
	want := []s3fault.Object{{Bucket: bucket, Key: data}, {Bucket: bucket, Key: meta}}
	if got := p.Stored(); !slices.Equal(got, want) {
		t.Errorf("Stored() = %v, want %v", got, want)
	}
	if got := p.Refused(); got != 1 {
		t.Errorf("Refused() = %d after the rule was lifted, want still 1", got)
	}
}
