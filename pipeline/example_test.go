package pipeline_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/metrics"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
)

// One batch of a shard goes in; Deliver returns once every record of it is
// durable as a row or as a dead letter with its reason. Metrics are
// decorators around the sinks and the pipeline, as internal/service/app wires them.
func Example() {
	dir, err := os.MkdirTemp("", "pipeline")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	log := slog.New(slog.DiscardHandler)
	rows, err := file.NewRowSink(file.Config{Dir: filepath.Join(dir, "rows"), WorkerID: "w1", Prefix: "orders"}, log)
	if err != nil {
		panic(err)
	}
	defer rows.Close()
	letters, err := file.NewDeadLetterSink(file.Config{Dir: filepath.Join(dir, "dl"), WorkerID: "w1"}, log)
	if err != nil {
		panic(err)
	}
	defer letters.Close()
	orders, err := schema.Compile("ts", []schema.FieldSpec{{Name: "id", Type: "int"}, {Name: "ts", Type: "datetime"}})
	if err != nil {
		panic(err)
	}

	m := metrics.New(prometheus.NewRegistry())
	p, err := pipeline.New(pipeline.Config{
		Sources: []pipeline.Source{{
			Name: "orders", Decoder: jsondec.New(),
			Routes: []pipeline.Route{{Dataset: "orders", Schema: orders, SinkName: "rows", Sink: m.WrapRowSink("rows", rows)}},
		}},
		DeadLetters: m.WrapDeadLetterSink(letters),
		Metrics:     m.Pipeline(),
		Logger:      log,
	})
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-p.Running()

	var batch []record.Record
	for i, data := range []string{
		`{"id": 1, "ts": "2024-05-01T12:00:00Z"}`,
		`{"id": "two", "ts": "2024-05-01T12:00:01Z"}`,
		`{"id": 3,`,
	} {
		batch = append(batch, record.Record{
			Origin: record.Origin{Source: "orders", ShardID: "shardId-000000000000", SequenceNumber: fmt.Sprint(100 + i),
				ArrivalTime: time.Date(2024, 5, 1, 12, 0, 2, 0, time.UTC)},
			Data: []byte(data),
		})
	}
	if err := m.WrapHandler(p).Deliver(ctx, "orders", batch); err != nil {
		panic(err)
	}
	stop()
	if err := <-done; err != nil {
		panic(err)
	}

	for _, line := range jsonLines(filepath.Join(dir, "rows")) {
		fmt.Printf("row: id=%v sequence=%v\n", line["id"], line["_sequence_number"])
	}
	for _, line := range jsonLines(filepath.Join(dir, "dl")) {
		fmt.Printf("dead letter: sequence=%v reason=%v error=%v\n", line["sequence_number"], line["reason"], line["error"])
	}
	r, d := m.Totals()
	fmt.Printf("rows_written_total %v, dead_letters_total %v\n", r, d)
	// Output:
	// row: id=1 sequence=100
	// dead letter: sequence=101 reason=schema_error error=id: want int, got string "two"
	// dead letter: sequence=102 reason=decode_error error=invalid JSON at byte 9: unexpected end of input
	// rows_written_total 1, dead_letters_total 2
}

func jsonLines(dir string) []map[string]any {
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	var out []map[string]any
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			panic(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				panic(err)
			}
			out = append(out, m)
		}
		fh.Close()
	}
	return out
}
