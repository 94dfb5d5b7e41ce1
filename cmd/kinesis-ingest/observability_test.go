package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/errview"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/health"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
)

// series maps each exposed series ("name{l1="v1",...}", labels as the
// exposition orders them) to its value.
type series map[string]float64

func parseSeries(text string) series {
	s := series{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			s[line[:i]] = v
		}
	}
	return s
}

// sum adds the values of every series of metric name.
func (s series) sum(name string) (total float64, n int) {
	for k, v := range s {
		if k == name || strings.HasPrefix(k, name+"{") {
			total += v
			n++
		}
	}
	return total, n
}

// of returns the series of metric name, by their label text.
func (s series) of(name string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range s {
		if strings.HasPrefix(k, name+"{") {
			out[k[len(name):]] = v
		}
	}
	return out
}

type httpResult struct {
	code        int
	body        string
	contentType string
}

func httpGet(t *testing.T, url, accept string) httpResult {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return httpResult{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{code: resp.StatusCode, body: string(b), contentType: resp.Header.Get("Content-Type")}
}

// jsonLogLines parses the worker's log, failing the test on any line that is
// not a JSON object.
func jsonLogLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("log line is not JSON (--log-format json): %q", sc.Text())
			continue
		}
		out = append(out, m)
	}
	return out
}

// jsonServingAddr reads from a JSON log the address logged as "serving
// <what>": "metrics" or "errors view".
func jsonServingAddr(t *testing.T, w *worker, what string) string {
	t.Helper()
	var addr string
	waitFor(t, 30*time.Second, what+" address in the JSON log", func() bool {
		b, _ := os.ReadFile(w.log)
		for _, line := range strings.Split(string(b), "\n") {
			var m struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "serving "+what && m.Addr != "" {
				addr = m.Addr
				return true
			}
		}
		return false
	})
	return addr
}

// aboutRecord matches the message of a log line about one record ("record
// dead-lettered", "stage panicked on a record"), not about a batch ("Trying
// to read 200 record from iterator"). A line carrying a record's sequence
// number or partition key is about a record too.
var aboutRecord = regexp.MustCompile(`(?i)^record\b|\b(a|the|this|one) record\b`)

// TestObservability runs a worker on records with bad ones among them and
// checks what an operator sees: /metrics counts exactly what was produced
// (rows, dead letters by reason, records, bytes, end-to-end latencies), lag
// and iterator age go to 0 once caught up, every shard has a checkpoint time,
// /errors (JSON and HTML) and `kinesis-ingest errors` count the dead letters
// by reason and field, /readyz turns 503 when the row sink's directory is
// replaced by a file and 200 again when it is back, and the JSON log is JSON
// throughout, names source, shard and sequence number on every line about a
// record, and carries neither the AWS secret nor record payloads.
func TestObservability(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	const n = 200
	data, keys, want := orders(0, n, true)
	e.put(data, keys)
	wantReasons := map[string]float64{}
	for _, r := range want {
		wantReasons[r]++
	}
	var wantBytes float64
	for _, d := range data {
		wantBytes += float64(len(d))
	}
	cfg := e.config("trim_horizon")
	w := e.startArgs(cfg, "obs", []string{"--log-format", "json", "--log-level", "debug"}, nil)
	addr := jsonServingAddr(t, w, "metrics")
	base := "http://" + addr
	errorsBase := "http://" + jsonServingAddr(t, w, "errors view")

	if r := httpGet(t, base+"/healthz", ""); r.code != 200 {
		t.Errorf("/healthz: %d %q", r.code, r.body)
	}
	waitFor(t, 60*time.Second, "/readyz 200", func() bool { return httpGet(t, base+"/readyz", "").code == 200 })

	// The counters equal what was produced.
	var m series
	waitFor(t, 90*time.Second, "every record counted as a row or a dead letter", func() bool {
		m = parseSeries(scrape(t, addr))
		rows, _ := m.sum("kinesis_ingest_rows_written_total")
		dls, _ := m.sum("kinesis_ingest_dead_letters_total")
		return rows+dls >= n
	})
	if got := m[`kinesis_ingest_rows_written_total{dataset="orders",sink="orders_file"}`]; got != n-float64(len(want)) {
		t.Errorf("rows_written_total %v, want %d", got, n-len(want))
	}
	gotReasons := map[string]float64{}
	for labels, v := range m.of("kinesis_ingest_dead_letters_total") {
		gotReasons[regexp.MustCompile(`reason="([^"]+)"`).FindStringSubmatch(labels)[1]] = v
	}
	if len(gotReasons) != len(wantReasons) || gotReasons["decode_error"] != wantReasons["decode_error"] || gotReasons["schema_error"] != wantReasons["schema_error"] {
		t.Errorf("dead_letters_total by reason %v, want %v", gotReasons, wantReasons)
	}
	if got, _ := m.sum("kinesis_ingest_records_received_total"); got != n {
		t.Errorf("records_received_total %v, want %d", got, n)
	}
	if got, shards := m.sum("kinesis_ingest_bytes_received_total"); got != wantBytes || shards != 2 {
		t.Errorf("bytes_received_total %v over %d shards, want %v over 2", got, shards, wantBytes)
	}
	if got := m[`kinesis_ingest_end_to_end_latency_seconds_count{source="orders"}`]; got != n {
		t.Errorf("end_to_end_latency_seconds_count %v, want one per record (%d)", got, n)
	}
	if got := m[`kinesis_ingest_sink_batch_rows_sum{sink="orders_file"}`]; got != n-float64(len(want)) {
		t.Errorf("sink_batch_rows_sum{orders_file} %v, want %d", got, n-len(want))
	}
	if got := m[`kinesis_ingest_sink_batch_rows_sum{sink="dead_letter"}`]; got != float64(len(want)) {
		t.Errorf("sink_batch_rows_sum{dead_letter} %v, want %d", got, len(want))
	}
	for _, name := range []string{
		"kinesis_ingest_watermill_handler_execution_time_seconds_count",
		"kinesis_ingest_watermill_subscriber_messages_received_total",
		"go_goroutines", "process_resident_memory_bytes", "kinesis_ingest_lease_table_last_answer_timestamp_seconds",
	} {
		if _, k := m.sum(name); k == 0 {
			t.Errorf("metrics lack %s", name)
		}
	}
	if got := m[`kinesis_ingest_leases_held{source="orders"}`]; got != 2 {
		t.Errorf("leases_held %v, want 2", got)
	}

	// Caught up: lag and iterator age 0 on every shard; every shard has
	// checkpointed just now.
	waitFor(t, 30*time.Second, "millis_behind_latest and iterator_age_seconds 0 on both shards", func() bool {
		m = parseSeries(scrape(t, addr))
		lag, age := m.of("kinesis_ingest_millis_behind_latest"), m.of("kinesis_ingest_iterator_age_seconds")
		if len(lag) != 2 || len(age) != 2 {
			return false
		}
		for k := range lag {
			if lag[k] != 0 || age[k] != 0 {
				return false
			}
		}
		return true
	})
	cps := m.of("kinesis_ingest_last_checkpoint_timestamp_seconds")
	if len(cps) != 2 {
		t.Errorf("last_checkpoint_timestamp_seconds for %d shards, want 2: %v", len(cps), cps)
	}
	for k, ts := range cps {
		if age := time.Since(time.Unix(int64(ts), 0)); age < 0 || age > 2*time.Minute {
			t.Errorf("last checkpoint %s was %s ago", k, age)
		}
	}

	// The errors view: on its own port (not on the metrics one), JSON,
	// filtered, HTML, and the command.
	if r := httpGet(t, base+"/errors", ""); r.code != 404 {
		t.Errorf("/errors on the metrics port: %d, want 404: record data is not for whoever scrapes metrics", r.code)
	}
	var view errview.Summary
	r := httpGet(t, errorsBase+"/errors", "")
	if err := json.Unmarshal([]byte(r.body), &view); err != nil || r.code != 200 {
		t.Fatalf("/errors: %d %v: %s", r.code, err, r.body)
	}
	checkView := func(where string, v errview.Summary) {
		t.Helper()
		byReason := map[string]float64{}
		for _, c := range v.ByReason {
			byReason[c.Reason] = float64(c.Count)
		}
		byField := map[string]int{}
		for _, f := range v.ByField {
			byField[f.Dataset+"."+f.Field] = f.Count
		}
		// Among the schema errors (see orders): 8 lack or mistype amount, 4 mistype id.
		if v.Total != len(want) || byReason["decode_error"] != wantReasons["decode_error"] || byReason["schema_error"] != wantReasons["schema_error"] ||
			byField["orders.amount"] != 8 || byField["orders.id"] != 4 || len(v.Latest) != errview.DefaultLimit {
			t.Errorf("%s: total %d, by reason %v, by field %v, %d latest; want %d, %v, amount 8 and id 4, %d",
				where, v.Total, byReason, byField, len(v.Latest), len(want), wantReasons, errview.DefaultLimit)
		}
	}
	checkView("/errors", view)
	if err := json.Unmarshal([]byte(httpGet(t, errorsBase+"/errors?reason=decode_error&limit=3", "").body), &view); err != nil || view.Total != int(wantReasons["decode_error"]) || len(view.Latest) != 3 {
		t.Errorf("/errors?reason=decode_error: %v, total %d, %d latest", err, view.Total, len(view.Latest))
	}
	if r := httpGet(t, errorsBase+"/errors", "text/html,*/*;q=0.8"); r.code != 200 || !strings.HasPrefix(r.contentType, "text/html") ||
		!strings.Contains(r.body, "<strong>"+strconv.Itoa(len(want))+"</strong> dead letters") {
		t.Errorf("/errors for a browser: %d %s:\n%s", r.code, r.contentType, r.body)
	}
	cmd := exec.Command(binary, "errors", "--config", cfg, "--json")
	cmd.Env = append(os.Environ(), "WORKER_ID=errors-view") // the config names ${WORKER_ID}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kinesis-ingest errors: %v: %s", err, &stderr)
	}
	view = errview.Summary{}
	if err := json.Unmarshal(out, &view); err != nil {
		t.Fatalf("kinesis-ingest errors --json: %v: %s", err, out)
	}
	checkView("kinesis-ingest errors", view)

	// A real fault: the row sink's directory replaced by a regular file.
	rows := e.rowsDir()
	if err := os.Rename(rows, rows+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rows, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	var rep health.Report
	waitFor(t, 20*time.Second, "/readyz 503 naming the row sink", func() bool {
		r := httpGet(t, base+"/readyz", "")
		rep = health.Report{}
		_ = json.Unmarshal([]byte(r.body), &rep)
		return r.code == 503 && len(rep.Failing) == 1 && rep.Failing[0].Name == "sink:orders_file"
	})
	if !strings.Contains(rep.Failing[0].Error, "not a directory") || rep.Status != "unready" {
		t.Errorf("/readyz report %+v", rep)
	}
	if err := os.Remove(rows); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(rows+".moved", rows); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "/readyz 200 again", func() bool { return httpGet(t, base+"/readyz", "").code == 200 })

	metricsText := scrape(t, addr)
	errorsText := httpGet(t, errorsBase+"/errors", "").body
	w.stop(30 * time.Second)

	// The log: JSON, records named, no secret, no payload.
	lines := jsonLogLines(t, w.log)
	aboutRecords := 0
	for _, l := range lines {
		msg, _ := l["msg"].(string)
		_, seq := l["sequence_number"]
		_, key := l["partition_key"]
		if !seq && !key && !aboutRecord.MatchString(msg) {
			continue
		}
		aboutRecords++
		for _, k := range []string{"source", "shard_id", "sequence_number"} {
			if v, _ := l[k].(string); v == "" {
				t.Errorf("a log line about a record lacks %s: %v", k, l)
			}
		}
	}
	if aboutRecords < len(want) {
		t.Errorf("%d log lines about records, want at least one per dead letter (%d) at debug level", aboutRecords, len(want))
	}
	logText, _ := os.ReadFile(w.log)
	var letterFiles []byte
	if _, err := (file.Reader{Dir: e.lettersDir()}).Lines(context.Background(), func(_ string, line []byte) error {
		letterFiles = append(append(letterFiles, line...), '\n')
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"log": string(logText), "metrics": metricsText, "/errors": errorsText, "dead letters": string(letterFiles)} {
		if strings.Contains(text, "secret-must-not-leak") {
			t.Errorf("the AWS secret key reached the %s", what)
		}
	}
	if strings.Contains(string(logText), testaws.Account+"\"") && strings.Contains(string(logText), "AWS_ACCESS_KEY_ID") {
		t.Errorf("the log names the access key variable with its value")
	}
	for i, d := range data {
		escaped, _ := json.Marshal(string(d))
		if strings.Contains(string(logText), string(d)) || strings.Contains(string(logText), string(escaped[1:len(escaped)-1])) {
			t.Errorf("record %d's payload %q is in the log", i, d)
			break
		}
	}
}

// TestErrorsCommandUsage covers the errors command's flags without a worker.
func TestErrorsCommandUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	body := strings.Replace(configTemplate, "worker_id: ${WORKER_ID}", "worker_id: w1", 1)
	if err := os.WriteFile(cfg, []byte(
		fmt.Sprintf(body, "arn:aws:kinesis:us-east-1:000000000000:stream/orders", "latest", filepath.Join(dir, "rows"), filepath.Join(dir, "dl"), "orders-ingest")), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		args        []string
		code        int
		outContains string
		errContains string
	}{
		{name: "no dead letters yet", args: []string{"--config", cfg}, code: 0, outContains: "dead letters: 0 in 0 files"},
		{name: "json", args: []string{"--config", cfg, "--json", "--reason", "schema_error,decode_error", "--since", "1h"}, code: 0, outContains: `"reasons": [`},
		{name: "no config", args: nil, code: 2, errContains: "--config is required"},
		{name: "bad reason", args: []string{"--config", cfg, "--reason", "typo"}, code: 2, errContains: `--reason: unknown reason "typo"`},
		{name: "bad times and limit", args: []string{"--config", cfg, "--since", "soon", "--until", "later", "--limit", "0"}, code: 2,
			errContains: "--since: \"soon\" is neither an RFC 3339 time"},
		{name: "since after until", args: []string{"--config", cfg, "--since", "1h", "--until", "2h"}, code: 2, errContains: "is not before until"},
		{name: "stray argument", args: []string{"--config", cfg, "schema_error"}, code: 2, errContains: "unexpected arguments"},
		{name: "help", args: []string{"--help"}, code: 0, errContains: "counts by reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"errors"}, tt.args...), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stdout %s; stderr %s", code, tt.code, &stdout, &stderr)
			}
			if !strings.Contains(stdout.String(), tt.outContains) {
				t.Errorf("stdout lacks %q:\n%s", tt.outContains, &stdout)
			}
			if !strings.Contains(stderr.String(), tt.errContains) {
				t.Errorf("stderr lacks %q:\n%s", tt.errContains, &stderr)
			}
		})
	}
}

func TestRunLogFlags(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args        []string
		errContains string
	}{
		{args: []string{"--log-format", "xml"}, errContains: `--log-format "xml": use text or json`},
		{args: []string{"--log-level", "loud"}, errContains: `--log-level "loud": use debug, info, warn or error`},
	} {
		var stdout, stderr bytes.Buffer
		cfg := filepath.Join(t.TempDir(), "c.yaml")
		body := strings.Replace(configTemplate, "worker_id: ${WORKER_ID}", "worker_id: w1", 1)
		_ = os.WriteFile(cfg, []byte(fmt.Sprintf(body, "arn:aws:kinesis:us-east-1:000000000000:stream/orders", "latest", "rows", "dl", "orders-ingest")), 0o644)
		if code := run(append([]string{"run", "--config", cfg}, tt.args...), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.errContains) {
			t.Errorf("run %v: exit %d, stderr %q; want 2 and %q", tt.args, code, &stderr, tt.errContains)
		}
	}
}
