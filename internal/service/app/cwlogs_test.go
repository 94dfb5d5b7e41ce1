package app

import (
	"bytes"
	"compress/gzip"
	"log/slog"
	"strings"
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// TestDecoderForCloudWatchLogs: a cloudwatch_logs source's decoder splits
// its records (the pipeline's Splitter) within the source's bound, and
// reads messages by the inner format, on the fast path of each.
func TestDecoderForCloudWatchLogs(t *testing.T) {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(`{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":[],"logEvents":[{"id":"1","timestamp":5,"message":"{\"a\":1}"}]}`))
	w.Close()
	src := func(message string, max int64) config.Source {
		return config.Source{Name: "logs", Kinesis: config.Kinesis{Format: config.Format{Kind: config.FormatCloudWatchLogs,
			CloudWatchLogs: &config.CloudWatchLogs{Message: message}}, Compression: config.CompressionNone, MaxDecompressedBytes: max}}
	}
	for _, c := range []struct {
		name        string
		src         config.Source
		fast        func(any) bool
		errContains string
	}{
		{"json", src(config.CloudWatchLogsJSON, config.DefaultMaxDecompressedBytes), func(d any) bool { _, ok := d.(pipeline.JSONScanner); return ok }, ""},
		{"str", src(config.CloudWatchLogsStr, config.DefaultMaxDecompressedBytes), func(d any) bool { _, ok := d.(pipeline.NamedDecoder); return ok }, ""},
		{"over its bound", src(config.CloudWatchLogsJSON, 16), nil, "more than the bound of 16 bytes (max_decompressed_bytes)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dec, err := decoderFor(c.src, config.Consumer{}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			sp, ok := dec.(pipeline.Splitter)
			if !ok {
				t.Fatalf("%T is no Splitter", dec)
			}
			events, _, err := sp.Split(nil, &record.Record{Data: gz.Bytes()})
			if c.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), c.errContains) {
					t.Fatalf("Split error = %v, want one containing %q", err, c.errContains)
				}
				return
			}
			if err != nil || len(events) != 1 || string(events[0].Data) != `{"a":1}` || events[0].Event.LogGroup != "g" {
				t.Fatalf("Split = %v, %v", events, err)
			}
			if !c.fast(dec) {
				t.Errorf("%T has not its fast path", dec)
			}
		})
	}
}
