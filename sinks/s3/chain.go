package s3

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// What the row sink and the dead-letter sink share of a chain: finding its
// head, and creating its next object.

// learnHead finds where the chain listed by prefix stands: its newest
// object (the last key of the listing that is one of the chain's: prefix,
// then <seq>-<sub> and one of exts) and the position of that object's last
// item, from its metadata. newest is "" when the chain has no object yet.
// shard names the chain in errors.
func learnHead(ctx context.Context, api API, bucket, prefix, shard string, exts ...string) (last pos, newest string, err error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)}
	for {
		out, err := api.ListObjectsV2(ctx, in)
		if err != nil {
			return pos{}, "", fmt.Errorf("s3 sink: list s3://%s/%s (to find where the chain of shard %s stands): %w", bucket, prefix, shard, err)
		}
		for _, o := range out.Contents {
			// Only the chain's own objects: the shard id of another shard may
			// start with this one's ("shardId-1" and "shardId-10").
			k := aws.ToString(o.Key)
			for _, ext := range exts {
				if isChainKey(prefix, k, ext) && k > newest {
					newest = k
				}
			}
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			break
		}
		in.ContinuationToken = out.NextContinuationToken
	}
	if newest == "" {
		return pos{}, "", nil
	}
	out, err := api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(newest)})
	if err != nil {
		return pos{}, "", fmt.Errorf("s3 sink: head s3://%s/%s (the chain's newest object): %w", bucket, newest, err)
	}
	last, ok := lastOf(out.Metadata)
	if !ok {
		return pos{}, "", fmt.Errorf("s3 sink: s3://%s/%s has no %s metadata, so the chain cannot continue after it: remove the object or write to another prefix", bucket, newest, metaLastSeq)
	}
	return last, newest, nil
}

// isChainKey reports whether key is an object of the chain listed by
// prefix: the prefix, then <seq>-<sub><ext>.
func isChainKey(prefix, key, ext string) bool {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return false
	}
	rest, ok = strings.CutSuffix(rest, ext)
	return ok && len(rest) == seqWidth+1+subWidth && rest[seqWidth] == '-' && strings.Trim(rest[:seqWidth]+rest[seqWidth+1:], "0123456789") == ""
}

// object is the next object of a chain.
type object struct {
	bucket, key string
	body        *bytes.Buffer
	contentType string
	// last is the position of its last item, n its items.
	last        pos
	n           int
	sseKMSKeyID string
}

// create stores o only if its key is new (If-None-Match: *); a key that
// exists fails with an error isConflict recognizes.
func (o *object) create(ctx context.Context, api API, what string) error {
	in := &s3.PutObjectInput{
		Bucket:      aws.String(o.bucket),
		Key:         aws.String(o.key),
		Body:        bytes.NewReader(o.body.Bytes()),
		IfNoneMatch: aws.String("*"),
		ContentType: aws.String(o.contentType),
		Metadata: map[string]string{
			metaLastSeq: o.last.seq,
			metaLastSub: strconv.Itoa(o.last.sub),
			metaRows:    strconv.Itoa(o.n),
		},
	}
	if o.sseKMSKeyID != "" {
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(o.sseKMSKeyID)
	}
	if _, err := api.PutObject(ctx, in); err != nil {
		return fmt.Errorf("s3 sink: put s3://%s/%s (%d %s): %w", o.bucket, o.key, o.n, what, err)
	}
	return nil
}
