package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/app"
	"github.com/kinesis-ingest/kinesis-ingest/internal/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/validate"
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
invalid_credentials, wrong_account, not_active, not_writable, invalid_config.
"run" performs the same checks first and refuses to start if one fails.`

func cmdValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flags("validate", validateHelp, stderr)
	path := fs.String("config", "", "path of the YAML configuration (required)")
	offline := fs.Bool("offline", false, "check the file only, do not connect")
	timeout := fs.Duration("timeout", 60*time.Second, "give up on the checks after this long")
	env := fs.String("env", "", envHelp)
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if *path == "" {
		fmt.Fprintln(stderr, "--config is required")
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
	if failed := rep.Failed(); len(failed) > 0 {
		fmt.Fprintf(stdout, "%d of %d checks failed\n", len(failed), len(rep.Checks)+1)
		return 1
	}
	fmt.Fprintf(stdout, "all %d checks passed\n", len(rep.Checks)+1)
	return 0
}

// preflight runs the validate checks before run starts the worker: passing
// checks and warnings are logged, failing ones are printed to stderr one per
// line. It reports whether the worker may start.
func preflight(ctx context.Context, cfg *config.Config, ac *app.AWS, log *slog.Logger, stderr io.Writer) bool {
	vctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	rep := validate.Run(vctx, cfg, validate.WithAWS(ac))
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
		return true
	}
	for _, c := range failed {
		fmt.Fprintln(stderr, c.String())
	}
	log.Error("refusing to start: a startup check failed (kinesis-ingest validate prints the full report)", "failed", len(failed))
	return false
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
