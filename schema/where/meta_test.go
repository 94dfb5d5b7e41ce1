package where_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/schema/where"
)

var metaFrom = &record.Record{
	Data: []byte(`{"id":3}`),
	Origin: record.Origin{
		Source: "orders-src", StreamARN: "arn:aws:kinesis:eu-west-1:123456789012:stream/orders",
		ShardID: "shardId-000000000002", SequenceNumber: "49590338271490256608559692538361571095921575989136588898",
		PartitionKey: "eu-42", ArrivalTime: time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC),
	},
}

// metaSpecs read every kind of record metadata, as inputs: the where and the
// computed fields see them, the row does not carry them.
var metaSpecs = []schema.FieldSpec{
	{Name: "id", Type: "int"},
	{Name: "ts", Type: "datetime", Ref: "$arrival_time"},
	{Name: "pk", Type: "str", Ref: "$partition_key", Input: true},
	{Name: "shard", Type: "str", Ref: "$shard_id", Input: true},
	{Name: "seq", Type: "str", Ref: "$sequence_number", Input: true},
	{Name: "stream", Type: "str", Ref: "$stream", Input: true},
	{Name: "source", Type: "str", Ref: "$source", Input: true},
	{Name: "raw", Type: "bytes", Ref: "$data", Input: true},
	{Name: "text", Type: "str", Ref: "$data", Input: true},
}

// TestWhereReadsMetadata: a where naming a field that reads record metadata
// sees the record's, on the general path (MatchFrom) and the scanned one
// (MatchScanned with JSONRecord.From), which agree.
func TestWhereReadsMetadata(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{`pk startsWith "eu-"`, true},
		{`pk == "us-1"`, false},
		{`shard == "shardId-000000000002"`, true},
		{`seq == "49590338271490256608559692538361571095921575989136588898"`, true},
		{`ts >= date("2024-05-01") && ts < date("2024-05-02")`, true},
		{`ts < date("2024-05-01")`, false},
		{`stream == "orders"`, true},
		{`source == "orders-src"`, true},
		{`len(raw) == 8`, true},
		{`text contains "\"id\":3"`, true},
		{`text contains "\"id\":4"`, false},
	} {
		t.Run(tc.src, func(t *testing.T) {
			f, err := where.Compile(tc.src, metaSpecs)
			if err != nil {
				t.Fatal(err)
			}
			v, err := jsondec.New().Decode(metaFrom.Data)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.MatchFrom(v, metaFrom)
			if err != nil || got != tc.want {
				t.Errorf("MatchFrom = %v, %v; want %v", got, err, tc.want)
			}
			var r schema.JSONRecord
			r.Scan(metaFrom.Data)
			r.From = metaFrom
			if m, ok := f.MatchScanned(&r); !ok || m != tc.want {
				t.Errorf("MatchScanned = %v, %v; want %v", m, ok, tc.want)
			}
			if _, err := f.Match(v); err == nil || !strings.Contains(err.Error(), "no stream record") {
				t.Errorf("Match without the stream record: %v, want an error saying so", err)
			}
		})
	}
}

// TestComputedReadsMetadata: a computed field reads fields and inputs that
// read record metadata.
func TestComputedReadsMetadata(t *testing.T) {
	for _, tc := range []struct {
		name, typ, expr string
		want            any
	}{
		{"partition key", "str", `upper(pk)`, "EU-42"},
		{"shard id", "str", `shard + "/" + seq`, "shardId-000000000002/49590338271490256608559692538361571095921575989136588898"},
		{"arrival time", "datetime", `ts.Add(duration("1h"))`, time.Date(2024, 5, 1, 11, 30, 0, 0, time.UTC)},
		{"arrival day", "date", `date(ts.Format("2006-01-02"))`, record.Date{Year: 2024, Month: time.May, Day: 1}},
		{"stream and source", "str", `stream + "@" + source`, "orders@orders-src"},
		{"data", "int", `len(raw) + len(text)`, int64(16)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			specs := append([]schema.FieldSpec{{Name: "out", Type: tc.typ, Expr: tc.expr}}, metaSpecs...)
			s, err := schema.CompileWith("ts", specs, where.CompileExpr)
			if err != nil {
				t.Fatal(err)
			}
			v, err := jsondec.New().Decode(metaFrom.Data)
			if err != nil {
				t.Fatal(err)
			}
			row, err := s.ConvertFrom(v, metaFrom)
			if err != nil || len(row) != 3 || !equal(row[0].Value, tc.want) {
				t.Fatalf("ConvertFrom = %v, %v; want out = %v and no inputs", row, err, tc.want)
			}
			var r schema.JSONRecord
			r.Scan(metaFrom.Data)
			r.From = metaFrom
			if fast, ok := s.AppendJSON(nil, &r); !ok || !equal(fast, row) {
				t.Errorf("AppendJSON = %v, %v; ConvertFrom %v", fast, ok, row)
			}
		})
	}
}

// TestMetadataNameInAnExpression: an expression naming $partition_key itself
// is told how to read it.
func TestMetadataNameInAnExpression(t *testing.T) {
	fields := []schema.FieldSpec{{Name: "ts", Type: "datetime"}}
	_, err := where.Compile(`$partition_key == "a"`, fields)
	want := `unknown name $partition_key (at column 1); the record's metadata is read through a field, as the payload is: add an input {name: partition_key, type: str, ref: $partition_key} (or a field) and name partition_key`
	if err == nil || err.Error() != want {
		t.Errorf("where: %v\nwant %s", err, want)
	}
	_, err = schema.CompileWith("ts", append(fields, schema.FieldSpec{Name: "d", Type: "datetime", Expr: `$arrival_time`}), where.CompileExpr)
	if err == nil || !strings.Contains(err.Error(), "add an input {name: arrival_time, type: datetime, ref: $arrival_time}") {
		t.Errorf("expr: %v", err)
	}
	if _, err := where.Compile(`$nope == "a"`, fields); err == nil || strings.Contains(err.Error(), "input") {
		t.Errorf("an unknown $ name that is not metadata: %v", err)
	}
}
