package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadyz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	fail := func(msg string) func(context.Context) error {
		return func(context.Context) error { return errors.New(msg) }
	}
	tests := []struct {
		name        string
		checks      []Check
		wantCode    int
		wantFailing []string
		errContains string
	}{
		{name: "no checks", wantCode: 200},
		{name: "all pass", checks: []Check{{Name: "a", Run: ok}, {Name: "b", Run: ok}}, wantCode: 200},
		{
			name:     "one fails",
			checks:   []Check{{Name: "a", Run: ok}, {Name: "sink:x", Run: fail("directory /x is not writable")}},
			wantCode: 503, wantFailing: []string{"sink:x"}, errContains: "not writable",
		},
		{
			name:     "two fail, listed in order",
			checks:   []Check{{Name: "a", Run: fail("A")}, {Name: "b", Run: ok}, {Name: "c", Run: fail("C")}},
			wantCode: 503, wantFailing: []string{"a", "c"}, errContains: "A",
		},
		{
			name:     "a panicking check fails instead of killing the probe",
			checks:   []Check{{Name: "p", Run: func(context.Context) error { panic("boom") }}},
			wantCode: 503, wantFailing: []string{"p"}, errContains: "panicked: boom",
		},
		{
			name: "a hung check times out",
			checks: []Check{{Name: "slow", Run: func(ctx context.Context) error {
				<-ctx.Done()
				return ctx.Err()
			}}},
			wantCode: 503, wantFailing: []string{"slow"}, errContains: "deadline",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(tt.checks...)
			c.timeout = 50 * time.Millisecond
			rec := httptest.NewRecorder()
			c.ReadyHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			if rec.Code != tt.wantCode {
				t.Fatalf("code %d, want %d; body %s", rec.Code, tt.wantCode, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			var rep Report
			if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
				t.Fatalf("body is not JSON: %v: %s", err, rec.Body)
			}
			var failing []string
			for _, f := range rep.Failing {
				failing = append(failing, f.Name)
			}
			if strings.Join(failing, ",") != strings.Join(tt.wantFailing, ",") {
				t.Errorf("failing %v, want %v", failing, tt.wantFailing)
			}
			if len(rep.Checks) != len(tt.checks) {
				t.Errorf("%d checks reported, want %d", len(rep.Checks), len(tt.checks))
			}
			wantStatus := map[int]string{200: "ready", 503: "unready"}[tt.wantCode]
			if rep.Status != wantStatus {
				t.Errorf("status %q, want %q", rep.Status, wantStatus)
			}
			if tt.errContains != "" && (len(rep.Failing) == 0 || !strings.Contains(rep.Failing[0].Error, tt.errContains)) {
				t.Errorf("failing %+v: want an error containing %q", rep.Failing, tt.errContains)
			}
		})
	}
}

func TestTTLCachesResults(t *testing.T) {
	calls := 0
	now := time.Unix(1000, 0)
	c := New(Check{Name: "dir", TTL: 5 * time.Second, Run: func(context.Context) error { calls++; return nil }})
	c.now = func() time.Time { return now }
	for range 3 {
		c.Run(context.Background())
	}
	if calls != 1 {
		t.Fatalf("%d runs within the TTL, want 1", calls)
	}
	now = now.Add(5 * time.Second)
	c.Run(context.Background())
	if calls != 2 {
		t.Fatalf("%d runs after the TTL, want 2", calls)
	}
}

func TestConditions(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	var started, stopping Flag
	started.Set(true)
	stopping.Set(true)
	var waiting, recovered Status
	waiting.Set(errors.New("lease table orders: unreachable"))
	recovered.Set(errors.New("sink warehouse: unreachable"))
	recovered.Set(nil)
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		run         func(context.Context) error
		errContains string // "" = pass
	}{
		{name: "flag set", run: WhenSet(&started, "not started")},
		{name: "flag unset", run: WhenSet(new(Flag), "pipeline not running"), errContains: "pipeline not running"},
		{name: "not shutting down", run: WhenUnset(new(Flag), "shutting down")},
		{name: "shutting down", run: WhenUnset(&stopping, "shutting down"), errContains: "shutting down"},
		{name: "status never set", run: WhenOK(new(Status), "waiting to start")},
		{name: "status failing", run: WhenOK(&waiting, "waiting to start"), errContains: "waiting to start: lease table orders: unreachable"},
		{name: "status recovered", run: WhenOK(&recovered, "waiting to start")},
		{name: "answered recently", run: Recent("lease table t", func() time.Time { return now.Add(-3 * time.Second) }, 10*time.Second, clock)},
		{name: "answered long ago", run: Recent("lease table t", func() time.Time { return now.Add(-30 * time.Second) }, 10*time.Second, clock), errContains: "lease table t last answered 30s ago"},
		{name: "never answered", run: Recent("lease table t", func() time.Time { return time.Time{} }, 10*time.Second, clock), errContains: "has not answered yet"},
		{name: "writable dir", run: DirWritable(dir)},
		{name: "missing dir", run: DirWritable(filepath.Join(dir, "gone")), errContains: "no such file"},
		{name: "a file where the dir should be", run: DirWritable(notDir), errContains: "is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run(context.Background())
			switch {
			case tt.errContains == "" && err != nil:
				t.Fatalf("want pass, got %v", err)
			case tt.errContains != "" && (err == nil || !strings.Contains(err.Error(), tt.errContains)):
				t.Fatalf("got %v, want an error containing %q", err, tt.errContains)
			}
		})
	}
	// The probe leaves nothing behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("probe left files behind: %v", ents)
	}
}

func TestLiveHandler(t *testing.T) {
	rec := httptest.NewRecorder()
	LiveHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "ok\n" {
		t.Fatalf("%d %q", rec.Code, rec.Body)
	}
}
