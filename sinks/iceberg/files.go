package iceberg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// Files reads and writes a table's objects by their s3://bucket/key URI;
// S3Files has it.
type Files interface {
	Put(ctx context.Context, uri string, body []byte) error
	Get(ctx context.Context, uri string) ([]byte, error)
	Delete(ctx context.Context, uri string) error
}

// S3API is the part of the S3 client S3Files calls; *s3.Client has it.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, opts ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

// S3Files is Files on S3. Every object the sink writes has a name of its
// own (a UUID in it), so a put never replaces another writer's object; a
// single PUT holds up to 5 GiB, more than a commit's data file is.
type S3Files struct {
	Client      S3API
	SSEKMSKeyID string
}

// SplitURI splits s3://bucket/key.
func SplitURI(uri string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok {
		rest, ok = strings.CutPrefix(uri, "s3a://")
	}
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3://bucket/key URI", uri)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" || key == "" {
		return "", "", fmt.Errorf("%q is not an s3://bucket/key URI", uri)
	}
	return bucket, key, nil
}

func (f S3Files) Put(ctx context.Context, uri string, body []byte) error {
	bucket, key, err := SplitURI(uri)
	if err != nil {
		return err
	}
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body)))}
	if f.SSEKMSKeyID != "" {
		in.ServerSideEncryption = "aws:kms"
		in.SSEKMSKeyId = aws.String(f.SSEKMSKeyID)
	}
	if _, err := f.Client.PutObject(ctx, in); err != nil {
		return fmt.Errorf("put %s: %w", uri, err)
	}
	return nil
}

// ErrNotFound is what Get returns (wrapped) for a missing object.
var ErrNotFound = errors.New("no such object")

func (f S3Files) Get(ctx context.Context, uri string) ([]byte, error) {
	bucket, key, err := SplitURI(uri)
	if err != nil {
		return nil, err
	}
	out, err := f.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound") {
			return nil, fmt.Errorf("get %s: %w: %w", uri, ErrNotFound, err)
		}
		return nil, fmt.Errorf("get %s: %w", uri, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", uri, err)
	}
	return b, nil
}

func (f S3Files) Delete(ctx context.Context, uri string) error {
	bucket, key, err := SplitURI(uri)
	if err != nil {
		return err
	}
	if _, err := f.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return fmt.Errorf("delete %s: %w", uri, err)
	}
	return nil
}
