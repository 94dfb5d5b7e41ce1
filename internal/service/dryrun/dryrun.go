// Package dryrun runs a config on records already in its streams without
// writing anything (`kinesis-ingest validate --sample N`): it reads up to N
// records of every shard of every source from a recent position, with no
// lease and no checkpoint (consumers/peek), classifies them with the
// config's pipeline as run would (decode → where → convert → window →
// late, app.Classifier) and counts, per dataset, the rows they would make
// and the dead letters by reason and field, with an example of each kind.
//
// What it cannot tell without writing: a row a sink would refuse for
// itself (sink_rejected); and, since each shard's records are judged from
// an empty watermark, a late rule may judge the first records of a shard
// otherwise than the worker, which carries the watermark in its checkpoint.
package dryrun

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/peek"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/app"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/outcome"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// Options say what to sample.
type Options struct {
	// PerShard is how many records to read of each shard, at most.
	PerShard int
	// From is the arrival time to read from; the zero time reads from the
	// oldest record kept (trim_horizon).
	From time.Time
	// AWS is the loader of the AWS configuration (the one the command's
	// checks used), nil for one of its own.
	AWS *app.AWS
	Log *slog.Logger
}

// Report is what a sample would become.
type Report struct {
	From     time.Time      `json:"from,omitzero"`
	PerShard int            `json:"per_shard"`
	Sources  []SourceSample `json:"sources"`
	// Records were read; Dead of them would become at least one dead
	// letter.
	Records  int                `json:"records"`
	Dead     int                `json:"dead"`
	Datasets []*outcome.Dataset `json:"datasets"`
}

// SourceSample is what was read of one source's stream.
type SourceSample struct {
	Source  string `json:"source"`
	Stream  string `json:"stream_arn"`
	Shards  int    `json:"shards"`
	Records int    `json:"records"`
}

// DeadRatio is Dead over Records, 0 when nothing was read.
func (r *Report) DeadRatio() float64 {
	if r.Records == 0 {
		return 0
	}
	return float64(r.Dead) / float64(r.Records)
}

// Sample reads and classifies up to o.PerShard records of every shard of
// every source of cfg. ctx bounds it.
func Sample(ctx context.Context, cfg *config.Config, o Options) (*Report, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	ac := o.AWS
	if ac == nil {
		var err error
		if ac, err = app.NewAWS(cfg.Consumer.CallTimeout); err != nil {
			return nil, fmt.Errorf("consumer.call_timeout: %w", err)
		}
	}
	cl, err := app.NewClassifier(cfg, o.Log)
	if err != nil {
		return nil, err
	}
	rep := &Report{From: o.From, PerShard: o.PerShard}
	var counts outcome.Report
	for _, src := range cfg.Sources {
		k := src.Kinesis
		acfg, err := ac.Config(ctx, k.StreamARN.Region, k.RoleARN, k.ExternalID, app.SessionName(cfg.Consumer.WorkerID))
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", src.Name, err)
		}
		shards, err := peek.Read(ctx, peek.Config{Client: kinesis.NewFromConfig(acfg), Source: src.Name, StreamARN: k.StreamARN.String(),
			StreamName: k.StreamARN.Name, PerShard: o.PerShard, From: o.From})
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", src.Name, err)
		}
		ss := SourceSample{Source: src.Name, Stream: k.StreamARN.String(), Shards: len(shards)}
		// Every dataset of the source is in the report, also one the
		// sample gave nothing, and so are the records of none.
		for _, ds := range cfg.Datasets {
			if ds.Reads(src.Name) {
				counts.Of(src.Name, ds.Name)
			}
		}
		counts.Of(src.Name, "")
		for _, sh := range shards {
			out, err := cl.Classify(ctx, src.Name, sh.Records)
			if err != nil {
				return nil, fmt.Errorf("source %s, shard %s: %w", src.Name, sh.ID, err)
			}
			ss.Records += len(sh.Records)
			rep.Dead += add(&counts, src.Name, out)
		}
		rep.Records += ss.Records
		rep.Sources = append(rep.Sources, ss)
	}
	rep.Datasets = counts.Datasets()
	return rep, nil
}

// add counts out, a batch of source, and returns how many of its records
// became at least one dead letter.
func add(r *outcome.Report, source string, out *pipeline.Outcome) int {
	for _, row := range out.Rows {
		r.Of(source, row.Dataset).Rows++
	}
	byDataset := map[string][]record.DeadLetter{}
	dead := map[record.Origin]bool{}
	for _, l := range out.Letters {
		byDataset[l.Dataset] = append(byDataset[l.Dataset], l)
		dead[l.Origin] = true
	}
	for ds, letters := range byDataset {
		r.Of(source, ds).AddLetters(letters)
	}
	for ds, n := range out.Filtered {
		r.Of(source, ds).Filtered += n
	}
	for ds, n := range out.Skipped {
		r.Of(source, ds).CDCSkipped += n
	}
	r.Of(source, "").Unrouted += out.Unrouted
	for _, n := range out.SplitSkipped {
		r.Of(source, "").Skipped += n
	}
	return len(dead)
}

// WriteText writes the report for a terminal: a line per source read, then
// outcome.WriteText's blocks.
func WriteText(w io.Writer, r *Report) error {
	from := "the oldest record kept (trim_horizon)"
	if !r.From.IsZero() {
		from = r.From.UTC().Format(time.RFC3339)
	}
	for _, s := range r.Sources {
		if _, err := fmt.Fprintf(w, "sample source %s: %d records of %d shards of %s, at most %d per shard from %s; nothing written\n",
			s.Source, s.Records, s.Shards, s.Stream, r.PerShard, from); err != nil {
			return err
		}
	}
	return outcome.WriteText(w, r.Datasets, outcome.Columns{Filtered: true, Unrouted: true})
}
