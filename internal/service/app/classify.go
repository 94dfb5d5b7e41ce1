package app

import (
	"context"
	"errors"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
)

// The config's pipeline outside the worker: no consumer, no lease table, no
// metrics endpoint. A Classifier (validate --sample) only classifies; a
// Redriver (redrive.go) delivers records rebuilt from dead letters into the
// row sinks, or classifies them with --dry-run.

// Classifier classifies records with the config's pipeline, writing
// nothing: its routes' sinks refuse every write, and are never asked.
type Classifier struct {
	p *pipeline.Pipeline
}

// NewClassifier builds cfg's pipeline for Classify: decoders, datasets,
// windows and late rules as run builds them, no sink opened. A Classifier
// holds nothing to release: its pipeline never runs, so it starts no
// goroutine (and closing it would wait for its router's handlers, which
// never start, for the router's whole close timeout).
func NewClassifier(cfg *config.Config, log *slog.Logger) (*Classifier, error) {
	sources, err := pipelineSources(cfg, log, func(config.Dataset) sinks.RowSink { return noRows{} })
	if err != nil {
		return nil, err
	}
	p, err := pipeline.New(pipeline.Config{Sources: sources, DeadLetters: noLetters{}, Metrics: nopMetrics{}, Logger: log.With("component", "pipeline")})
	if err != nil {
		return nil, err
	}
	return &Classifier{p: p}, nil
}

// Classify says what records of source would become (pipeline.Classify).
func (c *Classifier) Classify(ctx context.Context, source string, records []record.Record) (*pipeline.Outcome, error) {
	return c.p.Classify(ctx, source, records)
}

// noRows and noLetters are the sinks of a pipeline that only classifies.
type noRows struct{}

func (noRows) Write(context.Context, []record.Row) error { return errNoWrites }
func (noRows) Close() error                              { return nil }

type noLetters struct{}

func (noLetters) Write(context.Context, []record.DeadLetter) error { return errNoWrites }
func (noLetters) Close() error                                     { return nil }

var errNoWrites = errors.New("this pipeline only classifies: nothing may be written")

// nopMetrics is the pipeline.Metrics of a pipeline that only classifies:
// Classify counts nothing in Metrics, and the rest needs a run.
type nopMetrics struct{}

func (nopMetrics) Unrouted(string, int)             {}
func (nopMetrics) Filtered(string, string, int)     {}
func (nopMetrics) DecodeRetried(string)             {}
func (nopMetrics) SinkRetried(string)               {}
func (nopMetrics) DeliveryRetried(string)           {}
func (nopMetrics) CDCSkipped(string, string, int)   {}
func (nopMetrics) Expired(string, string, int)      {}
func (nopMetrics) Skipped(string, string, int)      {}
func (nopMetrics) SinkGaveUp(string)                {}
func (nopMetrics) InstrumentRouter(*message.Router) {}
