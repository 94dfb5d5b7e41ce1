package sinkreg

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/s3test"
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
