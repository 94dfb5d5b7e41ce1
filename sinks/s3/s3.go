// Package s3 implements sinks.RowSink as objects in an S3 bucket (the lake):
// Parquet files typed from the dataset, or JSON Lines (gzip, zstd), under
// <prefix>/<dataset>/<partition>/, written effectively once.
//
// The rows of one shard that fall into one partition form a chain of
// objects. An object's key is
//
//	<prefix>/<dataset>/<partition>/<shard>-<first sequence number, 128 digits>-<first sub-sequence, 10 digits><ext>
//
// so a chain's keys sort in stream order, and its metadata names its last
// row (x-amz-meta-kinesis-last-sequence, -subsequence). Every object is
// created with If-None-Match: * (S3 refuses with 412 when the key exists)
// and starts with the first row after the chain's newest object. A sink
// learns a chain's newest object when it first writes to it (a List of the
// chain's keys, a Head of the last), drops the rows at or below it, and
// keeps the chain's head itself from then on; a 412 (another writer: a
// zombie, a new owner, a retry whose answer was lost) makes it learn the
// head again. A replay after kill -9, a lease move, a zombie and a reset to
// trim_horizon therefore all leave each row in exactly one object, and a
// plain read of the prefix (DuckDB's read_parquet('…/**/*.parquet'), Athena)
// sees it once. docs/lake.md says why in each case.
//
// DeadLetterSink writes dead letters the same way, as JSON Lines objects
// of the file sink's lines (package letterjson), a chain per source and
// shard; LetterReader reads them back.
//
// Write keeps the synchronous sinks.RowSink contract: it returns once every
// object of its rows is stored, holding nothing across calls, so each Write
// makes one object per partition it touches (more when its rows exceed
// Config.MaxBytes).
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/retry"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/rowcopy"
)

// API is the part of the S3 client the sink calls; *s3.Client has it.
type API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, opts ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	// Multipart uploads (upload.go), for objects above Config.MultipartThreshold.
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, opts ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, opts ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

// Formats and partition keywords.
const (
	FormatParquet = "parquet"
	FormatJSONL   = "jsonl"

	// PartitionDate and PartitionHour in Config.PartitionBy partition by the
	// dataset timestamp (UTC), Hive style: dt=2026-12-07, hr=10.
	PartitionDate = "date"
	PartitionHour = "hour"
)

// DefaultMaxBytes is Config.MaxBytes when 0.
const DefaultMaxBytes int64 = 128 << 20

// maxChains bounds the chains a sink remembers: hourly partitions make a
// new chain per shard every hour for ever. Past it the sink forgets them
// all; a forgotten chain is learned again (a List and a Head) at its next
// Write, so forgetting costs calls, never correctness.
const maxChains = 4096

// maxConflicts bounds how often one Write learns a chain's head again after
// a 412: each one means another writer moved the head, which a handful of
// writers of one shard cannot do for ever.
const maxConflicts = 16

// Config configures a sink of one dataset.
type Config struct {
	Client API
	Bucket string
	// Prefix starts every key (no leading or trailing '/'); may be empty.
	Prefix string
	// Dataset names the dataset; it is the key's next part.
	Dataset string
	// Columns are the dataset's fields, in declaration order.
	Columns []schema.Column
	// Timestamp names the dataset's timestamp field (date and hour
	// partitions).
	Timestamp string
	// Changelog (a keyed dataset) adds _op: upsert or delete.
	Changelog bool
	// Format is parquet (default) or jsonl; Compression is zstd (default),
	// snappy, gzip or none for parquet, none (default), gzip or zstd for
	// jsonl.
	Format, Compression string
	// PartitionBy lists the partition's parts, in key order: date, hour,
	// or the name of a field (its value, Hive style: country=DE).
	PartitionBy []string
	// MaxBytes bounds an object's rows, by their size in memory: a chain's
	// buffer is stored when it reaches it, and rows stored together that
	// exceed it make several objects.
	MaxBytes int64
	// MaxInterval is how long a row may wait in its chain's buffer before
	// the buffer is stored (0: DefaultMaxInterval).
	MaxInterval time.Duration
	// BufferBytes bounds the rows the sink holds not yet stored, by their
	// size in memory; past it the largest buffers are stored (0:
	// DefaultBufferBytes).
	BufferBytes int64
	// SSEKMSKeyID, when set, encrypts every object with this KMS key.
	SSEKMSKeyID string
	// MultipartThreshold: an object body larger than this goes up as a
	// multipart upload of PartSize parts (defaults DefaultMultipartThreshold,
	// DefaultPartSize; a part is at least MinPartSize). upload.go.
	MultipartThreshold, PartSize int64
	// Observer, when set, is told of uploads, conflicts, duplicates and
	// flushes (metrics); NopObserver when nil.
	Observer Observer
}

// encoder turns rows into one object's body.
type encoder interface {
	// check reports why r cannot be encoded, nil when it can; scratch is
	// the caller's buffer (check runs concurrently for several shards).
	check(r *record.Row, scratch *[]byte) error
	encode(buf *bytes.Buffer, rows []*record.Row) error
	ext() string
	contentType() string
}

// partPart is one part of the partition path.
type partPart struct {
	name  string // Hive key: dt, hr, or the field's name
	field int    // index of the field in Columns, -1 for date and hour
	hour  bool
}

// RowSink writes the rows of one dataset to S3.
type RowSink struct {
	cfg   Config
	enc   encoder
	parts []partPart
	ts    int // index of the timestamp field, -1 when not partitioned by time
	log   *slog.Logger

	mu     sync.Mutex
	chains map[chainKey]*chain
	closed bool
	// encMu serialises encoding: the encoder's builders and scratch are
	// reused. Uploads run outside it.
	encMu sync.Mutex
	// unaborted: multipart uploads whose abort failed (upload.go).
	unaborted unaborted

	// buffered is the size of the rows held in chains' buffers; freed
	// (guarded by mu) is closed and replaced whenever it shrinks.
	buffered atomic.Int64
	freed    chan struct{}
	// bgCtx ends the background flushes at Close; bg counts them and the
	// age loop; uploads bounds the background uploads at once.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	uploads  chan struct{}
}

var _ sinks.DeferredRowSink = (*RowSink)(nil)

type chainKey struct{ shard, partition string }

// chain is what the sink knows of one chain and the rows it holds for it.
type chain struct {
	key chainKey
	// io serialises the chain's calls to S3 (learning its head, storing
	// objects): a chain's objects are created one after the other. known
	// is guarded by it.
	io    sync.Mutex
	known bool

	// mu guards the rest; empty and stored change with io held too.
	mu     sync.Mutex
	empty  bool // known, and no object yet
	stored pos  // the last row of the chain's newest object
	// accepted is the last row the sink took for the chain (stored or
	// buffered); has says there is one.
	accepted pos
	has      bool
	buf      []item
	bufBytes int64
	since    time.Time // when the oldest buffered row came; zero when none
	queued   bool      // a background flush is pending or running
	waiters  []waiter
}

// New validates cfg and returns the sink. It calls nothing: a bucket that
// is not there fails the first Write (and `validate`, through Check).
func New(cfg Config, log *slog.Logger) (*RowSink, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("s3 sink: Config.Client is nil"))
	}
	if cfg.Bucket == "" {
		errs = append(errs, errors.New(`s3 sink: Config.Bucket is "": name the bucket`))
	}
	if strings.HasPrefix(cfg.Prefix, "/") || strings.HasSuffix(cfg.Prefix, "/") {
		errs = append(errs, fmt.Errorf("s3 sink: Config.Prefix %q: no leading or trailing '/'", cfg.Prefix))
	}
	if err := keyPart("Config.Dataset", cfg.Dataset); err != nil {
		errs = append(errs, err)
	}
	if cfg.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("s3 sink: Config.MaxBytes is %d: must be positive (0 for the default, %d)", cfg.MaxBytes, DefaultMaxBytes))
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	errs = append(errs, uploadDefaults(&cfg)...)
	if cfg.MaxInterval < 0 || cfg.BufferBytes < 0 {
		errs = append(errs, fmt.Errorf("s3 sink: Config.MaxInterval (%s) and Config.BufferBytes (%d) must be positive (0 for the defaults)", cfg.MaxInterval, cfg.BufferBytes))
	}
	if cfg.MaxInterval == 0 {
		cfg.MaxInterval = DefaultMaxInterval
	}
	if cfg.BufferBytes == 0 {
		cfg.BufferBytes = DefaultBufferBytes
	}
	s := &RowSink{cfg: cfg, ts: -1, chains: map[chainKey]*chain{}}
	var err error
	switch cfg.Format {
	case "", FormatParquet:
		s.enc, err = newParquetEncoder(cfg.Columns, cfg.Changelog, cfg.Compression)
	case FormatJSONL:
		s.enc, err = newJSONLEncoder(cfg.Changelog, cfg.Compression)
	default:
		err = fmt.Errorf("s3 sink: Config.Format %q is not parquet or jsonl", cfg.Format)
	}
	if err != nil {
		errs = append(errs, err)
	}
	for _, p := range cfg.PartitionBy {
		switch p {
		case PartitionDate, PartitionHour:
			i := slices.IndexFunc(cfg.Columns, func(c schema.Column) bool { return c.Name == cfg.Timestamp })
			if cfg.Timestamp == "" || i < 0 {
				errs = append(errs, fmt.Errorf("s3 sink: partition by %s needs the dataset's timestamp field, and dataset %q has none", p, cfg.Dataset))
				continue
			}
			s.ts = i
			name := "dt"
			if p == PartitionHour {
				name = "hr"
			}
			s.parts = append(s.parts, partPart{name: name, field: -1, hour: p == PartitionHour})
		default:
			i := slices.IndexFunc(cfg.Columns, func(c schema.Column) bool { return c.Name == p })
			if i < 0 {
				errs = append(errs, fmt.Errorf("s3 sink: partition by %q: dataset %q has no such field (or use date, hour)", p, cfg.Dataset))
				continue
			}
			switch k := baseKind(cfg.Columns[i].Type); k {
			case schema.KindInt, schema.KindStr, schema.KindBool, schema.KindDate:
			default:
				errs = append(errs, fmt.Errorf("s3 sink: partition by %q: a %s field cannot name a partition (int, str, bool or date can)", p, k))
				continue
			}
			s.parts = append(s.parts, partPart{name: p, field: i})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s.log = log.With("sink_kind", "s3", "bucket", cfg.Bucket, "prefix", cfg.Prefix)
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	s.uploads = make(chan struct{}, maxUploads)
	s.freed = make(chan struct{})
	s.bg.Add(1)
	go s.ages()
	return s, nil
}

func baseKind(t schema.Type) schema.Kind {
	if t.Kind == schema.KindOptional {
		return t.Elem.Kind
	}
	return t.Kind
}

func keyPart(what, v string) error {
	if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\\") {
		return fmt.Errorf("s3 sink: %s %q: must be a non-empty key part without '/'", what, v)
	}
	return nil
}

// errClosed is returned by Write after Close.
var errClosed = errors.New("s3 sink: Write called after Close")

// item is a row of a Write with its position in the shard.
type item struct {
	row *record.Row
	pos pos
}

// Write stores rows and returns once they are stored (the synchronous
// contract): they join their chains' buffers, and the chains they touched
// are stored at once, with whatever else those buffers held.
func (s *RowSink) Write(ctx context.Context, rows []record.Row) error {
	if len(rows) == 0 {
		return nil
	}
	done := make(chan error, 1)
	chains, err := s.accept(ctx, rows, func(err error) { done <- err })
	if _, refused := sinks.IsRejected(err); err != nil && !refused {
		return err
	}
	for _, c := range chains {
		if ferr := s.flushChain(ctx, c, FlushWrite); ferr != nil {
			return ferr
		}
	}
	select {
	case derr := <-done:
		if derr != nil {
			return derr
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}

// partition is the row's partition path: "dt=2026-12-07/hr=10/country=DE",
// "" when not partitioned.
func (s *RowSink) partition(r *record.Row) (string, error) {
	if len(s.parts) == 0 {
		return "", nil
	}
	var b strings.Builder
	for i, p := range s.parts {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(p.name)
		b.WriteByte('=')
		if p.field < 0 {
			t, ok := r.FieldValue(s.ts, s.cfg.Timestamp).(time.Time)
			if !ok {
				return "", fmt.Errorf("timestamp field %q is not a datetime", s.cfg.Timestamp)
			}
			t = t.UTC()
			if p.hour {
				b.WriteString(t.Format("15"))
			} else {
				b.WriteString(t.Format("2006-01-02"))
			}
			continue
		}
		var v string
		switch x := r.FieldValue(p.field, p.name).(type) {
		case nil:
			// Hive's name for a null partition value.
			v = "__HIVE_DEFAULT_PARTITION__"
		case int64:
			v = strconv.FormatInt(x, 10)
		case bool:
			v = strconv.FormatBool(x)
		case record.Date:
			v = x.String()
		case string:
			v = x
		default:
			return "", fmt.Errorf("partition field %q holds a %T", p.name, x)
		}
		// Escaped as Hive escapes partition values, so that a '/' or '='
		// in a value cannot make another path.
		b.WriteString(url.PathEscape(v))
	}
	return b.String(), nil
}

func (s *RowSink) chain(k chainKey) *chain {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.chains[k]
	if !ok {
		if len(s.chains) >= maxChains {
			s.forget()
		}
		c = &chain{key: k}
		s.chains[k] = c
	}
	return c
}

// dir is the key prefix of a partition: <prefix>/<dataset>/<partition>/.
func (s *RowSink) dir(partition string) string {
	var b strings.Builder
	if s.cfg.Prefix != "" {
		b.WriteString(s.cfg.Prefix)
		b.WriteByte('/')
	}
	b.WriteString(s.cfg.Dataset)
	b.WriteByte('/')
	if partition != "" {
		b.WriteString(partition)
		b.WriteByte('/')
	}
	return b.String()
}

// fit returns how many of items (at least one) go into the next object:
// as many as stay within MaxBytes by their size in memory.
func (s *RowSink) fit(items []item) int {
	var size int64
	for i, it := range items {
		size += rowcopy.Size(it.row)
		if size > s.cfg.MaxBytes && i > 0 {
			return i
		}
	}
	return len(items)
}

// learn finds the chain's newest object and the position of its last row.
func (s *RowSink) learn(ctx context.Context, dir, shard string, c *chain) error {
	last, newest, err := learnHead(ctx, s.cfg.Client, s.cfg.Bucket, dir+shard+"-", shard, s.enc.ext())
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.known, c.empty, c.stored = true, newest == "", last
	c.mu.Unlock()
	if newest != "" {
		s.log.Debug("chain head", "object", newest, "last", last.String())
	}
	return nil
}

// put stores items as one object, created only if its key is new.
func (s *RowSink) put(ctx context.Context, dir, shard string, items []item) error {
	rows := make([]*record.Row, len(items))
	for i := range items {
		rows[i] = items[i].row
	}
	var buf bytes.Buffer
	s.encMu.Lock()
	err := s.enc.encode(&buf, rows)
	s.encMu.Unlock()
	if err != nil {
		return err
	}
	first, last := items[0].pos, items[len(items)-1].pos
	key := dir + first.name(shard) + s.enc.ext()
	meta := objectMeta{contentType: s.enc.contentType(), metadata: map[string]string{
		metaLastSeq: last.seq,
		metaLastSub: strconv.Itoa(last.sub),
		metaRows:    strconv.Itoa(len(items)),
	}}
	if err := s.upload(ctx, key, buf.Bytes(), meta); err != nil {
		return fmt.Errorf("s3 sink: put s3://%s/%s (%d rows): %w", s.cfg.Bucket, key, len(items), err)
	}
	s.log.Debug("object stored", "key", key, "rows", len(items), "bytes", buf.Len())
	return nil
}

// isConflict reports whether err is S3's answer to a conditional create of
// a key that exists: 412 Precondition Failed (or 409 ConditionalRequestConflict
// when two creates of the key race).
func isConflict(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "PreconditionFailed", "ConditionalRequestConflict":
			return true
		}
	}
	return false
}

// Close stores what the buffers hold (one attempt, within closeTimeout) and stops the
// background flushes; rows it could not store are told so (their shard's
// checkpoint stays before them).
func (s *RowSink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	// One attempt: a graceful stop has flushed through Flush already
	// (retried within the shutdown timeout); what is left here is read again
	// from the checkpoint if S3 does not take it now.
	err := s.flushAll(ctx, FlushShutdown, retry.Policy{Attempts: 1})
	s.bgCancel()
	s.bg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.chains {
		c.fail(errClosedUnflushed)
	}
	if err != nil {
		return fmt.Errorf("s3 sink: close: rows not stored (their shards read them again from the checkpoint): %w", err)
	}
	return nil
}

// closeTimeout bounds Close's last flush.
const closeTimeout = 30 * time.Second

// forget drops the chains that hold nothing and nobody waits on (s.mu is
// held): hourly partitions make a new chain per shard every hour for ever.
// A forgotten chain is learned again (a List and a Head) at its next
// Accept, so forgetting costs calls, never correctness.
func (s *RowSink) forget() {
	for k, c := range s.chains {
		c.mu.Lock()
		idle := len(c.buf) == 0 && len(c.waiters) == 0 && !c.queued
		c.mu.Unlock()
		if idle && c.io.TryLock() {
			delete(s.chains, k)
			c.io.Unlock()
		}
	}
}

// fail tells every waiter of c that its rows will not be stored.
func (c *chain) fail(err error) {
	c.mu.Lock()
	ws := c.waiters
	c.waiters = nil
	c.mu.Unlock()
	for _, w := range ws {
		w.t.done(err)
	}
}
