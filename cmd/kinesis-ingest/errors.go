package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/errview"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/sinkreg"
)

const errorsHelp = `kinesis-ingest errors --config FILE [filters]: summarize the dead letters of FILE's
dead-letter sink (the files of every worker sharing its directory, its PostgreSQL
table, or the objects of every worker under its S3 prefix): counts by reason and by field, then the latest ones with a preview of their data. Times filter on the
records' Kinesis arrival time: RFC 3339 (2026-11-01T12:00:00Z) or a duration back from
now (90m, 1h, 7d). A running worker serves the same view on errors.listen (by default a free
loopback port, logged at start as "serving errors view addr=..."; never the metrics
port) at /errors (JSON) and /errors.html, with the filters as query parameters
(reason, shard, since, until, limit).`

// reasonsFlag collects --reason, repeated or comma-separated.
type reasonsFlag []string

func (r *reasonsFlag) String() string     { return strings.Join(*r, ",") }
func (r *reasonsFlag) Set(v string) error { *r = append(*r, v); return nil }

func cmdErrors(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flags("errors", errorsHelp, stderr)
	path := fs.String("config", "", "path of the YAML configuration (required)")
	var reasons reasonsFlag
	fs.Var(&reasons, "reason", "only this reason: decode_error, schema_error, no_route or sink_rejected (repeat, or comma-separate, for several)")
	shard := fs.String("shard", "", "only this shard id")
	since := fs.String("since", "", "only records that arrived at or after this time")
	until := fs.String("until", "", "only records that arrived before this time")
	limit := fs.Int("limit", errview.DefaultLimit, fmt.Sprintf("how many of the latest dead letters to show (1..%d)", errview.MaxLimit))
	asJSON := fs.Bool("json", false, "print the view as JSON, as /errors serves it")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments %q; filters are flags (--reason, --shard, --since, --until)\n", fs.Args())
		return 2
	}
	q, err := errorsQuery(reasons, *shard, *since, *until, *limit, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 2
	}
	s, err := errview.Summarize(ctx, sinkreg.Errors(cfg), q)
	if err != nil {
		fmt.Fprintf(stderr, "cannot read the dead letters: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(s)
	} else {
		err = errview.WriteText(stdout, s)
	}
	if err != nil {
		fmt.Fprintf(stderr, "write the view: %v\n", err)
		return 1
	}
	return 0
}

// errorsQuery reads the flags through errview.ParseQuery, the /errors
// endpoint's parser, so both accept and refuse the same; its messages name the
// parameter, which here is a flag.
func errorsQuery(reasons []string, shard, since, until string, limit int, now time.Time) (errview.Query, error) {
	v := url.Values{"reason": reasons, "limit": {strconv.Itoa(limit)}}
	for k, val := range map[string]string{"shard": shard, "since": since, "until": until} {
		if val != "" {
			v.Set(k, val)
		}
	}
	q, err := errview.ParseQuery(v, now)
	if err == nil {
		return q, nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			errs = append(errs, errors.New("--"+e.Error()))
		}
	}
	return q, errors.Join(errs...)
}
