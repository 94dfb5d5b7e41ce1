package s3

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// benchOrder is the pipeline hot path's record (pipeline/hotpath_bench_test.go):
// 8 fields, about 200 bytes of JSON.
type benchOrder struct {
	ID      int64     `json:"id"`
	Amount  float64   `json:"amount"`
	TS      time.Time `json:"ts"`
	Note    *string   `json:"note"`
	Country string    `json:"country"`
	SKU     string    `json:"sku"`
	Qty     int64     `json:"qty"`
	Channel string    `json:"channel"`
}

func benchColumns() []schema.Column {
	var cols []schema.Column
	for _, c := range [][2]string{{"id", "int"}, {"amount", "float"}, {"ts", "datetime"}, {"note", "optional[str]"},
		{"country", "str"}, {"sku", "str"}, {"qty", "int"}, {"channel", "str"}} {
		t, err := schema.ParseType(c[1])
		if err != nil {
			panic(err)
		}
		cols = append(cols, schema.Column{Name: c[0], Type: t})
	}
	return cols
}

// benchRows are the hot path's records, 1,000 (a GetRecords batch at the
// default max_records), as rows and as JSON.
func benchRows() (rows []*record.Row, js [][]byte) {
	base := time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC)
	notes := []string{"gift wrap please, and ring twice at the back door: the bell is broken", "leave it with the neighbour at number 12 if nobody is at home, thanks!", "", "fragile: glassware inside, handle with care and keep this side up"}
	for i := range 1000 {
		o := benchOrder{ID: 1_000_000 + int64(i), Amount: float64(i%9000) + 0.25, TS: base.Add(time.Duration(i) * time.Second),
			Country: []string{"DE", "FR", "NL", "AT"}[i%4], SKU: fmt.Sprintf("SKU-%06d-%s", i*7919%1_000_000, []string{"BLUE-XL", "RED-M", "GREEN-S"}[i%3]),
			Qty: int64(1 + i%5), Channel: []string{"web", "app", "store"}[i%3]}
		var note any
		if n := notes[i%4]; n != "" {
			o.Note, note = &n, n
		}
		b, _ := json.Marshal(o)
		js = append(js, b)
		rows = append(rows, &record.Row{Dataset: "orders",
			Origin: record.Origin{Source: "orders", ShardID: "shardId-000000000000", SequenceNumber: strconv.Itoa(49_000_000_000 + i), ArrivalTime: base},
			Fields: []record.Field{{Name: "id", Value: o.ID}, {Name: "amount", Value: o.Amount}, {Name: "ts", Value: o.TS}, {Name: "note", Value: note},
				{Name: "country", Value: o.Country}, {Name: "sku", Value: o.SKU}, {Name: "qty", Value: o.Qty}, {Name: "channel", Value: o.Channel}}})
	}
	return rows, js
}

// BenchmarkEncode: one op is one row checked and encoded into an object of
// 1,000 rows (a GetRecords batch), beside encoding/json decoding the same
// record into a struct, the hot path's baseline; parquet-zstd-level3 is
// zstd at the library's default level, which the sink does not use. Run on
// one core:
//
//	go test -run '^$' -bench Encode -benchmem -cpu 1 ./sinks/s3
func BenchmarkEncode(b *testing.B) {
	rows, js := benchRows()
	b.Run("stdlib-struct", func(b *testing.B) {
		var o benchOrder
		for i := 0; b.Loop(); i++ {
			if err := json.Unmarshal(js[i%len(js)], &o); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, f := range []struct {
		name string
		new  func() (encoder, error)
	}{
		{"parquet-zstd", func() (encoder, error) { return newParquetEncoder(benchColumns(), false, "zstd") }},
		{"parquet-zstd-level3", func() (encoder, error) {
			return newParquetEncoderCodec(benchColumns(), false, &zstd.Codec{Level: zstd.SpeedDefault})
		}},
		{"parquet-snappy", func() (encoder, error) { return newParquetEncoder(benchColumns(), false, "snappy") }},
		{"jsonl-zstd", func() (encoder, error) { return newJSONLEncoder(false, "zstd") }},
	} {
		b.Run(f.name, func(b *testing.B) {
			enc, err := f.new()
			if err != nil {
				b.Fatal(err)
			}
			var buf bytes.Buffer
			var scratch []byte
			for b.Loop() {
				for _, r := range rows {
					if err := enc.check(r, &scratch); err != nil {
						b.Fatal(err)
					}
				}
				buf.Reset()
				if err := enc.encode(&buf, rows); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
			b.ReportMetric(float64(buf.Len())/float64(len(rows)), "bytes/row")
		})
	}
}
