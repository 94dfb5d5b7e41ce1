package config

import (
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// sinks[i].s3.
const (
	keyS3             = "s3"
	keyBucket         = "bucket"
	keyPrefix         = "prefix"
	keyCompression    = "compression"
	keyPartitionBy    = "partition_by"
	keyMaxInterval    = "max_interval"
	keyForcePathStyle = "force_path_style"
	keySSEKMSKeyID    = "sse_kms_key_id"
	keyBufferBytes    = "buffer_bytes"
)

// S3 sink formats and defaults.
const (
	S3FormatParquet           = "parquet"
	S3FormatJSONL             = "jsonl"
	DefaultS3MaxBytes         = 128 << 20
	DefaultS3MaxInterval      = time.Minute
	DefaultS3BufferBytes      = 256 << 20
	S3PartitionDate           = "date"
	S3PartitionHour           = "hour"
	defaultS3Compression      = "zstd"
	defaultS3JSONLCompression = "none"
	// DefaultS3DeadLetterPrefix is dead_letter.s3.prefix when not given,
	// the file dead-letter sink's name for its files.
	DefaultS3DeadLetterPrefix = "dead-letters"
)

// S3Sink writes rows as objects in an S3 bucket (the lake): Parquet or
// JSON Lines, one chain of objects per shard and partition, written
// effectively once (see sinks/s3). Under dead_letter it writes dead letters
// as JSON Lines objects, one chain per source and shard: Format is jsonl,
// and PartitionBy, MaxBytes and MaxInterval are not set.
type S3Sink struct {
	Bucket string
	// Prefix starts every key, without leading or trailing '/'.
	Prefix string
	// Format is parquet (default) or jsonl.
	Format string
	// Compression: zstd (default), snappy, gzip or none for parquet; none
	// (default), gzip or zstd for jsonl.
	Compression string
	// PartitionBy lists date, hour (of the dataset timestamp) and field
	// names, in key order.
	PartitionBy []string
	// MaxBytes bounds an object's rows (by their size in memory).
	MaxBytes int64
	// MaxInterval is how long rows may wait in a buffer before their
	// object is written (their shards' checkpoints wait as long).
	MaxInterval time.Duration
	// BufferBytes bounds the rows a worker's sink holds not yet written
	// (by their size in memory); past it the largest buffers are written.
	BufferBytes int64
	// ForcePathStyle addresses buckets as http://host/bucket, for servers
	// without virtual-hosted buckets (versitygw, MinIO, LocalStack).
	ForcePathStyle bool
	// RoleARN, when set, is assumed for every S3 call (a bucket in another
	// account).
	RoleARN *RoleARN
	// SSEKMSKeyID encrypts every object with this KMS key (SSE-KMS).
	SSEKMSKeyID string
}

var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func (l *loader) s3Sink(path string, n *yaml.Node) *S3Sink {
	m := l.mapping(path, n, keyBucket, keyPrefix, keyFormat, keyCompression, keyPartitionBy, keyMaxBytes, keyMaxInterval, keyBufferBytes, keyForcePathStyle, keyRoleARN, keySSEKMSKeyID)
	s := &S3Sink{
		Format:      S3FormatParquet,
		MaxBytes:    l.integer(m, keyMaxBytes, DefaultS3MaxBytes, 1, 1<<62),
		MaxInterval: l.durationMin(m, keyMaxInterval, DefaultS3MaxInterval, false),
		BufferBytes: l.integer(m, keyBufferBytes, DefaultS3BufferBytes, 1, 1<<62),
	}
	l.s3Place(path, m, s)
	if m.has(keyFormat) {
		switch v := l.str(m, keyFormat); v {
		case S3FormatParquet, S3FormatJSONL:
			s.Format = v
		default:
			l.errorf(join(path, keyFormat), m.vals[keyFormat], "%q is not an object format; use parquet or jsonl", v)
		}
	}
	s.Compression = defaultS3Compression
	allowed := []string{"zstd", "snappy", "gzip", "none"}
	if s.Format == S3FormatJSONL {
		s.Compression = defaultS3JSONLCompression
		allowed = []string{"none", "gzip", "zstd"}
	}
	l.s3Compression(path, m, s, allowed)
	for i, item := range l.seq(m, keyPartitionBy) {
		p := index(join(path, keyPartitionBy), i)
		if item.Kind != yaml.ScalarNode || item.Value == "" {
			l.errorf(p, item, "expected date, hour or a field name")
			continue
		}
		if contains(s.PartitionBy, item.Value) {
			l.errorf(p, item, "%q is listed twice", item.Value)
			continue
		}
		s.PartitionBy = append(s.PartitionBy, item.Value)
	}
	return s
}

// s3DeadLetter is dead_letter.s3: JSON Lines objects, of which only the
// compression is a choice.
func (l *loader) s3DeadLetter(path string, n *yaml.Node) *S3Sink {
	m := l.mapping(path, n, keyBucket, keyPrefix, keyCompression, keyForcePathStyle, keyRoleARN, keySSEKMSKeyID)
	s := &S3Sink{Format: S3FormatJSONL, Prefix: DefaultS3DeadLetterPrefix, Compression: defaultS3JSONLCompression}
	l.s3Place(path, m, s)
	l.s3Compression(path, m, s, []string{"none", "gzip", "zstd"})
	return s
}

// s3Place reads where an S3 sink writes and how it gets there: bucket,
// prefix, force_path_style, role_arn and sse_kms_key_id.
func (l *loader) s3Place(path string, m *mapNode, s *S3Sink) {
	s.ForcePathStyle = l.boolean(m, keyForcePathStyle, false)
	s.RoleARN = l.roleARN(m, keyRoleARN)
	s.SSEKMSKeyID = l.str(m, keySSEKMSKeyID)
	if l.required(m, keyBucket, "name the bucket the objects go to") {
		s.Bucket = l.str(m, keyBucket)
		if !bucketRE.MatchString(s.Bucket) {
			l.errorf(join(path, keyBucket), m.vals[keyBucket], "%q is not an S3 bucket name (3-63 lower-case letters, digits, '.' and '-')", s.Bucket)
		}
	}
	if m.has(keyPrefix) {
		s.Prefix = l.str(m, keyPrefix)
		if strings.HasPrefix(s.Prefix, "/") || strings.HasSuffix(s.Prefix, "/") || strings.Contains(s.Prefix, "//") {
			l.errorf(join(path, keyPrefix), m.vals[keyPrefix], "%q: write the prefix without leading, trailing or doubled '/', e.g. lake/orders", s.Prefix)
		}
	}
}

// s3Compression reads compression, one of allowed (of s.Format's objects).
func (l *loader) s3Compression(path string, m *mapNode, s *S3Sink, allowed []string) {
	if !m.has(keyCompression) {
		return
	}
	v := l.str(m, keyCompression)
	if !contains(allowed, v) {
		l.errorf(join(path, keyCompression), m.vals[keyCompression], "%q is not a compression of %s objects; use %s", v, s.Format, strings.Join(allowed, ", "))
		return
	}
	s.Compression = v
}

// nested reports whether the keys under prefix a and those under prefix b
// can meet: one prefix is the other, or under it ("" is the whole bucket).
func nested(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	return a == "" || a == b || strings.HasPrefix(b, a+"/")
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

func s3SinkSpec(doc string) *spec {
	return object(doc,
		required(keyBucket, str("The bucket the objects go to.").withPattern(bucketRE.String())),
		key(keyPrefix, str("Starts every object key (without leading or trailing '/'); under it, <dataset>/<partition>/<shard>-<first sequence number>-<first sub-sequence>.<ext>.").computedDefault("none")),
		key(keyFormat, str("parquet (columns typed from the dataset) or jsonl (JSON Lines, as the file sink writes).").withEnum(S3FormatParquet, S3FormatJSONL).withDefault(S3FormatParquet)),
		key(keyCompression, str("parquet: zstd (default), snappy, gzip or none; jsonl: none (default), gzip or zstd, of the whole object.").withEnum("zstd", "snappy", "gzip", "none").computedDefault("zstd for parquet, none for jsonl")),
		key(keyPartitionBy, list("The partition path's parts in order, Hive style: date (dt=2026-12-07) and hour (hr=10) of the dataset's timestamp, or a field's name (country=DE; int, str, bool or date fields).", str("date, hour or a field name."))),
		key(keyMaxBytes, integer("A chain's buffer (one shard's rows of one partition) becomes an object when it holds about this many bytes (in memory).", DefaultS3MaxBytes, 1, unbounded)),
		key(keyMaxInterval, duration("How long a row may wait in its buffer before its object is written; the shard's checkpoint waits as long, so a crash replays at most this much (the lake drops what it holds).", DefaultS3MaxInterval)),
		key(keyBufferBytes, integer("The rows this sink holds not yet written, by their size in memory, in one worker; past it the largest buffers are written early.", DefaultS3BufferBytes, 1, unbounded)),
		key(keyForcePathStyle, boolean("Address the bucket in the path (http://host/bucket/key), for servers without virtual-hosted buckets (versitygw, MinIO, LocalStack). The endpoint comes from the SDK's standard configuration (AWS_ENDPOINT_URL_S3).", false)),
		key(keyRoleARN, str("An IAM role to assume (STS AssumeRole) for every S3 call, e.g. for a bucket in another account.").computedDefault("the worker's own credentials")),
		key(keySSEKMSKeyID, str("Encrypt every object with this KMS key (SSE-KMS); the role needs kms:GenerateDataKey on it.").computedDefault("the bucket's default encryption")),
	)
}

func s3DeadLetterSpec(doc string) *spec {
	return object(doc,
		required(keyBucket, str("The bucket the dead letters go to.").withPattern(bucketRE.String())),
		key(keyPrefix, str("Starts every object key (without leading or trailing '/'); under it, <source>/<shard>-<first sequence number>-<first sub-sequence>.jsonl[.gz|.zst]. Give it a prefix no row sink writes under.").withDefault(DefaultS3DeadLetterPrefix)),
		key(keyCompression, str("none, gzip or zstd, of the whole object.").withEnum("none", "gzip", "zstd").withDefault(defaultS3JSONLCompression)),
		key(keyForcePathStyle, boolean("Address the bucket in the path (http://host/bucket/key), for servers without virtual-hosted buckets (versitygw, MinIO, LocalStack). The endpoint comes from the SDK's standard configuration (AWS_ENDPOINT_URL_S3).", false)),
		key(keyRoleARN, str("An IAM role to assume (STS AssumeRole) for every S3 call, e.g. for a bucket in another account.").computedDefault("the worker's own credentials")),
		key(keySSEKMSKeyID, str("Encrypt every object with this KMS key (SSE-KMS); the role needs kms:GenerateDataKey on it.").computedDefault("the bucket's default encryption")),
	)
}

func (p printer) s3DeadLetter(s *S3Sink) *yaml.Node {
	if s == nil {
		return nil
	}
	return p.mapping(
		keyBucket, p.str(s.Bucket),
		keyPrefix, p.str(s.Prefix),
		keyCompression, p.str(s.Compression),
		keyForcePathStyle, p.bool(s.ForcePathStyle),
		keyRoleARN, p.roleARN(s.RoleARN),
		keySSEKMSKeyID, p.optStr(s.SSEKMSKeyID),
	)
}

func (p printer) s3Sink(s *S3Sink) *yaml.Node {
	if s == nil {
		return nil
	}
	return p.mapping(
		keyBucket, p.str(s.Bucket),
		keyPrefix, p.optStr(s.Prefix),
		keyFormat, p.str(s.Format),
		keyCompression, p.str(s.Compression),
		keyPartitionBy, p.strs(s.PartitionBy),
		keyMaxBytes, p.int(s.MaxBytes),
		keyMaxInterval, p.dur(s.MaxInterval),
		keyBufferBytes, p.int(s.BufferBytes),
		keyForcePathStyle, p.bool(s.ForcePathStyle),
		keyRoleARN, p.roleARN(s.RoleARN),
		keySSEKMSKeyID, p.optStr(s.SSEKMSKeyID),
	)
}

// roleARN prints an optional role.
func (p printer) roleARN(r *RoleARN) *yaml.Node {
	if r == nil {
		return nil
	}
	return p.str(r.String())
}

// checkS3 refuses what no single S3 sink shows: a partition_by naming no
// field of a dataset the sink receives, and dead letters under a row
// sink's prefix (or rows under theirs), where readers of either would read
// both and a dataset named like a source would share its chains.
func (l *loader) checkS3(cfg *Config) {
	if dl := cfg.DeadLetter.S3; dl != nil {
		for _, s := range cfg.Sinks {
			if s.S3 != nil && s.S3.Bucket == dl.Bucket && nested(s.S3.Prefix, dl.Prefix) {
				l.errorf(join(join(keyDeadLetter, keyS3), keyPrefix), nil, "s3://%s/%s and the objects of sink %q (s3://%s/%s) are under one another: give the dead letters a prefix of their own, e.g. %s", dl.Bucket, dl.Prefix, s.Name, s.S3.Bucket, s.S3.Prefix, DefaultS3DeadLetterPrefix)
			}
		}
	}
	for i, ds := range cfg.Datasets {
		s := cfg.Sink(ds.Sink)
		if s == nil || s.S3 == nil {
			continue
		}
		for _, p := range s.S3.PartitionBy {
			if p == S3PartitionDate || p == S3PartitionHour {
				continue // every dataset has a timestamp
			}
			found := false
			for _, f := range ds.Fields {
				found = found || f.Name == p
			}
			if !found {
				l.errorf(join(index(keyDatasets, i), keySink), nil, "sink %q partitions by %q, which is not a field of dataset %q (partition_by takes date, hour or field names)", s.Name, p, ds.Name)
			}
		}
	}
}
