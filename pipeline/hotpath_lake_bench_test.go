package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	s3sink "github.com/kinesis-ingest/kinesis-ingest/sinks/s3"
)

// The hot path's lake cases (sub-benchmarks of BenchmarkHotPath, so in the
// same run as its baseline):
//
//	json/parquet    the pipeline as it runs (scan, AppendJSON) into the s3
//	                row sink writing Parquet (zstd), with an S3 client that
//	                drops the object: decode → validate → Parquet, no upload
//	parquet-alone   the floor: parquet-go alone writing the same typed rows
//	                (the same 13 columns, zstd at the sink's level, fastest)
//	                from Go structs built before the clock starts
//
// Both make objects of lakeBatch rows: the pipeline delivers one GetRecords
// batch per Deliver, and the sink makes one object per Write.

// lakeBatch is the records per Deliver, and so the rows per object, of the
// lake cases: one GetRecords batch at kinesis-ingest's default max_records.
const lakeBatch = 1000

// hotParquetRow is the floor's row: the dataset's fields and the origin
// columns the sink adds, typed and encoded as the sink writes them.
type hotParquetRow struct {
	ID             int64     `parquet:"id,delta"`
	Amount         float64   `parquet:"amount"`
	TS             time.Time `parquet:"ts,timestamp(microsecond),delta"`
	Note           *string   `parquet:"note,optional"`
	Country        string    `parquet:"country"`
	SKU            string    `parquet:"sku"`
	Qty            int64     `parquet:"qty,delta"`
	Channel        string    `parquet:"channel"`
	Source         string    `parquet:"_source"`
	ShardID        string    `parquet:"_shard_id"`
	SequenceNumber string    `parquet:"_sequence_number"`
	SubSequence    int32     `parquet:"_subsequence,delta"`
	ArrivalTime    time.Time `parquet:"_arrival_time,timestamp(microsecond),delta"`
}

func benchLake(b *testing.B, sch *schema.Schema) {
	recs, _ := hotRecords(b, lakeBatch)

	b.Run("json/parquet", func(b *testing.B) {
		api := &discardS3{}
		sink, err := s3sink.New(s3sink.Config{Client: api, Bucket: "bench", Dataset: "orders", Columns: sch.Columns(), Timestamp: "ts"},
			slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		// Closed after the pipeline stops (cleanups run last first).
		b.Cleanup(func() { _ = sink.Close() })
		h := newHarness(b, func(cfg *pipeline.Config) {
			cfg.Sources[0].Routes[0].Schema = sch
			cfg.Sources[0].Routes[0].Sink = sink
		})
		// The sink drops the rows its chain already holds, so every batch
		// comes after the one before it in the shard: sequence numbers made
		// before the clock starts, in one string (one object for the GC).
		var digits []byte
		ends := make([]int, b.N)
		for i := range ends {
			digits = strconv.AppendInt(digits, 49_000_000_000+int64(i), 10)
			ends[i] = len(digits)
		}
		all := string(digits)
		seqs := make([]string, b.N)
		for i, start := 0, 0; i < b.N; i++ {
			seqs[i], start = all[start:ends[i]], ends[i]
		}
		batch := slices.Clone(recs)
		ctx := context.Background()
		b.ResetTimer()
		cpu0 := cpuTime()
		for done := 0; done < b.N; {
			n := min(lakeBatch, b.N-done)
			for i := range n {
				batch[i].Origin.SequenceNumber = seqs[done+i]
			}
			if err := h.p.Deliver(ctx, "orders", batch[:n]); err != nil {
				b.Fatal(err)
			}
			done += n
		}
		b.StopTimer()
		reportRecords(b, cpu0)
		if dls := readJSONL(b, h.dlDir); len(dls) > 0 {
			b.Fatalf("%d dead letters, first %v", len(dls), dls[0])
		}
		if want := (b.N + lakeBatch - 1) / lakeBatch; api.objects != want {
			b.Fatalf("%d objects for %d records, want %d", api.objects, b.N, want)
		}
		f, err := parquet.OpenFile(bytes.NewReader(api.last), int64(len(api.last)))
		if err != nil {
			b.Fatalf("the last object is not a Parquet file: %v", err)
		}
		if want := int64(b.N - (api.objects-1)*lakeBatch); f.NumRows() != want {
			b.Fatalf("the last object holds %d rows, want %d", f.NumRows(), want)
		}
	})

	b.Run("parquet-alone", func(b *testing.B) {
		rows := make([]hotParquetRow, len(recs))
		for i, r := range recs {
			var o hotOrder
			if err := json.Unmarshal(r.Data, &o); err != nil {
				b.Fatal(err)
			}
			rows[i] = hotParquetRow{ID: o.ID, Amount: o.Amount, TS: o.TS, Note: o.Note, Country: o.Country, SKU: o.SKU, Qty: o.Qty, Channel: o.Channel,
				Source: r.Origin.Source, ShardID: r.Origin.ShardID, SequenceNumber: r.Origin.SequenceNumber,
				SubSequence: int32(r.Origin.SubSequence), ArrivalTime: r.Origin.ArrivalTime}
		}
		var buf bytes.Buffer
		w := parquet.NewGenericWriter[hotParquetRow](&buf, parquet.Compression(&zstd.Codec{Level: zstd.SpeedFastest}))
		b.ResetTimer()
		cpu0 := cpuTime()
		for done := 0; done < b.N; {
			n := min(lakeBatch, b.N-done)
			buf.Reset()
			w.Reset(&buf)
			if _, err := w.Write(rows[:n]); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			done += n
		}
		b.StopTimer()
		reportRecords(b, cpu0)
	})
}

// discardS3 is the json/parquet case's S3: it lists no object (every
// chain starts empty) and drops what is put, keeping the last body to check.
// The calls the sink makes on none of these objects (multipart uploads, for
// bodies far above a 1,000-row object's) are the nil API's.
type discardS3 struct {
	s3sink.API
	objects int
	last    []byte
}

var _ s3sink.API = (*discardS3)(nil)

func (d *discardS3) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	buf := bytes.NewBuffer(d.last[:0])
	if _, err := buf.ReadFrom(in.Body); err != nil {
		return nil, err
	}
	d.objects++
	d.last = buf.Bytes()
	return &s3.PutObjectOutput{}, nil
}

func (d *discardS3) ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	return &s3.ListObjectsV2Output{}, nil
}

func (d *discardS3) HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return nil, errors.New("discardS3: head: it lists no object, so the sink has none to head")
}

func (d *discardS3) DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	return nil, errors.New("discardS3: delete: the sink deletes nothing while writing")
}
