// Package faultproxy puts an HTTP reverse proxy in front of a real AWS
// emulator and answers chosen calls with the throttling errors AWS sends
// (ProvisionedThroughputExceededException, LimitExceededException,
// ThrottlingException) instead of forwarding them: the emulators never
// throttle, and a worker's backoff must be proven against the real error shape.
package faultproxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Rule throttles every Every-th call of one operation.
type Rule struct {
	// Operation is the X-Amz-Target operation, e.g. "GetRecords", "UpdateItem".
	Operation string
	Every     int
	// Code is the error type, e.g. "ProvisionedThroughputExceededException".
	Code string
}

// Proxy forwards to an emulator, throttling by its rules.
type Proxy struct {
	URL   string
	rules []Rule

	mu        sync.Mutex
	calls     map[string]int
	throttled map[string]int
}

// New starts a proxy to target for the test's lifetime.
func New(t testing.TB, target string, rules ...Rule) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("faultproxy: target %q: %v", target, err)
	}
	p := &Proxy{rules: rules, calls: map[string]int{}, throttled: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target") // e.g. Kinesis_20131202.GetRecords
		op := target[strings.LastIndexByte(target, '.')+1:]
		if rule, ok := p.hit(op); ok {
			// The JSON protocols' error shape: the type in a header and in
			// __type (DynamoDB prefixes it with its namespace; both forms are
			// accepted by the SDK's decoder).
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.Header().Set("X-Amzn-ErrorType", rule.Code)
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"__type":%q,"message":"Rate exceeded (injected by faultproxy)"}`, rule.Code)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *Proxy) hit(op string) (Rule, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[op]++
	for _, r := range p.rules {
		if r.Operation == op && r.Every > 0 && p.calls[op]%r.Every == 0 {
			p.throttled[op]++
			return r, true
		}
	}
	return Rule{}, false
}

// Calls reports how many calls of op the proxy received (throttled ones
// included).
func (p *Proxy) Calls(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[op]
}

// Throttled reports how many calls of each operation were throttled.
func (p *Proxy) Throttled() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.throttled))
	for k, v := range p.throttled {
		out[k] = v
	}
	return out
}
