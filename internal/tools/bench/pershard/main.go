// Command pershard measures what each shard a worker holds costs it, idle
// (`make bench`): memory, goroutines, metric series, GetRecords calls and
// CPU, as a fixed part plus a part per shard.
//
// It starts kinesis-mock and dynalite, and for each shard count of -shards
// creates an empty stream, runs the real binary (go build ./cmd/kinesis-ingest,
// `run` with the default consumer settings and the file sink) until its
// /metrics shows every lease held, lets it settle, and then samples a window:
//
//   - RssAnon (heap and stacks, /proc/PID/status) and the Go heap in use
//     (go_memstats_heap_inuse_bytes) at the window's end;
//   - goroutines (go_goroutines) at the window's end;
//   - metric series: the /metrics lines that are samples, and their bytes;
//   - GetRecords calls per second (kinesis_ingest_get_records_seconds_count)
//     and lease renewals per second (lease_events_total{event="renewed"})
//     over the window;
//   - CPU per second (process_cpu_seconds_total) over the window.
//
// The table gives each count's figures and the line through the smallest and
// the largest: cost ≈ fixed + per shard × S. The coordination calls (the lease
// table's reads and writes, ListShards) are BenchmarkCoordination's.
//
// Run it with `go run ./internal/tools/bench/pershard` from the module root.
// It is not a test: `go test ./...` does not run it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/emulators"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
	"github.com/kinesis-ingest/kinesis-ingest/internal/tools/bench/procstat"
)

func main() {
	var shardList string
	var settle, window, timeout time.Duration
	flag.StringVar(&shardList, "shards", "8,64", "comma-separated shard counts, one idle stream and one worker each")
	flag.DurationVar(&settle, "settle", 10*time.Second, "wait after every lease is held, before the window")
	flag.DurationVar(&window, "window", 20*time.Second, "how long the rates are measured")
	flag.DurationVar(&timeout, "timeout", 3*time.Minute, "give up on a worker that does not hold every lease by then")
	flag.Parse()
	var counts []int
	for _, f := range strings.Split(shardList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "pershard: -shards %q: want positive integers\n", shardList)
			os.Exit(2)
		}
		counts = append(counts, n)
	}
	if err := run(context.Background(), counts, settle, window, timeout); err != nil {
		fmt.Fprintln(os.Stderr, "pershard:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// sample is what one worker measured.
type sample struct {
	shards        int
	rssAnon, heap float64 // bytes
	goroutines    float64
	series, bytes float64 // /metrics sample lines and body bytes
	getRecords    float64 // per second
	renewals      float64 // per second
	cpu           float64 // CPU-seconds per second
}

const configTemplate = `sources:
  - name: idle
    kinesis:
      stream_arn: %s
      init_position: trim_horizon
      format: json
datasets:
  - name: idle
    source: idle
    timestamp: ts
    fields:
      - {name: id, type: int}
      - {name: ts, type: datetime}
    sink: rows
sinks:
  - name: rows
    file: {path: %s}
dead_letter:
  file: {path: %s}
consumer:
  application: %s
  worker_id: %s
metrics:
  listen: %s
errors:
  listen: ""
`

func run(ctx context.Context, counts []int, settle, window, timeout time.Duration) (err error) {
	work, err := os.MkdirTemp("", "kinesis-ingest-pershard-")
	if err != nil {
		return err
	}
	defer func() {
		if err == nil {
			os.RemoveAll(work)
		} else {
			logf("kept %s (configs and worker logs)", work)
		}
	}()
	bin := filepath.Join(work, "kinesis-ingest")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kinesis-ingest")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/kinesis-ingest (run from the module root): %w", err)
	}
	logf("starting kinesis-mock and dynalite")
	emu, err := emulators.StartPair(ctx)
	if err != nil {
		return err
	}
	defer emu.Stop()
	kc := testaws.Kinesis(emu.Kinesis.Endpoint)
	env := append(os.Environ(),
		"AWS_ENDPOINT_URL_KINESIS="+emu.Kinesis.Endpoint,
		"AWS_ENDPOINT_URL_DYNAMODB="+emu.Dynamo.Endpoint,
		"AWS_ACCESS_KEY_ID="+testaws.Account,
		"AWS_SECRET_ACCESS_KEY=bench",
		"AWS_REGION="+testaws.Region,
	)
	var samples []sample
	for _, s := range counts {
		name := fmt.Sprintf("idle-%d", s)
		arn, err := testaws.CreateStreamCtx(ctx, kc, name, s)
		if err != nil {
			return err
		}
		sm, err := measure(ctx, bin, env, filepath.Join(work, name), arn, name, s, settle, window, timeout)
		if err != nil {
			return fmt.Errorf("%d shards: %w", s, err)
		}
		samples = append(samples, sm)
	}
	printTable(os.Stdout, samples, window)
	return nil
}

func measure(ctx context.Context, bin string, env []string, dir, arn, app string, shards int, settle, window, timeout time.Duration) (sample, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return sample{}, err
	}
	addr, err := procstat.FreeAddr()
	if err != nil {
		return sample{}, err
	}
	cfg := filepath.Join(dir, "config.yaml")
	body := fmt.Sprintf(configTemplate, arn, filepath.Join(dir, "rows"), filepath.Join(dir, "dead-letters"), app, app, addr)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		return sample{}, err
	}
	logFile, err := os.Create(filepath.Join(dir, "worker.log"))
	if err != nil {
		return sample{}, err
	}
	defer logFile.Close()
	cmd := exec.CommandContext(ctx, bin, "run", "--config", cfg)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	logf("%d shards: waiting for the worker to hold every lease", shards)
	t0 := time.Now()
	for {
		m, _, err := procstat.Scrape(addr)
		if err == nil && m[`kinesis_ingest_leases_held{source="idle"}`] == float64(shards) {
			break
		}
		select {
		case <-exited:
			return sample{}, fmt.Errorf("the worker exited; its log: %s", logFile.Name())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Since(t0) > timeout {
			return sample{}, fmt.Errorf("the worker does not hold %d leases after %s (log: %s)", shards, timeout, logFile.Name())
		}
	}
	logf("%d shards: every lease held after %s; settling %s, then measuring %s", shards, time.Since(t0).Round(time.Millisecond), settle, window)
	time.Sleep(settle)
	before, _, err := procstat.Scrape(addr)
	if err != nil {
		return sample{}, err
	}
	start := time.Now()
	time.Sleep(window)
	after, size, err := procstat.Scrape(addr)
	if err != nil {
		return sample{}, err
	}
	secs := time.Since(start).Seconds()
	anon, _ := procstat.RSS(cmd.Process.Pid)
	rate := func(name string) float64 { return (after[name] - before[name]) / secs }
	sm := sample{
		shards:     shards,
		rssAnon:    float64(anon),
		heap:       after["go_memstats_heap_inuse_bytes"],
		goroutines: after["go_goroutines"],
		series:     float64(len(after)),
		bytes:      float64(size),
		getRecords: rate(`kinesis_ingest_get_records_seconds_count{source="idle"}`),
		renewals:   rate(`kinesis_ingest_lease_events_total{event="renewed",source="idle"}`),
		cpu:        rate("process_cpu_seconds_total"),
	}
	if sm.getRecords == 0 {
		return sample{}, errors.New("no GetRecords counted in the window: the metric's name changed, or the worker reads nothing")
	}
	return sm, nil
}

func printTable(w io.Writer, s []sample, window time.Duration) {
	lo, hi := s[0], s[len(s)-1]
	fmt.Fprintf(w, "\n### Per-shard cost of an idle worker: default consumer settings, one worker, %s window\n\n", window)
	fmt.Fprintf(w, "| |")
	for _, x := range s {
		fmt.Fprintf(w, " %d shards |", x.shards)
	}
	fmt.Fprintf(w, " fixed | per shard |\n|---|")
	for range s {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintf(w, "---:|---:|\n")
	row := func(name string, f func(sample) float64, scale float64, format string) {
		fmt.Fprintf(w, "| %s |", name)
		for _, x := range s {
			fmt.Fprintf(w, " "+format+" |", f(x)/scale)
		}
		per := (f(hi) - f(lo)) / float64(hi.shards-lo.shards)
		if hi.shards == lo.shards {
			per = 0
		}
		fixed := f(lo) - per*float64(lo.shards)
		fmt.Fprintf(w, " "+format+" | "+format+" |\n", fixed/scale, per/scale)
	}
	row("anonymous RSS, MiB", func(x sample) float64 { return x.rssAnon }, 1<<20, "%.2f")
	row("Go heap in use, MiB", func(x sample) float64 { return x.heap }, 1<<20, "%.2f")
	row("goroutines", func(x sample) float64 { return x.goroutines }, 1, "%.1f")
	row("metric series (sample lines)", func(x sample) float64 { return x.series }, 1, "%.1f")
	row("/metrics body, KiB", func(x sample) float64 { return x.bytes }, 1<<10, "%.2f")
	row("GetRecords calls/s", func(x sample) float64 { return x.getRecords }, 1, "%.2f")
	row("lease renewals/s", func(x sample) float64 { return x.renewals }, 1, "%.3f")
	row("CPU, milli-CPU-s per s", func(x sample) float64 { return x.cpu }, 1e-3, "%.2f")
	fmt.Fprintf(w, "\nFixed and per shard: the line through the %d- and %d-shard figures. GetRecords per idle shard is 1 / (idle_between_reads + one call's round trip); renewals are S / lease_refresh.\n", lo.shards, hi.shards)
}
