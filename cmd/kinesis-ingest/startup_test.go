package main

import (
	"fmt"
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
		w.t.Fatalf("worker %s exited (%v); it must wait out the outage:\n%s", w.id, w.err, tail(string(b), 20))
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
