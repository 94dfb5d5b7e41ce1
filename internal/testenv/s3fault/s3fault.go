// Package s3fault puts an HTTP reverse proxy in front of a real S3 server
// (internal/testenv/s3test) and answers chosen requests with S3's own error
// (by default 503 SlowDown, in S3's XML error shape) instead of forwarding
// them: versitygw never refuses a write, and a worker's handling of a
// refused one must be proven against the error AWS sends. A rule names a
// method and a pattern of object keys (all `*.metadata.json` PUTs, say), so
// a test can let some writes of a worker through and hold others back, and
// rules can change while the worker runs (SetRules).
//
// Requests are addressed path-style (http://proxy/bucket/key), as every
// client of a loopback S3 endpoint must be. The proxy keeps the request's
// Host header, so SigV4 signatures made for the proxy's address verify at
// the server.
package s3fault

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
)

// Rule refuses the requests of one method on the keys matching a pattern.
type Rule struct {
	// Method is the HTTP method (PUT, GET, DELETE...); "" matches any.
	Method string
	// Key is a path.Match pattern of the object key (without the bucket).
	// A pattern without '/' is matched against the key's last element, as
	// a shell glob matches a file name: "*.metadata.json" matches
	// warehouse/ns/t/metadata/00001-x.metadata.json.
	Key string
	// Code is the S3 error code; "" means SlowDown.
	Code string
	// Status is the HTTP status; 0 means 503 (SlowDown's).
	Status int
}

// Object names an object the server stored through the proxy.
type Object struct{ Bucket, Key string }

// Proxy forwards to an S3 server, refusing by its rules.
type Proxy struct {
	URL string

	mu      sync.Mutex
	rules   []Rule
	refused int
	stored  []Object
	seen    map[Object]bool
}

// New starts a proxy to target (the server's endpoint, http://host:port)
// for the test's lifetime.
func New(t testing.TB, target string, rules ...Rule) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		t.Fatalf("s3fault: target %q is not an http://host:port endpoint (%v)", target, err)
	}
	p := &Proxy{rules: rules, seen: map[Object]bool{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = p.record
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bucket, key := split(r.URL.Path)
		rule, ok := p.hit(r.Method, key)
		if !ok {
			rp.ServeHTTP(w, r)
			return
		}
		// Read what the client sends before answering, as S3 does: a
		// response to a half-sent body would show as a broken connection,
		// not as the error under test.
		_, _ = io.Copy(io.Discard, r.Body)
		code, status := rule.Code, rule.Status
		if code == "" {
			code = "SlowDown"
		}
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("X-Amz-Request-Id", "s3fault")
		w.WriteHeader(status)
		if r.Method == http.MethodHead {
			return
		}
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>%s</Code><Message>Please reduce your request rate. (injected by s3fault)</Message><Resource>/%s/%s</Resource><RequestId>s3fault</RequestId></Error>`,
			code, xmlEscape(bucket), xmlEscape(key))
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// split splits a path-style request path into its bucket and object key.
func split(p string) (bucket, key string) {
	bucket, key, _ = strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return bucket, key
}

// Matches reports whether the rule refuses a request of method on key.
func (r Rule) Matches(method, key string) bool {
	if r.Method != "" && !strings.EqualFold(r.Method, method) {
		return false
	}
	if key == "" {
		return false // a bucket-level request, never an object's
	}
	name := key
	if !strings.Contains(r.Key, "/") {
		name = path.Base(key)
	}
	ok, err := path.Match(r.Key, name)
	return ok && err == nil
}

// SetRules replaces the rules for the requests from now on (none: forward
// everything); the counts so far are kept.
func (p *Proxy) SetRules(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = rules
}

func (p *Proxy) hit(method, key string) (Rule, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.rules {
		if r.Matches(method, key) {
			p.refused++
			return r, true
		}
	}
	return Rule{}, false
}

// record remembers the objects the server stored (a PUT answered 2xx).
func (p *Proxy) record(resp *http.Response) error {
	if resp.Request.Method != http.MethodPut || resp.StatusCode/100 != 2 {
		return nil
	}
	bucket, key := split(resp.Request.URL.Path)
	if key == "" {
		return nil
	}
	o := Object{Bucket: bucket, Key: key}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.seen[o] {
		p.seen[o] = true
		p.stored = append(p.stored, o)
	}
	return nil
}

// Refused reports how many requests the rules have refused so far.
func (p *Proxy) Refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// Stored lists the objects the server stored through the proxy (a PUT of
// the key answered 2xx: multipart parts count for their key), each once,
// in the order first stored.
func (p *Proxy) Stored() []Object {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Object(nil), p.stored...)
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

func xmlEscape(s string) string { return xmlEscaper.Replace(s) }
