package pipeline_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/cwlogs"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// The hot path's CloudWatch Logs cases (sub-benchmarks of BenchmarkHotPath,
// so in the same run as its baselines). One op is one log event, not one
// Kinesis record: the same 8-field JSON records as the other cases, each the
// message of a log event, cwlEvents events to a gzip envelope.
//
//	stdlib-cwlogs   the baseline: compress/gzip, then encoding/json.Unmarshal
//	                of the envelope into a Go struct and of each message
//	                into the order struct; nothing else
//	cwlogs/file     the pipeline as it runs: decoders/cwlogs splits each
//	                record (gzip, the envelope read in place) into its
//	                events, each converted on the JSON fast path (reading
//	                $log_group and $event_timestamp too) into the file sink
//
// Deliver gets hotBatch events at a time (hotBatch/cwlEvents records).

// cwlEvents is the log events of one record: CloudWatch Logs batches a log
// group's events for up to about a second, so busy groups put dozens.
const cwlEvents = 20

// cwlEnvelope is the baseline's struct.
type cwlEnvelope struct {
	MessageType         string   `json:"messageType"`
	Owner               string   `json:"owner"`
	LogGroup            string   `json:"logGroup"`
	LogStream           string   `json:"logStream"`
	SubscriptionFilters []string `json:"subscriptionFilters"`
	LogEvents           []struct {
		ID        string `json:"id"`
		Timestamp int64  `json:"timestamp"`
		Message   string `json:"message"`
	} `json:"logEvents"`
}

// cwlRecords makes hotBatch/cwlEvents records of the hot records' bodies.
func cwlRecords(b *testing.B, hot []record.Record) []record.Record {
	var out []record.Record
	for r := 0; r < len(hot)/cwlEvents; r++ {
		var env cwlEnvelope
		env.MessageType, env.Owner, env.LogGroup = cwlogs.DataMessage, "123456789012", "/aws/lambda/checkout"
		env.LogStream, env.SubscriptionFilters = fmt.Sprintf("2024/05/01/[$LATEST]%04d", r), []string{"all"}
		for i := range cwlEvents {
			n := r*cwlEvents + i
			env.LogEvents = append(env.LogEvents, struct {
				ID        string `json:"id"`
				Timestamp int64  `json:"timestamp"`
				Message   string `json:"message"`
			}{fmt.Sprintf("3695%052d", n), 1714559400000 + int64(n), string(hot[n].Data)})
		}
		js, err := json.Marshal(env)
		if err != nil {
			b.Fatal(err)
		}
		rec := hot[r*cwlEvents]
		rec.Data = gzipped(b, js)
		out = append(out, rec)
	}
	return out
}

func benchCloudWatchLogs(b *testing.B, hot []record.Record) {
	recs := cwlRecords(b, hot)
	var size int
	for _, r := range recs {
		size += len(r.Data)
	}
	b.Logf("cloudwatch_logs: %d events a record, %d gzip bytes a record", cwlEvents, size/len(recs))

	b.Run("stdlib-cwlogs", func(b *testing.B) {
		var zr gzip.Reader
		var buf bytes.Buffer
		var o hotOrder
		cpu0 := cpuTime()
		for done, i := 0, 0; done < b.N; i++ {
			if err := zr.Reset(bytes.NewReader(recs[i%len(recs)].Data)); err != nil {
				b.Fatal(err)
			}
			buf.Reset()
			if _, err := io.Copy(&buf, &zr); err != nil {
				b.Fatal(err)
			}
			var env cwlEnvelope
			if err := json.Unmarshal(buf.Bytes(), &env); err != nil {
				b.Fatal(err)
			}
			for _, e := range env.LogEvents {
				if err := json.Unmarshal([]byte(e.Message), &o); err != nil {
					b.Fatal(err)
				}
			}
			done += len(env.LogEvents)
		}
		reportRecords(b, cpu0)
	})

	specs := append([]schema.FieldSpec{}, hotSpecs...)
	specs = append(specs, schema.FieldSpec{Name: "group", Type: "str", Ref: "$log_group"}, schema.FieldSpec{Name: "at", Type: "datetime", Ref: "$event_timestamp"})
	cwlSch, err := schema.Compile("ts", specs)
	if err != nil {
		b.Fatal(err)
	}
	dec, err := cwlogs.New(cwlogs.Config{Message: cwlogs.JSON})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cwlogs/file", func(b *testing.B) {
		h := newHarness(b, func(cfg *pipeline.Config) {
			cfg.Sources[0].Decoder = dec
			cfg.Sources[0].Routes[0].Schema = cwlSch
		})
		ctx := context.Background()
		b.ResetTimer()
		cpu0 := cpuTime()
		for done := 0; done < b.N; {
			n := min(len(recs), (b.N-done+cwlEvents-1)/cwlEvents)
			if err := h.p.Deliver(ctx, "orders", recs[:n]); err != nil {
				b.Fatal(err)
			}
			done += n * cwlEvents
		}
		b.StopTimer()
		reportRecords(b, cpu0)
		if dls := readJSONL(b, h.dlDir); len(dls) > 0 {
			b.Fatalf("%d dead letters, first %v", len(dls), dls[0])
		}
	})
}
