package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/letterjson"
)

// LetterConfig configures a DeadLetterSink.
type LetterConfig struct {
	Client API
	Bucket string
	// Prefix starts every key (no leading or trailing '/'); may be empty.
	Prefix string
	// Compression of each object as a whole: none (default), gzip or zstd.
	Compression string
	// MaxBytes bounds an object's letters by their encoded size: a Write
	// whose letters of one shard exceed it makes several objects. 0 is
	// DefaultMaxBytes.
	MaxBytes int64
	// SSEKMSKeyID, when set, encrypts every object with this KMS key.
	SSEKMSKeyID string
	// OnConflict, when set, is told of each 412 resolved.
	OnConflict func()
	// OnDuplicates, when set, is told of letters dropped because their
	// chain already holds them (a replay).
	OnDuplicates func(n int)
}

// DeadLetterSink writes dead letters as JSON Lines objects, each line the
// one the file sink writes (package letterjson), effectively once as
// RowSink writes rows: the letters of one shard of one source form a chain
// of objects keyed
//
//	<prefix>/<source>/<shard>-<first sequence number, 128 digits>-<first sub-sequence, 10 digits>.jsonl[.gz|.zst]
//
// each created with If-None-Match: * right after the chain's newest object;
// letters at or below that object's last record are dropped as already
// stored. The source is a part of the key because two streams have shards
// of the same ids, and the chains of one prefix must not meet.
//
// One record may make several letters (one per dataset that refused it);
// they share the record's position, so they are ordered by it (stably:
// Write sorts a call's letters, since the pipeline appends a sink's
// refusals after the batch's decode errors) and never split between two
// objects, and the chain's unit is the record. Write returns once every
// object is stored, like RowSink's, and makes one object per source and
// shard it gets letters of (more when they exceed LetterConfig.MaxBytes).
type DeadLetterSink struct {
	cfg LetterConfig
	enc *jsonlEncoder // compression, extension and content type only
	log *slog.Logger

	mu     sync.Mutex
	chains map[chainKey]*chain // chainKey.partition is the source's part of the key
	closed bool
	encMu  sync.Mutex // enc's zstd encoder is reused
}

var _ sinks.DeadLetterSink = (*DeadLetterSink)(nil)

// NewDeadLetterSink validates cfg and returns the sink. It calls nothing.
func NewDeadLetterSink(cfg LetterConfig, log *slog.Logger) (*DeadLetterSink, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("s3 dead-letter sink: LetterConfig.Client is nil"))
	}
	if cfg.Bucket == "" {
		errs = append(errs, errors.New(`s3 dead-letter sink: LetterConfig.Bucket is "": name the bucket`))
	}
	if strings.HasPrefix(cfg.Prefix, "/") || strings.HasSuffix(cfg.Prefix, "/") {
		errs = append(errs, fmt.Errorf("s3 dead-letter sink: LetterConfig.Prefix %q: no leading or trailing '/'", cfg.Prefix))
	}
	if cfg.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("s3 dead-letter sink: LetterConfig.MaxBytes is %d: must be positive (0 for the default, %d)", cfg.MaxBytes, DefaultMaxBytes))
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	enc, err := newJSONLEncoder(false, cfg.Compression)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &DeadLetterSink{cfg: cfg, enc: enc, chains: map[chainKey]*chain{},
		log: log.With("sink_kind", "s3", "bucket", cfg.Bucket, "prefix", cfg.Prefix)}, nil
}

// letterItem is a letter of a Write, encoded: its line is lines[start:end]
// of the Write.
type letterItem struct {
	pos        pos
	start, end int
}

// Write stores letters, one object per source and shard they come from,
// each the next of its chain; letters a chain already holds are dropped. A
// letter whose position or arrival time cannot be written is refused
// (*sinks.RejectedError), as the file sink refuses it.
func (s *DeadLetterSink) Write(ctx context.Context, letters []record.DeadLetter) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return errClosed
	}
	if len(letters) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var lines []byte
	groups := map[chainKey][]letterItem{}
	var order []chainKey
	var refused []int
	var refusal error
	for i := range letters {
		d := &letters[i]
		p, err := posOf(&d.Origin)
		start := len(lines)
		if err == nil {
			lines, err = letterjson.Append(lines, d)
		}
		if err != nil {
			lines = lines[:start]
			refused = append(refused, i)
			refusal = errors.Join(refusal, fmt.Errorf("dead letter %d (%s %s): %w", i, d.ShardID, d.SequenceNumber, err))
			continue
		}
		k := chainKey{shard: d.ShardID, partition: sourcePart(d.Source)}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], letterItem{pos: p, start: start, end: len(lines)})
	}
	for _, k := range order {
		items := groups[k]
		slices.SortStableFunc(items, func(a, b letterItem) int { return a.pos.cmp(b.pos) })
		if err := s.writeChain(ctx, k, items, lines); err != nil {
			return err
		}
	}
	if refused != nil {
		return &sinks.RejectedError{Index: refused, Err: refusal}
	}
	return nil
}

// sourcePart is a source's part of a key: its name as a path segment ("-"
// for none; config names never start with '-').
func sourcePart(source string) string {
	if source == "" {
		return "-"
	}
	return strings.ReplaceAll(url.PathEscape(source), ".", "%2E")
}

func (s *DeadLetterSink) chain(k chainKey) *chain {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.chains[k]
	if !ok {
		if len(s.chains) >= maxChains {
			clear(s.chains) // forgotten chains are learned again
		}
		c = &chain{}
		s.chains[k] = c
	}
	return c
}

// dir is the key prefix of a source's chains: <prefix>/<source>/.
func (s *DeadLetterSink) dir(source string) string {
	if s.cfg.Prefix == "" {
		return source + "/"
	}
	return s.cfg.Prefix + "/" + source + "/"
}

// writeChain appends items (of one chain, in stream order) to their chain:
// learn its head when unknown, drop what it holds, create the next
// objects; a conflict (another writer created the key) learns again.
func (s *DeadLetterSink) writeChain(ctx context.Context, k chainKey, items []letterItem, lines []byte) error {
	c := s.chain(k)
	dir := s.dir(k.partition)
	prefix := dir + k.shard + "-"
	for conflicts := 0; ; {
		if !c.known {
			// Every compression's objects are the chain's: changing it
			// does not start the chain again.
			last, newest, err := learnHead(ctx, s.cfg.Client, s.cfg.Bucket, prefix, k.shard, letterExts...)
			if err != nil {
				return err
			}
			c.known, c.empty, c.stored = true, newest == "", last
		}
		if !c.empty {
			skip := 0
			for skip < len(items) && items[skip].pos.cmp(c.stored) <= 0 {
				skip++
			}
			if skip > 0 && s.cfg.OnDuplicates != nil {
				s.cfg.OnDuplicates(skip)
			}
			items = items[skip:]
		}
		for len(items) > 0 {
			n := s.fit(items)
			err := s.put(ctx, dir, k.shard, items[:n], lines)
			if isConflict(err) {
				if conflicts++; conflicts > maxConflicts {
					return fmt.Errorf("s3 dead-letter sink: chain %s: %d conflicting writers in one Write; check that no other deployment writes the same prefix: %w", prefix, conflicts, err)
				}
				if s.cfg.OnConflict != nil {
					s.cfg.OnConflict()
				}
				s.log.Info("another writer stored the next object of the chain; learning its head again", "chain", prefix)
				c.known = false
				break
			}
			if err != nil {
				return err
			}
			c.empty, c.stored = false, items[n-1].pos
			items = items[n:]
		}
		if len(items) == 0 {
			return nil
		}
	}
}

// fit returns how many of items go into the next object: as many as stay
// within MaxBytes, at least one record's letters, and never a part of a
// record's letters (a chain's head is a record: letters of it left for the
// next object would be dropped as stored).
func (s *DeadLetterSink) fit(items []letterItem) int {
	var size int64
	for i, it := range items {
		size += int64(it.end - it.start)
		if size > s.cfg.MaxBytes && i > 0 && it.pos.cmp(items[i-1].pos) != 0 {
			return i
		}
	}
	return len(items)
}

// put stores items as the next object of shard's chain under dir, keyed by
// its first record.
func (s *DeadLetterSink) put(ctx context.Context, dir, shard string, items []letterItem, lines []byte) error {
	var buf bytes.Buffer
	s.encMu.Lock()
	err := s.enc.compress(&buf, func(w io.Writer) error {
		for _, it := range items {
			if _, err := w.Write(lines[it.start:it.end]); err != nil {
				return fmt.Errorf("s3 dead-letter sink: compress: %w", err)
			}
		}
		return nil
	})
	s.encMu.Unlock()
	if err != nil {
		return err
	}
	first := items[0].pos
	key := dir + first.name(shard) + s.enc.ext()
	o := &object{bucket: s.cfg.Bucket, key: key, body: &buf, contentType: s.enc.contentType(),
		last: items[len(items)-1].pos, n: len(items), sseKMSKeyID: s.cfg.SSEKMSKeyID}
	if err := o.create(ctx, s.cfg.Client, "dead letters"); err != nil {
		return err
	}
	s.log.Debug("object stored", "key", key, "dead_letters", len(items), "bytes", buf.Len())
	return nil
}

// Close releases nothing: every Write is stored when it returns.
func (s *DeadLetterSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
