package avrodec

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/kinesis-ingest/kinesis-ingest/decoders"
	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/redact"
)

// Registry is a Confluent-compatible schema registry connection: the
// documented REST API (GET /schemas/ids/{id}, GET /schemas), as served by
// Confluent Schema Registry and compatible servers.
type Registry struct {
	// URL is the registry's http or https base URL; a path prefix is kept
	// (https://host/registry → https://host/registry/schemas/ids/7).
	URL string
	// Username and Password authenticate with HTTP basic auth; Token with
	// "Authorization: Bearer". Set at most one way.
	Username string
	Password string
	Token    string
	// CAFile is a PEM bundle trusted for https instead of the system roots.
	CAFile string

	// Timeout bounds one request; default 5s. A request that fails (network
	// errors, 5xx, 408, 429, 401, 403, an answer that is not the registry's)
	// is not retried here: Decode returns decoders.ErrTransient at once and
	// the pipeline, which owns the shard's context, retries the record with
	// its backoff. A Retry-After (up to 5s) makes the fetches within it fail
	// the same way without a request.
	Timeout time.Duration
	// NotFoundTTL is how long an id the registry answered 404 for, or a
	// fingerprint none of its schemas has, stays unknown before the registry
	// is asked again; default 30s. Within it such records fail at once.
	// It is also the least time between two listings (GET /schemas) of the
	// registry, whatever fingerprints records carry: a schema registered
	// since the last listing is found up to NotFoundTTL later.
	NotFoundTTL time.Duration
	// Preload caches schemas by id up front, as if fetched.
	Preload map[int]string
	// HTTPClient, if set, replaces the client built from CAFile and Timeout.
	HTTPClient *http.Client
}

const (
	defaultTimeout     = 5 * time.Second
	defaultNotFoundTTL = 30 * time.Second
	maxRetryAfter      = 5 * time.Second
	maxBody            = 64 << 20
	maxMissing         = 4096 // negative-cache entries kept before expired ones are pruned
)

type registry struct {
	base     string // no trailing slash
	shown    string // base with any password redacted, for messages
	client   *http.Client
	username string
	password string
	token    string
	ttl      time.Duration
	onError  func()
	log      *slog.Logger
	now      func() time.Time
	down     atomic.Bool
	// quietUntil (Unix nanoseconds) is the end of the registry's last
	// Retry-After: until then a fetch fails without asking.
	quietUntil atomic.Int64

	ids *schemaCache[int64]
	// fps is copy-on-write: lookups are lock-free, writes hold mu.
	fps atomic.Pointer[map[uint64]*schemaEntry]

	mu         sync.Mutex
	missingFP  map[uint64]time.Time
	listCall   *call
	listedAt   time.Time // the last successful GET /schemas
	noListing  bool      // the registry has no GET /schemas
	listWarned bool
}

func newRegistry(cfg *Registry, onError func(), log *slog.Logger) (*registry, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("avrodec: registry URL %q is not an http or https URL", redact.URL(cfg.URL))
	}
	if cfg.Token != "" && (cfg.Username != "" || cfg.Password != "") {
		return nil, errors.New("avrodec: registry: set a token or a username and password, not both")
	}
	r := &registry{
		base:     strings.TrimRight(u.String(), "/"),
		shown:    strings.TrimRight(redact.URL(u.String()), "/"),
		username: cfg.Username,
		password: cfg.Password,
		token:    cfg.Token,
		ttl:      cfg.NotFoundTTL,
		onError:  onError,
		log:      log,
		now:      time.Now,

		missingFP: map[uint64]time.Time{},
	}
	if r.ttl <= 0 {
		r.ttl = defaultNotFoundTTL
	}
	r.ids = newSchemaCache[int64](r.ttl, func() time.Time { return r.now() })
	r.client = cfg.HTTPClient
	if r.client == nil {
		timeout := cfg.Timeout
		if timeout <= 0 {
			timeout = defaultTimeout
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("avrodec: registry CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("avrodec: registry CA file %q holds no PEM certificate", cfg.CAFile)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		r.client = &http.Client{Transport: tr, Timeout: timeout}
	}
	fps := map[uint64]*schemaEntry{}
	r.fps.Store(&fps)
	ids := map[int64]*cached{}
	for id, text := range cfg.Preload {
		e, err := compileSchema(text)
		if err != nil {
			return nil, fmt.Errorf("avrodec: registry preload id %d: %w", id, err)
		}
		ids[int64(id)] = &cached{entry: e}
	}
	r.store(ids)
	return r, nil
}

// byID returns the schema with a Confluent id, fetching it once.
func (r *registry) byID(id int64) (*schemaEntry, error) {
	c, err := r.ids.get(id, r.fetchID)
	var me *missingError
	if errors.As(err, &me) {
		return nil, notFound(id, me.msg)
	}
	if err != nil {
		return nil, err
	}
	return c.use(1, fmt.Sprintf("schema id %d", id))
}

func notFound(id int64, msg string) error {
	s := fmt.Sprintf("schema id %d is not in the registry", id)
	if msg != "" {
		s += " (" + msg + ")"
	}
	return &Error{Offset: 1, Msg: s}
}

// schemaAnswer is the registry's description of one schema.
type schemaAnswer struct {
	ID         int64             `json:"id"`
	SchemaType string            `json:"schemaType"`
	Schema     string            `json:"schema"`
	References []json.RawMessage `json:"references"`
}

func (r *registry) fetchID(id int64) (*cached, error) {
	path := "/schemas/ids/" + strconv.FormatInt(id, 10)
	body, status, err := r.get(path)
	if err != nil {
		return nil, err
	}
	if status == http.StatusNotFound {
		msg := registryMessage(body)
		if msg == "" {
			// A registry says why; a bare 404 may be a wrong URL, which would
			// dead-letter every record.
			r.log.Warn("schema registry answered 404 without a registry error; records with this schema id are decode errors; if every id is missing, check format.avro.registry.url",
				"url", r.shown+path)
		}
		return nil, &missingError{msg: msg}
	}
	var a schemaAnswer
	if err := json.Unmarshal(body, &a); err != nil || a.Schema == "" {
		return nil, r.garbled(path, err)
	}
	c := compileAnswer(a)
	r.addFingerprints(c)
	return c, nil
}

// garbled handles a 200 answer that is not the registry's JSON: a proxy or a
// wrong URL, which fixing the configuration cures, so it is transient.
func (r *registry) garbled(path string, err error) error {
	if err == nil {
		err = errors.New("no schema in the answer")
	}
	r.failed()
	r.log.Warn("schema registry answered with something that is not a schema; check format.avro.registry.url; records that need it are retried without checkpointing",
		"url", r.shown+path, "err", err)
	return fmt.Errorf("avrodec: schema registry %s: GET %s: answer is not a registry schema: %w: %w", r.shown, path, err, decoders.ErrTransient)
}

func compileAnswer(a schemaAnswer) *cached {
	switch {
	case a.SchemaType != "" && a.SchemaType != "AVRO":
		return &cached{err: "is a " + a.SchemaType + " schema, not Avro"}
	case len(a.References) > 0:
		return &cached{err: "uses schema references, which this decoder does not resolve"}
	}
	e, err := compileSchema(a.Schema)
	if err != nil {
		return &cached{err: "has an unusable schema: " + err.Error()}
	}
	return &cached{entry: e}
}

// store caches fetched ids and their fingerprints.
func (r *registry) store(add map[int64]*cached) {
	for _, c := range add {
		r.addFingerprints(c)
	}
	r.ids.store(add)
}

// addFingerprints makes c's schema found by its single-object fingerprints.
func (r *registry) addFingerprints(c *cached) {
	e := c.cachedEntry()
	if e == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.fps.Load()
	fps := make(map[uint64]*schemaEntry, len(old)+2)
	for k, v := range old {
		fps[k] = v
	}
	fps[e.fp], fps[e.goavroFP] = e, e
	delete(r.missingFP, e.fp)
	delete(r.missingFP, e.goavroFP)
	r.fps.Store(&fps)
}

// pruneMissingFP drops expired unknown fingerprints once there are many;
// r.mu must be held.
func (r *registry) pruneMissingFP() {
	if len(r.missingFP) < maxMissing {
		return
	}
	now := r.now()
	for k, until := range r.missingFP {
		if !now.Before(until) {
			delete(r.missingFP, k)
		}
	}
}

// byFingerprint returns the schema with a single-object fingerprint among the
// schemas fetched so far or, on a miss, among all the registry's schemas.
func (r *registry) byFingerprint(fp uint64) (*schemaEntry, error) {
	if e := (*r.fps.Load())[fp]; e != nil {
		return e, nil
	}
	unknown := &Error{Offset: 2, Msg: fmt.Sprintf("schema fingerprint %#016x is not among the registry's schemas", fp)}
	r.mu.Lock()
	if e := (*r.fps.Load())[fp]; e != nil {
		r.mu.Unlock()
		return e, nil
	}
	// One listing per NotFoundTTL, whatever the fingerprint: records with
	// made-up fingerprints must not each download the whole registry.
	if until, ok := r.missingFP[fp]; (ok && r.now().Before(until)) || r.noListing ||
		(!r.listedAt.IsZero() && r.now().Before(r.listedAt.Add(r.ttl))) {
		r.mu.Unlock()
		return nil, unknown
	}
	cl := r.listCall
	if cl == nil {
		cl = &call{done: make(chan struct{})}
		r.listCall = cl
		r.mu.Unlock()
		cl.err = r.list()
		r.mu.Lock()
		r.listCall = nil
		r.mu.Unlock()
		close(cl.done)
	} else {
		r.mu.Unlock()
		<-cl.done
	}
	if cl.err != nil {
		return nil, cl.err
	}
	if e := (*r.fps.Load())[fp]; e != nil {
		return e, nil
	}
	r.mu.Lock()
	r.pruneMissingFP()
	r.missingFP[fp] = r.now().Add(r.ttl)
	r.mu.Unlock()
	return nil, unknown
}

// list fetches every schema of the registry (GET /schemas) and caches the Avro
// ones by id and fingerprint.
func (r *registry) list() error {
	body, status, err := r.get("/schemas")
	if err != nil {
		return err
	}
	if status == http.StatusNotFound {
		r.mu.Lock()
		r.noListing = true
		warn := !r.listWarned
		r.listWarned = true
		r.mu.Unlock()
		if warn {
			r.log.Warn("schema registry has no GET /schemas: single-object records can only use schemas already fetched by id, others are decode errors",
				"url", r.shown+"/schemas")
		}
		return nil
	}
	var all []schemaAnswer
	if err := json.Unmarshal(body, &all); err != nil {
		return r.garbled("/schemas", err)
	}
	add := map[int64]*cached{}
	for _, a := range all {
		if r.ids.has(a.ID) || a.Schema == "" {
			continue
		}
		if _, ok := add[a.ID]; !ok {
			add[a.ID] = compileAnswer(a)
		}
	}
	r.store(add)
	r.mu.Lock()
	r.listedAt = r.now()
	r.mu.Unlock()
	return nil
}

// get GETs base+path once. It returns the body of a 200 or a 404, or an
// error wrapping decoders.ErrTransient: the caller's retry (the pipeline's)
// asks again, so this is no retry loop of its own.
func (r *registry) get(path string) ([]byte, int, error) {
	if until := r.quietUntil.Load(); until != 0 && r.now().UnixNano() < until {
		return nil, 0, fmt.Errorf("avrodec: schema registry unavailable: GET %s: it asked to wait until %s (Retry-After): %w",
			r.shown+path, time.Unix(0, until).UTC().Format(time.RFC3339), decoders.ErrTransient)
	}
	body, status, retryAfter, err := r.do(r.base + path)
	if err == nil && (status == http.StatusOK || status == http.StatusNotFound) {
		if r.down.Swap(false) {
			r.log.Info("schema registry answers again", "url", r.shown)
		}
		return body, status, nil
	}
	r.failed()
	if err == nil {
		hint := ""
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			hint = " (check format.avro.registry username and password, or token)"
		}
		err = fmt.Errorf("answered %d %s%s%s", status, http.StatusText(status), withMessage(body), hint)
	}
	if retryAfter > 0 {
		r.quietUntil.Store(r.now().Add(min(retryAfter, maxRetryAfter)).UnixNano())
	}
	// Once per outage: the pipeline logs each retry of a record.
	if !r.down.Swap(true) {
		r.log.Warn("schema registry unavailable; records that need it are retried without checkpointing",
			"url", r.shown+path, "err", err)
	}
	return nil, 0, fmt.Errorf("avrodec: schema registry unavailable: GET %s: %w: %w", r.shown+path, err, decoders.ErrTransient)
}

func (r *registry) failed() {
	if r.onError != nil {
		r.onError()
	}
}

func (r *registry) do(u string) (body []byte, status int, retryAfter time.Duration, err error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, 0, err
	}
	req.Header.Set("Accept", "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json")
	req.Header.Set("User-Agent", "kinesis-ingest")
	switch {
	case r.token != "":
		req.Header.Set("Authorization", "Bearer "+r.token)
	case r.username != "" || r.password != "":
		req.SetBasicAuth(r.username, r.password)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		// net/http hides the password of a URL's userinfo, not the user.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = redact.URL(ue.URL)
		}
		return nil, 0, 0, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err == nil && len(body) > maxBody {
		err = fmt.Errorf("answer larger than %d bytes", maxBody)
	}
	if err != nil {
		return nil, 0, 0, fmt.Errorf("read answer: %w", err)
	}
	if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	return body, resp.StatusCode, retryAfter, nil
}

// registryMessage extracts the message of a registry error answer
// ({"error_code":40403,"message":"Schema 7 not found"}).
func registryMessage(body []byte) string {
	var e struct {
		Code    int    `json:"error_code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		return ""
	}
	if e.Code != 0 {
		return fmt.Sprintf("%s, error code %d", clip(e.Message), e.Code)
	}
	return clip(e.Message)
}

func withMessage(body []byte) string {
	if m := registryMessage(body); m != "" {
		return ": " + m
	}
	return ""
}

func clip(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
