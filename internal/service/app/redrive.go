package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/redrive"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/sinkreg"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
)

// Redriver runs records rebuilt from dead letters through cfg into the row
// sink of one dataset at a time (redrive.Target). Its pipeline has one
// source per dataset, named <source>/<dataset> (a name no config can have),
// whose one route is the dataset's; the records keep their own origin, so
// rows and letters name the real source. Letters made again are collected,
// not written: the letter they came from is still in the dead-letter sink.
type Redriver struct {
	cfg    *config.Config
	p      *pipeline.Pipeline
	dryRun bool
	into   map[string][]string
	not    map[string]map[string]string
	// what the delivery in progress made
	counts  *counts
	closers []func() error
	stop    context.CancelFunc
	done    chan error
}

var _ redrive.Target = (*Redriver)(nil)

// NewRedriver opens the row sinks of cfg's datasets as run opens them,
// except those of a kind that cannot store rows older than it holds
// (sinkreg.Kind.OlderRows), and starts the pipeline. dryRun opens no sink
// and only classifies. File sinks name their files after worker_id with
// "-redrive" appended.
func NewRedriver(ctx context.Context, cfg *config.Config, log *slog.Logger, dryRun bool) (r *Redriver, err error) {
	r = &Redriver{cfg: cfg, dryRun: dryRun, into: map[string][]string{}, not: map[string]map[string]string{}, counts: &counts{}}
	built := r
	defer func() {
		if err != nil {
			built.close()
		}
	}()
	rowSinks := map[string]sinks.RowSink{}
	for _, ds := range cfg.Datasets {
		kind, err := sinkreg.Lookup(cfg.Sink(ds.Sink).Kind())
		if err != nil {
			return nil, fmt.Errorf("sink %q: %w", ds.Sink, err)
		}
		if !kind.OlderRows {
			for _, src := range ds.Sources {
				if r.not[src] == nil {
					r.not[src] = map[string]string{}
				}
				r.not[src][ds.Name] = fmt.Sprintf("its sink %s (%s) cannot store rows older than those it holds", ds.Sink, kind.Name)
			}
			continue
		}
		for _, src := range ds.Sources {
			r.into[src] = append(r.into[src], ds.Name)
		}
		if dryRun {
			rowSinks[ds.Name] = noRows{}
			continue
		}
		name := ds.Name
		rs, err := openRowSink(ctx, cfg, ds, sinkreg.Env{WorkerID: cfg.Consumer.WorkerID + "-redrive", Log: log,
			OnDuplicates: func(n int) { r.counts.duplicate(name, n) },
			OnChanges:    func(_, _, older int) { r.counts.duplicate(name, older) },
		})
		if err != nil {
			return nil, err
		}
		rowSinks[ds.Name] = rs.Sink
		r.closers = append(r.closers, rs.Sink.Close)
	}
	whole, err := pipelineSources(cfg, log, func(ds config.Dataset) sinks.RowSink { return rowSinks[ds.Name] })
	if err != nil {
		return nil, err
	}
	var sources []pipeline.Source
	for _, s := range whole {
		for _, route := range s.Routes {
			if route.Sink == nil {
				continue // a dataset redrive does not write
			}
			one := s
			one.Name, one.Routes, one.DeadLetterUnrouted = s.Name+"/"+route.Dataset, []pipeline.Route{route}, false
			// A letter's arrival time is its record's: max_record_age judged
			// the stream as it was read, and a redrive the user asks for
			// would otherwise expire every old letter again.
			one.MaxRecordAge = 0
			sources = append(sources, one)
		}
	}
	if len(sources) == 0 {
		return r, nil // nothing to write: every letter is skipped
	}
	r.p, err = pipeline.New(pipeline.Config{Sources: sources, DeadLetters: (*collected)(r.counts), Metrics: r.counts, Tally: r.counts,
		Logger: log.With("component", "pipeline")})
	if err != nil {
		return nil, err
	}
	if dryRun {
		return r, nil
	}
	pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stop, r.done = stop, make(chan error, 1)
	go func() { r.done <- r.p.Run(pctx) }()
	select {
	case <-r.p.Running():
	case err := <-r.done:
		r.done = nil
		return nil, err
	}
	return r, nil
}

// Datasets implements redrive.Target.
func (r *Redriver) Datasets(source string) (into []string, not map[string]string, ok bool) {
	if r.cfg.Source(source) == nil {
		return nil, nil, false
	}
	return r.into[source], r.not[source], true
}

// Deliver implements redrive.Target: the records go through the pipeline
// into dataset's sink (or are classified, in a dry run).
func (r *Redriver) Deliver(ctx context.Context, source, dataset string, records []record.Record) (redrive.Result, error) {
	name := source + "/" + dataset
	if r.dryRun {
		out, err := r.p.Classify(ctx, name, records)
		if err != nil {
			return redrive.Result{}, err
		}
		return redrive.Result{Rows: len(out.Rows), Letters: out.Letters, Filtered: out.Filtered[dataset], Unrouted: out.Unrouted}, nil
	}
	r.counts.reset()
	if err := r.p.Deliver(ctx, name, records); err != nil {
		return redrive.Result{}, err
	}
	return r.counts.result(dataset), nil
}

// Close stops the pipeline and closes the sinks (which flush).
func (r *Redriver) Close() error {
	var errs []error
	// A dry run's pipeline never ran: nothing to stop (see NewClassifier).
	if r.stop != nil {
		r.stop()
		if r.done != nil {
			errs = append(errs, <-r.done)
		}
	}
	errs = append(errs, r.close())
	return errors.Join(errs...)
}

func (r *Redriver) close() error {
	var errs []error
	for i := len(r.closers) - 1; i >= 0; i-- {
		errs = append(errs, r.closers[i]())
	}
	r.closers = nil
	return errors.Join(errs...)
}

// counts is what the pipeline and the sinks report of one delivery (a
// pipeline.Metrics and Tally, the sinks' duplicates hooks, and, through
// collected, its dead-letter sink). The sinks may call from their own
// goroutines before a Write returns.
type counts struct {
	mu                 sync.Mutex
	rows, dups         map[string]int
	letters            []record.DeadLetter
	filtered, unrouted int
}

func (c *counts) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows, c.dups, c.letters, c.filtered, c.unrouted = map[string]int{}, map[string]int{}, nil, 0, 0
}

func (c *counts) result(dataset string) redrive.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return redrive.Result{Rows: c.rows[dataset], Duplicates: c.dups[dataset], Letters: c.letters, Filtered: c.filtered, Unrouted: c.unrouted}
}

func (c *counts) duplicate(dataset string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dups != nil {
		c.dups[dataset] += n
	}
}

// pipeline.Tally: rows the sink accepted; letters come through collected.
func (c *counts) Wrote(dataset string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rows != nil {
		c.rows[dataset] += n
	}
}

func (c *counts) DeadLettered([]record.DeadLetter) {}

// pipeline.Metrics: what only the pipeline sees.
func (c *counts) Unrouted(_ string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unrouted += n
}

func (c *counts) Filtered(_, _ string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.filtered += n
}

func (c *counts) DecodeRetried(string)             {}
func (c *counts) SinkRetried(string)               {}
func (c *counts) DeliveryRetried(string)           {}
func (c *counts) CDCSkipped(string, string, int)   {}
func (c *counts) Expired(string, string, int)      {}
func (c *counts) Skipped(string, string, int)      {}
func (c *counts) SinkGaveUp(string)                {}
func (c *counts) InstrumentRouter(*message.Router) {}

// collected is the dead-letter sink of a redrive: the letters of the
// delivery in progress, kept for its summary.
type collected counts

func (c *collected) Write(_ context.Context, letters []record.DeadLetter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.letters = append(c.letters, letters...)
	return nil
}

func (c *collected) Close() error { return nil }
