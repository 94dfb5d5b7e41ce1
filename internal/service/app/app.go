// Package app wires a loaded configuration into a running worker: AWS clients,
// sinks, the pipeline, one KCL consumer per source and the metrics endpoint.
// It is the one place that knows every role: the metrics decorators go around
// the sinks and the pipeline here, as the lease-table decorator goes around
// the lease table in consumers/kcl.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesis-ingest/kinesis-ingest/cdc"
	"github.com/kinesis-ingest/kinesis-ingest/consumers/kcl"
	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/decoders"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/avrodec"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/cwlogs"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/decompress"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/health"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/sinkreg"
	"github.com/kinesis-ingest/kinesis-ingest/metrics"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
)

// App is one worker process.
type App struct {
	cfg       *config.Config
	log       *slog.Logger
	metrics   *metrics.Metrics
	pipeline  *pipeline.Pipeline
	consumers []*kcl.Consumer
	closers   []func() error
	listener  net.Listener // metrics and health checks
	errorsLn  net.Listener // the errors view
	// ready are the readiness checks of the sinks, by /readyz check name:
	// several datasets on one sink share one.
	ready map[string]func(context.Context) error

	// For /readyz: started once the pipeline runs and the consumers were
	// started; stopping from the moment the worker begins to stop; waiting
	// holds the gate's last failure while Run waits for it.
	started, stopping health.Flag
	waiting           health.Status
	gate              Gate

	tally    *tally
	finished atomic.Bool
	progress io.Writer // a terminal for the bounded run's live line, or nil
	undone   *undone
}

// Option changes how New builds the worker.
type Option func(*options)

type options struct {
	aws  *AWS
	gate Gate
}

// WithAWS has New derive its AWS configurations from ac, the loader the
// command's checks used too (validate.WithAWS), so that a run loads the
// standard configuration once. Without it New loads its own.
func WithAWS(ac *AWS) Option { return func(o *options) { o.aws = ac } }

// New builds every part; nothing runs until Run.
// pressureFlushTimeout bounds a flush asked by a full in-flight budget; a
// sink down longer keeps the reads waiting, as it would anyway.
const pressureFlushTimeout = 2 * time.Minute

func New(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) (a *App, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ac := o.aws
	if ac == nil {
		if ac, err = NewAWS(cfg.Consumer.CallTimeout); err != nil {
			return nil, fmt.Errorf("consumer.call_timeout: %w", err)
		}
	}
	a = &App{cfg: cfg, log: log, ready: map[string]func(context.Context) error{}, tally: newTally(), gate: o.gate}
	// The error returns below set a to nil: close what was built through
	// its own pointer.
	built := a
	defer func() {
		if err != nil {
			built.close()
		}
	}()
	a.metrics, _ = metrics.NewWithRuntime()
	workerID := cfg.Consumer.WorkerID

	// One row sink per dataset, of its sink's kind (internal/service/sinkreg).
	rowSinks := map[string]sinks.RowSink{} // by dataset
	for _, ds := range cfg.Datasets {
		sinkName := ds.Sink
		rs, err := openRowSink(ctx, cfg, ds, sinkreg.Env{WorkerID: workerID, Log: log,
			OnDuplicates: func(n int) { a.metrics.SinkDuplicates.WithLabelValues(sinkName).Add(float64(n)) },
			OnChanges: func(upserted, deleted, older int) {
				a.metrics.SinkChanges.WithLabelValues(sinkName, metrics.ChangeUpserted).Add(float64(upserted))
				a.metrics.SinkChanges.WithLabelValues(sinkName, metrics.ChangeDeleted).Add(float64(deleted))
				a.metrics.SinkChanges.WithLabelValues(sinkName, metrics.ChangeOlder).Add(float64(older))
			},
			S3:          a.metrics.S3(sinkName),
			Iceberg:     a.metrics.Iceberg(sinkName),
			Application: cfg.Consumer.Application,
		})
		if err != nil {
			return nil, err
		}
		rowSinks[ds.Name] = a.metrics.WrapRowSink(sinkName, rs.Sink)
		a.closers = append(a.closers, rs.Sink.Close)
		if rs.Ready != nil {
			a.ready["sink:"+sinkName] = rs.Ready
		}
	}
	kind, err := sinkreg.Lookup(cfg.DeadLetter.Kind())
	if err != nil {
		return nil, fmt.Errorf("dead_letter: %w", err)
	}
	d, err := kind.DeadLetters(ctx, cfg.DeadLetter, sinkreg.Env{WorkerID: workerID, Log: log,
		OnDuplicates: func(n int) { a.metrics.SinkDuplicates.WithLabelValues(metrics.DeadLetterSinkName).Add(float64(n)) },
	})
	if err != nil {
		return nil, err
	}
	dl := d.Sink
	a.closers = append(a.closers, dl.Close)
	if d.Ready != nil {
		a.ready["sink:dead_letter"] = d.Ready
	}

	sources, err := pipelineSources(cfg, log, func(ds config.Dataset) sinks.RowSink { return rowSinks[ds.Name] })
	if err != nil {
		return nil, err
	}
	// Metrics decorate the stages (the consumers report through hooks): the
	// sinks (rows, dead letters, latency, batch sizes, errors) and the pipeline
	// as the consumers' handler (records in, batch and end-to-end latency); the
	// pipeline counts only what it alone sees.
	a.pipeline, err = pipeline.New(pipeline.Config{Sources: sources, DeadLetters: a.metrics.WrapDeadLetterSink(dl), Metrics: a.metrics.Pipeline(), Tally: a.tally, Logger: log.With("component", "pipeline")})
	if err != nil {
		return nil, err
	}

	a.undone = &undone{Handler: a.metrics.WrapHandler(a.pipeline)}
	handler := a.undone

	leaseCfg, err := ac.Config(ctx, cfg.Sources[0].Kinesis.StreamARN.Region, cfg.Consumer.RoleARN, "", SessionName(workerID))
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	dynamo := dynamodb.NewFromConfig(leaseCfg)
	// One budget for the whole worker: memory is the process's, whatever the
	// number of sources.
	budget, err := kcl.NewBudget(cfg.Consumer.MaxInflightBytes, a.metrics.Budget())
	if err != nil {
		return nil, fmt.Errorf("consumer.max_inflight_bytes: %w", err)
	}
	// One read limiter too: max_reads_per_second is the worker's.
	reads, err := kcl.NewReadLimiter(cfg.Consumer.MinReadInterval, cfg.Consumer.MaxReadsPerSecond)
	if err != nil {
		return nil, fmt.Errorf("consumer.min_read_interval, max_reads_per_second: %w", err)
	}
	// Rows a deferred sink buffers hold their records' bytes in the budget
	// until durable: a full budget flushes them, or reads would wait for
	// the sinks' age limit.
	budget.OnPressure(func() {
		ctx, cancel := context.WithTimeout(context.Background(), pressureFlushTimeout)
		defer cancel()
		if err := handler.Flush(ctx); err != nil {
			log.Warn("flush for the in-flight budget failed; the sinks flush by age", "err", err)
		}
	})
	for _, src := range cfg.Sources {
		k := src.Kinesis
		kcfg, err := ac.Config(ctx, k.StreamARN.Region, k.RoleARN, k.ExternalID, SessionName(workerID))
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", src.Name, err)
		}
		var efo *kcl.EFO
		if e := k.EFO; e != nil {
			efo = &kcl.EFO{ConsumerName: e.ConsumerName, ConsumerARN: e.ConsumerARN, Hooks: a.metrics.NewFanOut(src.Name)}
		}
		// A relative init_position is resolved here, at this start; the lease
		// table keeps the instant of the application's first start
		// (leases.Table.Register), which every later start uses.
		pos := k.InitPosition.Resolve(time.Now())
		c, err := kcl.New(kcl.Config{
			Source:             src.Name,
			StreamARN:          k.StreamARN.String(),
			StreamName:         k.StreamARN.Name,
			Region:             k.StreamARN.Region,
			Start:              leases.Position{Type: pos.ShardIteratorType(), Timestamp: pos.Timestamp},
			StartRelative:      k.InitPosition.Relative != 0,
			Application:        LeaseTable(cfg, src.Name),
			WorkerID:           workerID,
			ShardSyncInterval:  cfg.Consumer.ShardSyncInterval,
			LeaseDuration:      cfg.Consumer.LeaseDuration,
			LeaseRefresh:       cfg.Consumer.LeaseRefresh,
			CheckpointInterval: cfg.Consumer.CheckpointInterval,
			IdleBetweenReads:   cfg.Consumer.IdleBetweenReads,
			MaxRecords:         cfg.Consumer.MaxRecords,
			LeaseStealing:      cfg.Consumer.LeaseStealing,
			Balance:            leases.Balance(cfg.Consumer.Balance),
			MaxLeases:          cfg.Consumer.MaxLeases,
			MaxLeasesPerPass:   cfg.Consumer.MaxLeasesPerPass,
			DrainTimeout:       cfg.Consumer.ShutdownTimeout,
			Idleness:           src.Idleness,
			Budget:             budget,
			Reads:              reads,
			PastWindow:         pastWindow(cfg, src),
			EFO:                efo,
			Kinesis:            kinesis.NewFromConfig(kcfg),
			Dynamo:             dynamo,
			Handler:            handler,
			Hooks:              a.metrics.Consumer(src.Name),
			Logger:             log,
		})
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", src.Name, err)
		}
		a.consumers = append(a.consumers, c)
	}

	if cfg.Metrics.Listen != "" {
		a.listener, err = net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			return nil, fmt.Errorf("metrics.listen %q: %w (pick a free port, or \"\" to disable)", cfg.Metrics.Listen, err)
		}
	}
	if cfg.Errors.Listen != "" {
		a.errorsLn, err = net.Listen("tcp", cfg.Errors.Listen)
		if err != nil {
			return nil, fmt.Errorf("errors.listen %q: %w (pick a free port, or \"\" to disable the errors view)", cfg.Errors.Listen, err)
		}
	}
	return a, nil
}

// openRowSink opens the row sink of dataset ds, as its sink's kind does.
func openRowSink(ctx context.Context, cfg *config.Config, ds config.Dataset, env sinkreg.Env) (sinkreg.Opened[sinks.RowSink], error) {
	s := cfg.Sink(ds.Sink)
	if s == nil {
		return sinkreg.Opened[sinks.RowSink]{}, fmt.Errorf("dataset %q: sink %q is not defined", ds.Name, ds.Sink)
	}
	kind, err := sinkreg.Lookup(s.Kind())
	if err != nil {
		return sinkreg.Opened[sinks.RowSink]{}, fmt.Errorf("sink %q: %w", s.Name, err)
	}
	return kind.Rows(ctx, *s, ds, env)
}

// pipelineSources is cfg's sources as the pipeline takes them: each with
// its decoder and a route per dataset, to the row sink sinkOf gives it.
func pipelineSources(cfg *config.Config, log *slog.Logger, sinkOf func(config.Dataset) sinks.RowSink) ([]pipeline.Source, error) {
	var sources []pipeline.Source
	for _, src := range cfg.Sources {
		dec, err := decoderFor(src, cfg.Consumer, log)
		if err != nil {
			return nil, err
		}
		ps := pipeline.Source{
			Name:               src.Name,
			StreamARN:          src.Kinesis.StreamARN.String(),
			Decoder:            dec,
			DeadLetterUnrouted: cfg.DeadLetter.Unrouted,
			MaxRecordAge:       src.MaxRecordAge,
			SkipExpired:        src.Expired == config.ExpiredSkip,
		}
		for _, ds := range cfg.Datasets {
			if !ds.Reads(src.Name) {
				continue
			}
			r := pipeline.Route{Dataset: ds.Name, Schema: ds.Schema, SinkName: ds.Sink, Sink: sinkOf(ds), MaxRetryDuration: cfg.Sink(ds.Sink).MaxRetryDuration}
			r.Window, r.Timestamp = window(ds)
			if ds.Filter != nil { // a nil *where.Filter in the interface would not read as "no filter"
				r.Where = ds.Filter
			}
			switch ds.CDC {
			case config.CDCDebezium:
				r.Changes = cdc.Debezium{}
			case config.CDCDynamoDB:
				r.Changes = cdc.DynamoDB{}
			}
			r.Disorder, r.TimestampIndex = ds.Disorder, ds.Schema.TimestampIndex()
			ps.Routes = append(ps.Routes, r)
		}
		sources = append(sources, ps)
	}
	return sources, nil
}

// pastWindow is, for a bounded source whose every dataset has an until, the
// arrival time after which its records are past every window: the latest
// until plus the idleness (the grace for records stamped before until that
// arrive late). Zero otherwise.
func pastWindow(cfg *config.Config, src config.Source) time.Time {
	if !src.Bounded {
		return time.Time{}
	}
	var last time.Time
	for _, ds := range cfg.Datasets {
		if !ds.Reads(src.Name) {
			continue
		}
		if ds.Until.IsZero() {
			return time.Time{}
		}
		if ds.Until.After(last) {
			last = ds.Until
		}
	}
	if last.IsZero() {
		return time.Time{}
	}
	return last.Add(src.Idleness)
}

// window builds a dataset's since/until and sample for the pipeline; nil
// when it has neither. ts converts the timestamp field alone.
func window(ds config.Dataset) (w *pipeline.Window, ts pipeline.Converter) {
	if ds.Since.IsZero() && ds.Until.IsZero() && ds.Sample == nil {
		return nil, nil
	}
	w = &pipeline.Window{Timestamp: ds.Schema.TimestampIndex(), Since: ds.Since, Until: ds.Until}
	if ds.Sample != nil {
		w.SampleRate = ds.Sample.Rate
		for _, name := range ds.Sample.Using {
			for i, c := range ds.Schema.Columns() {
				if c.Name == name {
					w.SampleColumns = append(w.SampleColumns, i)
				}
			}
		}
	}
	if ds.TimestampOnly != nil {
		ts = ds.TimestampOnly
	}
	return w, ts
}

// LeaseTable is the DynamoDB lease table of a source: consumer.application, with
// the source's name appended when there are several sources, because shard ids
// repeat across streams.
func LeaseTable(cfg *config.Config, source string) string {
	if !cfg.Consumer.TablePerSource {
		return cfg.Consumer.Application
	}
	return cfg.Consumer.Application + "-" + source
}

// decoderFor builds a source's decoder: its format's, wrapped to decompress
// records when the source has a compression. consumer gives the AWS calls
// of a Glue registry their session name and call timeout.
func decoderFor(src config.Source, consumer config.Consumer, log *slog.Logger) (decoders.Decoder, error) {
	dec, err := formatDecoder(src, consumer, log)
	if err != nil {
		return nil, err
	}
	k := src.Kinesis
	if k.Compression == "" || k.Compression == config.CompressionNone {
		return dec, nil
	}
	dec, err = decompress.New(dec, decompress.Config{Codec: decompress.Codec(k.Compression), MaxBytes: k.MaxDecompressedBytes})
	if err != nil {
		return nil, fmt.Errorf("source %q: compression: %w", src.Name, err)
	}
	return dec, nil
}

// formatDecoder builds the decoder of a source's format. Avro with
// schema_file takes raw binary and single-object encoded payloads
// (avrodec.FramingAuto); Avro with registry takes Confluent wire format and
// single-object encoded payloads, or Glue's wire format with a Glue registry.
// A schema registry that is down makes Decode return decoders.ErrTransient;
// the pipeline retries and counts that in
// kinesis_ingest_decode_retries_total{source}.
func formatDecoder(src config.Source, consumer config.Consumer, log *slog.Logger) (decoders.Decoder, error) {
	f := src.Kinesis.Format
	switch {
	case f.Kind == config.FormatJSON:
		return jsondec.New(), nil
	case f.Kind == config.FormatCloudWatchLogs && f.CloudWatchLogs != nil:
		// The format reads the subscription's gzip itself, within the
		// source's bound (compression is none: config refuses another).
		dec, err := cwlogs.New(cwlogs.Config{Message: cwlogs.Message(f.CloudWatchLogs.Message), MaxBytes: src.Kinesis.MaxDecompressedBytes})
		if err != nil {
			return nil, fmt.Errorf("source %q: format: %w", src.Name, err)
		}
		return dec, nil
	case f.Kind == config.FormatAvro && f.Avro != nil:
		cfg := avrodec.Config{
			SchemaFile: f.Avro.SchemaFile,
			Framing:    avroFraming(f.Avro.Framing),
			Logger:     log.With("source", src.Name, "component", "avrodec"),
		}
		switch r := f.Avro.Registry; {
		case r != nil && r.Glue != nil:
			g, err := glueRegistry(src, consumer)
			if err != nil {
				return nil, fmt.Errorf("source %q: format: %w", src.Name, err)
			}
			cfg.Glue = g
		case r != nil:
			cfg.Registry = &avrodec.Registry{URL: r.URL, Username: r.Username, Password: r.Password, Token: r.Token, CAFile: r.CAFile}
		}
		dec, err := avrodec.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("source %q: format: %w", src.Name, err)
		}
		return dec, nil
	default:
		return nil, fmt.Errorf("source %q: format %q is not supported by this build", src.Name, f.Kind)
	}
}

// glueRegistry is the avrodec side of a source's Glue registry: a Glue
// client in the registry's region, with its role_arn or else the source's
// credentials. The client makes one attempt per call: avrodec turns its
// retries off, since the pipeline's retry of the record is the only layer.
func glueRegistry(src config.Source, consumer config.Consumer) (*avrodec.Glue, error) {
	g := src.Kinesis.Format.Avro.Registry.Glue
	role, ext := src.Kinesis.RoleARN, src.Kinesis.ExternalID
	if g.RoleARN != nil {
		role, ext = g.RoleARN, g.ExternalID
	}
	// Loading reads the environment and profiles only: no call is made
	// until a record needs a schema.
	acfg, err := AWSConfig(context.Background(), g.Region, role, ext, SessionName(consumer.WorkerID), consumer.CallTimeout)
	if err != nil {
		return nil, fmt.Errorf("glue registry %q: %w", g.RegistryName, err)
	}
	return &avrodec.Glue{Client: glue.NewFromConfig(acfg), RegistryName: g.RegistryName}, nil
}

func avroFraming(s string) avrodec.Framing {
	switch s {
	case config.AvroFramingBinary:
		return avrodec.FramingBinary
	case config.AvroFramingSingleObject:
		return avrodec.FramingSingleObject
	}
	return avrodec.FramingAuto
}

// Metrics returns the worker's collectors.
func (a *App) Metrics() *metrics.Metrics { return a.metrics }

// MetricsAddr is the address /metrics is served on, "" when disabled.
func (a *App) MetricsAddr() string {
	if a.listener == nil {
		return ""
	}
	return a.listener.Addr().String()
}

// ErrorsAddr is the address the errors view is served on, "" when disabled.
func (a *App) ErrorsAddr() string {
	if a.errorsLn == nil {
		return ""
	}
	return a.errorsLn.Addr().String()
}

// Run runs until ctx is done, then stops gracefully: consumers drain their
// batches in flight, checkpoint and release their leases; then the pipeline
// and the sinks close.
func (a *App) Run(ctx context.Context) error {
	defer a.close()
	var servers []*http.Server
	serve := func(ln net.Listener, h http.Handler, what string) {
		srv := newServer(h)
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error(what+" server stopped", "err", err)
			}
		}()
		a.log.Info("serving "+what, "addr", ln.Addr().String())
	}
	if a.listener != nil {
		serve(a.listener, a.observabilityMux(), "metrics")
	}
	if a.errorsLn != nil {
		serve(a.errorsLn, a.errorsMux(), "errors view")
	}
	if ok, err := a.awaitGate(ctx); !ok {
		shutdown(servers)
		return err
	}

	// The pipeline outlives ctx: consumers drain through it after ctx ends.
	pctx, stopPipeline := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPipeline()
	perr := make(chan error, 1)
	go func() { perr <- a.pipeline.Run(pctx) }()
	select {
	case <-a.pipeline.Running():
	case err := <-perr:
		return err
	}

	// One consumer failing (its lease table unreachable at start) stops the
	// worker: a worker silently reading only some of its sources is worse.
	cctx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	defer context.AfterFunc(cctx, func() { a.stopping.Set(true) })()
	// A pipeline that stops while consumers run would leave every shard
	// waiting on a delivery that never comes, leases renewed, nothing read:
	// stop the consumers (they abandon the batch in flight unchecked) and fail.
	var pipelineErr error
	pipelineDone := make(chan struct{})
	go func() {
		defer close(pipelineDone)
		pipelineErr = <-perr
		if pctx.Err() == nil {
			if pipelineErr == nil {
				pipelineErr = errors.New("pipeline router stopped while the consumers were running")
			}
			a.log.Error("pipeline stopped; stopping the consumers", "err", pipelineErr)
			stopConsumers()
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, len(a.consumers))
	for i, c := range a.consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = c.Run(cctx); errs[i] != nil {
				stopConsumers()
			}
		}()
	}
	a.started.Set(true)
	if a.bounded() {
		go a.watchBounded(cctx, stopConsumers)
	}
	wg.Wait()
	stopPipeline()
	<-pipelineDone
	errs = append(errs, pipelineErr, a.notDone())
	shutdown(servers)
	return errors.Join(errs...)
}

func shutdown(servers []*http.Server) {
	for _, srv := range servers {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
}

func (a *App) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.log.Warn("close sink", "err", err)
		}
	}
	a.closers = nil
	for _, ln := range []net.Listener{a.listener, a.errorsLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}
