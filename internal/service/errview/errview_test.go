package errview

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

const malicious = `<script>document.body.setAttribute("data-pwned","1")</script><img src=x onerror="document.body.setAttribute('data-pwned','2')">`

func letter(i int, shard string, reason record.Reason, dataset, errMsg string, data []byte) record.DeadLetter {
	return record.DeadLetter{
		Origin: record.Origin{
			Source: "orders", StreamARN: "arn:aws:kinesis:us-east-1:000000000000:stream/orders", ShardID: shard,
			SequenceNumber: "4960000000000000000" + string(rune('0'+i%10)) + strings.Repeat("0", i/10),
			PartitionKey:   "k-" + string(rune('a'+i%26)), ArrivalTime: t0.Add(time.Duration(i) * time.Minute),
		},
		Dataset: dataset, Reason: reason, Error: errMsg, Data: data,
	}
}

// fixture writes dead letters with the real file sink, as two workers, and
// returns the directory.
func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	w1 := []record.DeadLetter{
		letter(0, "shardId-000000000000", record.ReasonDecode, "", "invalid JSON at byte 12: unexpected EOF", []byte(`{"id":1,"amount":1.5,`)),
		letter(1, "shardId-000000000000", record.ReasonSchema, "orders", "amount: missing", []byte(`{"id":2}`)),
		letter(2, "shardId-000000000001", record.ReasonSchema, "orders", `amount: want float, got string "12.50"`, []byte(`{"id":3,"amount":"12.50"}`)),
		letter(3, "shardId-000000000001", record.ReasonSchema, "orders", `items[3].price: want float, got null`, []byte(`{"id":4}`)),
	}
	w2 := []record.DeadLetter{
		letter(4, "shardId-000000000001", record.ReasonSchema, "orders", `items[0].price: want float, got null`, []byte(`{"id":5}`)),
		letter(5, "shardId-000000000000", record.ReasonDecode, "", "invalid JSON at byte 0: invalid character 'ÿ'", []byte("\xff\xfe not json at all")),
		letter(6, "shardId-000000000000", record.ReasonSchema, "orders", "id: want int, got string \"<b>6</b>\"", []byte(malicious)),
		letter(7, "shardId-000000000001", record.ReasonNoRoute, "", "no dataset's where took this record", []byte(`{"id":8,"country":"FR"}`)),
	}
	for wi, batch := range [][]record.DeadLetter{w1, w2} {
		s, err := file.NewDeadLetterSink(file.Config{Dir: dir, WorkerID: "w" + string(rune('1'+wi)), Prefix: "dead-letters"}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// A write in progress (no newline yet), a garbled line, and files of
	// another prefix: none is a dead letter of the view.
	appendTo(t, filepath.Join(dir, "dead-letters-w3-20261101T120000-000000.jsonl"), "not json\n{\"source\":\"orders\",\"reason\":\"schema_er")
	appendTo(t, filepath.Join(dir, "rows-w1-20261101T120000-000000.jsonl"), `{"id":1}`+"\n")
	appendTo(t, filepath.Join(dir, ".kinesis-ingest-probe-123"), "ok\n")
	return dir
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestSummarize(t *testing.T) {
	src := FileSource{Dir: fixture(t), Prefix: "dead-letters"}
	tests := []struct {
		name       string
		q          Query
		total      int
		byReason   string // reason=count,...
		byField    string // dataset.field=count,...
		latestKeys string // partition keys, newest first
	}{
		{
			name: "everything", total: 8,
			byReason:   "schema_error=5,decode_error=2,no_route=1",
			byField:    "orders.amount=2,orders.items[].price=2,orders.id=1",
			latestKeys: "k-h,k-g,k-f,k-e,k-d,k-c,k-b,k-a",
		},
		{name: "limit", q: Query{Limit: 2}, total: 8, byReason: "schema_error=5,decode_error=2,no_route=1", byField: "orders.amount=2,orders.items[].price=2,orders.id=1", latestKeys: "k-h,k-g"},
		{name: "reason", q: Query{Filter: Filter{Reasons: []string{"decode_error"}}}, total: 2, byReason: "decode_error=2", latestKeys: "k-f,k-a"},
		{name: "two reasons", q: Query{Filter: Filter{Reasons: []string{"decode_error", "no_route"}}}, total: 3, byReason: "decode_error=2,no_route=1", latestKeys: "k-h,k-f,k-a"},
		{name: "shard", q: Query{Filter: Filter{Shard: "shardId-000000000001"}}, total: 4, byReason: "schema_error=3,no_route=1", byField: "orders.items[].price=2,orders.amount=1", latestKeys: "k-h,k-e,k-d,k-c"},
		{name: "since and until", q: Query{Filter: Filter{Since: t0.Add(2 * time.Minute), Until: t0.Add(5 * time.Minute)}}, total: 3, byReason: "schema_error=3", byField: "orders.items[].price=2,orders.amount=1", latestKeys: "k-e,k-d,k-c"},
		{name: "nothing matches", q: Query{Filter: Filter{Shard: "shardId-9"}}, total: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Summarize(context.Background(), src, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if s.Total != tt.total {
				t.Errorf("total %d, want %d", s.Total, tt.total)
			}
			var got []string
			for _, r := range s.ByReason {
				got = append(got, r.Reason+"="+itoa(r.Count))
			}
			if g := strings.Join(got, ","); g != tt.byReason {
				t.Errorf("by reason %s, want %s", g, tt.byReason)
			}
			got = nil
			for _, f := range s.ByField {
				got = append(got, f.Dataset+"."+f.Field+"="+itoa(f.Count))
			}
			if g := strings.Join(got, ","); g != tt.byField {
				t.Errorf("by field %s, want %s", g, tt.byField)
			}
			got = nil
			for _, e := range s.Latest {
				got = append(got, e.PartitionKey)
			}
			if g := strings.Join(got, ","); g != tt.latestKeys {
				t.Errorf("latest %s, want %s", g, tt.latestKeys)
			}
			if s.Stats.Files != 3 || s.Stats.Skipped != 1 {
				t.Errorf("scanned %+v, want 3 files and the 1 garbled line skipped (the partial last line is not)", s.Stats)
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestSummarizeMissingDir(t *testing.T) {
	s, err := Summarize(context.Background(), FileSource{Dir: filepath.Join(t.TempDir(), "none"), Prefix: "dead-letters"}, Query{})
	if err != nil || s.Total != 0 {
		t.Fatalf("a dead-letter directory not created yet: %v, %+v; want an empty view", err, s)
	}
	_, err = Summarize(context.Background(), Unsupported{Kind: "postgres"}, Query{})
	if err == nil || !strings.Contains(err.Error(), "not supported for this sink kind yet") || !strings.Contains(err.Error(), "postgres") {
		t.Fatalf("postgres: %v", err)
	}
}

func TestFieldPath(t *testing.T) {
	tests := []struct{ msg, want string }{
		{`amount: want float, got string "x"`, "amount"},
		{"amount: missing", "amount"},
		{`items[3].price: want float, got null`, "items[].price"},
		{`matrix[0][12]: want int`, "matrix[][]"},
		{`attrs["a: b"]: want str, got number 1`, `attrs["a: b"]`},
		{`attrs["say \"hi\": x"].y: bad`, `attrs["say \"hi\": x"].y`},
		{`$: want object, got list`, "$"},
		{`where: amount > 0: nil`, "where"},
		{"schema validation panicked: boom", ""},
		{"no colon here", ""},
		{"time:12:00", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := FieldPath(tt.msg); got != tt.want {
			t.Errorf("FieldPath(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}

func TestPreview(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	tests := []struct {
		name      string
		data      []byte
		enc, text string
		truncated bool
	}{
		{name: "json", data: []byte(`{"id":1}`), enc: "text", text: `{"id":1}`},
		{name: "multi-line text", data: []byte("a\tb\nc"), enc: "text", text: "a\tb\nc"},
		{name: "empty", data: nil, enc: "text", text: ""},
		{name: "invalid utf-8", data: []byte("\xff\xfe ok"), enc: "hex", text: "fffe206f6b"},
		{name: "control characters", data: []byte("a\x1b[31mred"), enc: "hex", text: "611b5b33316d726564"},
		{name: "long text cut on a rune boundary", data: []byte(long), enc: "text", text: strings.Repeat("é", 128), truncated: true},
		{name: "long binary", data: bytes.Repeat([]byte{0}, 300), enc: "hex", text: strings.Repeat("00", 128), truncated: true},
		// Only the start of a large record is kept: a rune cut by the end of
		// that start does not turn it into hex.
		{name: "1 MiB text", data: []byte(strings.Repeat("aé", 1<<19/3)), enc: "text", text: strings.Repeat("aé", 85) + "a", truncated: true},
		{name: "text then binary", data: append([]byte(strings.Repeat("x", 300)), 0, 1), enc: "text", text: strings.Repeat("x", 256), truncated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := LetterOf(&record.DeadLetter{Data: tt.data})
			p := previewOf(l.Head, l.Size, PreviewBytes)
			if p.Encoding != tt.enc || p.Text != tt.text || p.Truncated != tt.truncated {
				t.Errorf("got %+v, want %s %q truncated=%v", p, tt.enc, tt.text, tt.truncated)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in          string
		want        time.Time
		errContains string
	}{
		{in: "", want: time.Time{}},
		{in: "2026-11-01T12:00:00Z", want: t0},
		{in: "2026-11-01T13:00:00+01:00", want: t0},
		{in: "1h", want: now.Add(-time.Hour)},
		{in: "90m", want: now.Add(-90 * time.Minute)},
		{in: "7d", want: now.AddDate(0, 0, -7)},
		{in: "yesterday", errContains: "neither an RFC 3339 time"},
		{in: "-1h", errContains: "neither"},
		{in: "2026-11-01", errContains: "neither"},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in, now)
		switch {
		case tt.errContains != "":
			if err == nil || !strings.Contains(err.Error(), tt.errContains) {
				t.Errorf("ParseTime(%q): %v, want an error containing %q", tt.in, err, tt.errContains)
			}
		case err != nil || !got.Equal(tt.want):
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := ParseReasons("schema_error,bogus"); err == nil || !strings.Contains(err.Error(), `unknown reason "bogus"`) {
		t.Errorf("ParseReasons: %v", err)
	}
}

func TestWriteText(t *testing.T) {
	s, err := Summarize(context.Background(), FileSource{Dir: fixture(t), Prefix: "dead-letters"}, Query{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteText(&b, s); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"dead letters: 8 in 3 files; 1 unreadable lines skipped",
		"schema_error  5", "decode_error  2", "orders  items[].price  2",
		"latest 3", `data (18 bytes, hex): fffe206e6f74206a`, `error: id: want int, got string "<b>6</b>"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	if strings.ContainsRune(out, 0x1b) {
		t.Errorf("text output carries an escape character")
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler(FileSource{Dir: fixture(t), Prefix: "dead-letters"}, nil))
	defer srv.Close()
	get := func(path, accept string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp, b.String()
	}
	tests := []struct {
		name, path, accept string
		code               int
		contentType        string
		contains           []string
	}{
		{name: "json", path: "/errors?reason=schema_error&limit=2", code: 200, contentType: "application/json",
			contains: []string{`"total": 5`, `"field": "items[].price"`, `"reasons": [`}},
		{name: "json for curl", path: "/errors", accept: "*/*", code: 200, contentType: "application/json", contains: []string{`"total": 8`}},
		{name: "html by path", path: "/errors.html?shard=shardId-000000000001", code: 200, contentType: "text/html; charset=utf-8",
			contains: []string{"<strong>4</strong> dead letters", "in shard shardId-000000000001"}},
		{name: "html by accept", path: "/errors", accept: "text/html,application/xhtml+xml,*/*;q=0.8", code: 200, contentType: "text/html; charset=utf-8",
			contains: []string{"&lt;script&gt;", "&lt;b&gt;6&lt;/b&gt;"}},
		{name: "bad parameters", path: "/errors?since=soon&limit=0&reason=oops", code: 400, contentType: "application/json",
			contains: []string{"since:", "limit:", "unknown reason"}},
		{name: "bad parameters, html", path: "/errors.html?since=<i>x", code: 400, contentType: "text/html; charset=utf-8",
			contains: []string{"&lt;i&gt;x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(tt.path, tt.accept)
			if resp.StatusCode != tt.code || resp.Header.Get("Content-Type") != tt.contentType {
				t.Fatalf("%d %s, want %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), tt.code, tt.contentType, body)
			}
			for _, want := range tt.contains {
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %q:\n%s", want, body)
				}
			}
			if strings.Contains(body, "<script") || strings.Contains(body, "<img") || strings.Contains(body, "<b>6") && strings.HasPrefix(tt.contentType, "text/html") {
				t.Errorf("body carries a raw tag from a record:\n%s", body)
			}
			if strings.HasPrefix(tt.contentType, "text/html") && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("HTML without a CSP forbidding scripts")
			}
		})
	}
	resp, body := get("/errors", "")
	var s Summary
	if err := json.Unmarshal([]byte(body), &s); err != nil || resp.StatusCode != 200 {
		t.Fatalf("JSON view: %v: %s", err, body)
	}
	if s.Latest[1].Preview.Text != malicious || s.Latest[1].Preview.Encoding != "text" {
		t.Errorf("JSON keeps the data as text (escaped by JSON): %+v", s.Latest[1].Preview)
	}

	notSupported := httptest.NewServer(Handler(Unsupported{Kind: "postgres"}, nil))
	defer notSupported.Close()
	r2, err := http.Get(notSupported.URL + "/errors")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusNotImplemented {
		t.Errorf("postgres view: %d, want 501", r2.StatusCode)
	}
}

// The /errors endpoint refuses a window that ends before it starts, as the
// command does (both go through ParseQuery).
func TestParseQueryRefusesEmptyWindow(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	_, err := ParseQuery(url.Values{"since": {"1h"}, "until": {"2h"}}, now)
	if err == nil || !strings.Contains(err.Error(), "since: 2026-11-01T11:00:00Z is not before until 2026-11-01T10:00:00Z") {
		t.Errorf("ParseQuery = %v", err)
	}
}
