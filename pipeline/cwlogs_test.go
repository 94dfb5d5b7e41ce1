package pipeline_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/cwlogs"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/schema/where"
)

// cwEnvelope is a CloudWatch Logs data message of messages, event i with
// id "e<first+i>" and timestamp 1714559400000+i ms.
func cwEnvelope(first int, messages ...string) string {
	var ev []string
	for i, m := range messages {
		b, _ := json.Marshal(m)
		ev = append(ev, fmt.Sprintf(`{"id":"e%d","timestamp":%d,"message":%s}`, first+i, 1714559400000+first+i, b))
	}
	return `{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/lambda/checkout","logStream":"2024/05/01/[$LATEST]ab",` +
		`"subscriptionFilters":["all"],"logEvents":[` + strings.Join(ev, ",") + `]}`
}

const cwControl = `{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1432826855000,"message":"CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."}]}`

// cwRecords are a stream's records of every fate: events that become rows,
// an event whose message is no JSON, one that does not fit the dataset, a
// control message, and records that are no envelope.
func cwRecords(t testing.TB) []record.Record {
	full := gzipped(t, []byte(cwEnvelope(0, `{"level":"warn","n":1}`, `{"level":"info","n":2}`)))
	recs := records("shardId-0", "", "", "", "", "", "")
	recs[0].Data = full
	recs[1].Data = gzipped(t, []byte(cwEnvelope(10, `{"level":"warn","n":3}`, `START RequestId: 8e1f`, `{"level":"error","n":"four"}`, `{"level":"info","n":5}`)))
	recs[2].Data = gzipped(t, []byte(cwControl))
	recs[3].Data = full[:len(full)/2]
	recs[4].Data = gzipped(t, []byte(`{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","logEvents":[{"id":"1","timestamp":"soon","message":"{}"}]}`))
	recs[5].Data = []byte(cwEnvelope(20, `{"level":"debug","n":6}`)) // plain JSON: a redriven letter
	return recs
}

func cwSchema(t testing.TB, fields ...schema.FieldSpec) *schema.Schema {
	t.Helper()
	s, err := schema.Compile("ts", append([]schema.FieldSpec{
		{Name: "ts", Type: "datetime", Ref: "$event_timestamp"},
		{Name: "id", Type: "str", Ref: "$event_id"},
		{Name: "group", Type: "str", Ref: "$log_group"},
		{Name: "stream", Type: "str", Ref: "$log_stream"},
		{Name: "owner", Type: "str", Ref: "$owner"},
	}, fields...))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCloudWatchLogs: a Kinesis record of n log events becomes n rows (or
// a dead letter per event that fails, the others still rows), each in its
// own place (sub-sequence = the event's index); a control message is
// counted, neither row nor dead letter; a record that is no envelope is
// one decode_error dead letter, whole. The fast paths give what the
// general path gives.
func TestCloudWatchLogs(t *testing.T) {
	type result struct {
		rows    []string
		letters []string
		datas   []string
		skipped float64
	}
	run := func(t *testing.T, msg cwlogs.Message, conv pipeline.Converter, filter pipeline.Filter) result {
		dec, err := cwlogs.New(cwlogs.Config{Message: msg})
		if err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, func(c *pipeline.Config) {
			c.Sources[0].Decoder = dec
			c.Sources[0].Routes[0].Schema = conv
			if filter != nil {
				c.Sources[0].Routes[0].Where = filter
			}
		})
		if err := h.p.Deliver(t.Context(), "orders", cwRecords(t)); err != nil {
			t.Fatal(err)
		}
		var r result
		for _, row := range readJSONL(t, h.rowsDir) {
			delete(row, "_arrival_time")
			b, _ := json.Marshal(row)
			r.rows = append(r.rows, string(b))
		}
		for _, l := range readJSONL(t, h.dlDir) {
			r.letters = append(r.letters, fmt.Sprintf("%s/%v %s: %s", l["sequence_number"], l["subsequence"], l["reason"], l["error"]))
			r.datas = append(r.datas, fmt.Sprint(l["data"]))
		}
		slices.Sort(r.letters)
		r.skipped = testutil.ToFloat64(h.m.RecordsSkipped.WithLabelValues("orders", cwlogs.SkipControl))
		return r
	}
	row := func(seq, sub int, id, extra string) string {
		return fmt.Sprintf(`{"_sequence_number":"%d","_shard_id":"shardId-0","_source":"orders","_subsequence":%d,"group":"/aws/lambda/checkout",`+
			`"id":"%s",%s"owner":"123456789012","stream":"2024/05/01/[$LATEST]ab","ts":"2024-05-01T10:30:00.%03d000Z"}`, seq, sub, id, extra, atoiE(id))
	}

	t.Run("json", func(t *testing.T) {
		sch := cwSchema(t, schema.FieldSpec{Name: "level", Type: "str"}, schema.FieldSpec{Name: "n", Type: "int"})
		var took, declined atomic.Int64
		fast := run(t, cwlogs.JSON, countingSchema{sch, &took, &declined, nil}, nil)
		// The fast path converts each event that is JSON; the one that
		// does not fit (n "four") is declined, the general path's.
		if took.Load() != 5 || declined.Load() != 1 {
			t.Errorf("the fast path took %d events and declined %d; want 5 and 1", took.Load(), declined.Load())
		}
		want := []string{
			row(1000, 0, "e0", `"level":"warn","n":1,`), row(1000, 1, "e1", `"level":"info","n":2,`),
			row(1001, 0, "e10", `"level":"warn","n":3,`), row(1001, 3, "e13", `"level":"info","n":5,`),
			row(1005, 0, "e20", `"level":"debug","n":6,`),
		}
		if !reflect.DeepEqual(fast.rows, want) {
			t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(fast.rows, "\n"), strings.Join(want, "\n"))
		}
		wantLetters := []string{
			"1001/1 decode_error: log event's message (format cloudwatch_logs, message json): invalid JSON at byte 0: invalid character 'S' looking for beginning of value",
			"1001/2 schema_error: n: want int, got string \"four\"",
			"1003/0 decode_error: not a CloudWatch Logs subscription record: gzip payload is truncated: corrupt compressed payload",
			"1004/0 decode_error: not a CloudWatch Logs subscription record: logEvents[0].timestamp is \"\\\"soon\\\"\", not an integer of milliseconds",
		}
		if !reflect.DeepEqual(fast.letters, wantLetters) {
			t.Errorf("dead letters:\n%s\nwant:\n%s", strings.Join(fast.letters, "\n"), strings.Join(wantLetters, "\n"))
		}
		if fast.skipped != 1 {
			t.Errorf("records_skipped_total{reason=%s} = %v, want 1", cwlogs.SkipControl, fast.skipped)
		}
		// An event's letter is an envelope of it alone; a record's, its bytes.
		for _, d := range fast.datas {
			if strings.Contains(d, `"id":"e11"`) && !strings.Contains(d, `"logEvents":[{"id":"e11","timestamp":1714559400011,"message":"START RequestId: 8e1f"}]`) {
				t.Errorf("the letter of event e11 holds %s", d)
			}
		}
		general := run(t, cwlogs.JSON, generalOnly{sch}, nil)
		if !reflect.DeepEqual(general, fast) {
			t.Errorf("the general path differs from the fast path:\n%+v\n%+v", general, fast)
		}
	})

	t.Run("str", func(t *testing.T) {
		sch := cwSchema(t, schema.FieldSpec{Name: "message", Type: "str"})
		named := run(t, cwlogs.Str, sch, nil)
		if len(named.rows) != 7 || !strings.Contains(named.rows[3], `"message":"START RequestId: 8e1f"`) || named.skipped != 1 {
			t.Errorf("rows (want 7, every event's message):\n%s", strings.Join(named.rows, "\n"))
		}
		if len(named.letters) != 2 || !strings.HasPrefix(named.letters[0], "1003/0 decode_error") || !strings.HasPrefix(named.letters[1], "1004/0 decode_error") {
			t.Errorf("dead letters: %v, want the two records that are no envelope", named.letters)
		}
		filter, err := where.Compile(`message != ""`, []schema.FieldSpec{{Name: "message", Type: "str"}})
		if err != nil {
			t.Fatal(err)
		}
		general := run(t, cwlogs.Str, sch, filter)
		if !reflect.DeepEqual(general, named) {
			t.Errorf("the general path differs from the named path:\n%+v\n%+v", general, named)
		}
	})
}

// atoiE is the number of an event id "e<n>".
func atoiE(id string) int {
	var n int
	fmt.Sscanf(id, "e%d", &n)
	return n
}

// TestCloudWatchLogsClassify: a dry run counts what a delivery would.
func TestCloudWatchLogsClassify(t *testing.T) {
	dec, err := cwlogs.New(cwlogs.Config{Message: cwlogs.JSON})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *pipeline.Config) {
		c.Sources[0].Decoder = dec
		c.Sources[0].Routes[0].Schema = cwSchema(t, schema.FieldSpec{Name: "level", Type: "str"}, schema.FieldSpec{Name: "n", Type: "int"})
	})
	out, err := h.p.Classify(t.Context(), "orders", cwRecords(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Rows) != 5 || len(out.Letters) != 4 || !reflect.DeepEqual(out.SplitSkipped, map[string]int{cwlogs.SkipControl: 1}) {
		t.Errorf("Classify: %d rows, %d letters, skipped %v; want 5, 4, one control message", len(out.Rows), len(out.Letters), out.SplitSkipped)
	}
}
