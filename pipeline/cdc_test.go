package pipeline_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesis-ingest/kinesis-ingest/cdc"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/schema/where"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
)

// TestDebeziumDataset: a cdc: debezium dataset reads its fields from the row
// image (and $ts_ms from the envelope), turns deletes into delete rows with
// the key and timestamp, skips and counts truncates, heartbeats and
// tombstones, and dead-letters malformed envelopes as schema_error and
// malformed JSON as decode_error; the changelog file has every change with
// its _op, in arrival order. The where filter sees the image, and never
// drops a delete.
func TestDebeziumDataset(t *testing.T) {
	users, err := schema.Compile("ts", []schema.FieldSpec{
		{Name: "id", Type: "int", Key: true},
		{Name: "name", Type: "str"},
		{Name: "ts", Type: "datetime", Ref: "$ts_ms"},
	})
	if err != nil {
		t.Fatal(err)
	}
	where := mustWhere(t, `name != "skip me"`, []schema.FieldSpec{{Name: "name", Type: "str"}})
	var changes string
	h := newHarness(t, func(c *pipeline.Config) {
		changes = filepath.Join(t.TempDir(), "changes")
		rs, err := file.NewRowSink(file.Config{Dir: changes, WorkerID: "t", Prefix: "users", Changelog: true}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rs.Close() })
		c.Sources[0].Routes = []pipeline.Route{{Dataset: "users", Schema: users, Where: where, SinkName: "users", Sink: rs, Changes: cdc.Debezium{}}}
	})
	recs := records("shardId-0",
		`{"op":"c","before":null,"after":{"id":1,"name":"ann"},"ts_ms":1700000000000}`,
		`{"schema":{"type":"struct"},"payload":{"op":"u","before":{"id":1,"name":"ann"},"after":{"id":1,"name":"bob"},"ts_ms":1700000001000}}`,
		`{"op":"d","before":{"id":1},"after":null,"ts_ms":1700000002000}`,
		`{"op":"t","ts_ms":1700000003000}`,
		`{"ts_ms":1700000004000}`,
		`null`,
		`{"op":"u","after":null,"ts_ms":1700000005000}`,
		`{"op":"c","after":{"id":"x","name":"eve"},"ts_ms":1700000006000}`,
		`{"op":"c","after":{"id":2,"name":"skip me"},"ts_ms":1700000007000}`,
		`{"op":"d","before":{"id":2,"name":"skip me"},"ts_ms":1700000008000}`,
		`{"op":`,
	)
	if err := h.p.Deliver(t.Context(), "orders", recs); err != nil {
		t.Fatal(err)
	}
	rows := readJSONL(t, changes)
	want := []string{
		"upsert 1 ann 2023-11-14T22:13:20.000000Z",
		"upsert 1 bob 2023-11-14T22:13:21.000000Z",
		"delete 1 <nil> 2023-11-14T22:13:22.000000Z",
		"delete 2 <nil> 2023-11-14T22:13:28.000000Z",
	}
	if len(rows) != len(want) {
		t.Fatalf("changelog %v, want %d lines", rows, len(want))
	}
	for i, r := range rows {
		got := strings.Join([]string{str(r["_op"]), str(r["id"]), str(r["name"]), str(r["ts"])}, " ")
		if got != want[i] {
			t.Errorf("change %d: %s, want %s", i, got, want[i])
		}
	}
	dls := readJSONL(t, h.dlDir)
	wantDL := map[string]string{
		"1006": "schema_error after: not a Debezium change event",
		"1007": "schema_error id: want int",
		"1010": "decode_error ",
	}
	if len(dls) != len(wantDL) {
		t.Fatalf("dead letters %v, want %d", dls, len(wantDL))
	}
	for _, d := range dls {
		w := wantDL[d["sequence_number"].(string)]
		if got := d["reason"].(string) + " " + d["error"].(string); w == "" || !strings.HasPrefix(got, w) {
			t.Errorf("dead letter %s: %q, want it to start with %q", d["sequence_number"], got, w)
		}
	}
	for event, n := range map[string]float64{cdc.SkipTruncate: 1, cdc.SkipHeartbeat: 1, cdc.SkipTombstone: 1} {
		if got := testutil.ToFloat64(h.m.CDCSkipped.WithLabelValues("users", event)); got != n {
			t.Errorf("cdc_events_skipped_total{event=%q} = %v, want %v", event, got, n)
		}
	}
}

func mustWhere(t *testing.T, src string, fields []schema.FieldSpec) *where.Filter {
	t.Helper()
	f, err := where.Compile(src, fields)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return "<nil>"
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}
