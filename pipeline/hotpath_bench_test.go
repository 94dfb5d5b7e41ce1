package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/kinesis-ingest/kinesis-ingest/decoders"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/avrodec"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/decompress"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/pgtest"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/schema/where"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/postgres"
)

// The hot-path benchmark: records already in memory go through
// Pipeline.Deliver (decode → validate → route → durable sink write) in
// GetRecords-sized batches. One benchmark op is one record, so ns/op, B/op
// and allocs/op are per record; records/s (wall clock, so with the waits for
// fsync) and cpu-ns/record (the process's user+system CPU) are reported too.
// Run it on one core:
//
//	go test -run '^$' -bench HotPath -benchmem -cpu 1 ./pipeline
//
// or `make bench`, which also prints it as a table (internal/tools/bench/table).
//
// The cases, all on the same 8-field records of about 200 bytes:
//
//	stdlib-struct   the baseline: encoding/json.Unmarshal of the same bytes
//	                into a Go struct, nothing else (no validation, no sink)
//	json-general    the general path: jsondec (encoding/json into
//	                map[string]any) then schema.Convert: the pipeline before
//	                the fast path, forced here by hiding AppendJSON
//	json            the pipeline as it runs: schema.JSONRecord.Scan, then
//	                Schema.AppendJSON
//	json-where      the same with a where every record passes (the where
//	                reads the same scan)
//	avro            the same data as Avro binary: avrodec then Convert
//	json-gzip       "json" with each record gzipped (a source with
//	                compression: gzip): inflate, then the same fast path
//	*-convert       the decode+validate stage alone, without the pipeline
//	*/file          the file row sink (JSON Lines, fsync per batch)
//	*/postgres      the same with the PostgreSQL row sink (when the server
//	                binaries are installed, see internal/testenv/pgtest)
//	json/parquet,   the lake: see hotpath_lake_bench_test.go
//	parquet-alone
//	stdlib-cwlogs,  CloudWatch Logs, per log event: see
//	cwlogs/file     hotpath_cwlogs_bench_test.go

// hotBatch is the records per Deliver: a busy shard's GetRecords batch.
const hotBatch = 500

var hotSpecs = []schema.FieldSpec{
	{Name: "id", Type: "int"},
	{Name: "amount", Type: "float", Between: &schema.Between{Min: 0}},
	{Name: "ts", Type: "datetime"},
	{Name: "note", Type: "optional[str]"},
	{Name: "country", Type: "str", Regex: "[A-Z]{2}"},
	{Name: "sku", Type: "str"},
	{Name: "qty", Type: "int", Between: &schema.Between{Min: 1, Max: 1000}},
	{Name: "channel", Type: "str", Oneof: []any{"web", "app", "store"}},
}

const hotAvroSchema = `{"type":"record","name":"Order","fields":[
	{"name":"id","type":"long"},
	{"name":"amount","type":"double"},
	{"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}},
	{"name":"note","type":["null","string"]},
	{"name":"country","type":"string"},
	{"name":"sku","type":"string"},
	{"name":"qty","type":"int"},
	{"name":"channel","type":"string"}]}`

// hotOrder is the baseline's struct.
type hotOrder struct {
	ID      int64     `json:"id"`
	Amount  float64   `json:"amount"`
	TS      time.Time `json:"ts"`
	Note    *string   `json:"note"`
	Country string    `json:"country"`
	SKU     string    `json:"sku"`
	Qty     int64     `json:"qty"`
	Channel string    `json:"channel"`
}

var hotNotes = []string{"gift wrap please, and ring twice at the back door: the bell is broken", "leave it with the neighbour at number 12 if nobody is at home, thanks!", "", "fragile: glassware inside, handle with care and keep this side up"}
var hotCountries = []string{"DE", "FR", "NL", "AT"}
var hotChannels = []string{"web", "app", "store"}

// hotRecords returns n records of one shard in JSON and in Avro.
func hotRecords(b *testing.B, n int) (jsonRecs, avroRecs []record.Record) {
	codec, err := goavro.NewCodec(hotAvroSchema)
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC)
	for i := range n {
		o := hotOrder{
			ID: 1_000_000 + int64(i), Amount: float64(i%9000) + 0.25, TS: base.Add(time.Duration(i) * time.Second),
			Country: hotCountries[i%4], SKU: fmt.Sprintf("SKU-%06d-%s", i*7919%1_000_000, []string{"BLUE-XL", "RED-M", "GREEN-S"}[i%3]), Qty: int64(1 + i%5), Channel: hotChannels[i%3],
		}
		note := any(nil)
		if n := hotNotes[i%4]; n != "" {
			o.Note, note = &n, map[string]any{"string": n}
		}
		js, err := json.Marshal(o)
		if err != nil {
			b.Fatal(err)
		}
		av, err := codec.BinaryFromNative(nil, map[string]any{
			"id": o.ID, "amount": o.Amount, "ts": o.TS, "note": note, "country": o.Country,
			"sku": o.SKU, "qty": int32(o.Qty), "channel": o.Channel,
		})
		if err != nil {
			b.Fatal(err)
		}
		origin := record.Origin{Source: "orders", StreamARN: "arn:aws:kinesis:us-east-1:000000000000:stream/orders", ShardID: "shardId-000000000000",
			SequenceNumber: strconv.Itoa(49_000_000_000 + i), PartitionKey: strconv.Itoa(i), ArrivalTime: base.Add(time.Duration(i) * time.Millisecond)}
		jsonRecs = append(jsonRecs, record.Record{Origin: origin, Data: js})
		avroRecs = append(avroRecs, record.Record{Origin: origin, Data: av})
	}
	return jsonRecs, avroRecs
}

func BenchmarkHotPath(b *testing.B) {
	jsonRecs, avroRecs := hotRecords(b, hotBatch)
	var bytes int
	for _, r := range jsonRecs {
		bytes += len(r.Data)
	}
	b.Logf("records: %d JSON bytes on average, %d fields", bytes/len(jsonRecs), len(hotSpecs))
	sch, err := schema.Compile("ts", hotSpecs)
	if err != nil {
		b.Fatal(err)
	}
	avroDec, err := avrodec.New(avrodec.Config{Schema: hotAvroSchema})
	if err != nil {
		b.Fatal(err)
	}
	gzipDec, err := decompress.New(jsondec.New(), decompress.Config{Codec: decompress.Gzip})
	if err != nil {
		b.Fatal(err)
	}
	gzipRecs := append([]record.Record(nil), jsonRecs...)
	for i := range gzipRecs {
		gzipRecs[i].Data = gzipped(b, gzipRecs[i].Data)
	}

	b.Run("stdlib-struct", func(b *testing.B) {
		var o hotOrder
		cpu0 := cpuTime()
		for i := 0; b.Loop(); i++ {
			if err := json.Unmarshal(jsonRecs[i%hotBatch].Data, &o); err != nil {
				b.Fatal(err)
			}
		}
		reportRecords(b, cpu0)
	})
	b.Run("json-general-convert", func(b *testing.B) {
		dec := jsondec.New()
		cpu0 := cpuTime()
		for i := 0; b.Loop(); i++ {
			v, err := dec.Decode(jsonRecs[i%hotBatch].Data)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := sch.Convert(v); err != nil {
				b.Fatal(err)
			}
		}
		reportRecords(b, cpu0)
	})
	b.Run("json-convert", func(b *testing.B) {
		// As the pipeline converts: one scan per record into a reused
		// JSONRecord, the batch's fields in one slice.
		var r schema.JSONRecord
		var fields []record.Field
		cpu0 := cpuTime()
		for i := 0; b.Loop(); i++ {
			if i%hotBatch == 0 {
				fields = make([]record.Field, 0, hotBatch*len(hotSpecs))
			}
			var ok bool
			if !r.Scan(jsonRecs[i%hotBatch].Data) {
				b.Fatal("not scanned")
			}
			if fields, ok = sch.AppendJSON(fields, &r); !ok {
				b.Fatal("declined")
			}
		}
		reportRecords(b, cpu0)
	})
	b.Run("avro-convert", func(b *testing.B) {
		cpu0 := cpuTime()
		for i := 0; b.Loop(); i++ {
			v, err := avroDec.Decode(avroRecs[i%hotBatch].Data)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := sch.Convert(v); err != nil {
				b.Fatal(err)
			}
		}
		reportRecords(b, cpu0)
	})

	// The lake's cases before the sink cases: those start a PostgreSQL
	// server, whose background work after their inserts would share the
	// cores with whatever runs next.
	benchLake(b, sch)
	benchCloudWatchLogs(b, jsonRecs)

	type sinkCase struct {
		name string
		sink func(b *testing.B) sinks.RowSink // nil: the harness's file sink
	}
	sinkCases := []sinkCase{{name: "file"}}
	if pgtest.BinDir() != "" {
		srv := pgtest.Start(b)
		dsn := srv.CreateDatabase(b)
		n := 0
		sinkCases = append(sinkCases, sinkCase{name: "postgres", sink: func(b *testing.B) sinks.RowSink {
			n++
			s, err := postgres.NewRowSink(context.Background(), postgres.Config{DSN: dsn, Table: fmt.Sprintf("orders_%d", n),
				Columns: sch.Columns(), CreateTable: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}})
	} else {
		b.Log("no PostgreSQL server binaries: the postgres cases are skipped")
	}
	// A where that every record passes, reading two fields: what the where
	// adds to json/file (the record is still scanned once).
	filter, err := where.Compile(`qty >= 1 && channel != "fax"`, hotSpecs)
	if err != nil {
		b.Fatal(err)
	}
	for _, sc := range sinkCases {
		for _, c := range []struct {
			name   string
			conv   pipeline.Converter
			where  pipeline.Filter
			dec    decoders.Decoder // nil: jsondec
			source []record.Record
			window *pipeline.Window
		}{
			{"json-general", generalOnly{sch}, nil, nil, jsonRecs, nil},
			{"json", sch, nil, nil, jsonRecs, nil},
			{"json-where", sch, filter, nil, jsonRecs, nil},
			// since/until and a sample that keep every row: what the checks
			// and the hash cost per record, against "json".
			{"json-window", sch, nil, nil, jsonRecs, keepAllWindow(sch)},
			{"avro", sch, nil, avroDec, avroRecs, nil},
			{"json-gzip", sch, nil, gzipDec, gzipRecs, nil},
		} {
			if (c.where != nil || c.name == "json-gzip") && sc.name != "file" {
				continue
			}
			name := c.name + "/" + sc.name
			b.Run(name, func(b *testing.B) {
				h := newHarness(b, func(cfg *pipeline.Config) {
					src := &cfg.Sources[0]
					src.Routes[0].Schema = c.conv
					src.Routes[0].Window = c.window
					if c.where != nil {
						src.Routes[0].Where = c.where
					}
					if c.dec != nil {
						src.Decoder = c.dec
					}
					if sc.sink != nil {
						src.Routes[0].Sink = sc.sink(b)
					}
				})
				recs := append([]record.Record(nil), c.source...)
				ctx := context.Background()
				b.ResetTimer()
				cpu0 := cpuTime()
				for done, batch := 0, 0; done < b.N; batch++ {
					n := min(hotBatch, b.N-done)
					for i := range n {
						// A fresh origin key per batch, so that a sink that
						// de-duplicates on it writes every row.
						recs[i].Origin.SubSequence = batch
					}
					if err := h.p.Deliver(ctx, "orders", recs[:n]); err != nil {
						b.Fatal(err)
					}
					done += n
				}
				b.StopTimer()
				reportRecords(b, cpu0)
				if dls := readJSONL(b, h.dlDir); len(dls) > 0 {
					b.Fatalf("%d dead letters, first %v", len(dls), dls[0])
				}
			})
		}
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRecords reports records/s (wall clock, so including the waits for
// fsync) and cpu-ns/record: the user+system CPU time of the whole process
// (every goroutine, the GC, the sink's committer, system calls) from cpu0 on,
// per record. A PostgreSQL server's own CPU is not in it.
func reportRecords(b *testing.B, cpu0 time.Duration) {
	b.ReportAllocs()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/record")
}

// keepAllWindow is a since/until a century wide and a sample of every field
// but the timestamp at a rate that keeps (all but about one in a million)
// rows.
func keepAllWindow(sch *schema.Schema) *pipeline.Window {
	w := &pipeline.Window{Timestamp: sch.TimestampIndex(), SampleRate: 1 - 1e-6,
		Since: time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := range sch.Columns() {
		if i != w.Timestamp {
			w.SampleColumns = append(w.SampleColumns, i)
		}
	}
	return w
}
