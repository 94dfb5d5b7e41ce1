// Command kinesis-ingest lands Kinesis records as typed rows and dead letters.
//
//	kinesis-ingest run --config F        consume until SIGINT/SIGTERM
//	kinesis-ingest validate --config F   check the config and connectivity
//	kinesis-ingest errors --config F     the dead letters
//	kinesis-ingest redrive --config F    the dead letters again, through the current config
//	kinesis-ingest config schema|print   the config's JSON Schema, the effective config
//	kinesis-ingest version               the build
//
// The demo on local emulators is a command of its own, kinesis-ingest-demo
// (make demo), so that this binary links no emulator or test helper.
package main

import (
	"context"
	"fmt"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/cli"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/app"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
)

const usage = `kinesis-ingest lands AWS Kinesis records as typed rows; records that cannot
become rows go to a dead-letter sink with the reason.

Usage:
  kinesis-ingest run --config FILE       consume until SIGINT or SIGTERM, then drain,
                                         checkpoint, release leases and exit 0
  kinesis-ingest validate --config FILE  check the config whole, then that every stream
                                         and the lease table are reachable; with
                                         --sample N, what the config makes of N records
                                         of each shard, writing nothing
  kinesis-ingest errors --config FILE    summarize the dead letters: counts by reason and
                                         field, the latest ones with a preview of their data
  kinesis-ingest redrive --config FILE [--dry-run]
                                         run the dead letters (filtered by reason, dataset,
                                         shard or time) again through the current config
                                         into the row sinks, with their original origin
  kinesis-ingest leases --config FILE    where each shard stands: state, owner, lease,
                                         checkpoint, parents, how far behind (read-only)
  kinesis-ingest reset --config FILE --to latest|trim_horizon|TIMESTAMP [--shard ID] [--yes]
                                         rewind the application's checkpoints (refused
                                         while a worker holds a live lease)
  kinesis-ingest config schema           print the config's JSON Schema (for editors)
  kinesis-ingest config print --config FILE
                                         print the effective config: defaults filled in,
                                         ${VAR} expanded, secrets masked
  kinesis-ingest version                 print the module version, VCS revision and Go
                                         version this binary was built from (also --version)

Run "kinesis-ingest COMMAND --help" for a command's flags.
AWS region, credentials and endpoints come from the SDK's standard configuration
(AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_KINESIS, ...).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes: 0 ok, 1 failure at run time, 2 bad usage or invalid config.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(ctx, args[1:], stdout, stderr)
	case "errors":
		return cmdErrors(ctx, args[1:], stdout, stderr)
	case "redrive":
		return cmdRedrive(ctx, args[1:], stdout, stderr)
	case "leases":
		return cmdLeases(ctx, args[1:], stdout, stderr)
	case "reset":
		return cmdReset(ctx, args[1:], stdout, stderr)
	case "config":
		return cmdConfig(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		return cmdVersion(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// flags and parseFlags are the commands' shared flag handling.
var flags, parseFlags = cli.Flags, cli.Parse

func loadConfig(path string, stderr io.Writer) (*config.Config, bool) {
	if path == "" {
		fmt.Fprintln(stderr, "--config is required")
		return nil, false
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "invalid config %s:\n%v\n", path, err)
		return nil, false
	}
	return cfg, true
}

// envHelp is the --env flag's help, the same on every command.
const envHelp = "the deployment: use only the sources and datasets whose env lists it (and those without env); required when the config lists envs"

// loadConfigEnv is loadConfig, then the selection of --env.
func loadConfigEnv(path, env string, stderr io.Writer) (*config.Config, bool) {
	cfg, ok := loadConfig(path, stderr)
	if !ok {
		return nil, false
	}
	if err := cfg.SelectEnv(env); err != nil {
		fmt.Fprintf(stderr, "config %s: %v\n", path, err)
		return nil, false
	}
	return cfg, true
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Log.SlogLevel()}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h)
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flags("run", "kinesis-ingest run --config FILE: consume every source of FILE until SIGINT or SIGTERM.", stderr)
	path := fs.String("config", "", "path of the YAML configuration (required)")
	logFormat := fs.String("log-format", "", "text or json; overrides log.format")
	logLevel := fs.String("log-level", "", "debug, info, warn or error; overrides log.level")
	env := fs.String("env", "", envHelp)
	requireHealthy := fs.Bool("require-healthy", false, "refuse to start when a startup check fails for any reason; without it, a stream, lease table or sink that is unreachable at start leaves the worker running, unready, until it answers")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	cfg, ok := loadConfigEnv(*path, *env, stderr)
	if !ok {
		return 2
	}
	if err := overrideLog(cfg, *logFormat, *logLevel); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log := newLogger(cfg, stderr)
	slog.SetDefault(log) // what logs through the default logger is structured the same way
	for _, w := range cfg.Warnings {
		log.Warn("config warning", "warning", w)
	}
	// One load of the AWS configuration serves the checks and the worker.
	ac, err := app.NewAWS(cfg.Consumer.CallTimeout)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	ok, gate := preflight(ctx, cfg, ac, log, stderr, *requireHealthy)
	if !ok {
		return 1
	}
	a, err := app.New(ctx, cfg, log, app.WithAWS(ac), app.WithGate(gate))
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		a.ShowProgress(stderr)
	}
	if err := a.Run(ctx); err != nil {
		log.Error("stopped with errors", "err", err)
		return 1
	}
	log.Info("stopped")
	if a.Finished() {
		fmt.Fprintf(stdout, "kinesis-ingest: every bounded source is done; this worker (%s) made durable:\n", cfg.Consumer.WorkerID)
		a.Summary().Print(stdout)
	}
	return 0
}

// isTerminal reports whether f is a terminal (a character device), where a
// bounded run's live progress line belongs; a pipe or file gets log lines.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
