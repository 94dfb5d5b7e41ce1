package pipeline_test

import (
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/avrodec"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
)

// countingNamed counts the records AppendNamed took and declined.
type countingNamed struct {
	*schema.Schema
	took, declined *atomic.Int64
}

func (c countingNamed) AppendNamed(dst []record.Field, names []string, vals []any, from *record.Record) ([]record.Field, bool) {
	f, ok := c.Schema.AppendNamed(dst, names, vals, from)
	if ok {
		c.took.Add(1)
	} else {
		c.declined.Add(1)
	}
	return f, ok
}

// TestNamedFastPathSameOutput delivers the same Avro records through a
// pipeline on the named path (DecodeNamed, AppendNamed) and through one
// forced onto the general path (Decode's map, then Convert), with two routes,
// and compares every row and dead letter byte for byte: good records, records
// one route or both refuse, and bytes that are no record of the schema. The
// second route also reads the stream record's metadata, which the named path
// fills in itself.
func TestNamedFastPathSameOutput(t *testing.T) {
	const avsc = `{"type":"record","name":"Order","fields":[
		{"name":"id","type":"long"},
		{"name":"amount","type":"double"},
		{"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}},
		{"name":"note","type":["null","string"]},
		{"name":"qty","type":"int"}]}`
	codec, err := goavro.NewCodec(avsc)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := avrodec.New(avrodec.Config{Schema: avsc, Framing: avrodec.FramingBinary})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC)
	var bodies []string
	for i := range 40 {
		note := any(nil)
		if i%3 != 0 {
			note = map[string]any{"string": strings.Repeat("n", i)}
		}
		b, err := codec.BinaryFromNative(nil, map[string]any{"id": int64(i - 5), "amount": float64(i) - 10.5,
			"ts": base.Add(time.Duration(i) * time.Hour), "note": note, "qty": int32(i % 7)})
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, string(b))
		if i%10 == 0 {
			bodies = append(bodies, string(b[:len(b)-1]), string(b)+"x") // truncated, trailing
		}
	}
	outputs := map[bool][2][]string{}
	var took, declined, secondTook atomic.Int64
	for _, fast := range []bool{true, false} {
		var secondDir string
		h := newHarness(t, func(c *pipeline.Config) {
			src := &c.Sources[0]
			src.Decoder = dec
			first, err := schema.Compile("ts", []schema.FieldSpec{
				{Name: "id", Type: "int", Between: &schema.Between{Min: 0}},
				{Name: "amount", Type: "float"}, {Name: "ts", Type: "datetime"}, {Name: "note", Type: "optional[str]"},
			})
			if err != nil {
				t.Fatal(err)
			}
			second, err := schema.Compile("ts", append([]schema.FieldSpec{
				{Name: "ts", Type: "datetime"}, {Name: "qty", Type: "int", Between: &schema.Between{Min: 1, Max: 5}},
				{Name: "text", Type: "str", Ref: "note"}, {Name: "kind", Type: "str", Const: "order", HasConst: true},
			}, metadataFields[:len(metadataFields)-2]...)) // not $data as str (Avro is binary), nor the payload's $odd
			if err != nil {
				t.Fatal(err)
			}
			secondDir = filepath.Join(t.TempDir(), "second")
			s2, err := file.NewRowSink(file.Config{Dir: secondDir, WorkerID: "t", Prefix: "second"}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s2.Close() })
			r1, r2 := &src.Routes[0], pipeline.Route{Dataset: "second", SinkName: "second", Sink: s2}
			if fast {
				r1.Schema, r2.Schema = countingNamed{first, &took, &declined}, countingNamed{second, &secondTook, &atomic.Int64{}}
			} else {
				r1.Schema, r2.Schema = generalOnly{first}, generalOnly{second}
			}
			src.Routes = append(src.Routes, r2)
		})
		if err := h.p.Deliver(t.Context(), "orders", records("shardId-0", bodies...)); err != nil {
			t.Fatal(err)
		}
		outputs[fast] = [2][]string{append(lines(t, h.rowsDir), lines(t, secondDir)...), lines(t, h.dlDir)}
	}
	for i, what := range []string{"rows", "dead letters"} {
		if f, g := strings.Join(outputs[true][i], ""), strings.Join(outputs[false][i], ""); f != g {
			t.Errorf("%s differ:\nnamed path:\n%s\ngeneral path:\n%s", what, f, g)
		}
	}
	rows, letters := strings.Join(outputs[true][0], ""), strings.Join(outputs[true][1], "")
	if !strings.Contains(rows, `"kind":"order"`) || !strings.Contains(letters, "decode_error") || !strings.Contains(letters, "schema_error") {
		t.Errorf("want rows of both routes, decode and schema errors; got rows\n%s\nletters\n%s", rows, letters)
	}
	if took.Load() == 0 || declined.Load() == 0 {
		t.Errorf("the named path took %d and declined %d records", took.Load(), declined.Load())
	}
	if secondTook.Load() == 0 || !strings.Contains(rows, `"pk":"pk4","shard":"shardId-0","seq":"1004"`) {
		t.Errorf("the named path took %d records reading metadata; want rows with it:\n%s", secondTook.Load(), rows)
	}
}
