package file_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
)

// A row sink appends JSON Lines and returns from Write once they are fsynced:
// one object per row, the dataset's fields in declaration order, then the
// record's origin (where it came from in the stream), which is what makes a
// replayed row recognisable.
func ExampleNewRowSink() {
	dir, err := os.MkdirTemp("", "rows")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	sink, err := file.NewRowSink(file.Config{Dir: dir, WorkerID: "w1", Prefix: "orders"}, slog.New(slog.DiscardHandler))
	if err != nil {
		panic(err)
	}
	origin := record.Origin{Source: "orders", ShardID: "shardId-000000000000", SequenceNumber: "4959",
		ArrivalTime: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	err = sink.Write(context.Background(), []record.Row{{Dataset: "orders", Origin: origin, Fields: []record.Field{
		{Name: "id", Value: int64(7)},
		{Name: "amount", Value: record.Decimal("12.50")},
		{Name: "day", Value: record.Date{Year: 2024, Month: time.May, Day: 1}},
		{Name: "note", Value: nil},
	}}})
	if err != nil {
		panic(err)
	}
	if err := sink.Close(); err != nil {
		panic(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "orders-w1-*.jsonl"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		fmt.Print(string(b))
	}
	// Output:
	// {"id":7,"amount":"12.50","day":"2024-05-01","note":null,"_source":"orders","_shard_id":"shardId-000000000000","_sequence_number":"4959","_subsequence":0,"_arrival_time":"2024-05-01T12:00:00.000000Z"}
}

// A dead letter keeps the record's bytes and origin, and says why it is not
// a row.
func ExampleNewDeadLetterSink() {
	dir, err := os.MkdirTemp("", "dead-letters")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	sink, err := file.NewDeadLetterSink(file.Config{Dir: dir, WorkerID: "w1"}, slog.New(slog.DiscardHandler))
	if err != nil {
		panic(err)
	}
	err = sink.Write(context.Background(), []record.DeadLetter{{
		Origin: record.Origin{Source: "orders", StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/orders",
			ShardID: "shardId-000000000000", SequenceNumber: "4960", PartitionKey: "k1",
			ArrivalTime: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)},
		Reason: record.ReasonDecode, Error: "invalid JSON at byte 0", Data: []byte("not json"),
	}})
	if err != nil {
		panic(err)
	}
	if err := sink.Close(); err != nil {
		panic(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "dead-letters-w1-*.jsonl"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		fmt.Print(string(b))
	}
	// Output:
	// {"source":"orders","stream_arn":"arn:aws:kinesis:us-east-1:123456789012:stream/orders","shard_id":"shardId-000000000000","sequence_number":"4960","subsequence":0,"partition_key":"k1","arrival_time":"2024-05-01T12:00:00.000000Z","reason":"decode_error","error":"invalid JSON at byte 0","data":"bm90IGpzb24="}
}
