package schema

import (
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
)

var benchRecord = []byte(`{"order_id":1234567890123,"user_id":42,"amount":129.95,"currency":"EUR",` +
	`"ts":"2024-05-01T12:34:56.789Z","note":null,"status":"paid","qty":3,` +
	`"price":"43.32","tags":["gift","express"],"ignored":{"a":[1,2,3]}}`)

var benchSpecs = []FieldSpec{
	{Name: "order_id", Type: "int"},
	{Name: "user_id", Type: "int", Between: &Between{Min: 0}},
	{Name: "amount", Type: "float"},
	{Name: "currency", Type: "str", Regex: "[A-Z]{3}"},
	{Name: "ts", Type: "datetime"},
	{Name: "note", Type: "optional[str]"},
	{Name: "status", Type: "str", Oneof: []any{"new", "paid", "shipped"}},
	{Name: "qty", Type: "int"},
	{Name: "price", Type: "decimal[2]"},
	{Name: "tags", Type: "list[str]"},
}

// BenchmarkConvert decodes and converts a typical 10-field order record.
func BenchmarkConvert(b *testing.B) {
	s, err := Compile("ts", benchSpecs)
	if err != nil {
		b.Fatal(err)
	}
	dec := jsondec.New()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchRecord)))
	for b.Loop() {
		rec, err := dec.Decode(benchRecord)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Convert(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConvertOnly converts an already decoded record.
func BenchmarkConvertOnly(b *testing.B) {
	s, err := Compile("ts", benchSpecs)
	if err != nil {
		b.Fatal(err)
	}
	rec, err := jsondec.New().Decode(benchRecord)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Convert(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConvertJSON converts the same record straight from its bytes.
func BenchmarkConvertJSON(b *testing.B) {
	s, err := Compile("ts", benchSpecs)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchRecord)))
	for b.Loop() {
		if _, ok := s.ConvertJSON(benchRecord); !ok {
			b.Fatal("declined")
		}
	}
}
