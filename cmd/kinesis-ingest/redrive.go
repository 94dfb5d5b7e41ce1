package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/app"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/errview"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/outcome"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/redrive"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/sinkreg"
)

const redriveHelp = `kinesis-ingest redrive --config FILE [filters] [--dry-run]: run the dead letters of
FILE's dead-letter sink again through FILE's current config, into its row sinks.

Each letter becomes its record again, with its original origin (shard, sequence
number, sub-sequence, partition key, arrival time), and goes to the dataset it failed
in; a decode_error or no_route letter names none and goes to every dataset of its
source. The records of each dataset and shard go in stream order. Rows keep the
origin, so a PostgreSQL sink stores each once however often it is redriven; a file
sink appends it again each time (as it does a record read again after a crash).
Datasets on an s3 sink are not redriven: its chains drop rows older than the newest
they hold as already stored.

A letter that fails again stays the letter it is: redrive deletes no letter and writes
none; the summary counts what each failed with now, by reason and field, with an
example. --dry-run classifies only and writes nothing.

Filters select letters by reason, dataset, source, shard and the records' arrival
time (RFC 3339, or a duration back from now: 90m, 1h, 7d). Exit 0 once every
selected letter was redriven (failing again included), 1 when reading or writing
failed (what was written stays; run it again), 2 on bad usage or config.`

func cmdRedrive(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flags("redrive", redriveHelp, stderr)
	path := fs.String("config", "", "path of the YAML configuration (required)")
	env := fs.String("env", "", envHelp)
	var reasons, datasets, sources reasonsFlag
	fs.Var(&reasons, "reason", "only letters of this reason: decode_error, schema_error, no_route, sink_rejected or late (repeat, or comma-separate, for several)")
	fs.Var(&datasets, "dataset", "only letters of this dataset (repeat, or comma-separate); decode_error and no_route letters name no dataset")
	fs.Var(&sources, "source", "only letters of this source (repeat, or comma-separate)")
	shard := fs.String("shard", "", "only letters of this shard id")
	since := fs.String("since", "", "only records that arrived at or after this time")
	until := fs.String("until", "", "only records that arrived before this time")
	dryRun := fs.Bool("dry-run", false, "classify only: say what redrive would do, write nothing")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	maxBytes := fs.Int64("max-bytes", redrive.DefaultMaxBytes, "refuse when the selected letters hold more data than this (redrive holds them to order them)")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments %q; filters are flags (--reason, --dataset, --source, --shard, --since, --until)\n", fs.Args())
		return 2
	}
	f, err := redriveFilter(reasons, datasets, sources, *shard, *since, *until, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cfg, ok := loadConfigEnv(*path, *env, stderr)
	if !ok {
		return 2
	}
	for _, ds := range f.Datasets {
		if !slices.ContainsFunc(cfg.Datasets, func(d config.Dataset) bool { return d.Name == ds }) {
			fmt.Fprintf(stderr, "--dataset %q: the config has no such dataset\n", ds)
			return 2
		}
	}
	log := newLogger(cfg, stderr)
	r, err := app.NewRedriver(ctx, cfg, log, *dryRun)
	if err != nil {
		fmt.Fprintf(stderr, "cannot open the sinks: %v\n", err)
		return 1
	}
	s, runErr := redrive.Run(ctx, sinkreg.Letters(cfg), r, redrive.Options{Filter: f, MaxBytes: *maxBytes, DryRun: *dryRun, Log: log})
	if err := r.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("close the sinks: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(s)
	} else {
		err = writeRedrive(stdout, s)
	}
	if err == nil && runErr != nil {
		err = runErr
	}
	if err != nil {
		fmt.Fprintf(stderr, "redrive: %v\n", err)
		return 1
	}
	return 0
}

// redriveFilter reads the filter flags; its messages name the flag.
func redriveFilter(reasons, datasets, sources []string, shard, since, until string, now time.Time) (redrive.Filter, error) {
	var errs []error
	f := redrive.Filter{Shard: shard, Datasets: splitList(datasets), Sources: splitList(sources)}
	var err error
	if f.Reasons, err = errview.ParseReasons(reasons...); err != nil {
		errs = append(errs, fmt.Errorf("--reason: %w", err))
	}
	if f.Since, err = errview.ParseTime(since, now); err != nil {
		errs = append(errs, fmt.Errorf("--since: %w", err))
	}
	if f.Until, err = errview.ParseTime(until, now); err != nil {
		errs = append(errs, fmt.Errorf("--until: %w", err))
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		errs = append(errs, fmt.Errorf("--since %s is not before --until %s", f.Since.UTC().Format(time.RFC3339), f.Until.UTC().Format(time.RFC3339)))
	}
	return f, errors.Join(errs...)
}

func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// writeRedrive prints a redrive's summary: what was selected, what was
// skipped and why, each dataset's block (outcome.WriteText) and a total.
func writeRedrive(w io.Writer, s *redrive.Summary) error {
	if s == nil {
		return nil
	}
	mode := ""
	if s.DryRun {
		mode = " (dry run: nothing written)"
	}
	fmt.Fprintf(w, "redrive%s: %d dead letters selected, %d records, %d deliveries", mode, s.Letters, s.Records, s.Deliveries)
	if s.Repeated > 0 {
		fmt.Fprintf(w, "; %d letters read more than once counted once", s.Repeated)
	}
	if s.Stats.Unreadable > 0 {
		fmt.Fprintf(w, "; %d unreadable lines or objects skipped", s.Stats.Unreadable)
	}
	fmt.Fprintln(w)
	for _, sk := range s.Skipped {
		fmt.Fprintf(w, "not redriven %d: %s\n", sk.Count, sk.Why)
	}
	if err := outcome.WriteText(w, s.Datasets, outcome.Columns{Records: true, Duplicates: !s.DryRun, Filtered: true, Unrouted: true}); err != nil {
		return err
	}
	t := s.Totals
	if s.DryRun {
		_, err := fmt.Fprintf(w, "total (dry run): records %d, rows %d, would fail again %d, filtered %d, not taken by where %d\n",
			t.Records, t.Rows, t.Letters, t.Filtered, t.Unrouted)
		return err
	}
	_, err := fmt.Fprintf(w, "total: records %d, rows stored %d, already stored %d, failed again %d (still dead letters), filtered %d, not taken by where %d\n",
		t.Records, t.Rows-t.Duplicates, t.Duplicates, t.Letters, t.Filtered, t.Unrouted)
	return err
}
