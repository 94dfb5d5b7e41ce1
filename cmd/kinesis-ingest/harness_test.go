package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/clitest"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/emulators"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
)

// binary is the kinesis-ingest command built once for the tests that run it as
// a real process (to kill it, restart it, run two of it).
var binary string

func TestMain(m *testing.M) {
	clitest.Main(m, map[string]string{".": "kinesis-ingest"}, func(p map[string]string) { binary = p["kinesis-ingest"] })
}

// env is one test's emulators, stream and output directory.
type env struct {
	t        *testing.T
	kin, ddb *emulators.Server
	kc       *kinesis.Client
	dir      string
	stream   string
	arn      string
	table    string
	// extra is added to the environment of every process the test starts
	// (kept off os.Environ so that tests can run in parallel).
	extra []string
}

func newEnv(t *testing.T, shards int) *env {
	t.Helper()
	if e := externalEnv(t, shards); e != nil { // KINESIS_INGEST_EXTERNAL=1: see external_test.go
		return e
	}
	e := &env{t: t, kin: envtest.Kinesis(t), ddb: envtest.Dynamo(t), dir: t.TempDir(), stream: "orders", table: "orders-ingest"}
	e.kc = testaws.Kinesis(e.kin.Endpoint)
	e.arn = envtest.CreateStream(t, e.kc, e.stream, shards)
	return e
}

// put writes records in order and returns, per shard, the highest sequence
// number written.
func (e *env) put(data [][]byte, keys []string) map[string]string {
	e.t.Helper()
	last := map[string]string{}
	for start := 0; start < len(data); start += 500 {
		end := min(start+500, len(data))
		pending := make([]int, 0, end-start)
		for i := start; i < end; i++ {
			pending = append(pending, i)
		}
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt > 20 {
				e.t.Fatalf("put records: %d still failing after retries", len(pending))
			}
			entries := make([]types.PutRecordsRequestEntry, len(pending))
			for j, i := range pending {
				entries[j] = types.PutRecordsRequestEntry{Data: data[i], PartitionKey: aws.String(keys[i])}
			}
			out, err := e.kc.PutRecords(e.t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String(e.stream), Records: entries})
			if err != nil {
				e.t.Fatalf("put records: %v", err)
			}
			var retry []int
			for j, r := range out.Records {
				if r.ErrorCode != nil {
					retry = append(retry, pending[j])
					continue
				}
				shard, seq := aws.ToString(r.ShardId), aws.ToString(r.SequenceNumber)
				if seqLess(last[shard], seq) {
					last[shard] = seq
				}
			}
			pending = retry
		}
	}
	return last
}

func seqLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

const configTemplate = `
sources:
  - name: orders
    kinesis:
      stream_arn: %s
      init_position: %s
      format: json
datasets:
  - name: orders
    source: orders
    timestamp: ts
    fields:
      - {name: id, type: int}
      - {name: amount, type: float}
      - {name: ts, type: datetime}
      - {name: note, type: "optional[str]"}
    sink: orders_file
sinks:
  - name: orders_file
    file: {path: %s}
dead_letter:
  file: {path: %s}
consumer:
  application: %s
  worker_id: ${WORKER_ID}
  shard_sync_interval: 500ms
  lease_duration: 4s
  lease_refresh: 1s
  idle_between_reads: 100ms
  max_records: 200
metrics:
  listen: 127.0.0.1:0
errors:
  listen: 127.0.0.1:0
log:
  level: debug
`

func (e *env) rowsDir() string    { return filepath.Join(e.dir, "rows") }
func (e *env) lettersDir() string { return filepath.Join(e.dir, "dead-letters") }

func (e *env) config(initPosition string) string {
	e.t.Helper()
	path := filepath.Join(e.dir, "config.yaml")
	body := fmt.Sprintf(configTemplate, e.arn, initPosition, e.rowsDir(), e.lettersDir(), e.table)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// worker is a kinesis-ingest process.
type worker struct {
	t   *testing.T
	id  string
	cmd *exec.Cmd
	log string
	// exited is closed when the process has exited; err is its Wait result.
	exited chan struct{}
	err    error
}

func (e *env) start(configPath, id string) *worker {
	e.t.Helper()
	return e.startArgs(configPath, id, nil, nil)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop sends SIGTERM and requires a clean exit (code 0) within the timeout.
func (w *worker) stop(timeout time.Duration) {
	w.t.Helper()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
		if w.err != nil {
			w.t.Fatalf("worker %s exited with %v after SIGTERM, want 0", w.id, w.err)
		}
	case <-time.After(timeout):
		w.t.Fatalf("worker %s did not stop within %s of SIGTERM", w.id, timeout)
	}
}

func (w *worker) kill() {
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	<-w.exited
}

// metricsAddr reads the address the worker logged for /metrics.
func (w *worker) metricsAddr() string {
	w.t.Helper()
	var addr string
	waitFor(w.t, 30*time.Second, "metrics address in log", func() bool {
		b, _ := os.ReadFile(w.log)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "serving metrics") {
				if i := strings.Index(line, "addr="); i >= 0 {
					addr = strings.Fields(line[i+5:])[0]
					return true
				}
			}
		}
		return false
	})
	if _, _, err := net.SplitHostPort(addr); err != nil {
		w.t.Fatalf("bad metrics address %q: %v", addr, err)
	}
	return addr
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type rowLine struct {
	ID       int64   `json:"id"`
	Amount   float64 `json:"amount"`
	TS       string  `json:"ts"`
	Note     *string `json:"note"`
	Shard    string  `json:"_shard_id"`
	Sequence string  `json:"_sequence_number"`
	File     string  `json:"-"`
}

type letterLine struct {
	Source         string `json:"source"`
	StreamARN      string `json:"stream_arn"`
	ShardID        string `json:"shard_id"`
	SequenceNumber string `json:"sequence_number"`
	PartitionKey   string `json:"partition_key"`
	ArrivalTime    string `json:"arrival_time"`
	Reason         string `json:"reason"`
	Error          string `json:"error"`
	Data           []byte `json:"data"`
	File           string `json:"-"`
}

// readLines parses every JSON line of every file sink file in dir, read
// through the sink's reader. A partial last line fails the test unless a
// running worker completes it within partialGrace: a reader polling while a
// worker appends a 1 MB row can catch the line half written, but a line
// still partial after that (a worker killed mid-write) was left behind as
// if durable, which sinks must never do.
func readLines[T any](t *testing.T, dir string, setFile func(*T, string)) []T {
	t.Helper()
	deadline := time.Now().Add(partialGrace)
	for {
		out, partial := readLinesOnce(t, dir, setFile)
		if partial == 0 {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d files in %s end in a partial line, still after %s", partial, dir, partialGrace)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// partialGrace is how long a partial last line may take to complete.
const partialGrace = 5 * time.Second

func readLinesOnce[T any](t *testing.T, dir string, setFile func(*T, string)) ([]T, int) {
	t.Helper()
	var out []T
	st, err := file.Reader{Dir: dir}.Lines(context.Background(), func(f string, line []byte) error {
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			return fmt.Errorf("%s: bad line %q: %w", f, line, err)
		}
		setFile(&v, filepath.Base(f))
		out = append(out, v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, st.Partial
}

func (e *env) rows() []rowLine {
	return readLines(e.t, e.rowsDir(), func(r *rowLine, f string) { r.File = f })
}

func (e *env) letters() []letterLine {
	return readLines(e.t, e.lettersDir(), func(l *letterLine, f string) { l.File = f })
}

// checkpoints reads the lease table; before a worker created it, it is empty.
func (e *env) checkpoints() map[string]leases.Lease {
	e.t.Helper()
	return e.checkpointsOf(e.table)
}

// checkpointsOf is checkpoints of another lease table.
func (e *env) checkpointsOf(table string) map[string]leases.Lease {
	e.t.Helper()
	tbl, err := leases.New(leases.Config{Client: testaws.Dynamo(e.ddb.Endpoint), Table: table, WorkerID: "test-reader", LeaseDuration: time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := tbl.Checkpoints(e.t.Context())
	var nf *ddbtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return map[string]leases.Lease{}
	}
	if err != nil {
		e.t.Fatalf("read lease table: %v", err)
	}
	return m
}

// startArgs is start with more flags after "run --config FILE" (e.g.
// --log-format json) and more environment variables.
func (e *env) startArgs(configPath, id string, args, env []string) *worker {
	e.t.Helper()
	logPath := filepath.Join(e.dir, id+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(binary, append([]string{"run", "--config", configPath}, args...)...)
	cmd.Env = append(append(os.Environ(),
		"WORKER_ID="+id,
		"AWS_ENDPOINT_URL_KINESIS="+e.kin.Endpoint,
		"AWS_ENDPOINT_URL_DYNAMODB="+e.ddb.Endpoint,
		"AWS_ACCESS_KEY_ID="+testaws.Account,
		"AWS_SECRET_ACCESS_KEY=secret-must-not-leak",
		"AWS_REGION=us-east-1",
	), slices.Concat(e.extra, env)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	w := &worker{t: e.t, id: id, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() {
		w.err = cmd.Wait()
		logFile.Close()
		close(w.exited)
	}()
	e.t.Cleanup(func() {
		select {
		case <-w.exited:
		default:
			_ = cmd.Process.Kill()
			<-w.exited
		}
		if e.t.Failed() {
			b, _ := os.ReadFile(logPath)
			keep := filepath.Join(os.TempDir(), "kinesis-ingest-failed-"+strings.ReplaceAll(e.t.Name(), "/", "_")+"-"+id+".log")
			_ = os.WriteFile(keep, b, 0o644)
			e.t.Logf("worker %s log (%d bytes, kept in %s), tail:\n%s", id, len(b), keep, tail(string(b), 40))
		}
	})
	return w
}
