package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// AccessError says which S3 call was refused and the IAM action that
// grants it.
type AccessError struct {
	// Action is the IAM action the worker's role lacks, e.g. s3:PutObject.
	Action   string
	Resource string
	Err      error
}

func (e *AccessError) Error() string {
	return fmt.Sprintf("access denied to %s: grant the worker's role %s on it: %v", e.Resource, e.Action, e.Err)
}

func (e *AccessError) Unwrap() error { return e.Err }

// ErrNoBucket is returned by Check when the bucket does not exist.
var ErrNoBucket = errors.New("the bucket does not exist")

// Check makes the calls the sink makes (list a prefix, create an object
// conditionally, read its metadata, start and abort a multipart upload) on a
// probe object under prefix, and removes it. A refused call is an
// *AccessError naming its IAM action.
func Check(ctx context.Context, client API, bucket, prefix, sseKMSKeyID string) error {
	var id [8]byte
	_, _ = rand.Read(id[:])
	key := "_kinesis-ingest-probe-" + hex.EncodeToString(id[:])
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		key = prefix + "/" + key
	}
	res := "s3://" + bucket + "/" + key
	if _, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(1)}); err != nil {
		return explain(err, "s3:ListBucket", "arn:aws:s3:::"+bucket)
	}
	put := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("probe"),
		IfNoneMatch: aws.String("*"), Metadata: map[string]string{metaLastSeq: "0", metaLastSub: "0"}}
	if sseKMSKeyID != "" {
		put.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		put.SSEKMSKeyId = aws.String(sseKMSKeyID)
	}
	if _, err := client.PutObject(ctx, put); err != nil {
		if sseKMSKeyID != "" && isAccessDenied(err) {
			return explain(err, "s3:PutObject, and kms:GenerateDataKey on key "+sseKMSKeyID+",", res)
		}
		return explain(err, "s3:PutObject", res)
	}
	if _, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		_, _ = client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		return explain(err, "s3:GetObject", res)
	}
	// Large objects go up in parts, and a failed upload is aborted: without
	// s3:AbortMultipartUpload its parts would stay billed.
	mp := &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if sseKMSKeyID != "" {
		mp.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		mp.SSEKMSKeyId = aws.String(sseKMSKeyID)
	}
	up, err := client.CreateMultipartUpload(ctx, mp)
	if err != nil {
		_, _ = client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		return explain(err, "s3:PutObject (it starts multipart uploads)", res)
	}
	if _, err := client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId}); err != nil {
		_, _ = client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		return explain(fmt.Errorf("the probe's multipart upload %s stays pending: %w", aws.ToString(up.UploadId), err), "s3:AbortMultipartUpload", res)
	}
	if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return explain(fmt.Errorf("the probe object stays behind: %w", err), "s3:DeleteObject (validate's probe only; the sink never deletes)", res)
	}
	return nil
}

func isAccessDenied(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDenied", "Forbidden", "AllAccessDisabled":
			return true
		}
	}
	return false
}

func explain(err error, action, resource string) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchBucket" || ae.ErrorCode() == "NotFound" && strings.HasPrefix(resource, "arn:")) {
		return fmt.Errorf("%s: %w (%v)", resource, ErrNoBucket, err)
	}
	if isAccessDenied(err) {
		return &AccessError{Action: action, Resource: resource, Err: err}
	}
	return fmt.Errorf("%s: %w", resource, err)
}
