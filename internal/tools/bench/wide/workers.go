package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/internal/tools/bench/procstat"
)

// app is the consumer application, hence the lease table's name (one
// source), and the source's name in the metrics' labels.
const app = "wide"

// The worker's config: the default consumer settings; only what the run
// needs is set.
const configTemplate = `sources:
  - name: wide
    kinesis:
      stream_arn: %s
      init_position: trim_horizon
      format: json
datasets:
  - name: wide
    source: wide
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
  application: ` + app + `
  worker_id: %s
metrics:
  listen: %s
errors:
  listen: ""
`

// worker is one kinesis-ingest process.
type worker struct {
	id, addr, log string
	cmd           *exec.Cmd
	exited        chan struct{}
	killed        bool
}

func startWorker(bin string, env []string, dir, arn, rows, letters, id string) (*worker, error) {
	addr, err := procstat.FreeAddr()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, id+".yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(configTemplate, arn, rows, letters, id, addr)), 0o644); err != nil {
		return nil, err
	}
	w := &worker{id: id, addr: addr, log: filepath.Join(dir, id+".log"), exited: make(chan struct{})}
	logFile, err := os.Create(w.log)
	if err != nil {
		return nil, err
	}
	w.cmd = exec.Command(bin, "run", "--config", cfg)
	w.cmd.Env, w.cmd.Stdout, w.cmd.Stderr = env, logFile, logFile
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := w.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start worker %s: %w", id, err)
	}
	go func() { _ = w.cmd.Wait(); logFile.Close(); close(w.exited) }()
	return w, nil
}

func (w *worker) alive() bool {
	select {
	case <-w.exited:
		return false
	default:
		return true
	}
}

func (w *worker) kill() {
	w.killed = true
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	<-w.exited
}

// stop sends SIGTERM and waits for the exit, killing the worker after grace.
func (w *worker) stop(grace time.Duration) error {
	if !w.alive() {
		return nil
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
		return nil
	case <-time.After(grace):
		_ = w.cmd.Process.Kill()
		<-w.exited
		return fmt.Errorf("worker %s did not stop within %s of SIGTERM; killed (log: %s)", w.id, grace, w.log)
	}
}

// live are the workers not killed; an unexpected exit is an error.
func live(ws []*worker) ([]*worker, error) {
	var out []*worker
	for _, w := range ws {
		if w.killed {
			continue
		}
		if !w.alive() {
			return nil, fmt.Errorf("%w: %s (log: %s)", errExited, w.id, w.log)
		}
		out = append(out, w)
	}
	return out, nil
}

// owners counts the lease table's shards by owner ("" for free ones); an
// absent table (before a worker created it) holds nothing.
func owners(ctx context.Context, t *leases.Table) (map[string]int, error) {
	rows, err := t.Checkpoints(ctx)
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return map[string]int{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Owner]++
	}
	return out, nil
}

// held is each live worker's leases_held as its /metrics says.
func held(ws []*worker) (map[string]int, error) {
	out := map[string]int{}
	for _, w := range ws {
		m, _, err := procstat.Scrape(w.addr)
		if err != nil {
			return nil, nil // not serving yet, or too busy: not an answer
		}
		out[w.id] = int(m[`kinesis_ingest_leases_held{source="`+app+`"}`])
	}
	return out, nil
}

// spread is the smallest and largest count of ws in m.
func spread(ws []*worker, m map[string]int) (lo, hi int) {
	lo = -1
	for _, w := range ws {
		n := m[w.id]
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	return lo, hi
}
