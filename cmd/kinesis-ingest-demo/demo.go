// Command kinesis-ingest-demo runs the worker on local emulators: it starts
// kinesis-mock and dynalite on free loopback ports, creates a 4-shard stream
// with sample orders (about 10% of them bad in different ways), ingests it
// with the embedded configuration and prints what was written and the
// kinesis-ingest commands to look at it. It is the worker's code wired to
// test environments, so it is a binary of its own: the worker links none.
//
//	kinesis-ingest-demo [--keep] [--records N] [--out DIR] [--verbose]
package main

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/cli"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/app"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/errview"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/sinkreg"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/emulators"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

//go:embed demo.yaml
var demoConfig []byte

// Files the demo writes into its output directory, beside rows/ and
// dead-letters/, for the next steps it prints.
const (
	demoConfigFile = "demo.yaml" // the config it ran, ${VAR}s expanded
	demoEnvFile    = "demo.env"  // the AWS environment that reaches the emulators
	demoLogFile    = "demo.log"  // the worker's log
)

type demoOptions struct {
	out     string // as given, for the commands it prints
	records int
	listen  string
	verbose bool
	keep    bool
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flags("kinesis-ingest-demo", "kinesis-ingest-demo: start kinesis-mock and dynalite on free loopback ports, create a\n4-shard stream with sample orders (about 10% of them bad in different ways), ingest it\nwith the embedded configuration, print how many rows and dead letters were written and\nwhere, and the commands to look at them. The worker's log goes to DIR/demo.log (warnings\nalso to stderr; --verbose sends everything to stderr).", stderr)
	var o demoOptions
	fs.StringVar(&o.out, "out", "demo-out", "directory for rows, dead letters, the config, its environment and the log (emptied first)")
	fs.IntVar(&o.records, "records", 1000, "records to produce")
	fs.StringVar(&o.listen, "metrics", "127.0.0.1:0", "address to serve /metrics, /healthz and /readyz on (the errors view gets a loopback port of its own)")
	fs.BoolVar(&o.verbose, "verbose", false, "log everything (debug level) to stderr")
	fs.BoolVar(&o.verbose, "v", false, "short for --verbose")
	fs.BoolVar(&o.keep, "keep", false, "after the summary, keep the emulators and the worker running until Ctrl-C, to run validate and browse /metrics and /errors.html")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if o.records < 1 {
		fmt.Fprintln(stderr, "--records must be at least 1")
		return 2
	}
	abs, err := filepath.Abs(o.out)
	if err == nil {
		err = os.RemoveAll(abs)
	}
	if err == nil {
		err = os.MkdirAll(abs, 0o755)
	}
	if err != nil {
		fmt.Fprintf(stderr, "demo output %s: %v\n", o.out, err)
		return 1
	}
	logFile, err := os.Create(filepath.Join(abs, demoLogFile))
	if err != nil {
		fmt.Fprintf(stderr, "demo log: %v\n", err)
		return 1
	}
	defer logFile.Close()
	log := demoLogger(logFile, stderr, o.verbose)
	if err := demo(ctx, log, stdout, stderr, abs, o); err != nil {
		log.Error("demo failed", "err", err)
		fmt.Fprintf(stderr, "demo failed: %v\n(the log is %s)\n", err, filepath.Join(o.out, demoLogFile))
		return 1
	}
	return 0
}

// demoLogger logs everything at info to the demo's log file and only
// warnings and errors to stderr, so the summary is not lost among lease and
// file lines; verbose sends debug and up to both.
func demoLogger(file, stderr io.Writer, verbose bool) *slog.Logger {
	if verbose {
		opts := &slog.HandlerOptions{Level: slog.LevelDebug}
		return slog.New(teeHandler{slog.NewTextHandler(file, opts), slog.NewTextHandler(stderr, opts)})
	}
	return slog.New(teeHandler{
		slog.NewTextHandler(file, &slog.HandlerOptions{Level: slog.LevelInfo}),
		slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}),
	})
}

// teeHandler sends each record to every handler that takes its level.
type teeHandler []slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var first error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			if err := h.Handle(ctx, r.Clone()); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}

func demo(ctx context.Context, log *slog.Logger, stdout, stderr io.Writer, abs string, o demoOptions) error {
	progress := newProgress(stderr)
	progress.line("starting the local Kinesis and DynamoDB emulators (the first run installs them with npm ci)...")
	emu, err := emulators.StartPair(ctx)
	if err != nil {
		return err
	}
	defer emu.Stop()
	kin, ddb := emu.Kinesis, emu.Dynamo
	log.Info("emulators up", "kinesis", kin.Endpoint, "dynamodb", ddb.Endpoint)

	kc := testaws.Kinesis(kin.Endpoint)
	arn, err := testaws.CreateStreamCtx(ctx, kc, "demo-orders", 4)
	if err != nil {
		return err
	}
	data, keys, bad := demoRecords(o.records)
	progress.line(fmt.Sprintf("putting %d sample orders (%d bad on purpose) into %s...", o.records, bad, arn))
	if err := testaws.Put(ctx, kc, "demo-orders", data, keys); err != nil {
		return err
	}
	log.Info("demo stream ready", "stream_arn", arn, "records", o.records, "bad", bad)

	// The worker finds the emulators the way it finds AWS: through the SDK's
	// standard environment, which demo.env repeats for the next steps.
	awsEnv := [][2]string{
		{"AWS_ENDPOINT_URL_KINESIS", kin.Endpoint},
		{"AWS_ENDPOINT_URL_DYNAMODB", ddb.Endpoint},
		{"AWS_REGION", testaws.Region},
		{"AWS_ACCESS_KEY_ID", testaws.Account},
		{"AWS_SECRET_ACCESS_KEY", "demo"},
	}
	for _, kv := range awsEnv {
		os.Setenv(kv[0], kv[1])
	}
	os.Unsetenv("AWS_SESSION_TOKEN")
	os.Unsetenv("AWS_PROFILE")
	os.Unsetenv("AWS_ENDPOINT_URL")
	cfgText := os.Expand(string(demoConfigBody()), func(k string) string {
		switch k {
		case "DEMO_STREAM_ARN":
			return arn
		case "DEMO_OUT":
			return abs
		case "DEMO_METRICS":
			return o.listen
		}
		return "${" + k + "}"
	})
	cfgPath := filepath.Join(abs, demoConfigFile)
	header := "# The config `kinesis-ingest-demo` ran, its ${VAR}s expanded. The stream and the\n# lease table are on the demo's emulators; " + demoEnvFile + " is the environment that reaches them.\n"
	if err := os.WriteFile(cfgPath, []byte(header+cfgText), 0o644); err != nil {
		return fmt.Errorf("write the demo config: %w", err)
	}
	var env strings.Builder
	for _, kv := range awsEnv {
		fmt.Fprintf(&env, "%s=%s\n", kv[0], kv[1])
	}
	if err := os.WriteFile(filepath.Join(abs, demoEnvFile), []byte(env.String()), 0o644); err != nil {
		return fmt.Errorf("write the demo environment: %w", err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	log.Info("ingesting", "metrics", "http://"+a.MetricsAddr()+"/metrics", "errors", "http://"+a.ErrorsAddr()+"/errors.html")

	deadline := time.After(3 * time.Minute)
	var rows, letters float64
	for rows+letters < float64(o.records) {
		select {
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			stop()
			<-done
			return fmt.Errorf("timed out: %v rows and %v dead letters of %d records", rows, letters, o.records)
		case err := <-done:
			return fmt.Errorf("worker stopped early: %w", err)
		case <-ctx.Done():
			stop()
			<-done
			return ctx.Err()
		}
		rows, letters = a.Metrics().Totals()
		progress.update(fmt.Sprintf("ingesting: %.0f of %d records (%.0f rows, %.0f dead letters)", rows+letters, o.records, rows, letters))
	}
	progress.done()
	if !o.keep {
		stop()
		if err := <-done; err != nil {
			return err
		}
	}
	// Read back as the errors view reads them, whatever the sink's kind.
	view, err := errview.Summarize(ctx, sinkreg.Errors(cfg), errview.Query{})
	if err != nil {
		return fmt.Errorf("read the dead letters back: %w", err)
	}
	reasons := map[string]int{}
	for _, r := range view.ByReason {
		reasons[r.Reason] = r.Count
	}
	fmt.Fprintf(stdout, "\nkinesis-ingest-demo: %d records from %s\n", o.records, arn)
	fmt.Fprintf(stdout, "  rows:         %6.0f  in %s\n", rows, filepath.Join(o.out, "rows"))
	fmt.Fprintf(stdout, "  dead letters: %6.0f  in %s\n", letters, filepath.Join(o.out, "dead-letters"))
	names := make([]string, 0, len(reasons))
	for r := range reasons {
		names = append(names, r)
	}
	sort.Strings(names)
	for _, r := range names {
		fmt.Fprintf(stdout, "    %-14s %d\n", r, reasons[r])
	}
	fmt.Fprintf(stdout, "  config:  %s  (the worker's log: %s)\n", filepath.Join(o.out, demoConfigFile), filepath.Join(o.out, demoLogFile))
	printNextSteps(stdout, o, a.MetricsAddr(), a.ErrorsAddr())
	if !o.keep {
		return nil
	}
	<-ctx.Done() // SIGINT or SIGTERM
	fmt.Fprintln(stdout, "stopping the worker and the emulators")
	stop()
	return <-done
}

// printNextSteps prints commands that work when pasted into the shell the
// demo ran in (TestDemo runs each of them).
func printNextSteps(w io.Writer, o demoOptions, metricsAddr, errorsAddr string) {
	self := workerCommand()
	cfg := shellQuote(filepath.Join(o.out, demoConfigFile))
	env := shellQuote(filepath.Join(o.out, demoEnvFile))
	fmt.Fprintf(w, "\nNext steps:\n")
	fmt.Fprintf(w, "  the dead letters it wrote, by reason and field, with a preview of their data:\n")
	fmt.Fprintf(w, "    $ %s errors --config %s\n", self, cfg)
	fmt.Fprintf(w, "  the config with every default filled in:\n")
	fmt.Fprintf(w, "    $ %s config print --config %s\n", self, cfg)
	if o.keep {
		fmt.Fprintf(w, "  the commit-time checks (stream, shards, lease table, sinks) against the emulators:\n")
		fmt.Fprintf(w, "    $ env $(cat %s) %s validate --config %s\n", env, self, cfg)
		fmt.Fprintf(w, "  the worker is still running:\n")
		fmt.Fprintf(w, "    metrics:       http://%s/metrics\n", metricsAddr)
		fmt.Fprintf(w, "    readiness:     http://%s/readyz\n", metricsAddr)
		fmt.Fprintf(w, "    dead letters:  http://%s/errors.html\n", errorsAddr)
	} else {
		fmt.Fprintf(w, "  keep the emulators and the worker running, to run validate and browse /metrics and /errors.html:\n")
		fmt.Fprintf(w, "    $ %s --keep\n", demoCommand())
	}
	fmt.Fprintf(w, "  your own stream: copy %s, set sources[0].kinesis.stream_arn (and role_arn if the\n", cfg)
	fmt.Fprintf(w, "  stream is in another account), the sink paths and consumer.application; remove worker_id.\n")
	fmt.Fprintf(w, "  Then, with your AWS credentials and without %s:\n", env)
	fmt.Fprintf(w, "    %s validate --config orders.yaml && %s run --config orders.yaml\n", self, self)
	fmt.Fprintf(w, "  (README: Configuration, Run on AWS, IAM)\n")
	if o.keep {
		fmt.Fprintf(w, "\nPress Ctrl-C to stop the worker and the emulators.\n")
	}
}

// workerCommand is how to run the worker (kinesis-ingest) from the shell the
// demo ran in: `go run ./cmd/kinesis-ingest` when the demo runs under `go
// run`, the kinesis-ingest binary beside this one when there is one (make
// build, a release), else kinesis-ingest from PATH.
func workerCommand() string {
	exe, err := os.Executable()
	if err != nil || underGoRun(exe) {
		return "go run ./cmd/kinesis-ingest"
	}
	beside := filepath.Join(filepath.Dir(exe), "kinesis-ingest")
	if fi, err := os.Stat(beside); err == nil && fi.Mode().IsRegular() {
		if !strings.ContainsRune(os.Args[0], filepath.Separator) {
			return "kinesis-ingest" // the demo was found on PATH, so is its neighbour
		}
		return shellQuote(beside)
	}
	return "kinesis-ingest"
}

// demoCommand is how to run this demo again: the path it was started by, or
// `go run ./cmd/kinesis-ingest-demo` under `go run` (whose binary is deleted
// when it exits).
func demoCommand() string {
	exe, err := os.Executable()
	if err == nil && underGoRun(exe) {
		return "go run ./cmd/kinesis-ingest-demo"
	}
	if !strings.ContainsRune(os.Args[0], filepath.Separator) {
		return os.Args[0] // found on PATH
	}
	return shellQuote(os.Args[0])
}

func underGoRun(exe string) bool {
	return strings.Contains(exe, string(filepath.Separator)+"go-build")
}

// shellQuote quotes s for sh when it holds anything but safe characters.
func shellQuote(s string) string {
	safe := func(r rune) bool {
		return r == '/' || r == '.' || r == '-' || r == '_' || r == ':' || r == '=' ||
			('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
	}
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !safe(r) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// demoConfigBody is the embedded config without its leading comment, which
// speaks of the variables the written copy no longer has.
func demoConfigBody() []byte {
	b := demoConfig
	for bytes.HasPrefix(b, []byte("#")) {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil
		}
		b = b[i+1:]
	}
	return b
}

// progress shows one status line on stderr: rewritten in place on a
// terminal, else a new line at most every 2 seconds (for logs and CI).
type progress struct {
	w    io.Writer
	tty  bool
	last time.Time
	open bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) line(s string) {
	p.done()
	fmt.Fprintln(p.w, s)
}

func (p *progress) update(s string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", s)
		p.open = true
		return
	}
	if time.Since(p.last) >= 2*time.Second {
		fmt.Fprintln(p.w, s)
		p.last = time.Now()
	}
}

func (p *progress) done() {
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}

// demoRecords makes n orders; every tenth is bad in one of several ways.
func demoRecords(n int) (data [][]byte, keys []string, bad int) {
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		ts := base.Add(time.Duration(i) * time.Second).Format(time.RFC3339)
		var rec string
		switch {
		case i%10 != 9:
			note := `null`
			if i%3 == 0 {
				note = `"gift wrap"`
			}
			rec = fmt.Sprintf(`{"id":%d,"amount":%d.%02d,"ts":%q,"note":%s}`, i, 10+i%90, i%100, ts, note)
		default:
			bad++
			switch (i / 10) % 5 {
			case 0:
				rec = fmt.Sprintf(`{"id":%d,"amount":12.5,"ts":%q`, i, ts) // truncated JSON
			case 1:
				rec = fmt.Sprintf(`{"id":%d,"ts":%q}`, i, ts) // amount missing
			case 2:
				rec = fmt.Sprintf(`{"id":%d,"amount":"12.50","ts":%q}`, i, ts) // amount is a string
			case 3:
				rec = fmt.Sprintf(`{"id":%d,"amount":1.5,"ts":"yesterday"}`, i) // not a datetime
			case 4:
				rec = fmt.Sprintf(`[%d, 12.5]`, i) // not an object
			}
		}
		data = append(data, []byte(rec))
		keys = append(keys, "order-"+strconv.Itoa(i))
	}
	return data, keys, bad
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmdDemo(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// flags and parseFlags are the commands' shared flag handling.
var flags, parseFlags = cli.Flags, cli.Parse
