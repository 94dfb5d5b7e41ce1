package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/app"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/dryrun"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/errview"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/validate"
)

const validateHelp = `kinesis-ingest validate --config FILE: the commit-time checks. Prints one line per check,
"ok", "FAIL [class] ...; fix: ..." or "skip" (not run because a check it needs failed), then
exits 0 if all passed, 1 if one failed, 2 if FILE itself is invalid. In order:
  config                 the file whole: every problem at once, with its YAML path
  credentials            each source's role_arn assumed through STS (or the worker's own)
  stream exists          DescribeStreamSummary by name in the credentials' account; it
                         must be stream_arn and ACTIVE or UPDATING
  shards listable        ListShards
  shards readable        GetShardIterator on one shard
  lease table reachable  DescribeTable; a missing table is created, as run would
  writable               each file sink and the dead-letter sink: a probe file is
                         created, fsynced and removed in its directory
Failure classes: not_found, access_denied, throttled, unreachable, invalid_arn,
invalid_credentials, wrong_account, not_active, not_writable, invalid_config,
unavailable, limit_exceeded.
"run" performs the same checks first. It refuses to start if one fails for a reason
that needs a fix (config, permissions, a missing resource); if every failure is an
outage (unreachable, unavailable, throttled) it starts unready and begins reading
once they pass ("run --require-healthy" refuses to start then too).

--sample N then runs the config on records already in the streams, writing nothing:
up to N records of every shard from --sample-from (no lease, no checkpoint; ListShards,
GetShardIterator and GetRecords only), through decode, where, the fields and the
window as run would, and prints per dataset the rows they would make and the dead
letters by reason and field with an example of each, and per source the records no
dataset takes. --max-dead-ratio R exits 1 when more than R of the records read would
become dead letters (for CI on config changes). A row a sink would refuse for itself
cannot be told without writing it.`

func cmdValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flags("validate", validateHelp, stderr)
	path := fs.String("config", "", "path of the YAML configuration (required)")
	offline := fs.Bool("offline", false, "check the file only, do not connect")
	timeout := fs.Duration("timeout", 60*time.Second, "give up on the checks after this long")
	env := fs.String("env", "", envHelp)
	sample := fs.Int("sample", 0, "also read up to this many records of every shard and show what the config makes of them, writing nothing (0: no sample)")
	sampleFrom := fs.String("sample-from", "1h", "where --sample reads each shard from: a duration back from now (90m, 1h, 7d), an RFC 3339 time, or trim_horizon (the oldest record kept)")
	maxDead := fs.Float64("max-dead-ratio", -1, "with --sample: exit 1 when more than this share (0..1) of the records read would become dead letters")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if *path == "" {
		fmt.Fprintln(stderr, "--config is required")
		return 2
	}
	from, err := sampleOptions(*sample, *sampleFrom, *maxDead, *offline, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL  config %s [%s]: %d problem(s); fix: correct each of these, then validate again\n", *path, configClass(err), len(config.Problems(err)))
		for _, e := range config.Problems(err) {
			fmt.Fprintf(stdout, "      %s\n", validate.OneLine(e.Error()))
		}
		return 2
	}
	if err := cfg.SelectEnv(*env); err != nil {
		fmt.Fprintf(stdout, "FAIL  config %s [invalid_config]: %v\n", *path, err)
		return 2
	}
	envNote := ""
	if *env != "" {
		envNote = " (env " + *env + ")"
	}
	fmt.Fprintf(stdout, "ok    config %s%s: %d sources, %d datasets, %d sinks\n", *path, envNote, len(cfg.Sources), len(cfg.Datasets), len(cfg.Sinks))
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stdout, "warn  %s\n", validate.OneLine(w))
	}
	if *offline {
		return 0
	}
	vctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep := validate.Run(vctx, cfg)
	for _, w := range rep.Warnings {
		fmt.Fprintf(stdout, "warn  %s\n", validate.OneLine(w))
	}
	for _, c := range rep.Checks {
		fmt.Fprintln(stdout, c.String())
	}
	code := 0
	if failed := rep.Failed(); len(failed) > 0 {
		fmt.Fprintf(stdout, "%d of %d checks failed\n", len(failed), len(rep.Checks)+1)
		code = 1
	} else {
		fmt.Fprintf(stdout, "all %d checks passed\n", len(rep.Checks)+1)
	}
	if *sample > 0 {
		sctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		if !runSample(sctx, cfg, dryrun.Options{PerShard: *sample, From: from}, *maxDead, stdout) {
			code = 1
		}
	}
	return code
}

// sampleOptions checks validate's sample flags and returns the time to
// read from (zero: trim_horizon).
func sampleOptions(sample int, from string, maxDead float64, offline bool, now time.Time) (time.Time, error) {
	var errs []error
	switch {
	case sample < 0:
		errs = append(errs, fmt.Errorf("--sample %d: give a number of records per shard above 0", sample))
	case sample > 0 && offline:
		errs = append(errs, errors.New("--sample reads the streams; it cannot go with --offline"))
	case sample == 0 && maxDead >= 0:
		errs = append(errs, errors.New("--max-dead-ratio applies to --sample: give both"))
	}
	if maxDead > 1 {
		errs = append(errs, fmt.Errorf("--max-dead-ratio %g: give a share between 0 and 1", maxDead))
	}
	var t time.Time
	if from != "trim_horizon" {
		var err error
		if t, err = errview.ParseTime(from, now); err != nil || t.IsZero() {
			errs = append(errs, fmt.Errorf("--sample-from: %q is not trim_horizon, a duration back from now (90m, 1h, 7d) or an RFC 3339 time", from))
		} else if t.After(now) {
			errs = append(errs, fmt.Errorf("--sample-from: %s is in the future", t.UTC().Format(time.RFC3339)))
		}
	}
	return t, errors.Join(errs...)
}

// runSample prints the sample's report and its verdict line, and reports
// whether it passed (read, and at most maxDead of it dead letters when
// maxDead >= 0).
func runSample(ctx context.Context, cfg *config.Config, o dryrun.Options, maxDead float64, stdout io.Writer) bool {
	rep, err := dryrun.Sample(ctx, cfg, o)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL  sample: %s\n", validate.OneLine(err.Error()))
		return false
	}
	if err := dryrun.WriteText(stdout, rep); err != nil {
		return false
	}
	if maxDead >= 0 && rep.DeadRatio() > maxDead {
		fmt.Fprintf(stdout, "FAIL  sample: %d of %d records would become dead letters (%.1f%%), above --max-dead-ratio %g\n",
			rep.Dead, rep.Records, 100*rep.DeadRatio(), maxDead)
		return false
	}
	fmt.Fprintf(stdout, "ok    sample: %d of %d records would become dead letters (%.1f%%)\n", rep.Dead, rep.Records, 100*rep.DeadRatio())
	return true
}

// preflight runs the validate checks before run starts the worker: passing
// checks and warnings are logged, failing ones are printed to stderr one per
// line. It reports whether the worker may start. When every failure is an
// outage (unreachable, unavailable, throttled) and requireHealthy is off,
// the worker starts anyway and gate holds back its reading until the checks
// pass: a stream, lease table or sink down at start is an outage like one
// later on. A configuration or permission failure refuses to start.
func preflight(ctx context.Context, cfg *config.Config, ac *app.AWS, log *slog.Logger, stderr io.Writer, requireHealthy bool) (ok bool, gate app.Gate) {
	rep := startupChecks(ctx, cfg, ac)
	for _, w := range rep.Warnings {
		log.Warn("check warning", "warning", w)
	}
	for _, c := range rep.Checks {
		if c.OK {
			log.Info("check", "result", c.String())
		}
	}
	failed := rep.Failed()
	if len(failed) == 0 {
		return true, app.Gate{}
	}
	for _, c := range failed {
		fmt.Fprintln(stderr, c.String())
	}
	if requireHealthy || !allTransient(failed) {
		log.Error("refusing to start: a startup check failed (kinesis-ingest validate prints the full report)",
			"failed", len(failed), "outages_only", allTransient(failed), "require_healthy", requireHealthy)
		return false, app.Gate{}
	}
	log.Warn("starting unready: a startup check failed with an outage; the worker reads nothing until every check passes (--require-healthy refuses to start instead)",
		"failed", len(failed))
	return true, app.Gate{
		Check: func(ctx context.Context) error {
			if failed := startupChecks(ctx, cfg, ac).Failed(); len(failed) > 0 {
				return checksFailed(failed)
			}
			return nil
		},
		Transient: func(err error) bool {
			var cf checksFailed
			return errors.As(err, &cf) && allTransient(cf)
		},
	}
}

// startupChecks is validate.Run as run performs it: with the worker's AWS
// configuration, bounded by a minute.
func startupChecks(ctx context.Context, cfg *config.Config, ac *app.AWS) *validate.Report {
	vctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return validate.Run(vctx, cfg, validate.WithAWS(ac))
}

// checksFailed is the failing checks of a startup attempt, as one error.
type checksFailed []validate.Check

func (cf checksFailed) Error() string {
	lines := make([]string, len(cf))
	for i, c := range cf {
		lines[i] = strings.TrimSpace(strings.TrimPrefix(c.String(), "FAIL"))
	}
	return strings.Join(lines, "; ")
}

func allTransient(cs []validate.Check) bool {
	for _, c := range cs {
		if !c.Transient() {
			return false
		}
	}
	return true
}

// configClass is invalid_arn when any problem is with an ARN, else
// invalid_config.
func configClass(err error) validate.Class {
	for _, e := range config.Problems(err) {
		var ce *config.Error
		if errors.As(e, &ce) && (strings.HasSuffix(ce.Path, "stream_arn") || strings.HasSuffix(ce.Path, "role_arn")) {
			return validate.ClassInvalidARN
		}
	}
	return validate.ClassInvalidConfig
}
