// Command e2e is the end-to-end benchmark (`make bench`): kinesis-ingest
// against a bare KCL consumer, on the local emulators, printed as one Markdown
// table.
//
// It starts kinesis-mock and dynalite, creates a 4-shard stream, produces
// 20,000 JSON records of about 200 bytes once, and then runs, one after the
// other, each consumer as a child process from TRIM_HORIZON with its own lease
// table until it has consumed all of them:
//
//   - kinesis-ingest: the real binary (go build ./cmd/kinesis-ingest), `run`
//     with an 8-field dataset and the file sink;
//   - bare KCL: internal/tools/bench/barekcl, vmware-go-kcl-v2 with its default
//     DynamoDB checkpointer, counting records and checkpointing each batch;
//   - with -efo (default), kinesis-ingest again reading through enhanced
//     fan-out;
//   - with -lake (default), kinesis-ingest again with the s3 sink instead of
//     the file sink: Parquet objects (zstd, partitioned by date and hour) on
//     versitygw (internal/testenv/s3test, built by `make test-deps`), a row
//     counted when its object is stored (lake.go).
//
// With -rounds N each consumer does N throughput runs (alternating which goes
// first) and the table shows the medians. Both get the same consumer settings:
// shard sync 250ms (-shard-sync-interval; the KCL takes one lease per sync, so
// with the production 5s a 4-shard start would be mostly waiting), lease
// 10s/2s, idle 500ms after an empty read, 1,000 records per GetRecords
// (kinesis-ingest's default; -max-records sets another), lease stealing on.
//
// Measured, per consumer:
//
//   - records/s: records ÷ wall time from the process's start to the moment
//     the last record was seen (startup and lease taking included), and the
//     same from the first record seen to the last;
//   - CPU per 100k records: user+system time of the child process from its
//     rusage after it exited (startup and graceful shutdown included), and
//     the CPU spent between the first and the last record, sampled from
//     /proc/PID/stat (10 ms clock ticks);
//   - peak RSS: the child's rusage maxrss, and split, the highest RssAnon
//     (heap, stacks) and RssFile (the binary's pages, mapped from the page
//     cache) of /proc/PID/status sampled at every poll;
//   - latency, in a second run per consumer on a stream of its own: once the
//     consumer holds every lease, records are put at a steady rate (100/s for
//     15 s by default) and each one's time from its Kinesis arrival
//     (ApproximateArrivalTimestamp, written in the row as _arrival_time) to
//     being durable is taken. For kinesis-ingest: the rows files are polled
//     every 20 ms and a row's durable time is the first poll that sees it
//     (resolution 20 ms, so on average ~10 ms late; a row can also be seen
//     after its write and before its fsync returns, by at most the fsync's
//     duration); its own arrival→durable histogram
//     (kinesis_ingest_end_to_end_latency_seconds, observed once the batch's
//     rows and dead letters are fsynced) is scraped as a cross-check. For the
//     bare consumer there is no sink: the time is when ProcessRecords got the
//     record, printed by the consumer itself.
//
// Records seen is checked: exactly 20,000 rows and no dead letters for
// kinesis-ingest (nothing crashes, so at-least-once reads nothing twice).
//
// Run it with `go run ./internal/tools/bench/e2e` from the module root (it builds
// both binaries into a temporary directory). It is not a test: `go test ./...`
// does not run it.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/efoproxy"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/emulators"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
	"github.com/kinesis-ingest/kinesis-ingest/internal/tools/bench/procstat"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
)

type options struct {
	records     int
	shards      int
	latRate     int
	latSeconds  int
	poll        time.Duration
	timeout     time.Duration
	keep        bool
	skipLatency bool
	efo         bool
	lake        bool
	rounds      int
	shardSync   time.Duration
	maxRecords  int
	bin         string

	lakeMaxInterval time.Duration // the lake sink's max_interval
}

func main() {
	var o options
	flag.IntVar(&o.records, "records", 20000, "records produced for the throughput runs")
	flag.IntVar(&o.shards, "shards", 4, "shards of every stream")
	flag.IntVar(&o.latRate, "latency-rate", 100, "records per second put during the latency runs")
	flag.IntVar(&o.latSeconds, "latency-seconds", 15, "how long the latency runs put records")
	flag.DurationVar(&o.poll, "poll", 20*time.Millisecond, "how often the rows files are polled")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on a consumer run after this long")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (binaries, configs, rows, logs)")
	flag.BoolVar(&o.skipLatency, "skip-latency", false, "skip the latency runs")
	flag.BoolVar(&o.efo, "efo", true, "also run kinesis-ingest in enhanced fan-out mode (through internal/testenv/efoproxy) and print its table against polling")
	flag.BoolVar(&o.lake, "lake", true, "also run kinesis-ingest with the s3 sink (Parquet) on versitygw (internal/testenv/s3test; `make test-deps` builds it) and print its table against the file sink and the bare KCL")
	flag.DurationVar(&o.lakeMaxInterval, "lake-max-interval", time.Second, "the lake sink's max_interval: how long rows wait in its buffers for their object")
	flag.IntVar(&o.rounds, "rounds", 1, "throughput runs per consumer (the table shows medians)")
	flag.DurationVar(&o.shardSync, "shard-sync-interval", 250*time.Millisecond, "both consumers' shard sync interval: each takes one lease per sync")
	flag.StringVar(&o.bin, "bin", "", "run this kinesis-ingest binary instead of building ./cmd/kinesis-ingest (to compare two builds against the same bare consumer)")
	flag.IntVar(&o.maxRecords, "max-records", 1000, "both consumers' max_records per GetRecords (1..10000; kinesis-ingest's default is 1000)")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, o options) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "kinesis-ingest-e2e-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("work directory: %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	bins := map[string]string{"kinesis-ingest": "./cmd/kinesis-ingest", "barekcl": "./internal/tools/bench/barekcl"}
	for name, pkg := range bins {
		if name == "kinesis-ingest" && o.bin != "" {
			bins[name] = o.bin
			continue
		}
		out := filepath.Join(work, name)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %s: %w", pkg, err)
		}
		bins[name] = out
	}

	logf("starting kinesis-mock and dynalite")
	emu, err := emulators.StartPair(ctx)
	if err != nil {
		return err
	}
	defer emu.Stop()
	kin, ddb := emu.Kinesis, emu.Dynamo
	kc := testaws.Kinesis(kin.Endpoint)
	db := testaws.Dynamo(ddb.Endpoint)

	streams := map[string]string{"bench-orders": "", "bench-latency-ki": "", "bench-latency-bare": ""}
	for name := range streams {
		arn, err := testaws.CreateStreamCtx(ctx, kc, name, o.shards)
		if err != nil {
			return err
		}
		streams[name] = arn
	}
	data := records(0, o.records)
	var size int
	for _, d := range data {
		size += len(d)
	}
	logf("putting %d records (%d bytes on average) into bench-orders (%d shards)", len(data), size/len(data), o.shards)
	t0 := time.Now()
	if err := testaws.Put(ctx, kc, "bench-orders", data, nil); err != nil {
		return err
	}
	logf("put took %s", time.Since(t0).Round(time.Millisecond))

	env := []string{
		"AWS_ENDPOINT_URL_KINESIS=" + kin.Endpoint,
		"AWS_ENDPOINT_URL_DYNAMODB=" + ddb.Endpoint,
		"AWS_ACCESS_KEY_ID=" + testaws.Account,
		"AWS_SECRET_ACCESS_KEY=" + benchSecret,
		"AWS_REGION=" + testaws.Region,
	}
	b := &bench{o: o, work: work, bins: bins, env: env, kc: kc, db: db, streams: streams}
	if o.efo {
		// kinesis-mock omits the initial-response event the SDK needs on a
		// subscription; the test proxy inserts it (see its package doc).
		proxy, err := efoproxy.Start(kin.Endpoint)
		if err != nil {
			return err
		}
		defer proxy.Close()
		b.efoEnv = append(slices.Clone(env), "AWS_ENDPOINT_URL_KINESIS="+proxy.URL)
	}
	if o.lake {
		logf("starting versitygw")
		srv, err := startLake(ctx)
		if err != nil {
			return err
		}
		defer srv.Close()
		b.lakeEnv = append(slices.Clone(env), "AWS_ENDPOINT_URL_S3="+srv.Endpoint)
		b.lakeRoot = srv.BucketDir(lakeBucket)
	}
	// Rounds alternate which consumer goes first.
	results := map[string][]*result{}
	for round := range o.rounds {
		order := []string{"kinesis-ingest", "bare KCL"}
		if round%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		if o.efo {
			order = append(order, efoConsumer)
		}
		if o.lake {
			order = append(order, lakeConsumer)
		}
		for _, c := range order {
			r, err := b.throughput(ctx, c)
			if err != nil {
				return fmt.Errorf("%s throughput run: %w", c, err)
			}
			results[c] = append(results[c], r)
		}
	}
	lat := map[string]*result{"kinesis-ingest": {}, "bare KCL": {}}
	if !o.skipLatency {
		for _, c := range []string{"kinesis-ingest", "bare KCL"} {
			if err := b.latency(ctx, c, lat[c]); err != nil {
				return fmt.Errorf("%s latency run: %w", c, err)
			}
		}
	}
	printTable(os.Stdout, o, size/len(data), results["kinesis-ingest"], results["bare KCL"], lat["kinesis-ingest"], lat["bare KCL"])
	if o.efo {
		printEFOTable(os.Stdout, o, results["kinesis-ingest"], results[efoConsumer])
	}
	if o.lake {
		printLakeTable(os.Stdout, o, results[lakeConsumer], results["kinesis-ingest"], results["bare KCL"])
	}
	return nil
}

// benchSecret is the secret key every consumer (and versitygw) is given.
const benchSecret = "bench"

// efoConsumer is kinesis-ingest reading through enhanced fan-out.
const efoConsumer = "kinesis-ingest EFO"

// printEFOTable compares kinesis-ingest in enhanced fan-out mode with
// itself polling, on the same records in the same run.
func printEFOTable(w io.Writer, o options, polling, efo []*result) {
	med := func(rs []*result, f func(*result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return median(v)
	}
	fmt.Fprintf(w, "\n### Enhanced fan-out against polling: the same %d records, kinesis-ingest run with the file sink\n\n", o.records)
	fmt.Fprintf(w, "| | enhanced fan-out | polling | ratio |\n|---|---:|---:|---:|\n")
	row := func(name string, f func(*result) float64, format string) {
		a, b := med(efo, f), med(polling, f)
		fmt.Fprintf(w, "| %s | "+format+" | "+format+" | %.2f× |\n", name, a, b, a/b)
	}
	row("records/s, first record → last record", func(r *result) float64 { return float64(r.records) / r.last.Sub(r.first).Seconds() }, "%.0f")
	row("CPU-s per 100k records, whole process (rusage)", func(r *result) float64 { return r.cpuTotal.Seconds() * 100000 / float64(r.records) }, "%.2f")
	row("CPU-s per 100k records, first → last record (/proc, 10 ms ticks)", func(r *result) float64 {
		return (r.cpuLast - r.cpuFirst).Seconds() * 100000 / float64(r.records)
	}, "%.2f")
	row("peak RSS, MiB", func(r *result) float64 { return float64(r.maxRSS) / (1 << 20) }, "%.1f")
	fmt.Fprintf(w, "\nEFO runs through internal/testenv/efoproxy (it inserts the initial-response event kinesis-mock omits, parsing each event-stream message's length only); kinesis-mock pushes events at its own pace, so records/s compare the emulator's two read paths more than the consumers.\n")
}

// moduleRoot is the directory of the go.mod of this module, from the working
// directory up.
func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/kinesis-ingest/kinesis-ingest\n")) {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", errors.New("run from inside the kinesis-ingest module")
		}
		d = p
	}
}

// records makes n order records of about 200 bytes, 8 fields, ids from first.
func records(first, n int) [][]byte {
	notes := []string{"gift wrap please, and ring twice at the back door: the bell is broken", "leave it with the neighbour at number 12 if nobody is at home, thanks!", "", "fragile: glassware inside, handle with care and keep this side up"}
	countries := []string{"DE", "FR", "NL", "AT"}
	channels := []string{"web", "app", "store"}
	base := time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC)
	out := make([][]byte, n)
	for j := range n {
		i := first + j
		m := map[string]any{
			"id": 1_000_000 + i, "amount": float64(i%9000) + 0.25, "ts": base.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano),
			"country": countries[i%4], "sku": fmt.Sprintf("SKU-%06d-%s", i*7919%1_000_000, []string{"BLUE-XL", "RED-M", "GREEN-S"}[i%3]), "qty": 1 + i%5, "channel": channels[i%3],
		}
		m["note"] = nil
		if note := notes[i%4]; note != "" {
			m["note"] = note
		}
		out[j], _ = json.Marshal(m)
	}
	return out
}

const configTemplate = `
sources:
  - name: orders
    kinesis:
      stream_arn: %[1]s
      init_position: trim_horizon
      format: json
datasets:
  - name: orders
    source: orders
    timestamp: ts
    fields:
      - {name: id, type: int}
      - {name: amount, type: float, between: {min: 0}}
      - {name: ts, type: datetime}
      - {name: note, type: "optional[str]"}
      - {name: country, type: str, regex: "[A-Z]{2}"}
      - {name: sku, type: str}
      - {name: qty, type: int, between: {min: 1, max: 1000}}
      - {name: channel, type: str, oneof: [web, app, store]}
    sink: rows
sinks:
  - name: rows
    file: {path: %[2]s}
dead_letter:
  file: {path: %[3]s}
consumer:
  application: %[4]s
  worker_id: bench-1
  shard_sync_interval: %[6]s
  lease_duration: 10s
  lease_refresh: 2s
  idle_between_reads: 500ms
  max_records: %[7]d
  lease_stealing: true
metrics:
  listen: %[5]s
errors:
  listen: ""
log:
  level: info
`

type bench struct {
	o       options
	work    string
	bins    map[string]string
	env     []string
	efoEnv  []string // env with Kinesis through the EFO test proxy
	kc      *kinesis.Client
	db      *dynamodb.Client
	streams map[string]string
	runs    int

	// lakeEnv is env with S3 on versitygw, whose bucket directory is
	// lakeRoot.
	lakeEnv  []string
	lakeRoot string
}

// result is what one consumer's runs measured.
type result struct {
	records               int
	start, first, last    time.Time
	cpuFirst, cpuLast     time.Duration // /proc/PID/stat at the first and last record
	cpuTotal              time.Duration // rusage after exit
	maxRSS                int64         // bytes
	peakAnon, peakFile    int64         // bytes, /proc/PID/status sampled at every poll
	latencies             []time.Duration
	latencyWhat           string
	histP50, histP99      float64 // seconds, kinesis-ingest's own histogram; NaN if none
	latRecords, latPut    int
	latRSS                int64
	rows, deadLetters     int
	objects               int // the lake's objects
	latencyCPUPer100k     time.Duration
	latencyWindowDuration time.Duration
}

// child is a consumer process and what it reports.
type child struct {
	name    string
	cmd     *exec.Cmd
	start   time.Time
	rowsDir string // kinesis-ingest: poll these files
	dlDir   string
	metrics string // kinesis-ingest's /metrics address

	mu        sync.Mutex
	count     int
	first     time.Time
	cpuFirst  time.Duration
	latencies []time.Duration
	exited    chan struct{}
	// The highest RssAnon and RssFile seen while polling: maxrss does not
	// tell the process's own memory (heap, stacks) from its binary's pages,
	// which the kernel maps from the page cache and every worker on a node
	// shares.
	peakAnon, peakFile int64
	waitErr            error

	rows *file.Tail // kinesis-ingest: what was read of rowsDir
	lake *lakeTail  // kinesis-ingest lake: the objects counted
}

// startConsumer starts consumer c on stream, its own lease table, work dir.
func (b *bench) startConsumer(ctx context.Context, c, stream string, latency bool) (*child, error) {
	b.runs++
	dir := filepath.Join(b.work, fmt.Sprintf("run%d-%s", b.runs, strings.ReplaceAll(c, " ", "-")))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	app := fmt.Sprintf("bench-%d", b.runs)
	logFile, err := os.Create(filepath.Join(dir, "consumer.log"))
	if err != nil {
		return nil, err
	}
	ch := &child{name: c, exited: make(chan struct{})}
	var cmd *exec.Cmd
	switch c {
	case "kinesis-ingest", efoConsumer, lakeConsumer:
		ch.rowsDir, ch.dlDir = filepath.Join(dir, "rows"), filepath.Join(dir, "dead-letters")
		ch.rows = &file.Tail{Reader: file.Reader{Dir: ch.rowsDir}}
		if ch.metrics, err = procstat.FreeAddr(); err != nil {
			return nil, err
		}
		cfg := filepath.Join(dir, "config.yaml")
		body := fmt.Sprintf(configTemplate, b.streams[stream], ch.rowsDir, ch.dlDir, app, ch.metrics, b.o.shardSync, b.o.maxRecords)
		if c == efoConsumer {
			body = strings.Replace(body, "      format: json\n", "      format: json\n      efo: {consumer_name: "+app+"}\n", 1)
		}
		if c == lakeConsumer {
			// The rows go to the lake, under a prefix of this run's.
			if body, err = lakeSink(body, ch.rowsDir, app, b.o.lakeMaxInterval); err != nil {
				return nil, err
			}
			ch.lake = &lakeTail{dir: filepath.Join(b.lakeRoot, app)}
			ch.rowsDir, ch.rows = "", nil
		}
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			return nil, err
		}
		cmd = exec.Command(b.bins["kinesis-ingest"], "run", "--config", cfg)
		cmd.Stdout, cmd.Stderr = logFile, logFile
	default:
		args := []string{"-stream", stream, "-app", app, "-shard-sync-interval", b.o.shardSync.String(), "-lease-duration", "10s",
			"-lease-refresh", "2s", "-idle-between-reads", "500ms", "-max-records", strconv.Itoa(b.o.maxRecords), "-lease-stealing=true"}
		if latency {
			args = append(args, "-latency")
		}
		cmd = exec.Command(b.bins["barekcl"], args...)
		cmd.Stderr = logFile
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		go ch.readBare(out)
	}
	cmd.Env = append(os.Environ(), b.env...)
	switch c {
	case efoConsumer:
		cmd.Env = append(os.Environ(), b.efoEnv...)
	case lakeConsumer:
		cmd.Env = append(os.Environ(), b.lakeEnv...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	ch.cmd = cmd
	ch.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		ch.waitErr = cmd.Wait()
		logFile.Close()
		close(ch.exited)
	}()
	logf("%s started (pid %d), log %s", c, cmd.Process.Pid, logFile.Name())
	return ch, nil
}

// readBare reads barekcl's stdout: "n TOTAL" and "a ARRIVAL NOW" lines.
func (ch *child) readBare(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "n":
			n, _ := strconv.Atoi(f[1])
			ch.mu.Lock()
			if ch.count == 0 && n > 0 {
				ch.first, ch.cpuFirst = time.Now(), procstat.CPU(ch.cmd.Process.Pid)
			}
			ch.count = n
			ch.mu.Unlock()
		case len(f) == 3 && f[0] == "a":
			a, _ := strconv.ParseInt(f[1], 10, 64)
			n, _ := strconv.ParseInt(f[2], 10, 64)
			ch.mu.Lock()
			ch.latencies = append(ch.latencies, time.Duration(n-a))
			ch.mu.Unlock()
		}
	}
}

// pollRows reads what was appended to the rows files since the last poll:
// it counts complete lines and, with latency, takes each new row's arrival
// time to now.
func (ch *child) pollRows(latency bool) error {
	now := time.Now()
	n := 0
	var lats []time.Duration
	_, err := ch.rows.Lines(context.Background(), func(_ string, line []byte) error {
		n++
		if !latency {
			return nil
		}
		const key = `"_arrival_time":"`
		if k := bytes.Index(line, []byte(key)); k >= 0 {
			rest := line[k+len(key):]
			if q := bytes.IndexByte(rest, '"'); q > 0 {
				if at, err := time.Parse(time.RFC3339Nano, string(rest[:q])); err == nil {
					lats = append(lats, now.Sub(at))
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	ch.mu.Lock()
	if ch.count == 0 && n > 0 {
		ch.first, ch.cpuFirst = now, procstat.CPU(ch.cmd.Process.Pid)
	}
	ch.count += n
	ch.latencies = append(ch.latencies, lats...)
	ch.mu.Unlock()
	return nil
}

// pollLake counts the rows of the lake's objects stored since the last poll.
func (ch *child) pollLake() error {
	n, err := ch.lake.poll()
	if err != nil {
		return err
	}
	ch.mu.Lock()
	if ch.count == 0 && n > 0 {
		ch.first, ch.cpuFirst = time.Now(), procstat.CPU(ch.cmd.Process.Pid)
	}
	ch.count += n
	ch.mu.Unlock()
	return nil
}

// waitFor polls until the consumer has seen want records; it returns when the
// last one was seen and the CPU used by then.
func (ch *child) waitFor(ctx context.Context, want int, timeout time.Duration, poll time.Duration, latency bool) (time.Time, time.Duration, error) {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if anon, file := procstat.RSS(ch.cmd.Process.Pid); anon > 0 {
			ch.mu.Lock()
			ch.peakAnon, ch.peakFile = max(ch.peakAnon, anon), max(ch.peakFile, file)
			ch.mu.Unlock()
		}
		if ch.rowsDir != "" {
			if err := ch.pollRows(latency); err != nil {
				return time.Time{}, 0, err
			}
		}
		if ch.lake != nil {
			if err := ch.pollLake(); err != nil {
				return time.Time{}, 0, err
			}
		}
		ch.mu.Lock()
		n := ch.count
		ch.mu.Unlock()
		if n >= want {
			return time.Now(), procstat.CPU(ch.cmd.Process.Pid), nil
		}
		select {
		case <-ch.exited:
			return time.Time{}, 0, fmt.Errorf("%s exited (%v) after %d of %d records", ch.name, ch.waitErr, n, want)
		case <-ctx.Done():
			return time.Time{}, 0, ctx.Err()
		case <-t.C:
		}
		if time.Now().After(deadline) {
			return time.Time{}, 0, fmt.Errorf("%s: %d of %d records after %s", ch.name, n, want, timeout)
		}
	}
}

// stop sends SIGTERM and waits for the exit; it returns the child's rusage.
func (ch *child) stop() (*syscall.Rusage, error) {
	_ = ch.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ch.exited:
	case <-time.After(90 * time.Second):
		_ = ch.cmd.Process.Kill()
		<-ch.exited
		return nil, fmt.Errorf("%s did not stop within 90s of SIGTERM; killed", ch.name)
	}
	ru, _ := ch.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if ru == nil {
		return nil, errors.New("no rusage")
	}
	return ru, nil
}

func rusageCPU(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (b *bench) throughput(ctx context.Context, c string) (*result, error) {
	logf("%s: consuming %d records of bench-orders", c, b.o.records)
	ch, err := b.startConsumer(ctx, c, "bench-orders", false)
	if err != nil {
		return nil, err
	}
	last, cpuLast, err := ch.waitFor(ctx, b.o.records, b.o.timeout, b.o.poll, false)
	if err != nil {
		_, _ = ch.stop()
		return nil, err
	}
	ru, err := ch.stop()
	if err != nil {
		return nil, err
	}
	r := &result{records: b.o.records, start: ch.start, first: ch.first, last: last, cpuFirst: ch.cpuFirst, cpuLast: cpuLast,
		cpuTotal: rusageCPU(ru), maxRSS: ru.Maxrss * 1024, histP50: math.NaN(), histP99: math.NaN()}
	ch.mu.Lock()
	r.peakAnon, r.peakFile = ch.peakAnon, ch.peakFile
	ch.mu.Unlock()
	switch c {
	case lakeConsumer:
		if err := ch.pollLake(); err != nil {
			return nil, err
		}
		r.rows, r.objects = ch.count, len(ch.lake.seen)
		r.deadLetters = countLines(ch.dlDir)
		if r.rows != b.o.records || r.deadLetters != 0 {
			return nil, fmt.Errorf("kinesis-ingest wrote %d rows to the lake and %d dead letters, want %d and 0", r.rows, r.deadLetters, b.o.records)
		}
	case "kinesis-ingest", efoConsumer:
		_ = ch.pollRows(false)
		r.rows = ch.count
		r.deadLetters = countLines(ch.dlDir)
		if r.rows != b.o.records || r.deadLetters != 0 {
			return nil, fmt.Errorf("kinesis-ingest wrote %d rows and %d dead letters, want %d and 0", r.rows, r.deadLetters, b.o.records)
		}
	default:
		r.rows = ch.count
	}
	logf("%s: %d records in %s (first after %s), CPU %s, max RSS %d MiB", c, r.rows, last.Sub(ch.start).Round(time.Millisecond),
		ch.first.Sub(ch.start).Round(time.Millisecond), r.cpuTotal.Round(time.Millisecond), r.maxRSS>>20)
	return r, nil
}

// countLines counts the complete lines of the file sink's files in dir.
func countLines(dir string) int {
	n := 0
	_, _ = file.Reader{Dir: dir}.Lines(context.Background(), func(string, []byte) error { n++; return nil })
	return n
}

// latency runs consumer c on a stream of its own: once it holds every lease,
// records are put at a steady rate, and each one's arrival→durable time is
// taken.
func (b *bench) latency(ctx context.Context, c string, r *result) error {
	stream := "bench-latency-ki"
	if c != "kinesis-ingest" {
		stream = "bench-latency-bare"
	}
	ch, err := b.startConsumer(ctx, c, stream, true)
	if err != nil {
		return err
	}
	defer func() {
		if ch.cmd.ProcessState == nil {
			_, _ = ch.stop()
		}
	}()
	if err := b.waitLeases(ctx, fmt.Sprintf("bench-%d", b.runs), ch); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // let every shard's first empty reads pass
	total := b.o.latRate * b.o.latSeconds
	logf("%s: holds all %d leases; putting %d records/s for %ds", c, b.o.shards, b.o.latRate, b.o.latSeconds)
	data := records(b.o.records, total)
	const tick = 100 * time.Millisecond
	per := max(1, b.o.latRate/int(time.Second/tick))
	t := time.NewTicker(tick)
	cpu0 := procstat.CPU(ch.cmd.Process.Pid)
	t0 := time.Now()
	var putErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; i += per {
			<-t.C
			if err := testaws.Put(ctx, b.kc, stream, data[i:min(i+per, total)], nil); err != nil {
				putErr = err
				return
			}
		}
	}()
	last, cpu1, err := ch.waitFor(ctx, total, b.o.timeout, b.o.poll, true)
	t.Stop()
	<-done
	if putErr != nil {
		return putErr
	}
	if err != nil {
		return err
	}
	r.latencyWindowDuration = last.Sub(t0)
	r.latencyCPUPer100k = (cpu1 - cpu0) * time.Duration(100000) / time.Duration(total)
	if ch.metrics != "" {
		r.histP50, r.histP99 = scrapeQuantiles(ch.metrics, "kinesis_ingest_end_to_end_latency_seconds")
	}
	ru, err := ch.stop()
	if err != nil {
		return err
	}
	ch.mu.Lock()
	r.latencies = append([]time.Duration(nil), ch.latencies...)
	ch.mu.Unlock()
	r.latRecords, r.latPut, r.latRSS = len(r.latencies), total, ru.Maxrss*1024
	r.latencyWhat = "arrival → row seen in the file (20 ms polls)"
	if c != "kinesis-ingest" {
		r.latencyWhat = "arrival → ProcessRecords"
	}
	p50, p99 := quantile(r.latencies, 0.50), quantile(r.latencies, 0.99)
	logf("%s: latency p50 %s p99 %s over %d records", c, p50.Round(time.Millisecond), p99.Round(time.Millisecond), len(r.latencies))
	return nil
}

// waitLeases waits until every shard's lease in table is held.
func (b *bench) waitLeases(ctx context.Context, table string, ch *child) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		out, err := b.db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table)})
		if err == nil {
			held := 0
			for _, item := range out.Items {
				if v, ok := item["AssignedTo"].(*ddbtypes.AttributeValueMemberS); ok && v.Value != "" {
					held++
				}
			}
			if held >= b.o.shards {
				return nil
			}
		}
		select {
		case <-ch.exited:
			return fmt.Errorf("%s exited (%v) before taking its leases", ch.name, ch.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: not every lease of %s taken after 2 minutes", ch.name, table)
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// scrapeQuantiles reads a Prometheus histogram (summed over its labels) from
// addr's /metrics and estimates p50 and p99 by linear interpolation within
// buckets, as histogram_quantile does.
func scrapeQuantiles(addr, name string) (float64, float64) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return math.NaN(), math.NaN()
	}
	defer resp.Body.Close()
	buckets := map[float64]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"_bucket{") {
			continue
		}
		i := strings.Index(line, `le="`)
		j := strings.Index(line[i+4:], `"`)
		le, err := strconv.ParseFloat(line[i+4:i+4+j], 64)
		if err != nil {
			continue
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		buckets[le] += v
	}
	les := make([]float64, 0, len(buckets))
	for le := range buckets {
		les = append(les, le)
	}
	slices.Sort(les)
	q := func(q float64) float64 {
		if len(les) == 0 || buckets[les[len(les)-1]] == 0 {
			return math.NaN()
		}
		total := buckets[les[len(les)-1]]
		rank := q * total
		prevLe, prevCount := 0.0, 0.0
		for _, le := range les {
			c := buckets[le]
			if c >= rank {
				if math.IsInf(le, 1) {
					return prevLe
				}
				return prevLe + (le-prevLe)*(rank-prevCount)/(c-prevCount)
			}
			prevLe, prevCount = le, c
		}
		return math.NaN()
	}
	return q(0.5), q(0.99)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printTable(w io.Writer, o options, avgSize int, ki, bare []*result, kiLat, bareLat *result) {
	med := func(rs []*result, f func(*result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return median(v)
	}
	rate := func(r *result) float64 { return float64(r.records) / r.last.Sub(r.start).Seconds() }
	rateFL := func(r *result) float64 { return float64(r.records) / r.last.Sub(r.first).Seconds() }
	firstMS := func(r *result) float64 { return float64(r.first.Sub(r.start).Milliseconds()) }
	cpuTotal := func(r *result) float64 { return r.cpuTotal.Seconds() * 100000 / float64(r.records) }
	cpuFlow := func(r *result) float64 { return (r.cpuLast - r.cpuFirst).Seconds() * 100000 / float64(r.records) }
	rss := func(r *result) float64 { return float64(r.maxRSS) / (1 << 20) }
	ms := func(d time.Duration) string {
		return strconv.FormatInt(d.Round(time.Millisecond).Milliseconds(), 10) + " ms"
	}
	runs := ""
	if len(ki) > 1 {
		runs = fmt.Sprintf("; throughput rows: median of %d runs each", len(ki))
	}
	fmt.Fprintf(w, "\n### End to end: %d JSON records (~%d bytes, 8 fields) from a %d-shard stream on kinesis-mock, one worker%s\n\n", o.records, avgSize, o.shards, runs)
	fmt.Fprintf(w, "| | kinesis-ingest run (file sink) | bare KCL (counts only) | ratio |\n|---|---:|---:|---:|\n")
	row := func(name string, f func(*result) float64, format string) {
		a, b := med(ki, f), med(bare, f)
		fmt.Fprintf(w, "| %s | "+format+" | "+format+" | %.2f× |\n", name, a, b, a/b)
	}
	row("records/s, process start → last record", rate, "%.0f")
	row("records/s, first record → last record", rateFL, "%.0f")
	row("time to first record, ms", firstMS, "%.0f")
	row("CPU-s per 100k records, whole process (rusage)", cpuTotal, "%.2f")
	row("CPU-s per 100k records, first → last record (/proc, 10 ms ticks)", cpuFlow, "%.2f")
	// The whole process split at the first and the last record: what
	// startup (checks, leases) and shutdown (drain, release) cost apart
	// from the records.
	row("CPU ms, start → first record (/proc, 10 ms ticks)", func(r *result) float64 { return float64(r.cpuFirst.Milliseconds()) }, "%.0f")
	row("CPU ms, last record → exit after SIGTERM", func(r *result) float64 { return float64((r.cpuTotal - r.cpuLast).Milliseconds()) }, "%.0f")
	row("peak RSS, MiB", rss, "%.1f")
	row("of which anonymous (heap, stacks; /proc status at each poll), MiB", func(r *result) float64 { return float64(r.peakAnon) / (1 << 20) }, "%.1f")
	row("of which file-backed (the binary's mapped pages), MiB", func(r *result) float64 { return float64(r.peakFile) / (1 << 20) }, "%.1f")
	if kiLat.latRecords > 0 && bareLat.latRecords > 0 {
		fmt.Fprintf(w, "| latency p50, %d records put at %d/s | %s | %s | |\n", kiLat.latPut, o.latRate, ms(quantile(kiLat.latencies, 0.5)), ms(quantile(bareLat.latencies, 0.5)))
		fmt.Fprintf(w, "| latency p99 | %s | %s | |\n", ms(quantile(kiLat.latencies, 0.99)), ms(quantile(bareLat.latencies, 0.99)))
		fmt.Fprintf(w, "| latency max | %s | %s | |\n", ms(slices.Max(kiLat.latencies)), ms(slices.Max(bareLat.latencies)))
		if !math.IsNaN(kiLat.histP50) {
			fmt.Fprintf(w, "| latency p50 / p99 from kinesis-ingest's own histogram (bucket-interpolated) | %.0f / %.0f ms | | |\n", kiLat.histP50*1000, kiLat.histP99*1000)
		}
		a, b := kiLat.latencyCPUPer100k.Seconds(), bareLat.latencyCPUPer100k.Seconds()
		fmt.Fprintf(w, "| CPU-s per 100k records while tailing at %d/s (mostly idle polling) | %.2f | %.2f | %.2f× |\n", o.latRate, a, b, a/b)
		fmt.Fprintf(w, "\nLatency: kinesis-ingest %s; bare KCL %s.", kiLat.latencyWhat, bareLat.latencyWhat)
	}
	fmt.Fprintf(w, " Records/s from process start include startup and taking the %d leases (kinesis-ingest: in its first lease pass, after announcing itself; the bare KCL: one per %s shard sync). Both consumers: max_records %d.\n", o.shards, o.shardSync, o.maxRecords)
}
