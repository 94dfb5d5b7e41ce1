package schema_test

import (
	"fmt"
	"strings"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// A dataset's fields are compiled once, at config load; then every decoded
// record either converts to the row's typed fields, in declaration order, or
// fails with the path of the value that does not fit (the record's dead
// letter then says so).
func Example() {
	s, err := schema.Compile("ts", []schema.FieldSpec{
		{Name: "id", Type: "int"},
		{Name: "amount", Type: "decimal[2]"},
		{Name: "city", Type: "optional[str]", Ref: "shipping.city"},
		{Name: "ts", Type: "datetime"},
	})
	if err != nil {
		panic(err)
	}
	dec := jsondec.New()
	for _, data := range []string{
		`{"id": 7, "amount": 12.5, "shipping": {"city": "Lyon"}, "ts": "2024-05-01T12:34:56.789Z"}`,
		`{"id": 8, "amount": 3, "ts": 1714566896}`,
		`{"id": "9", "amount": 1, "ts": "2024-05-01T00:00:00Z"}`,
	} {
		rec, err := dec.Decode([]byte(data))
		if err != nil {
			panic(err)
		}
		fields, err := s.Convert(rec)
		if err != nil {
			fmt.Println("schema error:", err)
			continue
		}
		var row []string
		for _, f := range fields {
			row = append(row, fmt.Sprintf("%s=%v (%T)", f.Name, f.Value, f.Value))
		}
		fmt.Println(strings.Join(row, " "))
	}
	_, err = schema.Compile("", []schema.FieldSpec{{Name: "id", Type: "integer"}})
	fmt.Println("compile error:", err)
	// Output:
	// id=7 (int64) amount=12.50 (record.Decimal) city=Lyon (string) ts=2024-05-01 12:34:56.789 +0000 UTC (time.Time)
	// id=8 (int64) amount=3.00 (record.Decimal) city=<nil> (<nil>) ts=2024-05-01 12:34:56 +0000 UTC (time.Time)
	// schema error: id: want int, got string "9"
	// compile error: fields[0].type: unknown type "integer" (want int, float, bool, str, bytes, datetime, date, decimal[p], optional[T], list[T], map[T], struct, embedding[n])
	// timestamp: required: no field is a datetime
}
