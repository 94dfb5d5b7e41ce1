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
	"strconv"
	"strings"
	"sync"
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
// ParseQuery's. One scan runs at a time; others wait for it.
func Handler(src Source, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asHTML := strings.HasSuffix(r.URL.Path, ".html") || prefersHTML(r.Header.Get("Accept"))
		q, err := ParseQuery(r.URL.Query(), time.Now())
		if err != nil {
			writeError(w, asHTML, http.StatusBadRequest, err.Error())
			return
		}
		mu.Lock()
		s, err := Summarize(r.Context(), src, q)
		mu.Unlock()
		switch {
		case errors.Is(err, ErrNotSupported):
			writeError(w, asHTML, http.StatusNotImplemented, err.Error())
			return
		case errors.Is(err, context.Canceled):
			return
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
		if err := page.Execute(w, pageData{S: s, Q: r.URL.Query(), Generated: time.Now().UTC()}); err != nil {
			log.Warn("errors view: render page", "err", err)
		}
	})
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
		_ = errorPage.Execute(w, msg)
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

var page = template.Must(template.New("errors").Funcs(funcs).Parse(`<!DOCTYPE html>
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

var errorPage = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>kinesis-ingest: dead letters</title></head>
<body><h1>Dead letters</h1><p id="error">{{.}}</p></body></html>
`))
