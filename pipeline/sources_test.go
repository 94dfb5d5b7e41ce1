package pipeline_test

import (
	"fmt"
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// TestDatasetOfSeveralSources: a dataset listed by two sources (Fennel's
// stacked @source decorators) takes the records of both into its one sink,
// each row carrying the source it came from, also when the two streams'
// shard ids and sequence numbers coincide; a record of either that does not
// fit is that source's dead letter.
func TestDatasetOfSeveralSources(t *testing.T) {
	h := newHarness(t, func(c *pipeline.Config) {
		staging := c.Sources[0]
		staging.Name, staging.StreamARN, staging.Decoder = "orders_staging", "arn:aws:kinesis:us-east-1:000000000000:stream/staging", jsondec.New()
		staging.Routes = append([]pipeline.Route(nil), c.Sources[0].Routes...)
		c.Sources = append(c.Sources, staging)
	})
	from := func(source string, recs []record.Record) []record.Record {
		for i := range recs {
			recs[i].Origin.Source = source
		}
		return recs
	}
	prod := from("orders", records("shardId-0",
		`{"id":1,"amount":1.5,"ts":"2024-01-01T00:00:00Z"}`,
		`{"id":2,"amount":2.5,"ts":"2024-01-01T00:00:00Z"}`))
	staging := from("orders_staging", records("shardId-0",
		`{"id":11,"amount":1,"ts":"2024-01-01T00:00:00Z"}`,
		`{"id":12,"amount":"x","ts":"2024-01-01T00:00:00Z"}`,
		`{"id":13,"amount":3,"ts":"2024-01-01T00:00:00Z"}`))
	if err := h.p.Deliver(t.Context(), "orders", prod); err != nil {
		t.Fatal(err)
	}
	if err := h.p.Deliver(t.Context(), "orders_staging", staging); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{} // id: source
	for _, r := range readJSONL(t, h.rowsDir) {
		got[fmt.Sprint(r["id"])] = fmt.Sprint(r["_source"])
	}
	want := map[string]string{"1": "orders", "2": "orders", "11": "orders_staging", "13": "orders_staging"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows by id and source: %v, want %v", got, want)
	}
	dls := readJSONL(t, h.dlDir)
	if len(dls) != 1 || dls[0]["source"] != "orders_staging" || dls[0]["dataset"] != "orders" || dls[0]["sequence_number"] != "1001" {
		t.Errorf("dead letters %v, want the staging record 1001 of dataset orders", dls)
	}
}
