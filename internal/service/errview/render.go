package errview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
	"unicode"
)

// WriteText writes s for a terminal. Everything that came from a record is
// stripped of control characters, so a payload cannot drive the terminal.
func WriteText(w io.Writer, s *Summary) error {
	ew := &errWriter{w: w}
	ew.printf("dead letters: %d", s.Total)
	if f := describeFilter(s.Filter); f != "" {
		ew.printf(" (%s)", f)
	}
	ew.printf(" in %d files", s.Stats.Files)
	if s.Stats.Skipped > 0 {
		ew.printf("; %d unreadable lines skipped", s.Stats.Skipped)
	}
	ew.printf("\n")
	if s.Total == 0 {
		return ew.err
	}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nby reason\n")
	for _, r := range s.ByReason {
		fmt.Fprintf(tw, "  %s\t%d\n", r.Reason, r.Count)
	}
	if len(s.ByField) > 0 {
		fmt.Fprintf(tw, "\nby field (schema_error)\n")
		for _, f := range s.ByField {
			fmt.Fprintf(tw, "  %s\t%s\t%d\n", safe(f.Dataset), safe(f.Field), f.Count)
		}
	}
	_ = tw.Flush()
	ew.printf("\nlatest %d\n", len(s.Latest))
	for _, e := range s.Latest {
		ds := ""
		if e.Dataset != "" {
			ds = " dataset=" + safe(e.Dataset)
		}
		ew.printf("  %s  %s  %s  seq=%s/%d  key=%s%s\n", e.ArrivalTime.Format(timeFormat), e.Reason, safe(e.ShardID),
			safe(e.SequenceNumber), e.SubSequence, safe(e.PartitionKey), ds)
		ew.printf("    error: %s\n", safe(e.Error))
		more := ""
		if e.Preview.Truncated {
			more = " …"
		}
		ew.printf("    data (%d bytes, %s): %s%s\n", e.Size, e.Preview.Encoding, safe(e.Preview.Text), more)
	}
	return ew.err
}

const timeFormat = "2006-01-02T15:04:05.000000Z"

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

// Safe is s with control characters replaced, on one line: what came from
// a record, printed for a terminal.
func Safe(s string) string { return safe(s) }

// safe replaces control characters (terminal escapes, newlines) with their
// Go escapes, on one line.
func safe(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsPrint(r) || r == ' ' {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

func describeFilter(f FilterView) string {
	var parts []string
	if len(f.Reasons) > 0 {
		parts = append(parts, "reason="+strings.Join(f.Reasons, ","))
	}
	if f.Shard != "" {
		parts = append(parts, "shard="+safe(f.Shard))
	}
	if f.Since != nil {
		parts = append(parts, "since="+f.Since.Format(time.RFC3339))
	}
	if f.Until != nil {
		parts = append(parts, "until="+f.Until.Format(time.RFC3339))
	}
	return strings.Join(parts, " ")
}

// ParseQuery reads a Query from URL parameters: reason (repeated or
// comma-separated), shard, since, until (as ParseTime takes them) and limit.
func ParseQuery(v url.Values, now time.Time) (Query, error) {
	var q Query
	var errs []error
	var err error
	if q.Reasons, err = ParseReasons(v["reason"]...); err != nil {
		errs = append(errs, fmt.Errorf("reason: %w", err))
	}
	q.Shard = v.Get("shard")
	if q.Since, err = ParseTime(v.Get("since"), now); err != nil {
		errs = append(errs, fmt.Errorf("since: %w", err))
	}
	if q.Until, err = ParseTime(v.Get("until"), now); err != nil {
		errs = append(errs, fmt.Errorf("until: %w", err))
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxLimit {
			errs = append(errs, fmt.Errorf("limit: %q is not a number from 1 to %d", l, MaxLimit))
		}
		q.Limit = n
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		errs = append(errs, fmt.Errorf("since: %s is not before until %s", q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339)))
	}
	return q, errors.Join(errs...)
}

// Handler serves the errors view of src: JSON, or HTML when the path ends in
// ".html" or the client prefers text/html (a browser). Query parameters are
// ParseQuery's.
//
// A scan reads every dead letter, so the work clients can cause is bounded:
// one scan runs at a time; requests with the same parameters share one scan
// and reuse its view for CacheTTL (so 20 requests at once cost one scan,
// and a relative since=1h may be up to CacheTTL old); at most MaxPending
// distinct views may be queued or scanning, a request for another gets 503
// with Retry-After.
func Handler(src Source, log *slog.Logger) http.Handler {
	return newViewCache(src).handler(log)
}

func (c *viewCache) handler(log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asHTML := strings.HasSuffix(r.URL.Path, ".html") || prefersHTML(r.Header.Get("Accept"))
		q, err := ParseQuery(r.URL.Query(), time.Now())
		if err != nil {
			writeError(w, asHTML, http.StatusBadRequest, err.Error())
			return
		}
		s, err := c.summary(r.Context(), viewKey(r.URL.Query()), q)
		switch {
		case errors.Is(err, errBusy):
			w.Header().Set("Retry-After", strconv.Itoa(int(CacheTTL/time.Second)))
			writeError(w, asHTML, http.StatusServiceUnavailable, "the errors view is busy scanning for other requests; retry in a few seconds")
			return
		case errors.Is(err, ErrNotSupported):
			writeError(w, asHTML, http.StatusNotImplemented, err.Error())
			return
		case r.Context().Err() != nil:
			return // the client went away
		case err != nil:
			log.Error("errors view: cannot read dead letters", "err", err)
			writeError(w, asHTML, http.StatusInternalServerError, "cannot read the dead letters; the worker's log says why")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if !asHTML {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(s)
			return
		}
		setHTMLHeaders(w)
		if err := page().Execute(w, pageData{S: s, Q: r.URL.Query(), Generated: time.Now().UTC()}); err != nil {
			log.Warn("errors view: render page", "err", err)
		}
	})
}

const (
	// CacheTTL is how long the errors view reuses a scan for the same
	// parameters.
	CacheTTL = 5 * time.Second
	// MaxPending is how many distinct views may be queued or scanning.
	MaxPending = 4
	// ScanTimeout bounds one scan of the errors view.
	ScanTimeout = 2 * time.Minute
	// maxViews bounds the views kept (each at most MaxLimit entries).
	maxViews = 8
)

var errBusy = errors.New("errors view busy")

type cachedView struct {
	s  *Summary
	at time.Time
}

// flight is a scan that requests for one view wait on.
type flight struct {
	done    chan struct{}
	s       *Summary
	err     error
	waiters atomic.Int32 // requests waiting, for tests
}

// viewCache runs one scan at a time, shares it among the requests for the
// same view and reuses the view for ttl.
type viewCache struct {
	src  Source
	ttl  time.Duration
	scan chan struct{} // holds a token while a scan runs
	now  func() time.Time

	mu      sync.Mutex
	views   map[string]cachedView
	flights map[string]*flight
	scans   int // scans run, for tests
}

func newViewCache(src Source) *viewCache {
	return &viewCache{src: src, ttl: CacheTTL, scan: make(chan struct{}, 1), now: time.Now,
		views: map[string]cachedView{}, flights: map[string]*flight{}}
}

func (c *viewCache) summary(ctx context.Context, key string, q Query) (*Summary, error) {
	c.mu.Lock()
	if v, ok := c.views[key]; ok && c.now().Sub(v.at) < c.ttl {
		c.mu.Unlock()
		return v.s, nil
	}
	f := c.flights[key]
	if f == nil {
		if len(c.flights) >= MaxPending {
			c.mu.Unlock()
			return nil, errBusy
		}
		f = &flight{done: make(chan struct{})}
		c.flights[key] = f
		go c.run(key, q, f)
	}
	f.waiters.Add(1)
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.s, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run scans for a flight, after the scan before it. It does not stop when
// the request that started it goes away: others may wait on it.
func (c *viewCache) run(key string, q Query, f *flight) {
	c.scan <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), ScanTimeout)
	s, err := Summarize(ctx, c.src, q)
	cancel()
	<-c.scan
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scans++
	delete(c.flights, key)
	f.s, f.err = s, err
	close(f.done)
	if err != nil {
		return
	}
	now := c.now()
	for k, v := range c.views {
		if now.Sub(v.at) >= c.ttl {
			delete(c.views, k)
		}
	}
	if len(c.views) >= maxViews {
		oldest := ""
		for k, v := range c.views {
			if oldest == "" || v.at.Before(c.views[oldest].at) {
				oldest = k
			}
		}
		delete(c.views, oldest)
	}
	c.views[key] = cachedView{s: s, at: now}
}

// viewKey identifies a request's view by its parameters as written (a
// relative since=1h is the same view for CacheTTL).
func viewKey(v url.Values) string {
	reasons, _ := ParseReasons(v["reason"]...)
	slices.Sort(reasons)
	reasons = slices.Compact(reasons)
	limit := v.Get("limit")
	if limit == "" {
		limit = strconv.Itoa(DefaultLimit)
	}
	return url.Values{"reason": {strings.Join(reasons, ",")}, "shard": {v.Get("shard")}, "since": {v.Get("since")},
		"until": {v.Get("until")}, "limit": {limit}}.Encode()
}

// prefersHTML reports whether an Accept header asks for text/html before
// JSON (a browser's does; curl's */* does not).
func prefersHTML(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		switch mt {
		case "text/html", "application/xhtml+xml":
			return true
		case "application/json", "*/*":
			return false
		}
	}
	return false
}

// setHTMLHeaders forbids scripts, frames and every other resource: the page
// is static, and it shows data an attacker may have put into the stream.
func setHTMLHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func writeError(w http.ResponseWriter, asHTML bool, code int, msg string) {
	if asHTML {
		setHTMLHeaders(w)
		w.WriteHeader(code)
		_ = errorPage().Execute(w, msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

type pageData struct {
	S         *Summary
	Q         url.Values
	Generated time.Time
}

var funcs = template.FuncMap{
	"ts": func(v any) string {
		switch t := v.(type) {
		case time.Time:
			return t.UTC().Format(timeFormat)
		case *time.Time:
			return t.UTC().Format(timeFormat)
		}
		return ""
	},
	"join": strings.Join,
	"q":    func(v url.Values, k string) string { return v.Get(k) },
}

// The pages are parsed on first use, not at every process start.
var page = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("errors").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>kinesis-ingest: dead letters</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; max-width: 40em; }
td.t { white-space: nowrap; }
code, pre { font: 12px/1.3 ui-monospace, monospace; }
form label { margin-right: 1em; }
.muted { color: #777; }
</style>
</head>
<body>
<h1>Dead letters</h1>
<form method="get" action="">
<label>reason <input name="reason" value="{{q .Q "reason"}}" placeholder="schema_error"></label>
<label>shard <input name="shard" value="{{q .Q "shard"}}" placeholder="shardId-000000000000"></label>
<label>since <input name="since" value="{{q .Q "since"}}" placeholder="1h or RFC 3339"></label>
<label>until <input name="until" value="{{q .Q "until"}}"></label>
<label>latest <input name="limit" value="{{q .Q "limit"}}" size="4" placeholder="{{.S.Filter.Limit}}"></label>
<button type="submit">Filter</button>
</form>
<p id="total"><strong>{{.S.Total}}</strong> dead letters{{with .S.Filter.Reasons}} with reason {{join . ", "}}{{end}}{{with .S.Filter.Shard}} in shard {{.}}{{end}}{{with .S.Filter.Since}} since {{ts .}}{{end}}{{with .S.Filter.Until}} until {{ts .}}{{end}}, from {{.S.Stats.Files}} files{{with .S.Stats.Skipped}}; {{.}} unreadable lines skipped{{end}}. <span class="muted">Generated {{ts .Generated}}.</span></p>

<h2>By reason</h2>
<table id="by-reason">
<tr><th>reason</th><th>count</th></tr>
{{range .S.ByReason}}<tr><td>{{.Reason}}</td><td class="n">{{.Count}}</td></tr>
{{else}}<tr><td colspan="2" class="muted">none</td></tr>
{{end}}</table>

<h2>By field <span class="muted">(schema_error)</span></h2>
<table id="by-field">
<tr><th>dataset</th><th>field</th><th>count</th></tr>
{{range .S.ByField}}<tr><td>{{.Dataset}}</td><td><code>{{.Field}}</code></td><td class="n">{{.Count}}</td></tr>
{{else}}<tr><td colspan="3" class="muted">none</td></tr>
{{end}}</table>

<h2>Latest {{len .S.Latest}}</h2>
<table id="latest">
<tr><th>arrival</th><th>reason</th><th>dataset</th><th>shard / sequence</th><th>partition key</th><th>error</th><th>data</th></tr>
{{range .S.Latest}}<tr>
<td class="t"><code>{{ts .ArrivalTime}}</code></td>
<td>{{.Reason}}</td>
<td>{{.Dataset}}</td>
<td><code>{{.ShardID}}</code><br><code>{{.SequenceNumber}}{{if .SubSequence}}/{{.SubSequence}}{{end}}</code></td>
<td><code>{{.PartitionKey}}</code></td>
<td><pre>{{.Error}}</pre></td>
<td><pre class="preview">{{.Preview.Text}}{{if .Preview.Truncated}}…{{end}}</pre><span class="muted">{{.Size}} bytes, {{.Preview.Encoding}}</span></td>
</tr>
{{else}}<tr><td colspan="7" class="muted">none</td></tr>
{{end}}</table>
</body>
</html>
`))
})

var errorPage = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>kinesis-ingest: dead letters</title></head>
<body><h1>Dead letters</h1><p id="error">{{.}}</p></body></html>
`))
})
