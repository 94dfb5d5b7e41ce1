package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/emulators"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
	"github.com/kinesis-ingest/kinesis-ingest/internal/tools/bench/procstat"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
)

// workerSample is one worker over the window.
type workerSample struct {
	id                               string
	leases                           int
	cpu                              float64 // CPU-seconds per second
	anon, file                       int64   // bytes at the window's end
	getRecords, batches, checkpoints float64 // per second
	getRecordsSecs                   float64 // seconds spent in GetRecords per second
}

// result is what the run measured; zero fields were not reached.
type result struct {
	o       options
	failure error

	createStream                time.Duration
	leased, heldAll, balanced   time.Duration // from the workers' start
	balancedLo, balancedHi      int
	windowDone                  bool
	secs                        float64 // the window's length
	samples                     []workerSample
	kinesisCPU, dynamoCPU, cpu  float64 // CPU-seconds per second: the emulators, this process
	putRate                     float64 // records acknowledged per second in the window
	ddb, kin                    counts  // the proxies' counts over the window
	scanUnits                   float64 // U: one eventually consistent scan of the table
	killed                      string
	killedHeld                  int
	takeoverTable, takeoverHeld time.Duration // from the kill
	afterLo, afterHi            int
	counted                     bool
	acked, failedPuts           int
	drain                       time.Duration // from the producer's stop
	distinct, lost, dupes       int
	unacked, letters            int
}

func run(ctx context.Context, o options, r *result) (err error) {
	work, err := os.MkdirTemp("", "kinesis-ingest-wide-")
	if err != nil {
		return err
	}
	defer func() {
		if err == nil {
			os.RemoveAll(work)
		} else {
			logf("kept %s (configs, worker logs, rows)", work)
		}
	}()
	bin := filepath.Join(work, "kinesis-ingest")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kinesis-ingest")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return &phaseError{"build", fmt.Errorf("go build ./cmd/kinesis-ingest (run from the module root): %w", err)}
	}
	logf("starting kinesis-mock and dynalite")
	emu, err := emulators.StartPair(ctx)
	if err != nil {
		return &phaseError{"emulators", err}
	}
	defer emu.Stop()
	dp, err := startProxy(emu.Dynamo.Endpoint, true)
	if err != nil {
		return &phaseError{"proxies", err}
	}
	defer dp.close()
	kp, err := startProxy(emu.Kinesis.Endpoint, false)
	if err != nil {
		return &phaseError{"proxies", err}
	}
	defer kp.close()

	kc := testaws.Kinesis(emu.Kinesis.Endpoint)
	const stream = "wide"
	logf("creating a stream of %d shards", o.shards)
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	t := time.Now()
	arn, err := testaws.CreateStreamCtx(cctx, kc, stream, o.shards)
	var prod *producer
	if err == nil {
		r.createStream = time.Since(t)
		prod, err = newProducer(cctx, kc, stream)
	}
	cancel()
	if err != nil {
		return &phaseError{"create stream", fmt.Errorf("%w (kinesis-mock log tail: %s)", err, emu.Kinesis.LogTail(512))}
	}
	if len(prod.keys) != o.shards {
		return &phaseError{"create stream", fmt.Errorf("ListShards lists %d shards, want %d", len(prod.keys), o.shards)}
	}
	logf("stream ACTIVE after %s", r.createStream.Round(time.Millisecond))

	table, err := leases.New(leases.Config{Client: testaws.Dynamo(emu.Dynamo.Endpoint), Table: app, WorkerID: "wide-reader", LeaseDuration: config.DefaultLeaseDuration})
	if err != nil {
		return err
	}
	env := append(os.Environ(),
		"AWS_ENDPOINT_URL_KINESIS="+kp.URL,
		"AWS_ENDPOINT_URL_DYNAMODB="+dp.URL,
		"AWS_ACCESS_KEY_ID="+testaws.Account,
		"AWS_SECRET_ACCESS_KEY=bench",
		"AWS_REGION="+testaws.Region,
	)
	rows, letters := filepath.Join(work, "rows"), filepath.Join(work, "dead-letters")
	var ws []*worker
	defer func() { // on the way out after a failure; a clean run stopped them already
		for _, w := range ws {
			if w.alive() {
				_ = w.cmd.Process.Kill()
				<-w.exited
			}
		}
	}()
	logf("starting %d workers", o.workers)
	t0 := time.Now()
	for i := 1; i <= o.workers; i++ {
		w, err := startWorker(bin, env, work, arn, rows, letters, fmt.Sprintf("w%d", i))
		if err != nil {
			return &phaseError{"start workers", err}
		}
		ws = append(ws, w)
	}

	// 1. Leases.
	S := o.shards
	var lastErr error
	leasedIn := func(want func(own map[string]int) bool) func() (bool, error) {
		return func() (bool, error) {
			if _, err := live(ws); err != nil {
				return false, err
			}
			own, err := owners(ctx, table)
			if err != nil {
				lastErr = err // dynalite too busy to answer: not an answer yet
				return false, nil
			}
			return want(own), nil
		}
	}
	r.leased, err = waitUntil(ctx, t0, o.timeout, 500*time.Millisecond, "every shard leased in the lease table", leasedIn(func(own map[string]int) bool {
		n := 0
		for owner, c := range own {
			if owner != "" {
				n += c
			}
		}
		return n == S
	}))
	if err != nil {
		return &phaseError{"leases", errors.Join(err, lastErr)}
	}
	logf("every shard leased after %s", r.leased.Round(time.Millisecond))
	heldBy := func(ws []*worker, want func(h map[string]int) bool) func() (bool, error) {
		return func() (bool, error) {
			lw, err := live(ws)
			if err != nil {
				return false, err
			}
			h, _ := held(lw)
			return h != nil && want(h), nil
		}
	}
	sum := func(h map[string]int) int {
		n := 0
		for _, v := range h {
			n += v
		}
		return n
	}
	r.heldAll, err = waitUntil(ctx, t0, o.timeout, 500*time.Millisecond, "every lease held by a running consumer (/metrics)", heldBy(ws, func(h map[string]int) bool { return sum(h) == S }))
	if err != nil {
		return &phaseError{"leases", err}
	}
	floor, ceil := S/o.workers, (S+o.workers-1)/o.workers
	var last map[string]int
	r.balanced, err = waitUntil(ctx, t0, o.timeout, 500*time.Millisecond, fmt.Sprintf("every worker holding its share (%d or %d)", floor, ceil), heldBy(ws, func(h map[string]int) bool {
		last = h
		lo, hi := spread(ws, h)
		return sum(h) == S && lo >= floor && hi <= ceil
	}))
	r.balancedLo, r.balancedHi = spread(ws, last)
	if err != nil {
		return &phaseError{"balance", fmt.Errorf("%w; last seen %v", err, last)}
	}
	logf("every lease held after %s, balanced (%d..%d) after %s", r.heldAll.Round(time.Millisecond), r.balancedLo, r.balancedHi, r.balanced.Round(time.Millisecond))

	// 2. Records into every shard; the window.
	halt := make(chan struct{})
	var pwg sync.WaitGroup
	pwg.Go(func() { prod.run(ctx, halt, time.Duration(float64(time.Second)/o.rate)) })
	stopProducer := sync.OnceFunc(func() { close(halt); pwg.Wait() })
	defer stopProducer()
	tail := &file.Tail{Reader: file.Reader{Dir: rows}}
	seen := map[int64]int{}
	readRows := func() error {
		_, err := tail.Lines(ctx, func(f string, line []byte) error {
			var row struct{ ID *int64 }
			if err := json.Unmarshal(line, &row); err != nil || row.ID == nil {
				return fmt.Errorf("%s: a line without an id: %q", f, line)
			}
			seen[*row.ID]++
			return nil
		})
		return err
	}
	if _, err := waitUntil(ctx, time.Now(), o.timeout, 500*time.Millisecond, "rows arriving in the file sinks", func() (bool, error) {
		if _, err := live(ws); err != nil {
			return false, err
		}
		return len(seen) > 0, readRows()
	}); err != nil {
		return &phaseError{"records", err}
	}
	logf("rows arriving; settling %s, then measuring %s", o.settle, o.window)
	if err := sleep(ctx, o.settle); err != nil {
		return &phaseError{"settle", err}
	}
	if err := r.measure(ctx, ws, dp, kp, prod, emu.Dynamo.Endpoint); err != nil {
		return &phaseError{"window", err}
	}

	// 3. kill -9 and take-over.
	victim := ws[len(ws)-1]
	if h, _ := held(ws); h != nil {
		r.killedHeld = h[victim.id]
	}
	r.killed = victim.id
	logf("kill -9 %s (holding %d)", victim.id, r.killedHeld)
	tk := time.Now()
	victim.kill()
	survivors, _ := live(ws)
	r.takeoverTable, err = waitUntil(ctx, tk, o.timeout, 500*time.Millisecond, "the killed worker's shards leased by the survivors (lease table)", leasedIn(func(own map[string]int) bool {
		n := 0
		for _, w := range survivors {
			n += own[w.id]
		}
		return n == S
	}))
	if err != nil {
		return &phaseError{"take-over", errors.Join(err, lastErr)}
	}
	r.takeoverHeld, err = waitUntil(ctx, tk, o.timeout, 500*time.Millisecond, "every lease held by a survivor's consumer (/metrics)", heldBy(survivors, func(h map[string]int) bool { last = h; return sum(h) == S }))
	if err != nil {
		return &phaseError{"take-over", err}
	}
	r.afterLo, r.afterHi = spread(survivors, last)
	logf("taken over: lease table after %s, /metrics after %s (%d..%d each)", r.takeoverTable.Round(time.Millisecond), r.takeoverHeld.Round(time.Millisecond), r.afterLo, r.afterHi)

	// Drain, stop, count.
	stopProducer()
	r.acked, r.failedPuts = prod.ackedCount(), prod.failed
	logf("producer stopped: %d records acknowledged; draining", r.acked)
	missing := func() int {
		n := 0
		for id := range prod.acked {
			if seen[id] == 0 {
				n++
			}
		}
		return n
	}
	r.drain, err = waitUntil(ctx, time.Now(), o.timeout, time.Second, "every acknowledged record in the file sinks", func() (bool, error) {
		if _, err := live(ws); err != nil {
			return false, err
		}
		if err := readRows(); err != nil {
			return false, err
		}
		return missing() == 0, nil
	})
	if err != nil {
		return &phaseError{"drain", fmt.Errorf("%w: %d of %d records missing", err, missing(), r.acked)}
	}
	var stopErrs []error
	for _, w := range survivors {
		stopErrs = append(stopErrs, w.stop(60*time.Second))
	}
	if err := readRows(); err != nil {
		return &phaseError{"count", err}
	}
	for id, n := range seen {
		if !prod.acked[id] {
			r.unacked++
		}
		r.dupes += n - 1
	}
	r.distinct, r.lost = len(seen), missing()
	if _, err := (file.Reader{Dir: letters}).Lines(ctx, func(string, []byte) error { r.letters++; return nil }); err != nil {
		return &phaseError{"count", err}
	}
	r.counted = true
	logf("counted: %d distinct ids, %d lost, %d duplicates, %d dead letters", r.distinct, r.lost, r.dupes, r.letters)
	if err := errors.Join(stopErrs...); err != nil {
		return &phaseError{"stop", err}
	}
	if r.lost > 0 || r.letters > 0 {
		return &phaseError{"count", fmt.Errorf("%d records lost, %d dead letters", r.lost, r.letters)}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(d):
		return nil
	}
}

// measure takes the window: the workers' /metrics and /proc, the emulators'
// and this process's CPU, the proxies' counts; then U, one eventually
// consistent scan of the lease table.
func (r *result) measure(ctx context.Context, ws []*worker, dp, kp *proxy, prod *producer, ddbEndpoint string) error {
	var kinPID, ddbPID int
	for pid, cmd := range procstat.Children(os.Getpid()) {
		switch {
		case strings.Contains(cmd, "dynalite"):
			ddbPID = pid
		case strings.Contains(cmd, "main.js"):
			kinPID = pid
		}
	}
	scrapeAll := func() ([]map[string]float64, error) {
		out := make([]map[string]float64, len(ws))
		for i, w := range ws {
			m, _, err := procstat.Scrape(w.addr)
			if err != nil {
				return nil, fmt.Errorf("scrape %s: %w", w.id, err)
			}
			out[i] = m
		}
		return out, nil
	}
	before, err := scrapeAll()
	if err != nil {
		return err
	}
	d0, k0, a0 := dp.get(), kp.get(), prod.ackedCount()
	kc0, dc0, sc0 := procstat.CPU(kinPID), procstat.CPU(ddbPID), procstat.CPU(os.Getpid())
	start := time.Now()
	if err := sleep(ctx, r.o.window); err != nil {
		return err
	}
	after, err := scrapeAll()
	if err != nil {
		return err
	}
	r.ddb, r.kin = dp.get().sub(d0), kp.get().sub(k0)
	secs := time.Since(start).Seconds()
	r.secs = secs
	r.kinesisCPU = (procstat.CPU(kinPID) - kc0).Seconds() / secs
	r.dynamoCPU = (procstat.CPU(ddbPID) - dc0).Seconds() / secs
	r.cpu = (procstat.CPU(os.Getpid()) - sc0).Seconds() / secs
	r.putRate = float64(prod.ackedCount()-a0) / secs
	src := `{source="` + app + `"}`
	for i, w := range ws {
		rate := func(name string) float64 { return (after[i][name] - before[i][name]) / secs }
		anon, file := procstat.RSS(w.cmd.Process.Pid)
		r.samples = append(r.samples, workerSample{
			id: w.id, leases: int(after[i]["kinesis_ingest_leases_held"+src]),
			cpu: rate("process_cpu_seconds_total"), anon: anon, file: file,
			getRecords:     rate("kinesis_ingest_get_records_seconds_count" + src),
			getRecordsSecs: rate("kinesis_ingest_get_records_seconds_sum" + src),
			batches:        rate("kinesis_ingest_batch_seconds_count" + src),
			checkpoints:    rate(`kinesis_ingest_checkpoints_total{result="ok",source="` + app + `"}`),
		})
	}
	r.windowDone = true
	u, err := scanUnits(ctx, ddbEndpoint)
	if err != nil {
		return err
	}
	r.scanUnits = u
	return nil
}

// scanUnits is the read units of one eventually consistent scan of the lease
// table, every page: the formula's U.
func scanUnits(ctx context.Context, endpoint string) (float64, error) {
	p := dynamodb.NewScanPaginator(testaws.Dynamo(endpoint), &dynamodb.ScanInput{
		TableName: aws.String(app), ConsistentRead: aws.Bool(false), ReturnConsumedCapacity: dtypes.ReturnConsumedCapacityTotal,
	})
	u := 0.0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("scan the lease table for its read units: %w", err)
		}
		if out.ConsumedCapacity != nil && out.ConsumedCapacity.CapacityUnits != nil {
			u += *out.ConsumedCapacity.CapacityUnits
		}
	}
	return u, nil
}
