// Package redrive runs dead letters again through the current config
// (`kinesis-ingest redrive`): each letter the filter selects becomes its
// record again, with its original origin (source, stream, shard, sequence
// number, sub-sequence, partition key, arrival time), and is delivered into
// the dataset it failed in, or, for a letter that names none (decode_error,
// no_route), into every dataset of its source. Rows keep that origin, so a
// sink that de-duplicates on it (PostgreSQL) stores each once however often
// a letter is redriven.
//
// A letter that fails again stays the letter it is: redrive deletes no
// letter and writes none, so running it twice adds no letter to any
// dead-letter sink (the file sink would append a copy each time, and the
// PostgreSQL sink, keyed by origin and dataset, would add one whenever a
// record fails in another dataset than before). What it failed with now is
// in the summary, counted by reason and field with an example.
//
// The records of one source, dataset and shard are delivered in origin
// order (sequence number, then sub-sequence), in batches, one after the
// other. A dataset's late rule judges them against the watermark of what
// is redriven alone: a redrive keeps no shard state.
package redrive

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/outcome"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// Source is where dead letters are read back whole: the dead-letter sink
// of the config (internal/service/sinkreg gives one per kind).
type Source interface {
	// Letters calls fn with each dead letter f selects (and maybe others,
	// which Run filters out), its data whole. l is valid only during the
	// call; an error from fn stops the read and is returned. Lines or rows
	// that are not letters are counted in Stats.Unreadable.
	Letters(ctx context.Context, f Filter, fn func(l *record.DeadLetter) error) (Stats, error)
}

// Stats says what a Source read.
type Stats struct {
	Unreadable int `json:"unreadable,omitempty"`
}

// Filter selects dead letters. Zero fields select every letter.
type Filter struct {
	Reasons  []string  // any of these reasons
	Datasets []string  // any of these datasets (a decode_error or no_route letter names none)
	Sources  []string  // any of these sources
	Shard    string    // this shard id
	Since    time.Time // arrival time at or after
	Until    time.Time // arrival time before
}

// Match reports whether f selects l.
func (f Filter) Match(l *record.DeadLetter) bool {
	switch {
	case len(f.Reasons) > 0 && !slices.Contains(f.Reasons, string(l.Reason)),
		len(f.Datasets) > 0 && !slices.Contains(f.Datasets, l.Dataset),
		len(f.Sources) > 0 && !slices.Contains(f.Sources, l.Source),
		f.Shard != "" && l.ShardID != f.Shard,
		!f.Since.IsZero() && l.ArrivalTime.Before(f.Since),
		!f.Until.IsZero() && !l.ArrivalTime.Before(f.Until):
		return false
	}
	return true
}

// Target runs records through the current config (app.Redriver).
type Target interface {
	// Datasets returns the datasets of source that records can be
	// redriven into, and, by name, why each other one cannot (its sink
	// cannot take rows older than those it holds); ok is false when the
	// config has no such source.
	Datasets(source string) (into []string, not map[string]string, ok bool)
	// Deliver runs records (of source, one shard, in origin order) into
	// dataset alone and says what they became. One call at a time.
	Deliver(ctx context.Context, source, dataset string, records []record.Record) (Result, error)
}

// Result is what a Deliver did (or, in a dry run, would do).
type Result struct {
	// Rows are the rows the sink took, Duplicates those of them it held
	// already (0 when it cannot tell, or in a dry run).
	Rows, Duplicates int
	// Letters are what the records that failed again failed with.
	Letters []record.DeadLetter
	// Filtered are rows the dataset's since, until or sample dropped;
	// Unrouted records its where does not take.
	Filtered, Unrouted int
}

// Options tune Run.
type Options struct {
	Filter Filter
	// MaxBytes bounds the data of the letters held at once (all selected
	// letters are read before the first delivery, to order them):
	// DefaultMaxBytes when 0.
	MaxBytes int64
	// Batch is how many records one Deliver takes: DefaultBatch when 0.
	Batch  int
	DryRun bool
	Log    *slog.Logger
}

// Defaults of Options.
const (
	DefaultMaxBytes int64 = 1 << 30
	DefaultBatch          = 500
)

// Summary is what a Run did.
type Summary struct {
	DryRun bool  `json:"dry_run,omitempty"`
	Stats  Stats `json:"scanned"`
	// Letters are the letters selected; Repeated those read more than once
	// (the same record, dataset and reason: a file sink's replays), counted
	// once in Letters.
	Letters  int `json:"letters"`
	Repeated int `json:"repeated,omitempty"`
	// Records are the distinct records redriven; a record without a
	// dataset goes to each dataset of its source (Deliveries counts them).
	Records    int `json:"records"`
	Deliveries int `json:"deliveries"`
	// Skipped are the letters not redriven, by why.
	Skipped []Skip `json:"skipped,omitempty"`
	// Datasets are what the deliveries made, per dataset.
	Datasets []*outcome.Dataset `json:"datasets"`
	Totals   outcome.Dataset    `json:"totals"`
}

// Skip is how many letters were not redriven for one reason.
type Skip struct {
	Why   string `json:"why"`
	Count int    `json:"count"`
}

// letterKey identifies a letter: its record and where it failed.
type letterKey struct {
	origin          originKey
	dataset, reason string
}

type originKey struct {
	source, stream, shard, seq string
	sub                        int
}

// groupKey is one run of deliveries: the records of one shard of a
// source, into one dataset.
type groupKey struct{ source, dataset, shard string }

// Run reads the letters o.Filter selects from src, rebuilds their records
// and delivers them into t, each group (source, dataset, shard) in origin
// order; it returns the summary. It stops at the first error of src or t
// (a sink down past its retries is the context's end): the letters are
// still letters, and a Run again redrives what is left.
func Run(ctx context.Context, src Source, t Target, o Options) (*Summary, error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Summary{DryRun: o.DryRun}
	seen := map[letterKey]bool{}
	groups := map[groupKey][]record.Record{}
	inGroup := map[groupKey]map[originKey]bool{}
	records := map[originKey]bool{}
	skipped := map[string]int{}
	var bytesHeld int64
	stats, err := src.Letters(ctx, o.Filter, func(l *record.DeadLetter) error {
		if !o.Filter.Match(l) {
			return nil
		}
		ok := originKey{l.Source, l.StreamARN, l.ShardID, l.SequenceNumber, l.SubSequence}
		lk := letterKey{ok, l.Dataset, string(l.Reason)}
		if seen[lk] {
			s.Repeated++
			return nil
		}
		seen[lk] = true
		s.Letters++
		datasets, why := targets(t, l)
		if why != "" {
			skipped[why]++
			return nil
		}
		var data []byte
		for _, ds := range datasets {
			g := groupKey{l.Source, ds, l.ShardID}
			if inGroup[g] == nil {
				inGroup[g] = map[originKey]bool{}
			}
			if inGroup[g][ok] {
				continue // another letter of the record named this dataset too
			}
			if data == nil {
				if bytesHeld += int64(len(l.Data)); bytesHeld > o.MaxBytes {
					return fmt.Errorf("the selected dead letters hold more than %d bytes of data, which redrive reads whole before it delivers them in order: narrow them with --since, --until, --shard, --reason or --dataset, or raise --max-bytes", o.MaxBytes)
				}
				data = bytes.Clone(l.Data)
			}
			inGroup[g][ok] = true
			records[ok] = true
			groups[g] = append(groups[g], record.Record{Origin: l.Origin, Data: data})
		}
		return nil
	})
	s.Stats = stats
	if err != nil {
		return s, fmt.Errorf("read the dead letters: %w", err)
	}
	s.Records = len(records)
	for why, n := range skipped {
		s.Skipped = append(s.Skipped, Skip{Why: why, Count: n})
	}
	slices.SortFunc(s.Skipped, func(a, b Skip) int { return cmp.Or(b.Count-a.Count, strings.Compare(a.Why, b.Why)) })

	var rep outcome.Report
	keys := slices.SortedFunc(maps.Keys(groups), func(a, b groupKey) int {
		return cmp.Or(strings.Compare(a.source, b.source), strings.Compare(a.dataset, b.dataset), strings.Compare(a.shard, b.shard))
	})
	defer func() {
		s.Datasets, s.Totals = rep.Datasets(), rep.Totals()
	}()
	for _, g := range keys {
		recs := groups[g]
		slices.SortFunc(recs, func(a, b record.Record) int { return originOrder(a.Origin, b.Origin) })
		d := rep.Of(g.source, g.dataset)
		d.Records += len(recs)
		for start := 0; start < len(recs); start += o.Batch {
			batch := recs[start:min(start+o.Batch, len(recs))]
			res, err := t.Deliver(ctx, g.source, g.dataset, batch)
			if err != nil {
				return s, fmt.Errorf("redrive into dataset %s (source %s, shard %s): %w", g.dataset, g.source, g.shard, err)
			}
			s.Deliveries += len(batch)
			d.Rows += res.Rows
			d.Duplicates += res.Duplicates
			d.Filtered += res.Filtered
			d.Unrouted += res.Unrouted
			d.AddLetters(res.Letters)
		}
		o.Log.Info("redriven", "source", g.source, "dataset", g.dataset, "shard_id", g.shard, "records", len(recs), "dry_run", o.DryRun)
		groups[g] = nil // its data can go
	}
	return s, nil
}

// targets are the datasets l's record goes to, or why it goes to none.
func targets(t Target, l *record.DeadLetter) (datasets []string, why string) {
	into, not, ok := t.Datasets(l.Source)
	if !ok {
		return nil, fmt.Sprintf("source %s is not in the config", l.Source)
	}
	if l.Dataset == "" {
		if len(into) == 0 {
			return nil, fmt.Sprintf("source %s has no dataset redrive can write", l.Source)
		}
		return into, ""
	}
	if slices.Contains(into, l.Dataset) {
		return []string{l.Dataset}, ""
	}
	if w, ok := not[l.Dataset]; ok {
		return nil, fmt.Sprintf("dataset %s: %s", l.Dataset, w)
	}
	return nil, fmt.Sprintf("dataset %s is not a dataset of source %s in the config", l.Dataset, l.Source)
}

// originOrder orders records of one shard as the stream does: sequence
// numbers as numbers (they are decimal strings of up to 128 digits), then
// sub-sequence.
func originOrder(a, b record.Origin) int {
	return cmp.Or(cmp.Compare(len(a.SequenceNumber), len(b.SequenceNumber)),
		strings.Compare(a.SequenceNumber, b.SequenceNumber), cmp.Compare(a.SubSequence, b.SubSequence))
}
