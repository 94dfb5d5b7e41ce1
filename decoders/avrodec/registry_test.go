package avrodec

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/decoders"
)

// fakeRegistry serves the part of the Confluent Schema Registry REST API the
// decoder uses, as documented: GET /schemas/ids/{id} answers
// {"schema": "..."} (plus schemaType for non-Avro schemas, references when
// set), or 404 {"error_code": 40403, "message": "Schema 7 not found"};
// GET /schemas lists every schema with its subject, version and id. Errors
// use the documented {"error_code", "message"} body.
type fakeRegistry struct {
	mu         sync.Mutex
	schemas    map[int]fakeSchema
	user       string // basic auth required when set
	pass       string
	token      string // bearer token required when set
	fail       int    // answer the next fail requests with failCode
	failCode   int
	retryAfter string        // the failures' Retry-After header, if set
	noList     bool          // no GET /schemas (older registries)
	delay      time.Duration // before answering, to make concurrent fetches overlap
	garbage    bool          // answer 200 with an HTML page
	requests   map[string]int
}

type fakeSchema struct {
	schema     string
	schemaType string
	references bool
}

func newFakeRegistry(t *testing.T, schemas map[int]string) *fakeRegistry {
	f := &fakeRegistry{schemas: map[int]fakeSchema{}, requests: map[string]int{}}
	for id, name := range schemas {
		f.schemas[id] = fakeSchema{schema: schemaText(t, name)}
	}
	return f
}

func (f *fakeRegistry) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[path]
}

func (f *fakeRegistry) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.requests {
		n += c
	}
	return n
}

func (f *fakeRegistry) set(fn func(f *fakeRegistry)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func registryError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error_code": code, "message": msg})
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests[r.URL.Path]++
	delay, fail, failCode, garbage, retryAfter := f.delay, f.fail, f.failCode, f.garbage, f.retryAfter
	if f.fail > 0 {
		f.fail--
	}
	f.mu.Unlock()
	time.Sleep(delay)
	if r.Method != http.MethodGet {
		registryError(w, http.StatusMethodNotAllowed, 405, "method not allowed")
		return
	}
	if f.user != "" {
		if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.pass {
			registryError(w, http.StatusUnauthorized, 40101, "Unauthorized")
			return
		}
	}
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		registryError(w, http.StatusUnauthorized, 40101, "Unauthorized")
		return
	}
	if fail > 0 {
		if failCode == 0 {
			failCode = http.StatusServiceUnavailable
		}
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		registryError(w, failCode, 50003, "Error while forwarding the request to the leader")
		return
	}
	if garbage {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>login</html>"))
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/registry")
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	switch {
	case strings.HasPrefix(path, "/schemas/ids/"):
		id, err := strconv.Atoi(strings.TrimPrefix(path, "/schemas/ids/"))
		f.mu.Lock()
		s, ok := f.schemas[id]
		f.mu.Unlock()
		if err != nil || !ok {
			registryError(w, http.StatusNotFound, 40403, fmt.Sprintf("Schema %s not found", strings.TrimPrefix(path, "/schemas/ids/")))
			return
		}
		_ = json.NewEncoder(w).Encode(s.answer(id, false))
	case path == "/schemas" && !f.noList:
		f.mu.Lock()
		var all []map[string]any
		for id, s := range f.schemas {
			all = append(all, s.answer(id, true))
		}
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(all)
	default:
		registryError(w, http.StatusNotFound, 404, "HTTP 404 Not Found")
	}
}

func (s fakeSchema) answer(id int, listing bool) map[string]any {
	a := map[string]any{"schema": s.schema}
	if s.schemaType != "" {
		a["schemaType"] = s.schemaType
	}
	if s.references {
		a["references"] = []map[string]any{{"name": "com.example.Other", "subject": "other", "version": 1}}
	}
	if listing {
		a["id"], a["subject"], a["version"] = id, fmt.Sprintf("subject-%d", id), 1
	}
	return a
}

// logBuffer collects a decoder's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type registryHarness struct {
	fake    *fakeRegistry
	srv     *httptest.Server
	dec     *Decoder
	errors  atomic.Int32
	logs    *logBuffer
	payload func(name, ext string) []byte
}

// newRegistryHarness serves ids 1, 2, 3 (order_v1, order_v2, all_types, as in
// testdata/avsc/fingerprints.json) and builds a decoder on it.
func newRegistryHarness(t *testing.T, tls bool, mutate func(*Registry)) *registryHarness {
	t.Helper()
	h := &registryHarness{fake: newFakeRegistry(t, map[int]string{1: "order_v1", 2: "order_v2", 3: "all_types"}), logs: &logBuffer{}}
	h.srv = httptest.NewUnstartedServer(h.fake)
	h.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshakes the test means to fail
	if tls {
		h.srv.StartTLS()
	} else {
		h.srv.Start()
	}
	t.Cleanup(h.srv.Close)
	cfg := &Registry{URL: h.srv.URL, Timeout: 2 * time.Second}
	if mutate != nil {
		mutate(cfg)
	}
	var err error
	h.dec, err = New(Config{
		Registry:        cfg,
		OnRegistryError: func() { h.errors.Add(1) },
		Logger:          slog.New(slog.NewTextHandler(h.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.payload = func(name, ext string) []byte { return readFile(t, filepath.Join("testdata", "avsc", name+ext)) }
	return h
}

// TestRegistryConfluent decodes avsc-written Confluent payloads, fetching each
// writer schema once.
func TestRegistryConfluent(t *testing.T) {
	h := newRegistryHarness(t, false, nil)
	for range 3 {
		for name, want := range avscWant {
			got, err := h.dec.Decode(h.payload(name, ".confluent"))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			assertValue(t, got, want)
		}
	}
	for _, id := range []string{"1", "2", "3"} {
		if n := h.fake.count("/schemas/ids/" + id); n != 1 {
			t.Errorf("schema id %s fetched %d times, want once", id, n)
		}
	}
	if h.errors.Load() != 0 {
		t.Errorf("OnRegistryError called %d times", h.errors.Load())
	}
}

// TestRegistryFetchOnceConcurrently: concurrent records with a new id share
// one request.
func TestRegistryFetchOnceConcurrently(t *testing.T) {
	h := newRegistryHarness(t, false, nil)
	h.fake.set(func(f *fakeRegistry) { f.delay = 50 * time.Millisecond })
	in := h.payload("order_v1", ".confluent")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.dec.Decode(in); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := h.fake.total(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestRegistryPathPrefixAndEvolution(t *testing.T) {
	h := newRegistryHarness(t, false, func(r *Registry) { r.URL += "/registry/" })
	// v1 and v2 of one record, with different writer schemas: the fields the
	// dataset reads by name are there in both.
	for _, name := range []string{"order_v1", "order_v2"} {
		got, err := h.dec.Decode(h.payload(name, ".confluent"))
		if err != nil {
			t.Fatal(err)
		}
		m := got.(map[string]any)
		for _, f := range []string{"order_id", "amount", "ts", "status", "tags", "price", "qty"} {
			if _, ok := m[f]; !ok {
				t.Errorf("%s: no field %q", name, f)
			}
		}
	}
	if n := h.fake.count("/registry/schemas/ids/2"); n != 1 {
		t.Fatalf("requests: %v", h.fake.requests)
	}
}

// TestRegistryBadBytes: an unknown id, a wrong magic byte or a short header
// are the record's fault: *Error, never ErrTransient.
func TestRegistryBadBytes(t *testing.T) {
	h := newRegistryHarness(t, false, nil)
	body := h.payload("order_v1", ".bin")
	tests := []struct {
		name        string
		in          []byte
		errContains string
	}{
		{"unknown id", append([]byte{0, 0, 0, 0, 42}, body...), "invalid Avro at byte 1: schema id 42 is not in the registry (Schema 42 not found, error code 40403)"},
		{"wrong magic", append([]byte{1, 0, 0, 0, 1}, body...), "invalid Avro at byte 0: wrong magic byte 0x01: want 0x00 (Confluent wire format) or C3 01 (single-object encoding)"},
		{"raw binary", body, "wrong magic byte"},
		{"empty", nil, "empty payload"},
		{"short header", []byte{0, 0, 1}, "invalid Avro at byte 3: payload ends inside the Confluent header"},
		{"short soe header", []byte{0xc3, 1, 2}, "payload ends inside the single-object header"},
		{"trailing bytes", append(h.payload("order_v1", ".confluent"), 0), "invalid Avro at byte 51: 1 trailing bytes after the record"},
		{"wrong schema", append([]byte{0, 0, 0, 0, 3}, body...), "invalid Avro at byte"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := h.dec.Decode(tc.in)
			var de *Error
			if !errors.As(err, &de) || errors.Is(err, decoders.ErrTransient) || got != nil || !strings.Contains(err.Error(), tc.errContains) {
				t.Fatalf("Decode = %#v, %v; want a non-transient *Error containing %q", got, err, tc.errContains)
			}
		})
	}
	// The 404 is remembered for NotFoundTTL: the next record with that id
	// does not ask again, one after it does.
	before := h.fake.count("/schemas/ids/42")
	_, _ = h.dec.Decode(append([]byte{0, 0, 0, 0, 42}, body...))
	if n := h.fake.count("/schemas/ids/42"); n != before {
		t.Fatalf("asked again within the TTL: %d requests", n)
	}
	h.dec.reg.now = func() time.Time { return time.Now().Add(time.Hour) }
	h.fake.set(func(f *fakeRegistry) { f.schemas[42] = fakeSchema{schema: schemaText(t, "order_v1")} })
	if _, err := h.dec.Decode(append([]byte{0, 0, 0, 0, 42}, body...)); err != nil {
		t.Fatalf("after the TTL, with id 42 registered: %v", err)
	}
	if h.errors.Load() != 0 {
		t.Errorf("OnRegistryError called %d times for bad bytes", h.errors.Load())
	}
}

func TestRegistryUnusableSchemas(t *testing.T) {
	h := newRegistryHarness(t, false, nil)
	h.fake.set(func(f *fakeRegistry) {
		f.schemas[10] = fakeSchema{schema: `syntax = "proto3";`, schemaType: "PROTOBUF"}
		f.schemas[11] = fakeSchema{schema: `{"type":"record","name":"R","fields":[{"name":"o","type":"com.example.Other"}]}`, references: true}
		f.schemas[12] = fakeSchema{schema: `{"type":"record","name":"R"}`}
	})
	for id, want := range map[byte]string{10: "is a PROTOBUF schema, not Avro", 11: "uses schema references", 12: "has an unusable schema: not a valid Avro schema"} {
		for range 2 {
			_, err := h.dec.Decode([]byte{0, 0, 0, 0, id, 0})
			var de *Error
			if !errors.As(err, &de) || !strings.Contains(err.Error(), want) {
				t.Fatalf("id %d: %v; want *Error containing %q", id, err, want)
			}
		}
		if n := h.fake.count(fmt.Sprintf("/schemas/ids/%d", id)); n != 1 {
			t.Errorf("id %d fetched %d times, want once", id, n)
		}
	}
}

// TestRegistryDown: no registry is transient (ErrTransient, not *Error), at
// once: one request per Decode, since the pipeline's retry is the one layer
// that retries it; counted and logged once for the outage.
func TestRegistryDown(t *testing.T) {
	h := newRegistryHarness(t, false, nil)
	h.srv.Close()
	for range 2 {
		_, err := h.dec.Decode(h.payload("order_v1", ".confluent"))
		var de *Error
		if !errors.Is(err, decoders.ErrTransient) || errors.As(err, &de) {
			t.Fatalf("Decode = %v; want ErrTransient and no *Error", err)
		}
		if !strings.Contains(err.Error(), "schema registry unavailable: GET "+h.srv.URL+"/schemas/ids/1") {
			t.Errorf("error: %v", err)
		}
	}
	if n := h.errors.Load(); n != 2 {
		t.Errorf("OnRegistryError called %d times, want 2 (one per request)", n)
	}
	const line = "schema registry unavailable; records that need it are retried without checkpointing"
	if n := strings.Count(h.logs.String(), line); n != 1 {
		t.Errorf("%d log lines for one outage, want 1: %s", n, h.logs)
	}
}

// TestRegistryRetries: a failed fetch is ErrTransient at once, and the next
// Decode (the pipeline's retry) asks again and succeeds once the registry
// answers.
func TestRegistryRetries(t *testing.T) {
	h := newRegistryHarness(t, false, nil)
	h.fake.set(func(f *fakeRegistry) { f.fail = 2 })
	for i := range 2 {
		if _, err := h.dec.Decode(h.payload("order_v1", ".confluent")); !errors.Is(err, decoders.ErrTransient) ||
			!strings.Contains(err.Error(), "answered 503 Service Unavailable: Error while forwarding") {
			t.Fatalf("503 number %d: %v; want ErrTransient", i+1, err)
		}
	}
	if _, err := h.dec.Decode(h.payload("order_v1", ".confluent")); err != nil {
		t.Fatalf("503, 503, 200: %v", err)
	}
	if n := h.errors.Load(); n != 2 {
		t.Errorf("OnRegistryError called %d times, want 2", n)
	}
	if n := h.fake.count("/schemas/ids/1"); n != 3 {
		t.Errorf("id 1 asked %d times, want 3 (one per Decode)", n)
	}
	if !strings.Contains(h.logs.String(), "schema registry answers again") {
		t.Errorf("no recovery log line: %s", h.logs)
	}
}

// TestRegistryRetryAfter: within a 429's Retry-After, Decode fails
// transiently without asking the registry; after it, it asks again.
func TestRegistryRetryAfter(t *testing.T) {
	h := newRegistryHarness(t, false, nil)
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	h.dec.reg.now = func() time.Time { return now }
	h.fake.set(func(f *fakeRegistry) { f.fail, f.failCode, f.retryAfter = 1, http.StatusTooManyRequests, "2" })
	_, err := h.dec.Decode(h.payload("order_v2", ".confluent"))
	if !errors.Is(err, decoders.ErrTransient) || !strings.Contains(err.Error(), "answered 429 Too Many Requests") {
		t.Fatalf("429: %v; want ErrTransient", err)
	}
	now = now.Add(time.Second)
	_, err = h.dec.Decode(h.payload("order_v2", ".confluent"))
	if !errors.Is(err, decoders.ErrTransient) || !strings.Contains(err.Error(), "Retry-After") {
		t.Fatalf("within Retry-After: %v; want ErrTransient naming it", err)
	}
	if n := h.fake.count("/schemas/ids/2"); n != 1 {
		t.Errorf("id 2 asked %d times within its Retry-After, want once", n)
	}
	now = now.Add(time.Second)
	if _, err := h.dec.Decode(h.payload("order_v2", ".confluent")); err != nil {
		t.Fatalf("after Retry-After: %v", err)
	}
}

// TestRegistryGarbage: a 200 that is not the registry's JSON (a proxy's login
// page) is a configuration problem, transient, not the record's fault.
func TestRegistryGarbage(t *testing.T) {
	h := newRegistryHarness(t, false, nil)
	h.fake.set(func(f *fakeRegistry) { f.garbage = true })
	_, err := h.dec.Decode(h.payload("order_v1", ".confluent"))
	if !errors.Is(err, decoders.ErrTransient) || !strings.Contains(err.Error(), "answer is not a registry schema") {
		t.Fatalf("Decode = %v", err)
	}
	if h.errors.Load() != 1 {
		t.Errorf("OnRegistryError called %d times, want 1", h.errors.Load())
	}
}

func TestRegistryAuth(t *testing.T) {
	tests := []struct {
		name        string
		server      func(f *fakeRegistry)
		client      func(r *Registry)
		errContains string // "" for success
	}{
		{"basic", func(f *fakeRegistry) { f.user, f.pass = "u", "p@ss" }, func(r *Registry) { r.Username, r.Password = "u", "p@ss" }, ""},
		{"basic, wrong password", func(f *fakeRegistry) { f.user, f.pass = "u", "p@ss" }, func(r *Registry) { r.Username, r.Password = "u", "nope" },
			"answered 401 Unauthorized: Unauthorized, error code 40101 (check format.avro.registry username and password, or token)"},
		{"basic, none", func(f *fakeRegistry) { f.user, f.pass = "u", "p@ss" }, func(r *Registry) {}, "answered 401"},
		{"bearer", func(f *fakeRegistry) { f.token = "s3cret" }, func(r *Registry) { r.Token = "s3cret" }, ""},
		{"bearer, wrong", func(f *fakeRegistry) { f.token = "s3cret" }, func(r *Registry) { r.Token = "other" }, "answered 401"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newRegistryHarness(t, false, tc.client)
			h.fake.set(tc.server)
			_, err := h.dec.Decode(h.payload("order_v1", ".confluent"))
			if tc.errContains == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, decoders.ErrTransient) || !strings.Contains(err.Error(), tc.errContains) {
				t.Fatalf("Decode = %v; want ErrTransient containing %q", err, tc.errContains)
			}
			if n := h.fake.total(); n != 1 {
				t.Errorf("%d requests: a refused credential is not retried within Decode", n)
			}
			for _, secret := range []string{"p@ss", "nope", "s3cret", "other"} {
				if strings.Contains(err.Error(), secret) || strings.Contains(h.logs.String(), secret) {
					t.Errorf("credential %q in the error or the logs", secret)
				}
			}
		})
	}
}

func TestRegistryTLS(t *testing.T) {
	var srvCert []byte
	h := newRegistryHarness(t, true, func(r *Registry) {})
	srvCert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.srv.Certificate().Raw})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srvCert, 0o600); err != nil {
		t.Fatal(err)
	}
	// Without the CA the server's certificate is unknown: transient (the
	// configuration is wrong, not the record).
	_, err := h.dec.Decode(h.payload("order_v1", ".confluent"))
	if !errors.Is(err, decoders.ErrTransient) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without ca_file: %v", err)
	}
	d := mustNew(t, Config{Registry: &Registry{URL: h.srv.URL, CAFile: ca}})
	got, err := d.Decode(h.payload("order_v1", ".confluent"))
	if err != nil {
		t.Fatalf("with ca_file: %v", err)
	}
	assertValue(t, got, avscWant["order_v1"])
}

// TestRegistrySingleObject: single-object payloads with a registry find their
// schema by fingerprint, listing the registry's schemas on a miss.
func TestRegistrySingleObject(t *testing.T) {
	h := newRegistryHarness(t, false, nil)
	for name, want := range avscWant {
		got, err := h.dec.Decode(h.payload(name, ".soe"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		assertValue(t, got, want)
	}
	if n := h.fake.count("/schemas"); n != 1 {
		t.Errorf("GET /schemas %d times, want 1", n)
	}
	// Unknown fingerprints, 50 different ones, do not list again within
	// NotFoundTTL of the last listing: each listing downloads the whole
	// registry.
	for i := range 50 {
		unknown := append(binary.LittleEndian.AppendUint64([]byte{0xc3, 1}, 0x0807060504030201+uint64(i)), h.payload("order_v1", ".bin")...)
		_, err := h.dec.Decode(unknown)
		var de *Error
		if !errors.As(err, &de) || !strings.Contains(err.Error(), fmt.Sprintf("schema fingerprint %#016x is not among the registry's schemas", 0x0807060504030201+i)) {
			t.Fatalf("unknown fingerprint %d: %v", i, err)
		}
	}
	if n := h.fake.count("/schemas"); n != 1 {
		t.Errorf("50 unknown fingerprints: GET /schemas %d times in all, want 1", n)
	}
	// After NotFoundTTL one more listing, then none again.
	later := time.Now().Add(defaultNotFoundTTL + time.Second)
	h.dec.reg.now = func() time.Time { return later }
	for i := range 3 {
		unknown := append(binary.LittleEndian.AppendUint64([]byte{0xc3, 1}, 0x0907060504030201+uint64(i)), h.payload("order_v1", ".bin")...)
		if _, err := h.dec.Decode(unknown); err == nil {
			t.Fatal("unknown fingerprint decoded")
		}
	}
	if n := h.fake.count("/schemas"); n != 2 {
		t.Errorf("GET /schemas %d times, want 2", n)
	}
	// Confluent payloads with the listed ids need no more requests.
	if _, err := h.dec.Decode(h.payload("all_types", ".confluent")); err != nil {
		t.Fatal(err)
	}
	if n := h.fake.total(); n != 2 {
		t.Errorf("%d requests in all, want 2", n)
	}
}

// TestRegistrySingleObjectWithoutListing: with a registry that has no
// GET /schemas, fingerprints of schemas fetched by id still work.
func TestRegistrySingleObjectWithoutListing(t *testing.T) {
	h := newRegistryHarness(t, false, nil)
	h.fake.set(func(f *fakeRegistry) { f.noList = true })
	_, err := h.dec.Decode(h.payload("order_v1", ".soe"))
	var de *Error
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "is not among the registry's schemas") {
		t.Fatalf("before any fetch: %v", err)
	}
	if !strings.Contains(h.logs.String(), "schema registry has no GET /schemas") {
		t.Errorf("no warning: %s", h.logs)
	}
	if _, err := h.dec.Decode(h.payload("order_v1", ".confluent")); err != nil {
		t.Fatal(err)
	}
	got, err := h.dec.Decode(h.payload("order_v1", ".soe"))
	if err != nil {
		t.Fatalf("after fetching id 1: %v", err)
	}
	assertValue(t, got, avscWant["order_v1"])
	if n := h.fake.count("/schemas"); n != 1 {
		t.Errorf("GET /schemas %d times, want 1", n)
	}
}

// TestRegistryPreload: preloaded schemas need no request.
func TestRegistryPreload(t *testing.T) {
	h := newRegistryHarness(t, false, func(r *Registry) {
		r.Preload = map[int]string{1: schemaText(t, "order_v1"), 3: schemaText(t, "all_types")}
	})
	for _, in := range [][]byte{h.payload("order_v1", ".confluent"), h.payload("all_types", ".soe"), h.payload("all_types_nulls", ".confluent")} {
		if _, err := h.dec.Decode(in); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.fake.total(); n != 0 {
		t.Fatalf("%d requests", n)
	}
}
