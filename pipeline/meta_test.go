package pipeline_test

import (
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/schema/where"
)

// metaBatch is eight records of two partition keys, two arrival times and
// one stream, shard and source; their payloads all differ.
func metaBatch() []record.Record {
	base := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	out := make([]record.Record, 8)
	for i := range out {
		out[i] = record.Record{
			Data: []byte(fmt.Sprintf(`{"id":%d,"ts":"2024-05-01T00:00:00Z"}`, i)),
			Origin: record.Origin{Source: "orders", StreamARN: "arn:aws:kinesis:us-east-1:000000000000:stream/orders-stream",
				ShardID: "shardId-000000000001", SequenceNumber: strconv.Itoa(1000 + i), PartitionKey: "pk" + strconv.Itoa(i%2),
				ArrivalTime: base.Add(time.Duration(i/4) * time.Hour)},
		}
	}
	return out
}

// TestMetadataInEveryPlace reads each kind of record metadata in each place
// a payload member is read (a field's ref, where, a computed field, the
// timestamp, sample.using), on the fast path and on the general one.
func TestMetadataInEveryPlace(t *testing.T) {
	recs := metaBatch()
	metas := []struct {
		ref, typ string
		value    func(r *record.Record) any
		literal  func(r *record.Record) string // the value in an expression
	}{
		{"$partition_key", "str", func(r *record.Record) any { return r.Origin.PartitionKey }, func(r *record.Record) string { return strconv.Quote(r.Origin.PartitionKey) }},
		{"$shard_id", "str", func(r *record.Record) any { return r.Origin.ShardID }, func(r *record.Record) string { return strconv.Quote(r.Origin.ShardID) }},
		{"$sequence_number", "str", func(r *record.Record) any { return r.Origin.SequenceNumber }, func(r *record.Record) string { return strconv.Quote(r.Origin.SequenceNumber) }},
		{"$arrival_time", "datetime", func(r *record.Record) any { return r.Origin.ArrivalTime }, func(r *record.Record) string {
			return `date(` + strconv.Quote(r.Origin.ArrivalTime.Format(time.RFC3339)) + `)`
		}},
		{"$stream", "str", func(*record.Record) any { return "orders-stream" }, func(*record.Record) string { return `"orders-stream"` }},
		{"$source", "str", func(r *record.Record) any { return r.Origin.Source }, func(r *record.Record) string { return strconv.Quote(r.Origin.Source) }},
		{"$data", "str", func(r *record.Record) any { return string(r.Data) }, func(r *record.Record) string { return strconv.Quote(string(r.Data)) }},
		{"$data", "bytes", func(r *record.Record) any { return r.Data }, func(r *record.Record) string { return strconv.Quote(string(r.Data)) }},
	}
	places := []struct {
		name string
		// route makes the dataset reading field m; check judges the outcome.
		route func(t *testing.T, literal string) pipeline.Route
		check func(t *testing.T, out *pipeline.Outcome, value func(*record.Record) any)
	}{
		{"ref", func(t *testing.T, _ string) pipeline.Route {
			return pipeline.Route{Schema: compileMeta(t, "ts", nil)}
		}, func(t *testing.T, out *pipeline.Outcome, value func(*record.Record) any) {
			if len(out.Rows) != len(recs) {
				t.Fatalf("%d rows, %d letters (%v)", len(out.Rows), len(out.Letters), out.Letters)
			}
			for i, row := range out.Rows {
				if got, want := row.Fields[2].Value, value(&recs[i]); !equalValue(got, want) {
					t.Errorf("row %d: m = %#v, want %#v", i, got, want)
				}
			}
		}},
		{"where", func(t *testing.T, literal string) pipeline.Route {
			// m is compared with record 5's value; bytes by the byte that
			// holds the record's id.
			src := "m == " + literal
			if metaType == "bytes" {
				src = "m[6] == 53"
			}
			f, err := where.Compile(src, metaSpecs())
			if err != nil {
				t.Fatal(err)
			}
			return pipeline.Route{Schema: compileMeta(t, "ts", nil), Where: f}
		}, func(t *testing.T, out *pipeline.Outcome, value func(*record.Record) any) {
			for _, row := range out.Rows {
				i, _ := strconv.Atoi(row.Origin.SequenceNumber)
				if !equalValue(value(&recs[i-1000]), value(&recs[5])) {
					t.Errorf("where took record %s, whose m differs from record 5's", row.Origin.SequenceNumber)
				}
			}
			want := 0
			for i := range recs {
				if equalValue(value(&recs[i]), value(&recs[5])) {
					want++
				}
			}
			if len(out.Rows) != want || out.Unrouted != len(recs)-want {
				t.Errorf("where took %d rows (%d unrouted), want %d", len(out.Rows), out.Unrouted, want)
			}
		}},
		{"computed", func(t *testing.T, _ string) pipeline.Route {
			return pipeline.Route{Schema: compileMeta(t, "ts", &schema.FieldSpec{Name: "c", Expr: "m"})}
		}, func(t *testing.T, out *pipeline.Outcome, value func(*record.Record) any) {
			if len(out.Rows) != len(recs) {
				t.Fatalf("%d rows, letters %v", len(out.Rows), out.Letters)
			}
			for i, row := range out.Rows {
				if got := row.Fields[len(row.Fields)-1]; got.Name != "c" || !equalValue(got.Value, value(&recs[i])) {
					t.Errorf("row %d: computed %#v, want %#v", i, got, value(&recs[i]))
				}
			}
		}},
		{"sample.using", func(t *testing.T, _ string) pipeline.Route {
			return pipeline.Route{Schema: compileMeta(t, "ts", nil), Window: &pipeline.Window{Timestamp: 1, SampleRate: 0.5, SampleColumns: []int{2}}}
		}, func(t *testing.T, out *pipeline.Outcome, value func(*record.Record) any) {
			// The sample hashes m alone: records with one value of m share a
			// fate, whatever their payloads.
			kept := map[string]bool{}
			for _, row := range out.Rows {
				kept[row.Origin.SequenceNumber] = true
			}
			for i := range recs {
				for j := range recs {
					if equalValue(value(&recs[i]), value(&recs[j])) && kept[recs[i].Origin.SequenceNumber] != kept[recs[j].Origin.SequenceNumber] {
						t.Fatalf("records %d and %d have the same m but the sample kept one: %v", i, j, kept)
					}
				}
			}
			if len(out.Rows)+out.Filtered["d"] != len(recs) {
				t.Errorf("%d rows + %v filtered, want %d", len(out.Rows), out.Filtered, len(recs))
			}
		}},
	}
	for _, m := range metas {
		for _, pl := range places {
			for _, fast := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s as %s/%s/fast=%v", m.ref, m.typ, pl.name, fast), func(t *testing.T) {
					metaRef, metaType = m.ref, m.typ
					r := pl.route(t, m.literal(&recs[5]))
					h := newHarness(t, func(c *pipeline.Config) {
						rt := &c.Sources[0].Routes[0]
						rt.Dataset, rt.Schema, rt.Where, rt.Window = "d", r.Schema, r.Where, r.Window
						if !fast {
							rt.Schema = generalOnly{r.Schema}
							if r.Where != nil {
								rt.Where = generalWhere{r.Where}
							}
						}
					})
					out, err := h.p.Classify(t.Context(), "orders", metaBatch())
					if err != nil {
						t.Fatal(err)
					}
					pl.check(t, out, m.value)
				})
			}
		}
	}
}

// metaRef and metaType are the metadata the table's case at hand reads.
var metaRef, metaType string

// metaSpecs are id, ts and m (reading metaRef), then the computed field.
func metaSpecs() []schema.FieldSpec {
	return []schema.FieldSpec{{Name: "id", Type: "int"}, {Name: "ts", Type: "datetime"}, {Name: "m", Type: metaType, Ref: metaRef}}
}

func compileMeta(t *testing.T, ts string, computed *schema.FieldSpec) *schema.Schema {
	t.Helper()
	specs := metaSpecs()
	if computed != nil {
		c := *computed
		c.Type = metaType
		specs = append(specs, c)
	}
	s, err := schema.CompileWith(ts, specs, where.CompileExpr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func equalValue(a, b any) bool {
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	return reflect.DeepEqual(a, b)
}

// TestArrivalTimeAsTimestamp: a dataset whose timestamp is $arrival_time
// (Kinesis arrival as event time) windows and judges lateness by it, not by
// the payload's time.
func TestArrivalTimeAsTimestamp(t *testing.T) {
	s, err := schema.Compile("arrived", []schema.FieldSpec{{Name: "id", Type: "int"}, {Name: "arrived", Type: "datetime", Ref: "$arrival_time"}})
	if err != nil {
		t.Fatal(err)
	}
	recs := metaBatch() // 0-3 arrive at 10:00, 4-7 at 11:00
	recs[7].Origin.ArrivalTime = time.Date(2024, 5, 1, 10, 45, 0, 0, time.UTC)
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast=%v", fast), func(t *testing.T) {
			h := newHarness(t, func(c *pipeline.Config) {
				r := &c.Sources[0].Routes[0]
				r.Schema, r.TimestampIndex, r.Disorder = s, 1, 10*time.Minute
				if !fast {
					r.Schema = generalOnly{s}
				}
				r.Window = &pipeline.Window{Timestamp: 1, Since: time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC)}
			})
			out, err := h.p.Classify(t.Context(), "orders", recs)
			if err != nil {
				t.Fatal(err)
			}
			// 0-3 arrived before since; 7 arrived 15m before the newest
			// (11:00), with a disorder of 10m: late.
			if len(out.Rows) != 3 || out.Filtered["orders"] != 4 || len(out.Letters) != 1 || out.Letters[0].Reason != record.ReasonLate {
				t.Fatalf("rows %d, filtered %v, letters %v", len(out.Rows), out.Filtered, out.Letters)
			}
			for _, row := range out.Rows {
				if got := row.Fields[1].Value.(time.Time); !got.Equal(time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)) {
					t.Errorf("row %s timestamp %v, want its arrival time", row.Origin.SequenceNumber, got)
				}
			}
		})
	}
}
