package app

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/errview"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/health"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/sinkreg"
)

// SinkProbeTTL is how long a sink directory's writability probe is reused.
const SinkProbeTTL = 5 * time.Second

// leaseTableWindow is how long the lease table may stay silent before the
// worker is unready: the KCL calls it at every shard sync and lease renewal,
// so two lease durations without an answer mean it is unreachable (and the
// leases are being lost).
func leaseTableWindow(c config.Consumer) time.Duration {
	return max(2*c.LeaseDuration, 2*c.ShardSyncInterval, 10*time.Second)
}

// readiness lists what /readyz checks: the config loaded (an App exists only
// then), the startup checks passed (see Gate), the pipeline and consumers started, every lease table answered
// recently, every file sink directory writable, every PostgreSQL sink
// answering, and not shutting down.
func (a *App) readiness() *health.Checker {
	checks := []health.Check{
		{Name: "config", Run: func(context.Context) error { return nil }},
		{Name: "dependencies", Run: health.WhenOK(&a.waiting, "waiting to start")},
		{Name: "started", Run: health.WhenSet(&a.started, "the pipeline and the consumers have not started yet")},
	}
	window := leaseTableWindow(a.cfg.Consumer)
	for _, src := range a.cfg.Sources {
		name := src.Name
		table := LeaseTable(a.cfg, name)
		checks = append(checks, health.Check{
			Name: "lease_table:" + table,
			Run:  health.Recent("lease table "+table, func() time.Time { return a.metrics.LeaseTableAnsweredAt(name) }, window, time.Now),
		})
	}
	// The sinks: a file sink's directory is writable, a server (PostgreSQL)
	// answers.
	names := make([]string, 0, len(a.ready))
	for name := range a.ready {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		check := a.ready[name]
		checks = append(checks, health.Check{Name: name, TTL: SinkProbeTTL, Run: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			return check(ctx)
		}})
	}
	checks = append(checks, health.Check{Name: "not_shutting_down", Run: health.WhenUnset(&a.stopping, "the worker is shutting down")})
	return health.New(checks...)
}

// observabilityMux serves the metrics port: /metrics, /healthz and /readyz,
// nothing that shows record data, since whoever scrapes metrics may reach it.
func (a *App) observabilityMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", a.metrics.Handler())
	mux.Handle("/healthz", health.LiveHandler())
	mux.Handle("/readyz", a.readiness().ReadyHandler())
	return mux
}

// errorsMux serves the errors port: /errors (JSON, or HTML for a browser) and
// /errors.html. They show previews of record data and partition keys.
func (a *App) errorsMux() http.Handler {
	mux := http.NewServeMux()
	errs := errview.Handler(sinkreg.Errors(a.cfg), a.log.With("component", "errview"))
	mux.Handle("/errors", errs)
	mux.Handle("/errors.html", errs)
	return checkHost(mux)
}

// checkHost refuses a request whose Host is a name other than localhost: a
// page on evil.example whose name an attacker re-points at 127.0.0.1 (DNS
// rebinding) would otherwise read a loopback-only errors view through the
// victim's browser, which sends Host: evil.example. IP literals and
// localhost are what a person types, or what kubectl port-forward and
// ssh -L give.
func checkHost(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(r.Host) {
			http.Error(w, "forbidden: the errors view answers only to an IP address or localhost in the Host header", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	return net.ParseIP(host) != nil
}

// Limits of the observability servers: a client that sends its request
// slowly, never sends one, or sends huge headers cannot hold a connection,
// a goroutine and its buffers forever. WriteTimeout leaves room for an
// errors view that scans many dead-letter files.
var serverLimits = struct {
	ReadHeader, Read, Write, Idle time.Duration
	MaxHeaderBytes                int
}{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 2 * time.Minute, Idle: 60 * time.Second, MaxHeaderBytes: 16 << 10}

func newServer(h http.Handler) *http.Server {
	l := serverLimits
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeader,
		ReadTimeout:       l.Read,
		WriteTimeout:      l.Write,
		IdleTimeout:       l.Idle,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}
