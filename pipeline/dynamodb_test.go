package pipeline_test

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/cdc"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
)

// TestDynamoDBDataset: a cdc: dynamodb dataset reads its fields from the
// untyped item (and the event time and table from the record), turns
// INSERT and MODIFY into upserts and REMOVE into a delete of the key with
// its event time, at either precision; the changelog file has every change
// with its _op, in arrival order. An image that does not fit the dataset
// is a schema_error naming the field, a record that is no DynamoDB change
// a schema_error naming what is wrong, and a record that is not JSON a
// decode_error.
func TestDynamoDBDataset(t *testing.T) {
	songs, err := schema.Compile("ts", []schema.FieldSpec{
		{Name: "id", Type: "int", Key: true},
		{Name: "name", Type: "str"},
		{Name: "awards", Type: "optional[int]"},
		{Name: "table", Type: "str", Ref: "$tableName"},
		{Name: "ts", Type: "datetime", Ref: "$dynamodb.ApproximateCreationDateTime"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var changes string
	h := newHarness(t, func(c *pipeline.Config) {
		changes = filepath.Join(t.TempDir(), "changes")
		rs, err := file.NewRowSink(file.Config{Dir: changes, WorkerID: "t", Prefix: "songs", Changelog: true}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rs.Close() })
		c.Sources[0].Routes = []pipeline.Route{{Dataset: "songs", Schema: songs, SinkName: "songs", Sink: rs, Changes: cdc.DynamoDB{}}}
	})
	rec := func(event, dynamodb string) string {
		return `{"awsRegion":"us-east-1","eventID":"e","eventName":"` + event + `","userIdentity":null,"recordFormat":"application/json","tableName":"Music","dynamodb":` + dynamodb + `,"eventSource":"aws:dynamodb"}`
	}
	recs := records("shardId-0",
		rec("INSERT", `{"ApproximateCreationDateTime":1700000000000,"ApproximateCreationDateTimePrecision":"MILLISECOND","Keys":{"id":{"N":"1"}},"NewImage":{"id":{"N":"1"},"name":{"S":"ann"}},"SizeBytes":20}`),
		rec("MODIFY", `{"ApproximateCreationDateTime":1700000001000123,"ApproximateCreationDateTimePrecision":"MICROSECOND","Keys":{"id":{"N":"1"}},"NewImage":{"id":{"N":"1"},"name":{"S":"bob"},"awards":{"N":"3"}},"OldImage":{"id":{"N":"1"},"name":{"S":"ann"}}}`),
		rec("REMOVE", `{"ApproximateCreationDateTime":1700000002000,"Keys":{"id":{"N":"1"}},"OldImage":{"id":{"N":"1"},"name":{"S":"bob"},"awards":{"N":"3"}}}`),
		rec("INSERT", `{"ApproximateCreationDateTime":1700000003000,"NewImage":{"id":{"N":"2"},"name":{"S":"cat"},"awards":{"N":"1.5"}}}`),
		`{"tableName":"Music","dynamodb":{"NewImage":{"id":{"N":"3"},"name":{"S":"dan"}}}}`,
		rec("INSERT", `{"ApproximateCreationDateTime":1700000004000,"NewImage":{"id":3,"name":{"S":"dan"}}}`),
		rec("INSERT", `{"ApproximateCreationDateTime":1700000005000,"NewImage":{"id":{"S":"4"},"name":{"S":"eve"}}}`),
		`{"eventName":`,
		rec("REMOVE", `{"ApproximateCreationDateTime":1700000006000,"Keys":{"id":{"N":"5"}}}`),
	)
	if err := h.p.Deliver(t.Context(), "orders", recs); err != nil {
		t.Fatal(err)
	}
	rows := readJSONL(t, changes)
	want := []string{
		"upsert 1 ann <nil> Music 2023-11-14T22:13:20.000000Z",
		"upsert 1 bob 3 Music 2023-11-14T22:13:21.000123Z",
		"delete 1 <nil> <nil> <nil> 2023-11-14T22:13:22.000000Z",
		"delete 5 <nil> <nil> <nil> 2023-11-14T22:13:26.000000Z",
	}
	if len(rows) != len(want) {
		t.Fatalf("changelog %v, want %d lines", rows, len(want))
	}
	for i, r := range rows {
		got := strings.Join([]string{str(r["_op"]), str(r["id"]), str(r["name"]), str(r["awards"]), str(r["table"]), str(r["ts"])}, " ")
		if got != want[i] {
			t.Errorf("change %d: %s, want %s", i, got, want[i])
		}
	}
	dls := readJSONL(t, h.dlDir)
	wantDL := map[string]string{
		"1003": "schema_error awards: want int, got number 1.5 (not a whole number)",
		"1004": "schema_error eventName: not a DynamoDB change record: no eventName",
		"1005": "schema_error dynamodb.NewImage.id: not a DynamoDB change record: want a typed value",
		"1006": `schema_error id: want int, got string "4"`,
		"1007": "decode_error ",
	}
	if len(dls) != len(wantDL) {
		t.Fatalf("dead letters %v, want %d", dls, len(wantDL))
	}
	for _, d := range dls {
		w := wantDL[d["sequence_number"].(string)]
		if got := d["reason"].(string) + " " + d["error"].(string); w == "" || !strings.HasPrefix(got, w) {
			t.Errorf("dead letter %s: %q, want it to start with %q", d["sequence_number"], got, w)
		}
		if d["dataset"] != "songs" && d["reason"] != "decode_error" {
			t.Errorf("dead letter %s names dataset %v, want songs", d["sequence_number"], d["dataset"])
		}
	}
}
