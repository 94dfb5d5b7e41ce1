// Package pipeline carries records from a consumer to the sinks as Watermill
// messages: decode → validate against the dataset → route → durable write.
//
// One Watermill message carries one GetRecords batch of one shard (records keep
// their own shard, sequence number, partition key and arrival time). A message
// per record was measured against it (BenchmarkDeliver): the framework's cost per
// message is paid once per batch, and a sink makes a whole batch durable with one
// fsync or one transaction instead of one per record. The message is acked only
// once every record of it has a durable row or a durable dead letter; the
// consumer then checkpoints past the batch.
//
// Each attempt at a batch is two steps: classify (decode → where → convert →
// window → late: rows per sink and dead letters, nothing written) and persist
// (the rows, then the dead letters). Deliver passes the batch to the
// Watermill handler by the message's UUID (inflight), not inside the message.
//
// Two kinds of failure, one place each: bad data (undecodable, not fitting the
// dataset, refused by a sink for itself) becomes a dead letter at once; a sink
// outage, or a decoder's dependency down (decoders.ErrTransient), is retried
// here, with the one retry.Policy (capped exponential backoff and jitter),
// until it ends or the delivery is cancelled, and nothing is acked meanwhile.
//
// The pipeline holds no Prometheus collector: rows, dead letters, latencies
// and sink errors are counted by decorators around it and its sinks
// (package metrics, wired in internal/service/app); it reports through Metrics only
// what no decorator can see (records no dataset took, its retries).
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/kinesis-ingest/kinesis-ingest/cdc"
	"github.com/kinesis-ingest/kinesis-ingest/consumers"
	"github.com/kinesis-ingest/kinesis-ingest/decoders"
	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/freelist"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/retry"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
)

// Converter validates a record decoded from the stream record from against
// a dataset and returns its typed fields, or an error naming the field and
// the problem. Fields may read from's metadata ($partition_key, ...); from
// is only read, and not kept past the call but for $data's bytes, which a
// row may share until its sink's Write returns.
type Converter interface {
	ConvertFrom(rec any, from *record.Record) ([]record.Field, error)
}

// Filter decides whether a dataset takes a record decoded from the stream
// record from (Fennel's `where`).
type Filter interface {
	MatchFrom(rec any, from *record.Record) (bool, error)
}

// KeyConverter converts only a record's key fields and timestamp, for a
// delete (*schema.Schema has it).
type KeyConverter interface {
	ConvertKeysFrom(rec any, from *record.Record) ([]record.Field, error)
}

// ChangeReader reads a decoded record as a change event (cdc.Debezium,
// cdc.DynamoDB).
type ChangeReader interface {
	Read(rec any) (cdc.Change, error)
}

// Route sends the records a source's dataset takes to a row sink.
type Route struct {
	Dataset string
	Schema  Converter
	Where   Filter // nil: every record
	// Window drops rows outside the dataset's since/until and sample (nil:
	// none); each is counted in records_filtered_total, and is no dead letter.
	Window *Window
	// Timestamp converts only the dataset's timestamp (nil: none). A record
	// that does not fit the dataset but whose timestamp is outside Window's
	// time window is dropped as outside it, not dead-lettered: as with Where,
	// what the dataset does not take is never its dead letter.
	Timestamp Converter
	SinkName  string
	Sink      sinks.RowSink
	// Changes, set for a cdc: debezium or dynamodb dataset, reads every
	// record as a change event: the dataset's fields (and Where) see its row
	// image; a
	// delete becomes a Row with Delete set, converted by Schema's
	// ConvertKeys (Schema must be a KeyConverter) and not filtered by Where,
	// so that a key that was taken is always deleted; an event that changes
	// no row is counted (cdc_events_skipped_total) and is neither a row nor a
	// dead letter, like a record Where does not take.
	Changes ChangeReader
	// Disorder (Fennel's disorder) > 0 makes a row whose timestamp (field
	// TimestampIndex) is older than its shard's watermark, the newest
	// timestamp of the dataset seen so far in the shard minus Disorder, a
	// late dead letter. The watermarks are the state DeliverState returns,
	// which the consumer stores with the shard's checkpoint.
	Disorder       time.Duration
	TimestampIndex int
	// MaxRetryDuration (the sink's max_retry_duration) > 0 bounds how long
	// a batch's write to Sink is retried after its first failure: then the
	// batch's rows for that sink become sink_failed dead letters and the
	// shard moves on (see limits.go). Routes sharing a sink share its value.
	MaxRetryDuration time.Duration
}

// Source is one Kinesis source and the datasets it feeds.
type Source struct {
	Name      string
	StreamARN string
	Decoder   decoders.Decoder
	Routes    []Route
	// DeadLetterUnrouted makes a record that no dataset takes a no_route dead
	// letter; otherwise it is only counted.
	DeadLetterUnrouted bool
	// MaxRecordAge (max_record_age) > 0 makes a record that arrived in
	// Kinesis longer ago than this when its batch is classified an expired
	// dead letter, or, with SkipExpired, a record skipped and only counted
	// (see limits.go).
	MaxRecordAge time.Duration
	SkipExpired  bool
}

// Backoff bounds the retry of transient failures.
type Backoff struct {
	Initial time.Duration // default 100ms
	Max     time.Duration // default 10s
}

// Metrics counts what only the pipeline sees (metrics.Pipeline implements it).
// Records in, rows and dead letters out, latencies and sink errors are counted
// by decorators around the pipeline and its sinks (metrics.WrapHandler,
// WrapRowSink, WrapDeadLetterSink), so the pipeline carries no collector of its
// own. Calls are per batch (or per retry), never per record.
type Metrics interface {
	// Unrouted counts n records of source that no dataset took.
	Unrouted(source string, n int)
	// Filtered counts n rows of dataset its own rules dropped (reason
	// FilteredSince, FilteredUntil or FilteredSample).
	Filtered(dataset, reason string, n int)
	// DecodeRetried counts a decode retried because the decoder's dependency
	// was unavailable.
	DecodeRetried(source string)
	// SinkRetried counts a failed write to sink that will be retried.
	SinkRetried(sink string)
	// DeliveryRetried counts a batch of source retried whole.
	DeliveryRetried(source string)
	// CDCSkipped counts n Debezium events of dataset that change no row, by
	// event (cdc.SkipTruncate, ...).
	CDCSkipped(dataset, event string, n int)
	// Expired counts n records of source older than its max_record_age, by
	// what became of them (result ExpiredDeadLetter or ExpiredSkip).
	Expired(source, result string, n int)
	// Skipped counts n records of source that carry no data by design,
	// by the Splitter's reason (a CloudWatch Logs control message): they
	// are neither rows nor dead letters.
	Skipped(source, reason string, n int)
	// SinkGaveUp counts a batch whose write to sink failed for longer than
	// its max_retry_duration: its rows became sink_failed dead letters.
	SinkGaveUp(sink string)
	// InstrumentRouter decorates the pipeline's Watermill router before it runs.
	InstrumentRouter(*message.Router)
}

// Tally is told what each batch made durable, once it is (internal/service/app sums
// it for a bounded run's summary): the rows each sink accepted, per dataset,
// and the dead letters, a row the sink refused for itself counted as the dead
// letter it became. Calls are per write, from several shards at once.
type Tally interface {
	Wrote(dataset string, rows int)
	DeadLettered(letters []record.DeadLetter)
}

// Config wires a pipeline.
type Config struct {
	Sources     []Source
	DeadLetters sinks.DeadLetterSink
	Metrics     Metrics
	Tally       Tally // optional
	Logger      *slog.Logger
	Backoff     Backoff
}

// Pipeline implements consumers.Handler.
type Pipeline struct {
	cfg     Config
	log     *slog.Logger
	sub     *subscriber
	router  *message.Router
	sources map[string]*Source
	// jsonFast: sources whose records may skip decoding (see JSONConverter).
	jsonFast map[*Source][]jsonRoute
	// named: sources whose records may skip the decoded tree (see
	// NamedConverter).
	named map[*Source][]NamedConverter
	// late: per source, the datasets with a disorder.
	late map[*Source]map[string]lateRule
	// retry is the policy of every retry of the pipeline: a batch a stage
	// failed, a decoder's dependency, a sink's outage; each until it ends or
	// the delivery is cancelled.
	retry retry.Policy
	// inflight: the batches published and not yet acked.
	inflight inflight
	// deferred: the distinct sinks that may make rows durable later.
	deferred []sinks.DeferredRowSink
}

var _ consumers.DeferredHandler = (*Pipeline)(nil)

type batch struct {
	source  *Source
	records []record.Record
	// durable, for a deferred delivery, is told when the batch is durable;
	// nil: every sink writes before the delivery returns.
	durable func(error)
	// in is the shard's state before the batch; process sets out, the state
	// after it (each attempt starts again from in).
	in, out watermarks
}

// New validates cfg and builds the Watermill router, one handler per source.
func New(cfg Config) (*Pipeline, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Backoff.Initial <= 0 {
		cfg.Backoff.Initial = 100 * time.Millisecond
	}
	if cfg.Backoff.Max <= 0 {
		cfg.Backoff.Max = 10 * time.Second
	}
	var errs []error
	if cfg.DeadLetters == nil {
		errs = append(errs, errors.New("pipeline: no dead-letter sink: every record must end as a row or a dead letter"))
	}
	if cfg.Metrics == nil {
		errs = append(errs, errors.New("pipeline: no metrics"))
	}
	if len(cfg.Sources) == 0 {
		errs = append(errs, errors.New("pipeline: no sources"))
	}
	p := &Pipeline{cfg: cfg, log: cfg.Logger, sub: newSubscriber(), sources: map[string]*Source{},
		retry: retry.Policy{Initial: cfg.Backoff.Initial, Max: cfg.Backoff.Max}}
	for i := range cfg.Sources {
		s := &cfg.Sources[i]
		if s.Name == "" || s.Decoder == nil {
			errs = append(errs, fmt.Errorf("pipeline: source %d (%q) needs a name and a decoder", i, s.Name))
			continue
		}
		if _, dup := p.sources[s.Name]; dup {
			errs = append(errs, fmt.Errorf("pipeline: source %q defined twice", s.Name))
		}
		for j, r := range s.Routes {
			if r.Schema == nil || r.Sink == nil || r.Dataset == "" {
				errs = append(errs, fmt.Errorf("pipeline: source %q route %d (%q) needs a dataset, a schema and a sink", s.Name, j, r.Dataset))
			}
			if _, ok := r.Schema.(KeyConverter); r.Changes != nil && !ok {
				errs = append(errs, fmt.Errorf("pipeline: source %q route %d (%q) reads changes, so its schema must convert deletes (a KeyConverter)", s.Name, j, r.Dataset))
			}
		}
		p.sources[s.Name] = s
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second},
		watermill.NewSlogLoggerWithLevelMapping(cfg.Logger.With("stage", "watermill"), map[slog.Level]slog.Level{
			// Watermill logs every handler start and stop at Info.
			slog.LevelInfo: slog.LevelDebug,
		}))
	if err != nil {
		return nil, fmt.Errorf("create watermill router: %w", err)
	}
	// Stages recover their own panics per record (see convert); a panic
	// elsewhere in the handler (a sink) becomes a Nack and Deliver re-sends the
	// batch: a bug there stalls the shard loudly instead of skipping records.
	router.AddMiddleware(middleware.Recoverer)
	cfg.Metrics.InstrumentRouter(router)
	for name := range p.sources {
		router.AddConsumerHandler("deliver-"+name, name, p.sub, p.handle)
	}
	p.router = router
	for _, s := range p.sources {
		for _, r := range s.Routes {
			if d, ok := r.Sink.(sinks.DeferredRowSink); ok && !slices.Contains(p.deferred, d) {
				p.deferred = append(p.deferred, d)
			}
		}
	}
	p.jsonFast = jsonPaths(p.sources)
	p.named = namedPaths(p.sources)
	p.late = map[*Source]map[string]lateRule{}
	for _, s := range p.sources {
		p.late[s] = lateRules(s)
	}
	return p, nil
}

// Run runs the router until ctx is done, then waits for handlers in flight.
func (p *Pipeline) Run(ctx context.Context) error {
	if err := p.router.Run(ctx); err != nil {
		return fmt.Errorf("run pipeline router: %w", err)
	}
	return nil
}

// Running is closed once the pipeline accepts deliveries.
func (p *Pipeline) Running() <-chan struct{} { return p.router.Running() }

// Close stops the router (waiting for handlers in flight) and the subscriber.
// Sinks belong to the caller.
func (p *Pipeline) Close() error {
	err := p.router.Close()
	_ = p.sub.Close()
	return err
}

// Deliver implements consumers.Handler: it publishes the batch as one message
// and waits for its ack. A Nack (a panic in a stage) is retried with backoff.
// Late rows are judged against watermarks of this batch alone; a consumer
// that keeps them calls DeliverState.
func (p *Pipeline) Deliver(ctx context.Context, source string, records []record.Record) error {
	_, err := p.DeliverState(ctx, source, nil, records)
	return err
}

// DeliverState implements consumers.StateHandler: Deliver, starting from the
// shard's watermarks in state (as DeliverState returned them; nil for none)
// and returning them after the batch.
func (p *Pipeline) DeliverState(ctx context.Context, source string, state []byte, records []record.Record) ([]byte, error) {
	if len(records) == 0 {
		return state, nil
	}
	src, ok := p.sources[source]
	if !ok {
		return nil, fmt.Errorf("deliver to unknown source %q: it is not in the pipeline's config", source)
	}
	in, err := decodeWatermarks(state)
	if err != nil {
		// Only this process writes it; a state it cannot read is a bug or a
		// foreign writer, and guessing would classify records differently.
		return nil, fmt.Errorf("deliver to source %q, shard %q: %w", source, records[0].Origin.ShardID, err)
	}
	b := &batch{source: src, records: records, in: in}
	if err := p.deliver(ctx, source, b); err != nil {
		return nil, err
	}
	return b.out.encode(), nil
}

// DeliverDeferred implements consumers.DeferredHandler: DeliverState, except
// that the rows of a sinks.DeferredRowSink are only accepted before it
// returns; durable is told once they, the other sinks' rows and the dead
// letters are all durable.
func (p *Pipeline) DeliverDeferred(ctx context.Context, source string, state []byte, records []record.Record, durable func(error)) ([]byte, error) {
	if len(records) == 0 {
		durable(nil)
		return state, nil
	}
	src, ok := p.sources[source]
	if !ok {
		return nil, fmt.Errorf("deliver to unknown source %q: it is not in the pipeline's config", source)
	}
	in, err := decodeWatermarks(state)
	if err != nil {
		return nil, fmt.Errorf("deliver to source %q, shard %q: %w", source, records[0].Origin.ShardID, err)
	}
	b := &batch{source: src, records: records, in: in, durable: durable}
	if err := p.deliver(ctx, source, b); err != nil {
		return nil, err
	}
	return b.out.encode(), nil
}

// Flush implements consumers.DeferredHandler: every deferred sink flushes
// what it holds.
func (p *Pipeline) Flush(ctx context.Context) error {
	var errs []error
	for _, d := range p.deferred {
		if err := d.Flush(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *Pipeline) deliver(ctx context.Context, source string, b *batch) error {
	records := b.records
	t := p.sub.topic(source)
	select {
	case <-t.subscribed:
	case <-ctx.Done():
		return ctx.Err()
	}
	first := records[0].Origin
	attempt := 0
	last := records[len(records)-1].Origin.SequenceNumber
	return p.retry.Do(ctx, retry.Options{OnRetry: func(a retry.Attempt) {
		p.cfg.Metrics.DeliveryRetried(source)
		p.log.Error("batch failed in the pipeline; retrying it whole, the shard waits",
			"source", source, "shard_id", first.ShardID, "first_sequence_number", first.SequenceNumber,
			"attempt", a.N, "retry_in", a.Wait)
	}}, func(ctx context.Context) error {
		attempt++
		msg := message.NewMessage(first.ShardID+"/"+first.SequenceNumber+"/"+strconv.Itoa(attempt), nil)
		msg.Metadata.Set("source", source)
		msg.Metadata.Set("shard_id", first.ShardID)
		msg.Metadata.Set("first_sequence_number", first.SequenceNumber)
		msg.Metadata.Set("last_sequence_number", last)
		msg.Metadata.Set("records", strconv.Itoa(len(records)))
		msg.SetContext(ctx)
		p.inflight.put(source, msg.UUID, b)
		defer p.inflight.remove(source, msg.UUID)
		select {
		case t.in <- msg:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-msg.Acked():
			return nil
		case <-msg.Nacked():
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errNacked
	})
}

// errNacked is a batch a stage failed on as a whole (a panic outside the
// per-record guards): Deliver sends it again.
var errNacked = errors.New("pipeline: batch nacked")

func (p *Pipeline) handle(msg *message.Message) error {
	b := p.inflight.get(msg.Metadata.Get("source"), msg.UUID)
	if b == nil {
		return errors.New("pipeline message carries no batch: it was not published by Deliver, or its Deliver has returned")
	}
	return p.process(msg.Context(), b)
}

// inflight holds the batches Deliver has published and waits for, by source
// and message UUID: the message names its batch, and the handler takes it
// from here. (Watermill's payload is bytes; a batch of records in it would
// be copied, and one in the message's context would be hidden in it.)
type inflight struct {
	mu sync.Mutex
	m  map[inflightKey]*batch
}

type inflightKey struct{ source, uuid string }

func (f *inflight) put(source, uuid string, b *batch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[inflightKey]*batch{}
	}
	f.m[inflightKey{source, uuid}] = b
}

func (f *inflight) get(source, uuid string) *batch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[inflightKey{source, uuid}]
}

func (f *inflight) remove(source, uuid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, inflightKey{source, uuid})
}

// sinkBatch collects the rows for one sink, with the index of the record each
// came from, to dead-letter rows the sink refuses.
type sinkBatch struct {
	name   string
	sink   sinks.RowSink
	rows   []record.Row
	recIdx []int
	// budget is the sink's max_retry_duration (0: retry until ctx ends).
	budget time.Duration
}

// reserve sizes an empty sinkBatch for a whole batch of n records: most
// records of a batch become rows, and growing would copy them (a Row is
// about 150 bytes) several times. The slices come from an earlier batch
// when one has released them.
func (sb *sinkBatch) reserve(n int) {
	if sb.rows != nil {
		return
	}
	if rb, ok := rowBufs.Get(); ok && cap(rb.rows) >= n {
		sb.rows, sb.recIdx = rb.rows[:0], rb.recIdx[:0]
		return
	}
	sb.rows = make([]record.Row, 0, n)
	sb.recIdx = make([]int, 0, n)
}

// rowBuf is a sinkBatch's slices between batches.
type rowBuf struct {
	rows   []record.Row
	recIdx []int
}

// rowBufs holds sinkBatches' slices between batches (a freelist: see
// jsonBatches).
var rowBufs = freelist.New[*rowBuf](8)

// release gives sb's slices back for another batch, once its sink's Write
// has returned (a sink keeps no row past its Write).
func (sb *sinkBatch) release() {
	if sb.rows == nil || cap(sb.rows) > maxPooledRows {
		return
	}
	clear(sb.rows)
	rowBufs.Put(&rowBuf{rows: sb.rows[:0], recIdx: sb.recIdx[:0]})
	sb.rows, sb.recIdx = nil, nil
}

// maxPooledRows keeps an outsized batch's rows out of the pool.
const maxPooledRows = 1 << 14

// process delivers one attempt of a batch: classify it (no write), count
// what only the pipeline sees, then persist it.
func (p *Pipeline) process(ctx context.Context, b *batch) error {
	c, err := p.classify(ctx, b)
	if err != nil {
		return err
	}
	p.report(c)
	b.out = c.out
	if b.durable != nil {
		c.pending = newPending()
	}
	if err := p.persist(ctx, c); err != nil {
		return err
	}
	if c.pending != nil {
		// This attempt is the one that delivered the batch: its sinks' answers
		// are the batch's (an earlier attempt's accepted rows are accepted
		// again here, which the sink drops and waits for).
		c.pending.finish(b.durable)
	}
	return nil
}

// classified is what becomes of each record of a batch, decided before
// anything is written: the rows of each sink, the dead letters, the shard's
// watermarks after the batch, and what is only counted.
type classified struct {
	src     *Source
	records []record.Record
	// sinks holds one sinkBatch per distinct sink, in route order; bySink
	// is each route's.
	sinks   []*sinkBatch
	bySink  []*sinkBatch
	letters []record.DeadLetter
	out     watermarks
	// js is the fast paths' state, nil when the source has none; namedDec
	// and scanner are the source's decoder on the named and the JSON path.
	js       *jsonBatch
	namedDec NamedDecoder
	scanner  JSONScanner
	unrouted int
	// pending, for a deferred delivery, waits for the deferred sinks.
	pending  *pending
	expired  expiredCount
	filtered map[filteredKey]int
	skipped  map[[2]string]int // Debezium events that change no row, by dataset and event
	// splitter is the source's Splitter, when it has one: records is then
	// the records the batch's carry (split true), and splitSkipped counts
	// the ones that carry none, by reason.
	splitter     Splitter
	split        bool
	splitSkipped map[string]int
}

// deadLetter makes rec a dead letter. A stage's panic is logged here, with
// its stack and the record's origin.
func (p *Pipeline) deadLetter(c *classified, rec *record.Record, dataset string, reason record.Reason, err error) {
	var pe *panicError
	if errors.As(err, &pe) {
		p.log.Error("stage panicked on a record; dead-lettering it", "source", c.src.Name,
			"shard_id", rec.Origin.ShardID, "sequence_number", rec.Origin.SequenceNumber,
			"stage", pe.stage, "panic", fmt.Sprint(pe.value), "stack", string(pe.stack))
	}
	c.letters = append(c.letters, record.DeadLetter{
		Origin: rec.Origin, Dataset: dataset, Reason: reason, Error: err.Error(), Data: c.letterData(rec),
	})
}

// drop counts a row of route ri its Window dropped.
func (c *classified) drop(ri int, reason string) {
	if c.filtered == nil {
		c.filtered = map[filteredKey]int{}
	}
	c.filtered[filteredKey{c.src.Routes[ri].Dataset, reason}]++
}

// sinkFor returns route ri's sink batch, sized for the batch: the caller
// appends the row in place (a Row passed by value would be copied twice).
func (c *classified) sinkFor(ri int) *sinkBatch {
	sb := c.bySink[ri]
	sb.reserve(len(c.records))
	return sb
}

// classify sorts a batch: decode → where → convert → window → late, into
// rows per sink and dead letters. It writes nothing; its one wait is the
// decode retry of a decoder whose dependency is down, and its only error is
// ctx's, from that wait.
func (p *Pipeline) classify(ctx context.Context, b *batch) (*classified, error) {
	src := b.source
	c := &classified{src: src, records: b.records, bySink: make([]*sinkBatch, len(src.Routes))}
	for i, r := range src.Routes {
		for _, sb := range c.sinks {
			if sb.sink == r.Sink {
				c.bySink[i] = sb
				break
			}
		}
		if c.bySink[i] == nil {
			c.bySink[i] = &sinkBatch{name: r.SinkName, sink: r.Sink, budget: r.MaxRetryDuration}
			c.sinks = append(c.sinks, c.bySink[i])
		}
	}
	fast := p.jsonFast[src]
	named := p.named[src]
	if fast != nil || named != nil {
		var ok bool
		if c.js, ok = jsonBatches.Get(); !ok {
			c.js = new(jsonBatch)
		}
		c.namedDec, _ = src.Decoder.(NamedDecoder)
		c.scanner, _ = src.Decoder.(JSONScanner)
	}
	expiredBefore := expiryBound(src)
	if sp, ok := src.Decoder.(Splitter); ok {
		p.split(c, sp, expiredBefore)
	}
	for i := range c.records {
		rec := &c.records[i]
		if p.expire(c, rec, expiredBefore) {
			continue
		}
		if rec.Invalid != nil {
			p.deadLetter(c, rec, "", record.ReasonDecode, rec.Invalid)
			continue
		}
		if fast != nil || named != nil {
			var taken, ok bool
			if fast != nil {
				taken, ok = p.rowsFromJSON(c, fast, rec, i)
			} else {
				taken, ok = p.rowsFromNamed(c, named, rec, i)
			}
			if ok {
				if !taken {
					p.unrouted(c, rec)
				}
				continue
			}
		}
		v, err := p.decode(ctx, src, rec)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			p.deadLetter(c, rec, "", record.ReasonDecode, err)
			continue
		}
		if !p.route(c, v, rec, i) {
			p.unrouted(c, rec)
		}
	}
	c.out = b.in.clone()
	for _, sb := range c.sinks {
		p.dropLate(c, sb)
	}
	return c, nil
}

// route gives the decoded record v (record i) to every route, as a row, a
// dead letter, a drop or a skip, and says whether any route took it.
func (p *Pipeline) route(c *classified, v any, rec *record.Record, i int) (taken bool) {
	for ri := range c.src.Routes {
		r := &c.src.Routes[ri]
		rv, del := v, false
		if r.Changes != nil {
			ch, err := readChange(r.Changes, v)
			if err != nil {
				p.deadLetter(c, rec, r.Dataset, record.ReasonSchema, err)
				taken = true
				continue
			}
			if ch.Op == cdc.Skip {
				if c.skipped == nil {
					c.skipped = map[[2]string]int{}
				}
				c.skipped[[2]string{r.Dataset, ch.Skipped}]++
				taken = true
				continue
			}
			rv, del = ch.Image, ch.Op == cdc.Delete
		}
		if r.Where != nil && !del {
			ok, err := match(r.Where, rv, rec)
			if err != nil {
				p.deadLetter(c, rec, r.Dataset, record.ReasonSchema, fmt.Errorf("where: %w", err))
				taken = true
				continue
			}
			if !ok {
				continue
			}
		}
		taken = true
		var fields []record.Field
		var err error
		if del {
			fields, err = convertKeys(r.Schema.(KeyConverter), rv, rec)
		} else {
			fields, err = convert(r.Schema, rv, rec)
		}
		if err != nil {
			if reason := outsideWindow(r, v, rec); reason != "" {
				c.drop(ri, reason)
				continue
			}
			p.deadLetter(c, rec, r.Dataset, record.ReasonSchema, err)
			continue
		}
		if reason := r.Window.Reason(fields); reason != "" {
			c.drop(ri, reason)
			continue
		}
		sb := c.sinkFor(ri)
		sb.rows = append(sb.rows, record.Row{Dataset: r.Dataset, Origin: rec.Origin, Fields: fields, Delete: del})
		sb.recIdx = append(sb.recIdx, i)
	}
	return taken
}

// report counts what only the pipeline sees of a classified batch.
func (p *Pipeline) report(c *classified) {
	if c.unrouted > 0 {
		p.cfg.Metrics.Unrouted(c.src.Name, c.unrouted)
	}
	for k, n := range c.filtered {
		p.cfg.Metrics.Filtered(k.dataset, k.reason, n)
	}
	for k, n := range c.skipped {
		p.cfg.Metrics.CDCSkipped(k[0], k[1], n)
	}
	for reason, n := range c.splitSkipped {
		p.cfg.Metrics.Skipped(c.src.Name, reason, n)
	}
	p.reportExpired(c)
}

// persist makes a classified batch durable: each sink's rows (the rows a
// sink refuses for themselves become dead letters), then the dead letters,
// each write retried until it succeeds or ctx is done.
func (p *Pipeline) persist(ctx context.Context, c *classified) error {
	for _, sb := range c.sinks {
		if len(sb.rows) == 0 {
			continue
		}
		rejected, err := p.writeRows(ctx, sb, c.pending)
		var spent *budgetSpentError
		if errors.As(err, &spent) {
			p.giveUp(c, sb, spent)
			continue
		}
		if err != nil {
			return err
		}
		for _, ri := range rejected.Index {
			if ri < 0 || ri >= len(sb.rows) {
				continue
			}
			rec := &c.records[sb.recIdx[ri]]
			p.deadLetter(c, rec, sb.rows[ri].Dataset, record.ReasonSinkRejected, fmt.Errorf("sink %s: %w", sb.name, rejected.Err))
		}
		if p.cfg.Tally != nil {
			tallyRows(p.cfg.Tally, sb.rows, rejected.Index)
		}
	}
	if len(c.letters) > 0 {
		// The dead-letter sink has no retry budget: it is where everything
		// else ends, so a dead-letter sink down holds the shard.
		err := p.write(ctx, "dead_letter", 0, func(ctx context.Context) error {
			return p.cfg.DeadLetters.Write(ctx, c.letters)
		})
		if err != nil {
			return err
		}
		if p.cfg.Tally != nil {
			p.cfg.Tally.DeadLettered(c.letters)
		}
		if p.log.Enabled(ctx, slog.LevelDebug) {
			for i := range c.letters {
				l := &c.letters[i]
				p.log.Debug("record dead-lettered", "source", c.src.Name, "shard_id", l.ShardID,
					"sequence_number", l.SequenceNumber, "reason", l.Reason, "error", l.Error)
			}
		}
	}
	// Every record of the batch is durable now, as a row or a dead letter,
	// and no sink holds a row any more: their memory serves the next batch.
	// (An attempt that fails leaves it to the garbage collector: a sink
	// whose Write was cancelled may still be reading.)
	for _, sb := range c.sinks {
		sb.release()
	}
	if c.js != nil {
		c.js.release()
	}
	c.releaseSplit()
	return nil
}

// tallyRows tells t the rows of one sink's write that the sink accepted,
// per dataset (a sink's rows come in runs of one dataset).
func tallyRows(t Tally, rows []record.Row, rejected []int) {
	refused := map[string]int{}
	for _, i := range rejected {
		if i >= 0 && i < len(rows) {
			refused[rows[i].Dataset]++
		}
	}
	n := map[string]int{}
	for i := range rows {
		n[rows[i].Dataset]++
	}
	for ds, k := range n {
		if k -= refused[ds]; k > 0 {
			t.Wrote(ds, k)
		}
	}
}

type filteredKey struct{ dataset, reason string }

// outsideWindow tells, for a record that does not convert whole, whether its
// timestamp alone puts it outside the route's time window.
func outsideWindow(r *Route, v any, rec *record.Record) string {
	if r.Timestamp == nil || !r.Window.Active() {
		return ""
	}
	ts, err := convert(r.Timestamp, v, rec)
	if err != nil || len(ts) == 0 {
		return ""
	}
	return r.Window.TimeReason(ts[0].Value)
}

// unrouted counts a record that no dataset took, and dead-letters it if the
// source says so.
func (p *Pipeline) unrouted(c *classified, rec *record.Record) {
	c.unrouted++
	if c.src.DeadLetterUnrouted {
		p.deadLetter(c, rec, "", record.ReasonNoRoute, errors.New("no dataset's where took this record"))
	}
}

// A panic in a stage is a bug that a given record triggers: the record becomes
// a dead letter naming the panic, and the shard moves on instead of retrying the
// same record forever. The stack goes to the log, with the record's origin,
// where the dead letter is made.
type panicError struct {
	stage string
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("%s panicked: %v", e.stage, e.value) }

func stagePanic(stage string, r any) error {
	return &panicError{stage: stage, value: r, stack: debug.Stack()}
}

func convert(c Converter, v any, from *record.Record) (fields []record.Field, err error) {
	defer func() {
		if r := recover(); r != nil {
			fields, err = nil, stagePanic("schema validation", r)
		}
	}()
	return c.ConvertFrom(v, from)
}

func convertKeys(c KeyConverter, v any, from *record.Record) (fields []record.Field, err error) {
	defer func() {
		if r := recover(); r != nil {
			fields, err = nil, stagePanic("schema validation", r)
		}
	}()
	return c.ConvertKeysFrom(v, from)
}

func readChange(c ChangeReader, v any) (ch cdc.Change, err error) {
	defer func() {
		if r := recover(); r != nil {
			ch, err = cdc.Change{}, stagePanic("change reader", r)
		}
	}()
	return c.Read(v)
}

func match(f Filter, v any, from *record.Record) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, stagePanic("where", r)
		}
	}()
	return f.MatchFrom(v, from)
}

func decodeOnce(d decoders.Decoder, data []byte) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, stagePanic("decoder", r)
		}
	}()
	return d.Decode(data)
}

// decode decodes one record, retrying while the decoder says its failure is
// transient (a schema registry down): such a failure says nothing about the
// record, so it must not become a dead letter. This is the one layer that
// retries it: the decoder answers each call at once (it has no context to
// end a wait with).
func (p *Pipeline) decode(ctx context.Context, src *Source, rec *record.Record) (v any, err error) {
	err = p.retry.Do(ctx, retry.Options{
		Retryable: isTransient,
		OnRetry: func(a retry.Attempt) {
			p.cfg.Metrics.DecodeRetried(src.Name)
			p.log.Warn("decoder dependency unavailable; retrying, checkpoint held", "source", src.Name,
				"shard_id", rec.Origin.ShardID, "sequence_number", rec.Origin.SequenceNumber, "attempt", a.N, "retry_in", a.Wait, "err", a.Err)
		},
	}, func(context.Context) error {
		v, err = decodeOnce(src.Decoder, rec.Data)
		return err
	})
	return v, err
}

func isTransient(err error) bool { return errors.Is(err, decoders.ErrTransient) }

// writeRows writes a sink's rows, retrying outages. Rows the sink refuses for
// themselves come back in the RejectedError (zero value when none).
func (p *Pipeline) writeRows(ctx context.Context, sb *sinkBatch, pend *pending) (sinks.RejectedError, error) {
	var rejected sinks.RejectedError
	d, deferred := sb.sink.(sinks.DeferredRowSink)
	err := p.write(ctx, sb.name, sb.budget, func(ctx context.Context) error {
		var err error
		if deferred && pend != nil {
			err = pend.accept(func(durable func(error)) error { return d.Accept(ctx, sb.rows, durable) })
		} else {
			err = sb.sink.Write(ctx, sb.rows)
		}
		if r, ok := sinks.IsRejected(err); ok {
			rejected = *r
			err = nil
		}
		return err
	})
	return rejected, err
}

// write runs a sink's write f until it succeeds or ctx is done, or, with a
// budget, until budget has passed since its first failure: then it returns
// a *budgetSpentError carrying f's last failure. Every failure is an outage
// here: bad data never reaches this point as an error.
func (p *Pipeline) write(ctx context.Context, sink string, budget time.Duration, f func(context.Context) error) error {
	retried := 0
	b := newRetryBudget(ctx, budget)
	defer b.stop()
	err := p.retry.Do(b.ctx, retry.Options{OnRetry: func(a retry.Attempt) {
		retried = a.N
		b.start()
		p.cfg.Metrics.SinkRetried(sink)
		p.log.Warn("sink write failed; retrying, checkpoint held", "sink", sink, "attempt", a.N, "retry_in", a.Wait, "err", a.Err)
	}}, b.track(f))
	if err == nil && retried > 0 {
		p.log.Info("sink recovered", "sink", sink, "attempts", retried+1)
	}
	if err != nil && b.spent() {
		return &budgetSpentError{sink: sink, budget: budget, attempts: b.calls, last: b.last}
	}
	return err
}
