package app

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// TestMaxRecordAgeInDryRunAndRedrive: the sample's dry run judges a record
// older than max_record_age as run does (an expired dead letter), and a
// redrive does not (the letter keeps its record's arrival time: every old
// letter would expire again).
func TestMaxRecordAgeInDryRunAndRedrive(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KI_DIR", dir)
	cfg, err := config.Parse([]byte(`
sources:
  - name: orders
    kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}
    max_record_age: 1m
datasets:
  - {name: orders, source: orders, sink: out, fields: [{name: id, type: int}, {name: ts, type: datetime}]}
sinks:
  - {name: out, file: {path: "${KI_DIR}/rows"}}
dead_letter:
  file: {path: "${KI_DIR}/letters"}
consumer: {worker_id: w1}
`))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	old := []record.Record{{
		Origin: record.Origin{Source: "orders", ShardID: "shardId-000000000000", SequenceNumber: "1", ArrivalTime: time.Now().Add(-time.Hour)},
		Data:   []byte(`{"id":1,"ts":"2026-01-01T00:00:00Z"}`),
	}}

	c, err := NewClassifier(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Classify(t.Context(), "orders", old)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Rows) != 0 || len(out.Letters) != 1 || out.Letters[0].Reason != record.ReasonExpired {
		t.Errorf("dry run: %d rows, letters %+v; want one expired dead letter", len(out.Rows), out.Letters)
	}

	r, err := NewRedriver(t.Context(), cfg, log, true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := r.Deliver(t.Context(), "orders", "orders", old)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 1 || len(res.Letters) != 0 {
		t.Errorf("redrive: %d rows, letters %+v; want the old record as a row", res.Rows, res.Letters)
	}
}
