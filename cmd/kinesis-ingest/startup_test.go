package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// running fails the test if w has exited.
func (w *worker) running() {
	w.t.Helper()
	select {
	case <-w.exited:
		b, _ := os.ReadFile(w.log)
		w.t.Fatalf("worker %s exited (%v), want it running:\n%s", w.id, w.err, tail(string(b), 20))
	default:
	}
}

// TestDependencyDownAtStartIsAnOutage starts a worker while a dependency is
// down: PostgreSQL (both sinks), or DynamoDB (the lease table). The worker
// must not exit: it serves an unready /readyz naming what it waits for,
// retries, and once the dependency is back reads every record, those put
// before it started and those put after, each landing once. With
// --require-healthy it refuses to start instead, as every run did before.
func TestDependencyDownAtStartIsAnOutage(t *testing.T) {
	t.Parallel()
	const n = 1000
	// landed counts the rows of ids 0..n-1 and the distinct ids among them.
	type landed func() (rows, ids int64)
	tests := []struct {
		name string
		// setup returns the env, its config, how to stop and start the
		// dependency, and what /readyz must name while it is down.
		setup func(t *testing.T) (e *env, cfg string, stop, start func(), count landed, waiting string)
	}{
		{
			name: "postgres",
			setup: func(t *testing.T) (*env, string, func(), func(), landed, string) {
				e := newPGEnv(t, 2)
				count := func() (int64, int64) {
					c, _ := e.query(fmt.Sprintf("SELECT count(*) FROM orders WHERE id >= 0 AND id < %d", n))
					d, _ := e.query(fmt.Sprintf("SELECT count(DISTINCT id) FROM orders WHERE id >= 0 AND id < %d", n))
					return c, d
				}
				return e.env, e.pgConfig("orders-pg"), func() { e.pg.Stop(t) }, func() { e.pg.Start(t) }, count, "table orders: fits [unreachable]"
			},
		},
		{
			name: "lease table",
			setup: func(t *testing.T) (*env, string, func(), func(), landed, string) {
				e := newPersistentEnv(t, 2)
				stop := func() {
					if err := e.ddb.Stop(); err != nil {
						t.Fatal(err)
					}
				}
				start := func() {
					if err := e.ddb.Restart(t.Context()); err != nil {
						t.Fatalf("restart dynalite: %v", err)
					}
				}
				count := func() (rows, ids int64) {
					for id, c := range idsOf(e.rows()) {
						if id >= 0 && id < n {
							rows, ids = rows+int64(c), ids+1
						}
					}
					return rows, ids
				}
				return e, e.config("trim_horizon"), stop, start, count, "lease table orders-ingest: reachable [unreachable]"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, cfg, stop, start, count, waiting := tt.setup(t)
			data, keys, _ := orders(0, n/2, false)
			e.put(data, keys)
			stop()

			strict := e.startArgs(cfg, "strict", []string{"--require-healthy"}, nil)
			<-strict.exited
			if b, _ := os.ReadFile(strict.log); strict.err == nil || !strings.Contains(string(b), "refusing to start") {
				t.Errorf("with --require-healthy and the dependency down: exit %v, want 1 and \"refusing to start\":\n%s", strict.err, tail(string(b), 10))
			}

			w := e.start(cfg, "w1")
			waitFor(t, 90*time.Second, "the worker serving /metrics", func() bool {
				w.running()
				b, _ := os.ReadFile(w.log)
				return strings.Contains(string(b), "serving metrics")
			})
			addr := w.metricsAddr()
			waitFor(t, 60*time.Second, "/readyz 503 naming "+waiting, func() bool {
				w.running()
				r := httpGet(t, "http://"+addr+"/readyz", "")
				return r.code == 503 && strings.Contains(r.body, `"dependencies"`) && strings.Contains(r.body, waiting)
			})
			// Retrying, not just up: a second failed attempt.
			waitFor(t, 60*time.Second, "a retried startup check", func() bool {
				w.running()
				b, _ := os.ReadFile(w.log)
				return strings.Contains(string(b), "attempt=2")
			})
			if rows, _ := count(); rows != 0 {
				t.Fatalf("%d rows landed while the dependency was down", rows)
			}

			start()
			data, keys, _ = orders(n/2, n/2, false)
			e.put(data, keys)
			waitFor(t, 120*time.Second, fmt.Sprintf("all %d ids once the dependency is back", n), func() bool {
				w.running()
				_, ids := count()
				return ids == n
			})
			waitFor(t, 30*time.Second, "/readyz 200", func() bool { return httpGet(t, "http://"+addr+"/readyz", "").code == 200 })
			if rows, ids := count(); rows != n || ids != n {
				t.Errorf("%d rows of %d distinct ids, want %d of %d", rows, ids, n, n)
			}
			w.stop(30 * time.Second)
		})
	}
}

// loggedAddr waits for the worker's log line "serving WHAT" and returns its
// addr; the worker must keep running meanwhile.
func (w *worker) loggedAddr(what string) string {
	w.t.Helper()
	var addr string
	waitFor(w.t, 90*time.Second, w.id+" serving "+what, func() bool {
		w.running()
		b, _ := os.ReadFile(w.log)
		for _, line := range strings.Split(string(b), "\n") {
			if i := strings.Index(line, " addr="); i >= 0 && strings.Contains(line, `msg="serving `+what+`"`) {
				addr = strings.Fields(line[i+6:])[0]
				return true
			}
		}
		return false
	})
	return addr
}

// TestTwoWorkersOneConfigOneHost runs the README's scaling example as written:
// two workers on one host with one config that sets neither metrics.listen,
// errors.listen nor worker_id. Both must start, serve /metrics and the errors
// view on ports of their own, the errors view on loopback only, share the
// shards and land every record.
func TestTwoWorkersOneConfigOneHost(t *testing.T) {
	t.Parallel()
	const n = 200
	e := newEnv(t, 2)
	path := e.config("trim_horizon")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	for _, line := range []string{"  worker_id: ${WORKER_ID}\n", "metrics:\n  listen: 127.0.0.1:0\n", "errors:\n  listen: 127.0.0.1:0\n"} {
		if !strings.Contains(body, line) {
			t.Fatalf("the harness config has no %q", line)
		}
		body = strings.Replace(body, line, "", 1)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	data, keys, _ := orders(0, n, false)
	e.put(data, keys)

	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	ws := []*worker{e.start(path, "w1"), e.start(path, "w2")}
	seen := map[string]string{}
	want := map[string]int{}
	for _, w := range ws {
		want[fmt.Sprintf("%s-%d", host, w.cmd.Process.Pid)] = 1 // the default worker_id
		for _, what := range []string{"metrics", "errors view"} {
			addr := w.loggedAddr(what)
			h, port, err := net.SplitHostPort(addr)
			if ip := net.ParseIP(h); err != nil || ip == nil || !ip.IsLoopback() || port == "0" {
				t.Errorf("%s serves %s on %q, want a loopback address with a port", w.id, what, addr)
			}
			if other, dup := seen[addr]; dup {
				t.Errorf("%s and %s both report %s", other, w.id+" "+what, addr)
			}
			seen[addr] = w.id + " " + what
			if what == "metrics" {
				waitFor(t, 60*time.Second, w.id+" /readyz 200", func() bool {
					w.running()
					return httpGet(t, "http://"+addr+"/readyz", "").code == 200
				})
			} else if r := httpGet(t, "http://"+addr+"/errors", "application/json"); r.code != 200 {
				t.Errorf("%s errors view at %s: %d %s", w.id, addr, r.code, r.body)
			}
		}
	}
	e.waitBalanced(want, 90*time.Second)
	waitFor(t, 90*time.Second, fmt.Sprintf("all %d rows", n), func() bool { return len(missing(idsOf(e.rows()), 0, n, nil)) == 0 })
	for _, w := range ws {
		w.stop(30 * time.Second)
	}
}
