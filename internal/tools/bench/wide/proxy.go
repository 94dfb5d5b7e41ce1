package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// counts is what a proxy has seen so far.
type counts struct {
	calls   map[string]int // by operation (X-Amz-Target's suffix)
	refused map[string]int // answered with an error (a refused conditional write)
	// read and write are the capacity units DynamoDB reported: dynalite
	// computes them as AWS does (a read ceil(bytes / 4 KiB), half when
	// eventually consistent, a scan page its items' bytes together; a write
	// ceil(bytes / 1 KiB)).
	read, write float64
}

func (c counts) sub(o counts) counts {
	d := counts{calls: map[string]int{}, refused: map[string]int{}, read: c.read - o.read, write: c.write - o.write}
	for k, v := range c.calls {
		d.calls[k] = v - o.calls[k]
	}
	for k, v := range c.refused {
		d.refused[k] = v - o.refused[k]
	}
	return d
}

// proxy is a reverse proxy in front of an emulator that counts the calls
// the workers make, by operation. The workers are separate processes, so
// the bench counts on the wire, as BenchmarkCoordination's faultproxy does
// in-process (that one needs a testing.TB and throttles; this one only
// counts). In front of DynamoDB it also asks every item call for its
// consumed capacity (ReturnConsumedCapacity TOTAL, added to the request:
// dynalite does not check signatures) and sums what comes back.
type proxy struct {
	URL      string
	capacity bool
	srv      *http.Server

	mu sync.Mutex
	c  counts
}

var readOps = map[string]bool{"GetItem": true, "Scan": true, "Query": true}
var writeOps = map[string]bool{"UpdateItem": true, "PutItem": true, "DeleteItem": true}

// startProxy serves a proxy to target on a free loopback port until close.
func startProxy(target string, capacity bool) (*proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{URL: "http://" + l.Addr().String(), capacity: capacity,
		c: counts{calls: map[string]int{}, refused: map[string]int{}}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: 0}
	rp.ModifyResponse = p.response
	// A call the proxy could not complete (its caller gone: the killed
	// worker's calls) counts as refused, and is not logged.
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		target := r.Header.Get("X-Amz-Target")
		p.mu.Lock()
		p.c.refused[target[strings.LastIndexByte(target, '.')+1:]]++
		p.mu.Unlock()
		w.WriteHeader(http.StatusBadGateway)
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target") // e.g. DynamoDB_20120810.UpdateItem
		op := target[strings.LastIndexByte(target, '.')+1:]
		p.mu.Lock()
		p.c.calls[op]++
		p.mu.Unlock()
		if p.capacity && (readOps[op] || writeOps[op]) {
			if err := askCapacity(r); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

// askCapacity adds ReturnConsumedCapacity TOTAL to a DynamoDB item call.
func askCapacity(r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err == nil {
		m["ReturnConsumedCapacity"] = json.RawMessage(`"TOTAL"`)
		if b, err := json.Marshal(m); err == nil {
			body = b
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// response counts refusals and, in front of DynamoDB, the capacity units an
// answer reports, handing the body on unchanged.
func (p *proxy) response(resp *http.Response) error {
	target := resp.Request.Header.Get("X-Amz-Target")
	op := target[strings.LastIndexByte(target, '.')+1:]
	if resp.StatusCode >= 300 {
		p.mu.Lock()
		p.c.refused[op]++
		p.mu.Unlock()
	}
	if !p.capacity || resp.StatusCode != http.StatusOK || !(readOps[op] || writeOps[op]) {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return err
	}
	plain := body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
			plain, _ = io.ReadAll(zr)
		}
	}
	var out struct {
		ConsumedCapacity *struct{ CapacityUnits float64 }
	}
	if json.Unmarshal(plain, &out) != nil || out.ConsumedCapacity == nil {
		return nil
	}
	p.mu.Lock()
	if writeOps[op] {
		p.c.write += out.ConsumedCapacity.CapacityUnits
	} else {
		p.c.read += out.ConsumedCapacity.CapacityUnits
	}
	p.mu.Unlock()
	return nil
}

// get is a copy of the counts so far.
func (p *proxy) get() counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.c.sub(counts{})
}

func (p *proxy) close() { _ = p.srv.Close() }
