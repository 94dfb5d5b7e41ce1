package pipeline_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/schema/where"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
)

// generalOnly hides a schema's AppendJSON: the pipeline takes the general
// path (decode, then Convert), as it did before the fast path existed.
type generalOnly struct{ pipeline.Converter }

// countingSchema counts the records AppendJSON took.
type countingSchema struct {
	*schema.Schema
	took, declined *atomic.Int64
	seen           *scans // nil: not recorded
}

func (c countingSchema) AppendJSON(dst []record.Field, r *schema.JSONRecord) ([]record.Field, bool) {
	c.seen.add("convert", r)
	f, ok := c.Schema.AppendJSON(dst, r)
	if ok {
		c.took.Add(1)
	} else {
		c.declined.Add(1)
	}
	return f, ok
}

// scans records, per record, the scanned records that a route's where and
// conversion were handed, to show that they share one scan.
type scans struct {
	mu   sync.Mutex
	byID map[string][]*schema.JSONRecord // by the record's "id"
	bad  []string
}

func (s *scans) add(stage string, r *schema.JSONRecord) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !r.Valid() {
		s.bad = append(s.bad, stage+" got a record that was not scanned")
		return
	}
	id, ok := scanID.ConvertJSON(r.Bytes())
	if !ok {
		s.bad = append(s.bad, stage+" got a record without an id")
		return
	}
	key := fmt.Sprint(id[0].Value)
	s.byID[key] = append(s.byID[key], r)
}

var scanID = func() *schema.Schema {
	s, err := schema.Compile("t", []schema.FieldSpec{{Name: "id", Type: "float"}, {Name: "t", Type: "datetime", Const: "2024-01-01T00:00:00Z", HasConst: true}})
	if err != nil {
		panic(err)
	}
	return s
}()

// countingWhere records what a filter's MatchScanned is handed.
type countingWhere struct {
	*where.Filter
	seen *scans
}

func (c countingWhere) MatchScanned(r *schema.JSONRecord) (bool, bool) {
	c.seen.add("where", r)
	return c.Filter.MatchScanned(r)
}

// fastPathBodies are records of every fate: rows, decode errors (invalid JSON
// of several kinds), schema errors (valid JSON of the wrong shape), escapes and
// repeated keys.
var fastPathBodies = []string{
	`{"id":1,"amount":1.5,"ts":"2024-01-01T00:00:00Z"}`,
	`{"id":2,"amount":"x","ts":"2024-01-01T00:00:00Z"}`,
	`not json`,
	`{"id":3,"amount":2,"ts":1704067200,"note":"hi \"there\" \u00e9\ud83d\ude00"}`,
	`{"id":4,"amount":2,"ts":1704067200,"note":"a"} trailing`,
	"{\"id\":5,\"amount\":2,\"ts\":1704067200,\"note\":\"\xff\"}",
	`{"id":6,"amount":2,"ts":1704067200,"id":7}`,
	`{"id":8,"amount":2,"ts":1704067200,"note":5}`,
	`{"id":9,"amount":2}`,
	``,
	`[1,2]`,
	`{"id":10,"amount":1e400,"ts":0}`,
	`{"id":11.5,"amount":1,"ts":0}`,
	`{"id":12,"amount":1,"ts":"2024-02-30"}`,
	`{"id":13,"amount":1,"ts":"Sun, 23 Jan 2000 01:23:45 +0900","extra":{"deep":[1,{"x":null}]}}`,
	`{"id":14,"amount":1,"ts":0,"note":null}`,
	`{"id":15,"amount":1,"ts":0,}`,
}

// metadataFields read every kind of the stream record's metadata, and a
// payload key starting with $.
var metadataFields = []schema.FieldSpec{
	{Name: "arrived", Type: "datetime", Ref: "$arrival_time"},
	{Name: "pk", Type: "str", Ref: "$partition_key"},
	{Name: "shard", Type: "str", Ref: "$shard_id"},
	{Name: "seq", Type: "str", Ref: "$sequence_number"},
	{Name: "stream", Type: "str", Ref: "$stream"},
	{Name: "source", Type: "str", Ref: "$source"},
	{Name: "raw", Type: "bytes", Ref: "$data"},
	{Name: "text", Type: "str", Ref: "$data"},
	{Name: "odd", Type: "optional[str]", Ref: `["$odd"]`},
}

// generalWhere hides a filter's MatchScanned.
type generalWhere struct{ pipeline.Filter }

// TestJSONFastPathSameOutput delivers the same records through a pipeline
// using the JSON fast path and through one forced onto the general path, with
// two routes, and compares every row and dead letter byte for byte: without
// where, and with a where on each route (some records taken by one route,
// some by both, some by none and dead-lettered as no_route, some whose where
// fails). With metadata, the second route's fields, timestamp and where read
// the stream record's metadata too, which the fast path fills in itself.
func TestJSONFastPathSameOutput(t *testing.T) {
	for _, v := range []struct{ where, meta bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		withWhere, withMeta := v.where, v.meta
		name := fmt.Sprintf("where=%v", withWhere)
		if withMeta {
			name += ",metadata"
		}
		t.Run(name, func(t *testing.T) {
			var took, declined, bigTook atomic.Int64
			seen := &scans{byID: map[string][]*schema.JSONRecord{}}
			outputs := map[bool][2][]string{}
			for _, fast := range []bool{true, false} {
				var bigDir string
				h := newHarness(t, func(c *pipeline.Config) {
					r := &c.Sources[0].Routes[0]
					bigFields, bigTS := []schema.FieldSpec{
						{Name: "id", Type: "int", Between: &schema.Between{Min: 3}},
						{Name: "ts", Type: "datetime"},
						{Name: "n", Type: "optional[str]", Ref: "note"},
					}, "ts"
					if withMeta {
						bigFields = append(bigFields, metadataFields...)
						bigTS = "arrived"
					}
					big, err := schema.Compile(bigTS, bigFields)
					if err != nil {
						t.Fatal(err)
					}
					bigDir = filepath.Join(t.TempDir(), "big")
					bs, err := file.NewRowSink(file.Config{Dir: bigDir, WorkerID: "t", Prefix: "big"}, slog.New(slog.DiscardHandler))
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { bs.Close() })
					second := pipeline.Route{Dataset: "big", Schema: big, SinkName: "big", Sink: bs}
					if withWhere {
						c.Sources[0].DeadLetterUnrouted = true
						w1, err := where.Compile(`id % 2 == 0`, []schema.FieldSpec{{Name: "id", Type: "int"}, {Name: "ts", Type: "datetime"}})
						if err != nil {
							t.Fatal(err)
						}
						w2src, w2fields := `(n ?? "") != "" || id > 10`, []schema.FieldSpec{{Name: "id", Type: "int"}, {Name: "n", Type: "optional[str]", Ref: "note"}}
						if withMeta {
							w2src += ` || pk == "pk13" || arrived > date("2023-11-14") && seq endsWith "7"`
							w2fields = append(w2fields, metadataFields...)
						}
						w2, err := where.Compile(w2src, w2fields)
						if err != nil {
							t.Fatal(err)
						}
						r.Where, second.Where = countingWhere{w1, seen}, countingWhere{w2, seen}
						if !fast {
							r.Where, second.Where = generalWhere{w1}, generalWhere{w2}
						}
					}
					if fast {
						r.Schema = countingSchema{r.Schema.(*schema.Schema), &took, &declined, seen}
						second.Schema = countingSchema{big, &bigTook, &atomic.Int64{}, seen}
					} else {
						r.Schema = generalOnly{r.Schema}
						second.Schema = generalOnly{big}
					}
					c.Sources[0].Routes = append(c.Sources[0].Routes, second)
				})
				recs := records("shardId-0", fastPathBodies...)
				for i := range recs {
					recs[i].Origin.StreamARN = "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
					recs[i].Origin.ArrivalTime = time.UnixMilli(1699999999000 + int64(i)*86400_000 + 123).UTC()
				}
				if err := h.p.Deliver(t.Context(), "orders", recs); err != nil {
					t.Fatal(err)
				}
				rows := append(lines(t, h.rowsDir), lines(t, bigDir)...)
				outputs[fast] = [2][]string{rows, lines(t, h.dlDir)}
				if fast {
					if got := testutil.ToFloat64(h.m.Unrouted.WithLabelValues("orders")); withWhere != (got > 0) {
						t.Errorf("unrouted = %v", got)
					}
				}
			}
			for i, what := range []string{"rows", "dead letters"} {
				f, g := outputs[true][i], outputs[false][i]
				if strings.Join(f, "") != strings.Join(g, "") {
					t.Errorf("%s differ:\nfast path:\n%s\ngeneral path:\n%s", what, strings.Join(f, ""), strings.Join(g, ""))
				}
			}
			if len(outputs[true][0]) == 0 || len(outputs[true][1]) == 0 {
				t.Fatalf("want rows and dead letters, got %v", outputs[true])
			}
			if took.Load() == 0 || declined.Load() == 0 && !withWhere {
				t.Errorf("fast path took %d and declined %d records", took.Load(), declined.Load())
			}
			if withMeta && bigTook.Load() == 0 {
				t.Errorf("the fast path took no record of the dataset reading metadata: it declined instead of filling it")
			}
			if withMeta && !strings.Contains(strings.Join(outputs[true][0], ""), `"pk":"pk3","shard":"shardId-0","seq":"1003","stream":"orders","source":"orders"`) {
				t.Errorf("no row carries record 3's metadata:\n%s", strings.Join(outputs[true][0], ""))
			}
			// A where route scans a record once: its where and its
			// conversion, and the other route's, are handed the record
			// already scanned (never its bytes), all the same JSONRecord.
			if len(seen.bad) > 0 {
				t.Errorf("%v", seen.bad)
			}
			multi := 0
			for id, rs := range seen.byID {
				for _, r := range rs[1:] {
					if r != rs[0] {
						t.Errorf("record id %s: its routes were handed %d different scans", id, len(rs))
						break
					}
				}
				if len(rs) > 2 {
					multi++
				}
			}
			if withWhere && multi == 0 {
				t.Errorf("no record went through more than two stages: %v", seen.byID)
			}
			reasons := map[string]int{}
			for _, l := range outputs[true][1] {
				for _, r := range []string{"decode_error", "schema_error", "no_route"} {
					if strings.Contains(l, `"reason":"`+r+`"`) {
						reasons[r]++
					}
				}
			}
			// not json, trailing, \xff, "", {..,} are decode errors.
			if reasons["decode_error"] != 5 || reasons["schema_error"] == 0 || withWhere != (reasons["no_route"] > 0) {
				t.Errorf("reasons = %v, want 5 decode_error, some schema_error, no_route only with where", reasons)
			}
		})
	}
}

// TestJSONFastPathOnlyWhereItApplies: a where without MatchJSON, a schema
// without ConvertJSON, or a decoder that does not scan JSON keep the source on
// the general path.
func TestJSONFastPathOnlyWhereItApplies(t *testing.T) {
	filter, err := where.Compile("id > 1", []schema.FieldSpec{{Name: "id", Type: "int"}, {Name: "ts", Type: "datetime"}})
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(r *pipeline.Route, s *pipeline.Source){
		"where without MatchJSON": func(r *pipeline.Route, _ *pipeline.Source) { r.Where = generalWhere{filter} },
		"another decoder":         func(_ *pipeline.Route, s *pipeline.Source) { s.Decoder = otherJSON{jsondec.New()} },
	} {
		t.Run(name, func(t *testing.T) {
			var took, declined atomic.Int64
			h := newHarness(t, func(c *pipeline.Config) {
				r := &c.Sources[0].Routes[0]
				r.Schema = countingSchema{r.Schema.(*schema.Schema), &took, &declined, nil}
				mutate(r, &c.Sources[0])
			})
			if err := h.p.Deliver(t.Context(), "orders", records("shardId-0", fastPathBodies[:2]...)); err != nil {
				t.Fatal(err)
			}
			if took.Load()+declined.Load() != 0 {
				t.Errorf("the fast path ran")
			}
		})
	}
}

// otherJSON is a JSON decoder that is no pipeline.JSONScanner: only its
// Decode is visible.
type otherJSON struct{ d *jsondec.Decoder }

func (o otherJSON) Decode(data []byte) (any, error) { return o.d.Decode(data) }

// lines returns the lines of the .jsonl files in dir, files in name order.
func lines(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	sort.Strings(files)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range bytes.SplitAfter(b, []byte("\n")) {
			if len(l) > 0 {
				out = append(out, string(l))
			}
		}
	}
	return out
}
