package where

import (
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// The record and fields of schema's BenchmarkConvert, so the numbers compare.
var benchRecord = []byte(`{"order_id":1234567890123,"user_id":42,"amount":129.95,"currency":"EUR",` +
	`"ts":"2024-05-01T12:34:56.789Z","note":null,"status":"paid","qty":3,` +
	`"price":"43.32","tags":["gift","express"],"ignored":{"a":[1,2,3]}}`)

var benchSpecs = []schema.FieldSpec{
	{Name: "order_id", Type: "int"},
	{Name: "user_id", Type: "int", Between: &schema.Between{Min: 0}},
	{Name: "amount", Type: "float"},
	{Name: "currency", Type: "str", Regex: "[A-Z]{3}"},
	{Name: "ts", Type: "datetime"},
	{Name: "note", Type: "optional[str]"},
	{Name: "status", Type: "str", Oneof: []any{"new", "paid", "shipped"}},
	{Name: "qty", Type: "int"},
	{Name: "price", Type: "decimal[2]"},
	{Name: "tags", Type: "list[str]"},
}

const benchWhere = `amount >= 100 && currency == "EUR"`

func benchRec(b *testing.B) any {
	rec, err := jsondec.New().Decode(benchRecord)
	if err != nil {
		b.Fatal(err)
	}
	return rec
}

// BenchmarkMatch evaluates a two-field where on a decoded record: the cost a
// where adds per record and dataset.
func BenchmarkMatch(b *testing.B) {
	f, err := Compile(benchWhere, benchSpecs)
	if err != nil {
		b.Fatal(err)
	}
	rec := benchRec(b)
	b.ReportAllocs()
	for b.Loop() {
		ok, err := f.Match(rec)
		if !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkMatchDatetime names a datetime, the costliest scalar to convert.
func BenchmarkMatchDatetime(b *testing.B) {
	f, err := Compile(`ts >= date("2024-01-01") && status in ["paid", "shipped"]`, benchSpecs)
	if err != nil {
		b.Fatal(err)
	}
	rec := benchRec(b)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := f.Match(rec); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkMatchThenConvert is a dataset's whole per-record cost for a taken
// record: the where, then the validation (compare schema's BenchmarkConvertOnly).
func BenchmarkMatchThenConvert(b *testing.B) {
	f, err := Compile(benchWhere, benchSpecs)
	if err != nil {
		b.Fatal(err)
	}
	s, err := schema.Compile("ts", benchSpecs)
	if err != nil {
		b.Fatal(err)
	}
	rec := benchRec(b)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := f.Match(rec); !ok || err != nil {
			b.Fatal(ok, err)
		}
		if _, err := s.Convert(rec); err != nil {
			b.Fatal(err)
		}
	}
}
