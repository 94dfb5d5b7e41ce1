package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Multipart uploads: the defaults of Config.MultipartThreshold and
// Config.PartSize, and S3's limits.
const (
	DefaultMultipartThreshold int64 = 16 << 20
	DefaultPartSize           int64 = 8 << 20
	// MinPartSize is S3's smallest part (every part but the last).
	MinPartSize int64 = 5 << 20
	// MaxPartSize and maxParts are S3's largest part and most parts.
	MaxPartSize int64 = 5 << 30
	maxParts          = 10000
)

// partConcurrency bounds the parts of one object in flight: enough to
// fill a link that one connection does not, without holding a connection
// per part of a large object.
const partConcurrency = 4

// abortTimeout bounds an abort, on a context of its own: the Write's may
// be what ended the upload.
const abortTimeout = 10 * time.Second

// maxUnaborted bounds the failed aborts a sink remembers; past it the
// oldest is forgotten (and logged): the bucket's lifecycle rule removes it.
const maxUnaborted = 1024

// objectMeta is what an object carries besides its body.
type objectMeta struct {
	contentType string
	metadata    map[string]string
}

// uploadDefaults fills in and checks the upload settings of cfg.
func uploadDefaults(cfg *Config) []error {
	var errs []error
	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	if cfg.MultipartThreshold < 0 {
		errs = append(errs, fmt.Errorf("s3 sink: Config.MultipartThreshold is %d: must be positive (0 for the default, %d)", cfg.MultipartThreshold, DefaultMultipartThreshold))
	}
	if cfg.MultipartThreshold == 0 {
		cfg.MultipartThreshold = DefaultMultipartThreshold
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < MinPartSize || cfg.PartSize > MaxPartSize {
		errs = append(errs, fmt.Errorf("s3 sink: Config.PartSize is %d: S3 takes parts of %d to %d bytes (0 for the default, %d)", cfg.PartSize, MinPartSize, MaxPartSize, DefaultPartSize))
	}
	return errs
}

// upload creates the object key with body, only if the key is new
// (If-None-Match: *): one PutObject up to Config.MultipartThreshold, a
// multipart upload above it, whose CompleteMultipartUpload carries the same
// condition. Either way a key that exists is a conflict (isConflict), and
// the object appears whole or not at all. A multipart upload that fails
// (a conflict and a cancelled ctx included) is aborted, so it leaves no
// parts behind; when S3 does not answer the abort, the sink aborts it again
// before its next upload.
func (s *RowSink) upload(ctx context.Context, key string, body []byte, meta objectMeta) error {
	s.abortUnaborted(ctx)
	start := time.Now()
	multipart := int64(len(body)) > s.cfg.MultipartThreshold
	var err error
	if multipart {
		err = s.uploadMultipart(ctx, key, body, meta)
	} else {
		err = s.putObject(ctx, key, body, meta)
	}
	switch {
	case err == nil:
		s.cfg.Observer.Uploaded(s.cfg.Dataset, int64(len(body)), time.Since(start), multipart)
	case isConflict(err):
		// Counted by the caller, which resolves it.
	case errors.Is(ctx.Err(), context.Canceled):
		// The Write was called off (shutdown, a lost lease): not S3's failure.
	default:
		s.cfg.Observer.UploadFailed(s.cfg.Dataset)
	}
	return err
}

func (s *RowSink) putObject(ctx context.Context, key string, body []byte, meta objectMeta) error {
	in := &s3.PutObjectInput{
		Bucket:      aws.String(s.cfg.Bucket),
		Key:         aws.String(key),
		Body:        bytes.NewReader(body),
		IfNoneMatch: aws.String("*"),
		ContentType: aws.String(meta.contentType),
		Metadata:    meta.metadata,
	}
	if s.cfg.SSEKMSKeyID != "" {
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(s.cfg.SSEKMSKeyID)
	}
	_, err := s.cfg.Client.PutObject(ctx, in)
	return err
}

// uploadMultipart uploads body in parts of Config.PartSize (larger when
// that would make more than S3's 10,000), partConcurrency at a time, each
// with a CRC32 checksum that S3 checks. The parts become the object only at
// CompleteMultipartUpload, which S3 refuses (412) when the key exists.
func (s *RowSink) uploadMultipart(ctx context.Context, key string, body []byte, meta objectMeta) (err error) {
	in := &s3.CreateMultipartUploadInput{
		Bucket:      aws.String(s.cfg.Bucket),
		Key:         aws.String(key),
		ContentType: aws.String(meta.contentType),
		Metadata:    meta.metadata,
		// Named here so that S3 expects the checksum the SDK sends with
		// every part, and Complete lists them.
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
	}
	if s.cfg.SSEKMSKeyID != "" {
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(s.cfg.SSEKMSKeyID)
	}
	out, err := s.cfg.Client.CreateMultipartUpload(ctx, in)
	if err != nil {
		return fmt.Errorf("create multipart upload: %w", err)
	}
	id := aws.ToString(out.UploadId)
	defer func() {
		if err != nil {
			s.abort(ctx, key, id)
		}
	}()
	parts, err := s.uploadParts(ctx, key, id, body)
	if err != nil {
		return err
	}
	_, err = s.cfg.Client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.cfg.Bucket),
		Key:             aws.String(key),
		UploadId:        aws.String(id),
		IfNoneMatch:     aws.String("*"),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return fmt.Errorf("complete multipart upload %s (%d parts): %w", id, len(parts), err)
	}
	return nil
}

// partSize is the size of every part of a body of n bytes but the last.
func partSize(configured int64, n int) int {
	return int(max(configured, (int64(n)+maxParts-1)/maxParts))
}

// uploadParts uploads the parts of body and returns them in order. The
// first failure cancels the others; it returns once none is in flight, so
// that an abort after it finds no part still arriving.
func (s *RowSink) uploadParts(ctx context.Context, key, id string, body []byte) ([]types.CompletedPart, error) {
	size := partSize(s.cfg.PartSize, len(body))
	n := (len(body) + size - 1) / size
	parts := make([]types.CompletedPart, n)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, partConcurrency)
	var wg sync.WaitGroup
	var failed sync.Once
send:
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break send
		}
		wg.Go(func() {
			defer func() { <-sem }()
			num := aws.Int32(int32(i + 1))
			out, err := s.cfg.Client.UploadPart(ctx, &s3.UploadPartInput{
				Bucket:            aws.String(s.cfg.Bucket),
				Key:               aws.String(key),
				UploadId:          aws.String(id),
				PartNumber:        num,
				Body:              bytes.NewReader(body[i*size : min((i+1)*size, len(body))]),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
			})
			if err != nil {
				failed.Do(func() { cancel(fmt.Errorf("upload part %d of %d (multipart upload %s): %w", i+1, n, id, err)) })
				return
			}
			parts[i] = types.CompletedPart{PartNumber: num, ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32}
		})
	}
	wg.Wait()
	// The first part's failure, or the caller's cancellation.
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return parts, nil
}

// abort aborts multipart upload id of key, on a context of its own; when
// that fails the upload is remembered and aborted before the next upload.
func (s *RowSink) abort(ctx context.Context, key, id string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	if err := s.abortUpload(actx, key, id); err != nil {
		s.log.Warn("multipart upload not aborted: its parts stay billed until the sink aborts it before its next upload, or the bucket's AbortIncompleteMultipartUpload lifecycle rule removes it",
			"key", key, "upload_id", id, "err", err)
		s.unaborted.add(s.log, pendingUpload{key: key, id: id})
	}
}

func (s *RowSink) abortUpload(ctx context.Context, key, id string) error {
	_, err := s.cfg.Client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), UploadId: aws.String(id),
	})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload" {
		// Already gone: completed (its answer lost) or aborted.
		return nil
	}
	if err != nil {
		return fmt.Errorf("abort multipart upload %s of s3://%s/%s: %w", id, s.cfg.Bucket, key, err)
	}
	return nil
}

// abortUnaborted retries the aborts that failed, before an upload: S3
// answers again once an outage ends, and the upload needs it to.
func (s *RowSink) abortUnaborted(ctx context.Context) {
	ups := s.unaborted.take()
	for i, u := range ups {
		if ctx.Err() != nil {
			s.unaborted.putBack(ups[i:])
			return
		}
		actx, cancel := context.WithTimeout(ctx, abortTimeout)
		err := s.abortUpload(actx, u.key, u.id)
		cancel()
		if err != nil {
			s.unaborted.putBack(ups[i:])
			return
		}
		s.log.Info("multipart upload aborted after an earlier failure", "key", u.key, "upload_id", u.id)
	}
}

type pendingUpload struct{ key, id string }

// unaborted holds the multipart uploads whose abort failed, oldest first.
type unaborted struct {
	mu  sync.Mutex
	ups []pendingUpload
}

func (u *unaborted) add(log *slog.Logger, p pendingUpload) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.ups) >= maxUnaborted {
		old := u.ups[0]
		u.ups = u.ups[1:]
		log.Warn("too many multipart uploads not aborted; forgetting the oldest: the bucket's AbortIncompleteMultipartUpload lifecycle rule must remove it",
			"key", old.key, "upload_id", old.id)
	}
	u.ups = append(u.ups, p)
}

func (u *unaborted) take() []pendingUpload {
	u.mu.Lock()
	defer u.mu.Unlock()
	ups := u.ups
	u.ups = nil
	return ups
}

// putBack returns ups (older than any added since take) to the front.
func (u *unaborted) putBack(ups []pendingUpload) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.ups = append(append([]pendingUpload(nil), ups...), u.ups...)
}
