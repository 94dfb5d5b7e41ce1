package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// cwlProducer writes, into the directory it is given, one file per record
// a CloudWatch Logs subscription would put (and a few it never would), each
// named by its partition key: Python's json and gzip modules, not the
// worker's code, make them.
const cwlProducer = `
import gzip, json, os, sys
out = sys.argv[1]
def envelope(group, stream, events):
    return {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": group, "logStream": stream,
            "subscriptionFilters": ["all-events"], "logEvents": events}
def event(n, message):
    return {"id": "3695%052d" % n, "timestamp": 1714559400000 + n, "message": message}
def write(key, data):
    with open(os.path.join(out, key), "wb") as f:
        f.write(data)
n = 0
for r in range(4):
    events = []
    for i in range(5):
        events.append(event(n, json.dumps({"level": ["info", "warn"][n % 2], "n": n, "note": "caf\u00e9 <%d>" % n})))
        n += 1
    write("data-%d" % r, gzip.compress(json.dumps(envelope("/aws/lambda/checkout", "2024/05/01/[$LATEST]%d" % r, events)).encode()))
mixed = [event(n, json.dumps({"level": "info", "n": n})), event(n + 1, "START RequestId: 8e1f Version: $LATEST"),
         event(n + 2, json.dumps({"level": "error", "n": "not a number"})), event(n + 3, json.dumps({"level": "warn", "n": n + 3}))]
write("mixed", gzip.compress(json.dumps(envelope("/aws/ecs/api", "web/1", mixed)).encode()))
write("control", gzip.compress(json.dumps({"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "",
    "subscriptionFilters": [], "logEvents": [{"id": "", "timestamp": 1432826855000,
    "message": "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."}]}).encode()))
whole = gzip.compress(json.dumps(envelope("/aws/lambda/checkout", "s", [event(900, "{}")])).encode())
write("truncated", whole[:len(whole) // 2])
write("wrong-shape", gzip.compress(json.dumps({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "g", "logStream": "s", "logEvents": "none"}).encode()))
write("not-gzip", b"2024-05-01 10:30:00 INFO plain text, not a subscription record")
write("bomb", gzip.compress(b"\0" * (20 << 20)))
`

const cwlConfig = `
sources:
  - name: logs
    kinesis:
      stream_arn: %s
      init_position: trim_horizon
      format: {cloudwatch_logs: {message: json}}
datasets:
  - name: events
    source: logs
    timestamp: ts
    fields:
      - {name: ts, type: datetime, ref: $event_timestamp}
      - {name: id, type: str, ref: $event_id}
      - {name: group, type: str, ref: $log_group}
      - {name: stream, type: str, ref: $log_stream}
      - {name: owner, type: str, ref: $owner}
      - {name: level, type: str}
      - {name: n, type: int}
      - {name: note, type: "optional[str]"}
    sink: events_file
sinks:
  - name: events_file
    file: {path: %s}
dead_letter:
  file: {path: %s}
consumer:
  application: %s
  worker_id: ${WORKER_ID}
  shard_sync_interval: 500ms
  lease_duration: 4s
  lease_refresh: 1s
  idle_between_reads: 100ms
metrics:
  listen: 127.0.0.1:0
errors:
  listen: 127.0.0.1:0
`

// TestCloudWatchLogsSubscription: records as a CloudWatch Logs subscription
// puts them (gzip JSON envelopes, made by Python, put by the AWS CLI)
// become one row per log event, reading the envelope's log group, stream
// and owner and the event's id and timestamp; each event has its own place
// (the record's sequence number, sub-sequence its index). An event whose
// message is no JSON, or does not fit, is a dead letter of its own with
// its place, the others of its record rows; the control message is counted,
// neither row nor dead letter; a truncated gzip, an envelope of the wrong
// shape, a record that is no gzip and a bomb are dead letters whole. Every
// event id is accounted for once.
func TestCloudWatchLogsSubscription(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"python3", "aws"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("no %s on PATH: the independent producer needs it (Debian: apt-get install python3 awscli)", tool)
			}
			t.Skipf("no %s on PATH: the independent producer needs it", tool)
		}
	}
	e := newEnv(t, 2)
	out := t.TempDir()
	if b, err := exec.Command("python3", "-c", cwlProducer, out).CombinedOutput(); err != nil {
		t.Fatalf("python3 producer: %v\n%s", err, b)
	}
	keys := []string{"data-0", "data-1", "data-2", "data-3", "mixed", "control", "truncated", "wrong-shape", "not-gzip", "bomb"}
	put := map[string][]byte{}
	seqs := map[string]string{} // partition key -> sequence number
	for _, k := range keys {
		path := filepath.Join(out, k)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		put[k] = data
		cmd := exec.Command("aws", "--endpoint-url", e.kin.Endpoint, "--region", "us-east-1", "--output", "json",
			"kinesis", "put-record", "--stream-name", e.stream, "--partition-key", k, "--data", "fileb://"+path)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+testaws.Account, "AWS_SECRET_ACCESS_KEY=secret", "AWS_PAGER=")
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("aws kinesis put-record %s: %v", k, err)
		}
		var r struct{ SequenceNumber string }
		if err := json.Unmarshal(b, &r); err != nil || r.SequenceNumber == "" {
			t.Fatalf("aws kinesis put-record %s answered %s (%v)", k, b, err)
		}
		seqs[k] = r.SequenceNumber
	}

	cfg := filepath.Join(e.dir, "config.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, cwlConfig, e.arn, e.rowsDir(), e.lettersDir(), e.table), 0o644); err != nil {
		t.Fatal(err)
	}
	rows := func() []map[string]any {
		return readLines(t, e.rowsDir(), func(*map[string]any, string) {})
	}
	const wantRows, wantLetters = 4*5 + 2, 2 + 4
	w := e.start(cfg, "w1")
	waitFor(t, 90*time.Second, "every event as a row or a dead letter", func() bool {
		return len(rows())+len(e.letters()) >= wantRows+wantLetters
	})
	var skipped float64
	waitFor(t, 30*time.Second, "the control message counted", func() bool {
		skipped = counter(scrape(t, w.metricsAddr()), "kinesis_ingest_records_skipped_total", `source="logs"`, `reason="cloudwatch_logs_control"`)
		return skipped >= 1
	})
	w.stop(30 * time.Second)
	if skipped != 1 {
		t.Errorf("records_skipped_total{reason=cloudwatch_logs_control} = %v, want 1", skipped)
	}

	seen := map[string]int{} // event id -> rows and letters holding it
	places := map[string]bool{}
	keyOf := map[string]string{}
	for k, s := range seqs {
		keyOf[s] = k
	}
	got := rows()
	for _, r := range got {
		id := r["id"].(string)
		seen[id]++
		var n int
		fmt.Sscanf(id[4:], "%d", &n)
		place := fmt.Sprintf("%s/%v", r["_sequence_number"], r["_subsequence"])
		if places[place] {
			t.Errorf("two rows in place %s", place)
		}
		places[place] = true
		key := keyOf[r["_sequence_number"].(string)]
		wantSub := float64(n % 5)
		wantGroup, wantStream := "/aws/lambda/checkout", fmt.Sprintf("2024/05/01/[$LATEST]%d", n/5)
		if key == "mixed" {
			wantSub, wantGroup, wantStream = float64(n-20), "/aws/ecs/api", "web/1"
		}
		wantTS := time.UnixMilli(1714559400000 + int64(n)).UTC().Format("2006-01-02T15:04:05.000000Z")
		if r["_subsequence"] != wantSub || r["group"] != wantGroup || r["stream"] != wantStream || r["owner"] != "123456789012" ||
			r["ts"] != wantTS || r["n"] != float64(n) {
			t.Errorf("row of event %s (record %s): %v; want sub-sequence %v, group %s, stream %s, ts %s, n %d", id, key, r, wantSub, wantGroup, wantStream, wantTS, n)
		}
		if key != "mixed" && r["note"] != fmt.Sprintf("café <%d>", n) {
			t.Errorf("row of event %s: note %v", id, r["note"])
		}
	}
	if len(got) != wantRows {
		t.Errorf("%d rows, want %d", len(got), wantRows)
	}

	whole := map[string]string{
		"truncated":   "gzip payload is truncated",
		"wrong-shape": `logEvents is "\"none\"", not an array`,
		"not-gzip":    "neither gzip (a subscription's records start with 1f 8b) nor a JSON envelope",
		"bomb":        "gzip payload decompresses to more than the bound of 10485760 bytes (max_decompressed_bytes)",
	}
	var eventLetters []string
	for _, l := range e.letters() {
		if l.SequenceNumber != seqs[l.PartitionKey] {
			t.Errorf("letter of %s: sequence number %s, want %s as PutRecord answered", l.PartitionKey, l.SequenceNumber, seqs[l.PartitionKey])
		}
		if want, ok := whole[l.PartitionKey]; ok {
			if l.Reason != "decode_error" || !strings.Contains(l.Error, "not a CloudWatch Logs subscription record: "+want) || string(l.Data) != string(put[l.PartitionKey]) {
				t.Errorf("letter of %s: %s %q (%d bytes); want decode_error containing %q with the record as put", l.PartitionKey, l.Reason, l.Error, len(l.Data), want)
			}
			delete(whole, l.PartitionKey)
			continue
		}
		var env struct {
			LogGroup  string `json:"logGroup"`
			LogEvents []struct {
				ID      string `json:"id"`
				Message string `json:"message"`
			} `json:"logEvents"`
		}
		if err := json.Unmarshal(l.Data, &env); err != nil || len(env.LogEvents) != 1 || env.LogGroup != "/aws/ecs/api" {
			t.Errorf("letter of %s: its data %s is no envelope of one event (%v)", l.PartitionKey, l.Data, err)
			continue
		}
		seen[env.LogEvents[0].ID]++
		eventLetters = append(eventLetters, l.Reason+" "+env.LogEvents[0].Message)
	}
	if len(whole) > 0 {
		t.Errorf("no dead letter of %v", whole)
	}
	slices.Sort(eventLetters)
	if want := []string{"decode_error START RequestId: 8e1f Version: $LATEST", `schema_error {"level": "error", "n": "not a number"}`}; !slices.Equal(eventLetters, want) {
		t.Errorf("event dead letters %q, want %q", eventLetters, want)
	}
	for n := range 24 {
		if id := fmt.Sprintf("3695%052d", n); seen[id] != 1 {
			t.Errorf("event %s: in %d rows and dead letters, want 1", id, seen[id])
		}
	}
	if len(seen) != 24 {
		t.Errorf("%d event ids seen, want 24", len(seen))
	}
}
