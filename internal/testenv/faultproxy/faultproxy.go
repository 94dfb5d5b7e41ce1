// Package faultproxy puts an HTTP reverse proxy in front of a real AWS
// emulator and answers chosen calls with the throttling errors AWS sends
// (ProvisionedThroughputExceededException, LimitExceededException,
// ThrottlingException) instead of forwarding them: the emulators never
// throttle, and a worker's backoff must be proven against the real error shape.
// It can also leave one shard's GetRecords calls unanswered (HangGetRecords),
// as a half-open connection does, to prove that no call waits forever.
// Rules can narrow to calls whose body holds a string (one kind of
// UpdateItem, say) and can change while a worker runs (SetRules).
package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Rule throttles every Every-th call of one operation (of one shard, with
// Shard).
type Rule struct {
	// Operation is the X-Amz-Target operation, e.g. "GetRecords", "UpdateItem".
	Operation string
	Every     int
	// Code is the error type, e.g. "ProvisionedThroughputExceededException".
	Code string
	// BodyContains, if set, narrows the rule to calls whose JSON request
	// body contains it (e.g. a DynamoDB UpdateExpression): DynamoDB uses one
	// operation for writes a worker treats differently.
	BodyContains string
	// Shard, if set, narrows a GetRecords or GetShardIterator rule to calls
	// on that shard, and Every counts that shard's calls alone.
	Shard string
}

// Proxy forwards to an emulator, throttling by its rules.
type Proxy struct {
	URL   string
	rules []Rule

	mu        sync.Mutex
	calls     map[string]int
	throttled map[string]int
	// onShard counts GetRecords and GetShardIterator calls (and throttled
	// ones) per operation and shard.
	onShard, throttledOn map[[2]string]int
	// shardOf maps every shard iterator the emulator handed out (by
	// GetShardIterator, or as a GetRecords' NextShardIterator) to its shard:
	// a GetRecords request names only its iterator.
	shardOf map[string]string
	hang    map[string]bool // shards whose GetRecords go unanswered
	hung    map[string]int  // GetRecords left unanswered, by shard
	closed  chan struct{}
}

// New starts a proxy to target for the test's lifetime.
func New(t testing.TB, target string, rules ...Rule) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("faultproxy: target %q: %v", target, err)
	}
	p := &Proxy{rules: rules, calls: map[string]int{}, throttled: map[string]int{},
		onShard: map[[2]string]int{}, throttledOn: map[[2]string]int{},
		shardOf: map[string]string{}, hang: map[string]bool{}, hung: map[string]int{}, closed: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = p.learnIterators
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target") // e.g. Kinesis_20131202.GetRecords
		op := target[strings.LastIndexByte(target, '.')+1:]
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		shard := ""
		if op == "GetRecords" || op == "GetShardIterator" {
			shard = p.shardFor(body)
			r = r.WithContext(context.WithValue(r.Context(), requestBody{}, body))
			if shard, ok := p.hangs(op, body); ok {
				// Unanswered until the caller gives up (or the test ends):
				// the client must time out by itself.
				select {
				case <-r.Context().Done():
				case <-p.closed:
				}
				p.mu.Lock()
				p.hung[shard]++
				p.mu.Unlock()
				return
			}
		}
		if rule, ok := p.hit(op, shard, body); ok {
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
	t.Cleanup(func() {
		close(p.closed) // Close waits for the hung requests
		srv.Close()
	})
	p.URL = srv.URL
	return p
}

// requestBody is the context key of a request's body, for learnIterators.
type requestBody struct{}

// HangGetRecords leaves every later GetRecords call on shardID unanswered:
// the connection stays open and silent until the client gives up.
func (p *Proxy) HangGetRecords(shardID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hang[shardID] = true
}

// Hung reports, by shard, how many GetRecords calls were left unanswered and
// have ended (the client gave up).
func (p *Proxy) Hung() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.hung))
	for k, v := range p.hung {
		out[k] = v
	}
	return out
}

// hangs reports whether a GetRecords request is for a shard to hang, and
// which; it also remembers the shard a GetShardIterator asks for, so that
// learnIterators can map the answer to it.
func (p *Proxy) hangs(op string, body []byte) (string, bool) {
	var req struct{ ShardId, ShardIterator string }
	if json.Unmarshal(body, &req) != nil || op != "GetRecords" {
		return "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	shard, ok := p.shardOf[req.ShardIterator]
	return shard, ok && p.hang[shard]
}

// shardFor names the shard of a GetShardIterator or GetRecords request
// ("" for an iterator the proxy never saw handed out).
func (p *Proxy) shardFor(body []byte) string {
	var req struct{ ShardId, ShardIterator string }
	if json.Unmarshal(body, &req) != nil {
		return ""
	}
	if req.ShardId != "" {
		return req.ShardId
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.shardOf[req.ShardIterator]
}

// learnIterators maps the iterators in GetShardIterator and GetRecords answers
// to their shards.
func (p *Proxy) learnIterators(resp *http.Response) error {
	target := resp.Request.Header.Get("X-Amz-Target")
	op := target[strings.LastIndexByte(target, '.')+1:]
	if resp.StatusCode != http.StatusOK || (op != "GetRecords" && op != "GetShardIterator") {
		return nil
	}
	reqBody, _ := resp.Request.Context().Value(requestBody{}).([]byte)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var req struct{ ShardId, ShardIterator string }
	_ = json.Unmarshal(reqBody, &req)
	var out struct{ ShardIterator, NextShardIterator string }
	if json.Unmarshal(body, &out) != nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case op == "GetShardIterator" && req.ShardId != "" && out.ShardIterator != "":
		p.shardOf[out.ShardIterator] = req.ShardId
	case op == "GetRecords" && out.NextShardIterator != "":
		if shard, ok := p.shardOf[req.ShardIterator]; ok {
			p.shardOf[out.NextShardIterator] = shard
		}
	}
	return nil
}

// SetRules replaces the rules for the calls from now on (none: forward
// everything); the counts so far are kept.
func (p *Proxy) SetRules(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = rules
}

func (p *Proxy) hit(op, shard string, body []byte) (Rule, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[op]++
	on := [2]string{op, shard}
	if shard != "" {
		p.onShard[on]++
	}
	for _, r := range p.rules {
		if r.BodyContains != "" && !bytes.Contains(body, []byte(r.BodyContains)) {
			continue
		}
		n := p.calls[op]
		if r.Shard != "" {
			if r.Shard != shard {
				continue
			}
			n = p.onShard[on]
		}
		if r.Operation == op && r.Every > 0 && n%r.Every == 0 {
			p.throttled[op]++
			if shard != "" {
				p.throttledOn[on]++
			}
			return r, true
		}
	}
	return Rule{}, false
}

// CallsOn reports how many GetRecords or GetShardIterator calls (op) on
// shard the proxy received, throttled ones included.
func (p *Proxy) CallsOn(op, shard string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.onShard[[2]string{op, shard}]
}

// ThrottledOn reports how many calls of op on shard were throttled.
func (p *Proxy) ThrottledOn(op, shard string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.throttledOn[[2]string{op, shard}]
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
