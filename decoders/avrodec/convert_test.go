package avrodec_test

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/avrodec"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// allTypesDataset reads every field of testdata/schemas/all_types.avsc with
// the Fennel type it maps to.
func allTypesDataset(t *testing.T) *schema.Schema {
	t.Helper()
	f := func(name, typ string, fields ...schema.FieldSpec) schema.FieldSpec {
		return schema.FieldSpec{Name: name, Type: typ, Fields: fields}
	}
	addr := []schema.FieldSpec{f("street", "str"), f("zip", "optional[str]")}
	s, err := schema.Compile("ts_millis", []schema.FieldSpec{
		f("id", "int"), f("small", "int"), f("ratio", "float"), f("amount", "float"), f("active", "bool"),
		f("name", "str"), f("payload", "bytes"), f("hash", "bytes"), f("status", "str"),
		f("note", "optional[str]"), f("ts_millis", "datetime"), f("ts_micros", "datetime"), f("day", "date"),
		f("price", "decimal[2]"), f("total", "decimal[4]"), f("uid", "str"),
		f("tags", "list[str]"), f("counts", "map[int]"),
		f("address", "struct", addr...), f("previous", "optional[struct]", addr...),
		f("lines", "list[struct]", f("sku", "str"), f("qty", "int"), f("discount", "optional[decimal[2]]")),
		f("opt_ts", "optional[datetime]"), f("opt_tags", "optional[list[optional[str]]]"),
		f("attrs", "map[optional[float]]"), f("t_millis", "int"), f("t_micros", "int"), f("local_ts", "datetime"),
		{Name: "zip", Type: "optional[str]", Ref: "address.zip"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConvertAvscRecord decodes bytes avsc wrote and runs them through the
// dataset schema, as the pipeline does.
func TestConvertAvscRecord(t *testing.T) {
	d, err := avrodec.New(avrodec.Config{SchemaFile: "testdata/schemas/all_types.avsc"})
	if err != nil {
		t.Fatal(err)
	}
	ds := allTypesDataset(t)
	data, err := os.ReadFile("testdata/avsc/all_types.soe")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := d.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	fields, err := ds.Convert(rec)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, f := range fields {
		got[f.Name] = f.Value
	}
	ts := time.Date(2024, 5, 1, 12, 34, 56, 789000000, time.UTC)
	street := func(s string, zip any) []record.Field {
		return []record.Field{{Name: "street", Value: s}, {Name: "zip", Value: zip}}
	}
	want := map[string]any{
		"id": int64(1234567890123456789), "small": int64(-42), "ratio": 0.5, "amount": 129.95, "active": true,
		"name": "Zoë ☃", "payload": []byte{0, 1, 2, 0xfe, 0xff},
		"hash":   []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		"status": "PAID", "note": "gift wrap", "ts_millis": ts,
		"ts_micros": time.Date(2024, 5, 1, 12, 34, 56, 789123000, time.UTC),
		"day":       record.Date{Year: 2024, Month: time.May, Day: 1},
		"price":     record.Decimal("12345.67"), "total": record.Decimal("-98765.4321"),
		"uid":  "123e4567-e89b-12d3-a456-426614174000",
		"tags": []any{"gift", "express"}, "counts": map[string]any{"a": int64(1), "b": int64(-2)},
		"address": street("1 Main St", "75001"), "previous": street("9 Old Rd", nil),
		"lines": []any{
			[]record.Field{{Name: "sku", Value: "A-1"}, {Name: "qty", Value: int64(2)}, {Name: "discount", Value: record.Decimal("1.50")}},
			[]record.Field{{Name: "sku", Value: "B-2"}, {Name: "qty", Value: int64(1)}, {Name: "discount", Value: nil}},
		},
		"opt_ts":   time.Date(2024, 5, 1, 12, 34, 56, 789123000, time.UTC),
		"opt_tags": []any{"a", nil}, "attrs": map[string]any{"w": 1.5, "v": nil},
		"t_millis": int64(45296789), "t_micros": int64(45296789012), "local_ts": ts, "zip": "75001",
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d fields, want %d", len(got), len(want))
	}

	// The record with nulls and empty collections fits too.
	data, err = os.ReadFile("testdata/avsc/all_types_nulls.bin")
	if err != nil {
		t.Fatal(err)
	}
	if rec, err = d.Decode(data); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.Convert(rec); err != nil {
		t.Fatal(err)
	}
}

// TestConvertMismatch: a decoded Avro record whose types do not fit the
// dataset is a *schema.FieldError (a schema_error dead letter), as for JSON.
func TestConvertMismatch(t *testing.T) {
	d, err := avrodec.New(avrodec.Config{SchemaFile: "testdata/schemas/order_v2.avsc"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("testdata/avsc/order_v2.bin")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := d.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		field, typ, errContains string
	}{
		{"currency", "int", "currency: want int, got string \"USD\""},
		{"price", "bool", "price: want bool, got decimal -1"},
		{"qty", "str", "qty: want str, got number 5000000000"},
		{"note", "str", "note: missing"}, // v2 dropped the field
		{"status", "optional[int]", "status: want int, got string \"CANCELLED\""},
		{"tags", "map[str]", "tags: want map (object), got list"},
	}
	for _, tc := range tests {
		ds, err := schema.Compile("ts", []schema.FieldSpec{{Name: "ts", Type: "datetime"}, {Name: tc.field, Type: tc.typ}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = ds.Convert(rec)
		var fe *schema.FieldError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.errContains) {
			t.Errorf("%s as %s: %v; want *FieldError containing %q", tc.field, tc.typ, err, tc.errContains)
		}
	}
}
