package pipeline_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/avrodec"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
)

// TestRegistryOutageIsRetriedByThePipeline: a schema registry that answers
// 503 twice makes the record wait, not a dead letter. The decoder answers
// each Decode at once, so the pipeline's decode retry is the one layer that
// retries: three requests for three attempts, two retries counted.
func TestRegistryOutageIsRetriedByThePipeline(t *testing.T) {
	const avsc = `{"type":"record","name":"Order","fields":[
		{"name":"id","type":"long"},
		{"name":"amount","type":"double"},
		{"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}},
		{"name":"note","type":["null","string"]}]}`
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]any{"error_code": 50003, "message": "leader unavailable"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"schema": avsc})
	}))
	defer srv.Close()
	dec, err := avrodec.New(avrodec.Config{Registry: &avrodec.Registry{URL: srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(avsc)
	if err != nil {
		t.Fatal(err)
	}
	body, err := codec.BinaryFromNative([]byte{0, 0, 0, 0, 1}, map[string]any{"id": int64(7), "amount": 1.5,
		"ts": time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), "note": nil})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *pipeline.Config) { c.Sources[0].Decoder = dec })
	if err := h.p.Deliver(t.Context(), "orders", records("shardId-0", string(body))); err != nil {
		t.Fatal(err)
	}
	if rows := readJSONL(t, h.rowsDir); len(rows) != 1 || rows[0]["id"] != 7.0 {
		t.Fatalf("rows = %v, want the record once the registry answers", rows)
	}
	if dls := readJSONL(t, h.dlDir); len(dls) != 0 {
		t.Fatalf("dead letters = %v, want none: an outage is not the record's fault", dls)
	}
	if n := requests.Load(); n != 3 {
		t.Errorf("registry asked %d times, want 3 (one per attempt: no retry inside the decoder)", n)
	}
	if got := testutil.ToFloat64(h.m.DecodeRetries.WithLabelValues("orders")); got != 2 {
		t.Errorf("decode_retries_total = %v, want 2", got)
	}
}
