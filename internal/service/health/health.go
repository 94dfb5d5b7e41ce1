// Package health answers Kubernetes-style probes: /healthz (the process is
// alive and serving) and /readyz (every readiness check passes).
//
// A Checker runs named checks. Each returns nil when its condition holds or an
// error that says what is wrong; a check with a TTL is run at most once per TTL
// and its result reused meanwhile, so a probe every second costs one file
// probe per directory every few seconds. Checks of one probe run one after the
// other, each bounded by the Checker's timeout. The JSON body lists every
// check; a 503 names the failing ones first.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Check is one readiness condition.
type Check struct {
	// Name identifies the check in the response, e.g. "sink:orders_file".
	Name string
	// TTL reuses a result this long; 0 runs the check on every probe.
	TTL time.Duration
	// Run returns nil when the condition holds. It must honour ctx.
	Run func(ctx context.Context) error
}

// Checker runs a fixed list of checks. It is safe for concurrent use.
type Checker struct {
	checks  []*cached
	timeout time.Duration
	now     func() time.Time
}

type cached struct {
	Check
	mu  sync.Mutex
	at  time.Time
	err error
	ran bool
}

// DefaultTimeout bounds one check.
const DefaultTimeout = 2 * time.Second

// New returns a Checker of checks, in the order given.
func New(checks ...Check) *Checker {
	c := &Checker{timeout: DefaultTimeout, now: time.Now}
	for _, ch := range checks {
		c.checks = append(c.checks, &cached{Check: ch})
	}
	return c
}

// Result is the outcome of one check.
type Result struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Report is the outcome of every check.
type Report struct {
	Status  string   `json:"status"` // "ready" or "unready"
	Failing []Result `json:"failing,omitempty"`
	Checks  []Result `json:"checks"`
}

// Ready reports whether every check passed.
func (r Report) Ready() bool { return len(r.Failing) == 0 }

// Run runs (or reuses) every check.
func (c *Checker) Run(ctx context.Context) Report {
	rep := Report{Status: "ready", Checks: make([]Result, 0, len(c.checks))}
	for _, ch := range c.checks {
		err := c.run(ctx, ch)
		res := Result{Name: ch.Name, OK: err == nil}
		if err != nil {
			res.Error = err.Error()
			rep.Failing = append(rep.Failing, res)
		}
		rep.Checks = append(rep.Checks, res)
	}
	if !rep.Ready() {
		rep.Status = "unready"
	}
	return rep
}

func (c *Checker) run(ctx context.Context, ch *cached) (err error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	now := c.now()
	if ch.ran && ch.TTL > 0 && now.Sub(ch.at) < ch.TTL {
		return ch.err
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("check panicked: %v", r)
		}
		if ctx.Err() == nil { // a probe that went away says nothing about the check
			ch.at, ch.err, ch.ran = now, err, true
		}
	}()
	return ch.Run(cctx)
}

// ReadyHandler serves /readyz: 200 with the report when ready, else 503 with
// the report (failing checks listed first under "failing").
func (c *Checker) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := c.Run(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !rep.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	})
}

// LiveHandler serves /healthz: 200 "ok" while the process serves HTTP at all.
func LiveHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
}

// Flag is a condition another part of the process sets: the pipeline running,
// shutdown begun. The zero value is false.
type Flag struct{ v atomic.Bool }

// Set sets the flag.
func (f *Flag) Set(v bool) { f.v.Store(v) }

// Get reads the flag.
func (f *Flag) Get() bool { return f.v.Load() }

// WhenSet passes while f is set; otherwise it fails with msg.
func WhenSet(f *Flag, msg string) func(context.Context) error {
	return func(context.Context) error {
		if !f.Get() {
			return errors.New(msg)
		}
		return nil
	}
}

// WhenUnset passes while f is not set; otherwise it fails with msg.
func WhenUnset(f *Flag, msg string) func(context.Context) error {
	return func(context.Context) error {
		if f.Get() {
			return errors.New(msg)
		}
		return nil
	}
}

// Status is a condition another part of the process reports as an error:
// nil while it holds (the zero value), else what is wrong, e.g. the startup
// checks still failing. It is safe for concurrent use.
type Status struct{ v atomic.Pointer[error] }

// Set records err; nil means the condition holds.
func (s *Status) Set(err error) {
	if err == nil {
		s.v.Store(nil)
		return
	}
	s.v.Store(&err)
}

// Err is the error last Set, or nil.
func (s *Status) Err() error {
	if p := s.v.Load(); p != nil {
		return *p
	}
	return nil
}

// WhenOK passes while s holds; otherwise it fails with s's error after
// prefix, so that the probe says what the worker is waiting for.
func WhenOK(s *Status, prefix string) func(context.Context) error {
	return func(context.Context) error {
		if err := s.Err(); err != nil {
			return fmt.Errorf("%s: %w", prefix, err)
		}
		return nil
	}
}

// Recent passes while last() is within window of now: something (a lease
// table) answered recently. what names it in the error.
func Recent(what string, last func() time.Time, window time.Duration, now func() time.Time) func(context.Context) error {
	return func(context.Context) error {
		t := last()
		if t.IsZero() {
			return fmt.Errorf("%s has not answered yet", what)
		}
		if age := now().Sub(t); age > window {
			return fmt.Errorf("%s last answered %s ago (more than %s)", what, age.Round(time.Second), window)
		}
		return nil
	}
}

// DirWritable passes when a file can be created, written, fsynced and
// removed in dir. It never touches other files there: the probe is a hidden
// file with a random suffix and no .jsonl extension.
func DirWritable(dir string) func(context.Context) error {
	return func(ctx context.Context) error {
		done := make(chan error, 1)
		go func() { done <- ProbeDir(dir) }() // a hung filesystem must not hang the probe
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return fmt.Errorf("directory %s: no answer from the filesystem: %w", dir, ctx.Err())
		}
	}
}

// ProbeDir checks that dir is a directory in which a file can be created,
// written, fsynced and removed (the probe file is removed again). Errors wrap
// the OS error.
func ProbeDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".kinesis-ingest-probe-*")
	if err != nil {
		return fmt.Errorf("directory %s is not writable: %w", dir, err)
	}
	_, werr := f.Write([]byte("ok\n"))
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	rerr := os.Remove(f.Name())
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("directory %s is not writable: %w", dir, err)
	}
	if rerr != nil {
		return fmt.Errorf("directory %s: removing the probe file: %w", dir, rerr)
	}
	return nil
}
