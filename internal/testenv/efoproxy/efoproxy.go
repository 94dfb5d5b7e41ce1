// Package efoproxy lets the tests exercise enhanced fan-out (SubscribeToShard)
// against kinesis-mock, which serves the subscription's event stream but omits
// the `initial-response` event that real Kinesis sends first on every
// subscription. Current SDKs refuse a stream without it ("deserialize initial
// response: expected initial-response, got SubscribeToShardEvent"). The proxy
// inserts exactly that one message, encoded with aws/protocol/eventstream, and
// passes everything else through byte for byte.
//
// It exists only for tests: nothing in the product may use it, and it changes
// nothing of what the emulator says. It also does, on request, what AWS does
// and the emulator does not: it ends a subscription early (AWS ends every one
// after 5 minutes) and answers one SubscribeToShard with
// ResourceInUseException (AWS's answer to a resubscription too soon after the
// last one). It counts calls by operation, so that a test can prove that an
// EFO consumer makes no GetRecords call.
package efoproxy

import (
	"bytes"
	"encoding/binary"
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

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// Proxy forwards to a kinesis-mock endpoint.
type Proxy struct {
	URL string
	srv *httptest.Server

	mu       sync.Mutex
	calls    map[string]int
	failNext []string      // error codes for the next SubscribeToShard calls
	endAfter int           // end each subscription after this many events (0: never)
	endNow   chan struct{} // closed by EndStreams; replaced for later streams
	streams  int           // subscriptions whose stream was served
	ended    int           // subscriptions the proxy ended early
	// noContinuation is how many of the next events carrying records lose
	// their ContinuationSequenceNumber.
	noContinuation int
}

// New starts a proxy to target (kinesis-mock's plain endpoint) for the
// test's lifetime.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// Start starts a proxy to target until Close, for programs (the benchmark)
// rather than tests.
func Start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("efoproxy: target %q is not a URL: %v", target, err)
	}
	p := &Proxy{calls: map[string]int{}, endNow: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	// Events must reach the SDK as they come, not when a buffer fills.
	rp.FlushInterval = -1
	rp.ModifyResponse = p.modify
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := Operation(r)
		if code, ok := p.count(op); ok {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.Header().Set("X-Amzn-ErrorType", code)
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"__type":%q,"message":"injected by efoproxy"}`, code)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	p.URL = p.srv.URL
	return p, nil
}

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }

// Operation is the Kinesis operation of a request (its X-Amz-Target, e.g.
// Kinesis_20131202.GetRecords, without the prefix).
func Operation(r *http.Request) string {
	target := r.Header.Get("X-Amz-Target")
	return target[strings.LastIndexByte(target, '.')+1:]
}

func (p *Proxy) count(op string) (code string, fail bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[op]++
	if op == "SubscribeToShard" && len(p.failNext) > 0 {
		code, p.failNext = p.failNext[0], p.failNext[1:]
		return code, true
	}
	return "", false
}

// Calls reports how many calls of op the proxy has seen (failed ones too).
func (p *Proxy) Calls(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[op]
}

// FailNextSubscribe makes the next SubscribeToShard call fail with code (e.g.
// "ResourceInUseException") instead of reaching the emulator.
func (p *Proxy) FailNextSubscribe(code string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failNext = append(p.failNext, code)
}

// EndAfterEvents makes every subscription served from now on end (the stream
// closes cleanly, as AWS closes it after 5 minutes) after n events; 0 turns
// it off.
func (p *Proxy) EndAfterEvents(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endAfter = n
}

// DropContinuation makes the next n events that carry records reach the
// consumer without ContinuationSequenceNumber (and without ChildShards). The
// API reference documents the field's absence only for a shard's end, which
// also lists the child shards; a consumer must not take an event lacking it
// on an open shard for that end.
func (p *Proxy) DropContinuation(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.noContinuation = n
}

// EndStreams ends every subscription open now, as AWS does after 5 minutes.
func (p *Proxy) EndStreams() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.endNow)
	p.endNow = make(chan struct{})
}

// Streams reports how many subscription streams were served, and how many of
// them the proxy ended early.
func (p *Proxy) Streams() (served, ended int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.streams, p.ended
}

func (p *Proxy) modify(resp *http.Response) error {
	if Operation(resp.Request) != "SubscribeToShard" || resp.StatusCode != http.StatusOK {
		return nil
	}
	p.mu.Lock()
	p.streams++
	endAfter, endNow := p.endAfter, p.endNow
	p.mu.Unlock()
	resp.Header.Del("Content-Length")
	resp.ContentLength = -1
	pr, pw := io.Pipe()
	upstream := resp.Body
	resp.Body = pr
	go func() {
		ended := p.relay(pw, upstream, endAfter, endNow)
		upstream.Close()
		if ended {
			p.mu.Lock()
			p.ended++
			p.mu.Unlock()
		}
		pw.Close()
	}()
	return nil
}

// relay writes the initial-response event, then copies the emulator's
// messages whole until its stream ends, or until the proxy ends it early
// (reported true).
func (p *Proxy) relay(w *io.PipeWriter, upstream io.Reader, endAfter int, endNow <-chan struct{}) (endedEarly bool) {
	if _, err := w.Write(initialResponse()); err != nil {
		return false
	}
	msgs := make(chan []byte)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := readMessage(upstream)
			if err != nil {
				errc <- err
				return
			}
			msgs <- m
		}
	}()
	for n := 0; ; {
		select {
		case <-endNow:
			return true
		case <-errc:
			return false
		case m := <-msgs:
			m = p.maybeDropContinuation(m)
			if _, err := w.Write(m); err != nil {
				return false
			}
			n++
			if endAfter > 0 && n >= endAfter {
				return true
			}
		}
	}
}

// maybeDropContinuation returns m without its ContinuationSequenceNumber if
// DropContinuation asked for it and m is an event carrying records.
func (p *Proxy) maybeDropContinuation(m []byte) []byte {
	p.mu.Lock()
	want := p.noContinuation > 0
	p.mu.Unlock()
	if !want {
		return m
	}
	msg, err := eventstream.NewDecoder().Decode(bytes.NewReader(m), nil)
	if err != nil {
		return m
	}
	if v := msg.Headers.Get(":event-type"); v == nil || v.Get() != "SubscribeToShardEvent" {
		return m
	}
	var ev map[string]json.RawMessage
	if json.Unmarshal(msg.Payload, &ev) != nil {
		return m
	}
	var recs []json.RawMessage
	if json.Unmarshal(ev["Records"], &recs) != nil || len(recs) == 0 {
		return m
	}
	delete(ev, "ContinuationSequenceNumber")
	delete(ev, "ChildShards")
	payload, err := json.Marshal(ev)
	if err != nil {
		return m
	}
	msg.Payload = payload
	var out bytes.Buffer
	if eventstream.NewEncoder().Encode(&out, msg) != nil {
		return m
	}
	p.mu.Lock()
	p.noContinuation--
	p.mu.Unlock()
	return out.Bytes()
}

// readMessage reads one event-stream message whole: its prelude starts with
// the total length, big-endian.
func readMessage(r io.Reader) ([]byte, error) {
	var prelude [4]byte
	if _, err := io.ReadFull(r, prelude[:]); err != nil {
		return nil, err
	}
	total := binary.BigEndian.Uint32(prelude[:])
	if total < 16 || total > 32<<20 {
		return nil, fmt.Errorf("efoproxy: event-stream message of %d bytes", total)
	}
	m := make([]byte, total)
	copy(m, prelude[:])
	if _, err := io.ReadFull(r, m[4:]); err != nil {
		return nil, err
	}
	return m, nil
}

// initialResponse is the message real Kinesis sends first on a subscription.
func initialResponse() []byte {
	var buf bytes.Buffer
	msg := eventstream.Message{
		Headers: eventstream.Headers{
			{Name: ":message-type", Value: eventstream.StringValue("event")},
			{Name: ":event-type", Value: eventstream.StringValue("initial-response")},
			{Name: ":content-type", Value: eventstream.StringValue("application/json")},
		},
		Payload: []byte("{}"),
	}
	if err := eventstream.NewEncoder().Encode(&buf, msg); err != nil {
		panic(fmt.Sprintf("efoproxy: encode initial-response: %v", err))
	}
	return buf.Bytes()
}
