package sinkreg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/errview"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/redrive"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/s3"
)

func init() {
	Register(&Kind{
		Name: "s3",
		// One sink per dataset: the dataset's name is a part of every key,
		// and its columns type the Parquet files.
		Rows: func(ctx context.Context, s config.Sink, ds config.Dataset, env Env) (Opened[sinks.RowSink], error) {
			client, err := s3Client(ctx, s.S3, env.WorkerID)
			if err != nil {
				return Opened[sinks.RowSink]{}, fmt.Errorf("sink %q: %w", s.Name, err)
			}
			c := s3Config(s.S3, ds)
			c.Client, c.Observer = client, env.S3
			if c.Observer == nil && env.OnDuplicates != nil {
				c.Observer = duplicatesOnly{f: env.OnDuplicates}
			}
			rs, err := s3.New(c, env.Log.With("sink", s.Name, "dataset", ds.Name))
			if err != nil {
				return Opened[sinks.RowSink]{}, fmt.Errorf("sink %q (dataset %q): %w", s.Name, ds.Name, err)
			}
			return Opened[sinks.RowSink]{Sink: rs}, nil
		},
		// One sink for every source: the source is a part of every key.
		DeadLetters: func(ctx context.Context, dl config.DeadLetter, env Env) (Opened[sinks.DeadLetterSink], error) {
			client, err := s3Client(ctx, dl.S3, env.WorkerID)
			if err != nil {
				return Opened[sinks.DeadLetterSink]{}, fmt.Errorf("dead_letter: %w", err)
			}
			c := dl.S3
			d, err := s3.NewDeadLetterSink(s3.LetterConfig{Client: client, Bucket: c.Bucket, Prefix: c.Prefix, Compression: c.Compression,
				SSEKMSKeyID: c.SSEKMSKeyID, OnDuplicates: env.OnDuplicates}, env.Log.With("sink", "dead_letter"))
			if err != nil {
				return Opened[sinks.DeadLetterSink]{}, fmt.Errorf("dead_letter: %w", err)
			}
			return Opened[sinks.DeadLetterSink]{Sink: d}, nil
		},
		Probes: func(s config.Sink, _ []config.Dataset) []Probe {
			return []Probe{s3Probe("sink "+s.Name, s.S3)}
		},
		DeadLetterProbes: func(dl config.DeadLetter) []Probe {
			return []Probe{s3Probe("dead_letter", dl.S3)}
		},
		// The objects of every worker writing under the prefix. The client
		// is made here, once: the worker's errors view scans with it.
		Errors: func(dl config.DeadLetter) errview.Source {
			client, err := s3Client(context.Background(), dl.S3, "errors")
			if err != nil {
				return brokenSource{fmt.Errorf("dead_letter: %w", err)}
			}
			return errview.S3Source{Reader: s3.LetterReader{Client: client, Bucket: dl.S3.Bucket, Prefix: dl.S3.Prefix}}
		},
		Letters: func(dl config.DeadLetter) redrive.Source {
			client, err := s3Client(context.Background(), dl.S3, "redrive")
			if err != nil {
				return brokenLetters{fmt.Errorf("dead_letter: %w", err)}
			}
			return redrive.S3Source{Reader: s3.LetterReader{Client: client, Bucket: dl.S3.Bucket, Prefix: dl.S3.Prefix}}
		},
		// OlderRows is false: a row at or below its chain's newest object
		// is dropped as stored (the chain's head is all the sink knows of
		// what a chain holds), so a redriven row older than the rows
		// written after its letter would be dropped, not stored.
	})
}

// s3Probe makes the calls the sinks make, on a probe object: list,
// conditional put, head, a multipart upload started and aborted; then the
// probe is deleted.
func s3Probe(name string, c *config.S3Sink) Probe {
	return Probe{
		Name: fmt.Sprintf("%s: s3://%s/%s writable", name, c.Bucket, c.Prefix),
		Run: func(ctx context.Context) (string, error) {
			client, err := s3Client(ctx, c, "validate")
			if err != nil {
				return "", err
			}
			if err := s3.Check(ctx, client, c.Bucket, c.Prefix, c.SSEKMSKeyID); err != nil {
				return "", err
			}
			return "listed, created (If-None-Match), read and deleted a probe object; started and aborted a multipart upload", nil
		},
		Explain: explainS3,
	}
}

// brokenSource is the errors view of a sink whose reader could not be
// made: every scan says why.
type brokenSource struct{ err error }

func (b brokenSource) Scan(context.Context, errview.Query, *errview.Tally) (errview.ScanStats, error) {
	return errview.ScanStats{}, b.err
}

// duplicatesOnly tells OnDuplicates of an Env without an S3 observer.
type duplicatesOnly struct {
	s3.NopObserver
	f func(n int)
}

func (d duplicatesOnly) Duplicates(_ string, n int) { d.f(n) }

// s3Config is the sink configuration of dataset ds on S3 sink c.
func s3Config(c *config.S3Sink, ds config.Dataset) s3.Config {
	return s3.Config{
		Bucket:      c.Bucket,
		Prefix:      c.Prefix,
		Dataset:     ds.Name,
		Columns:     ds.Schema.Columns(),
		Timestamp:   ds.Timestamp,
		Changelog:   ds.Keyed(),
		Format:      c.Format,
		Compression: c.Compression,
		PartitionBy: c.PartitionBy,
		MaxBytes:    c.MaxBytes,
		MaxInterval: c.MaxInterval,
		BufferBytes: c.BufferBytes,
		SSEKMSKeyID: c.SSEKMSKeyID,
	}
}

// s3Client is an S3 client from the SDK's standard configuration (the
// endpoint from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, credentials from
// the usual chain), assuming c.RoleARN when set.
func s3Client(ctx context.Context, c *config.S3Sink, session string) (*awss3.Client, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration for S3 (environment, profiles): %w", err)
	}
	if c.RoleARN != nil {
		prov := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), c.RoleARN.String(), func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = session
		})
		cfg.Credentials = aws.NewCredentialsCache(prov, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = time.Minute })
	}
	return awss3.NewFromConfig(cfg, func(o *awss3.Options) { o.UsePathStyle = c.ForcePathStyle }), nil
}

func explainS3(err error) (string, string) {
	var ae *s3.AccessError
	if errors.As(err, &ae) {
		return ClassAccessDenied, "grant the worker's role " + ae.Action + " on " + ae.Resource
	}
	if errors.Is(err, s3.ErrNoBucket) {
		return ClassNotFound, "create the bucket, or fix its name (and the region: AWS_REGION)"
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken":
			return ClassCredentials, "check the worker's AWS credentials"
		}
		return ClassOther, ""
	}
	return ClassUnreachable, "check the S3 endpoint (AWS_ENDPOINT_URL_S3) and the network; force_path_style: true for servers without virtual-hosted buckets"
}
