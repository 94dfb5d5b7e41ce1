package pipeline_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/kinesis-ingest/kinesis-ingest/consumers"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/metrics"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ordersSchema(t testing.TB) *schema.Schema {
	t.Helper()
	s, err := schema.Compile("ts", []schema.FieldSpec{
		{Name: "id", Type: "int"},
		{Name: "amount", Type: "float"},
		{Name: "ts", Type: "datetime"},
		{Name: "note", Type: "optional[str]"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type harness struct {
	p       wired
	m       *metrics.Metrics
	rowsDir string
	dlDir   string
	cancel  context.CancelFunc
	done    chan error
}

func newHarness(t testing.TB, mutate func(*pipeline.Config)) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{m: metrics.New(prometheus.NewRegistry()), rowsDir: filepath.Join(dir, "rows"), dlDir: filepath.Join(dir, "dl")}
	log := slog.New(slog.DiscardHandler)
	rs, err := file.NewRowSink(file.Config{Dir: h.rowsDir, WorkerID: "t", Prefix: "orders"}, log)
	if err != nil {
		t.Fatal(err)
	}
	dl, err := file.NewDeadLetterSink(file.Config{Dir: h.dlDir, WorkerID: "t", Prefix: "dl"}, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := pipeline.Config{
		Sources: []pipeline.Source{{
			Name: "orders", StreamARN: "arn:aws:kinesis:us-east-1:000000000000:stream/orders", Decoder: jsondec.New(),
			Routes: []pipeline.Route{{Dataset: "orders", Schema: ordersSchema(t), SinkName: "rows", Sink: rs}},
		}},
		DeadLetters: dl,
		Metrics:     h.m.Pipeline(),
		Logger:      log,
		Backoff:     pipeline.Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	wireMetrics(h.m, &cfg)
	p, err := pipeline.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.p = wired{Pipeline: p, handler: h.m.WrapHandler(p)}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.p.Run(ctx) }()
	<-h.p.Running()
	t.Cleanup(func() {
		h.cancel()
		if err := <-h.done; err != nil {
			t.Errorf("pipeline run: %v", err)
		}
		rs.Close()
		dl.Close()
	})
	return h
}

// wired is the pipeline as internal/service/app wires it: Deliver goes through the
// metrics decorator of the consumers' handler.
type wired struct {
	*pipeline.Pipeline
	handler consumers.Handler
}

func (w wired) Deliver(ctx context.Context, source string, records []record.Record) error {
	return w.handler.Deliver(ctx, source, records)
}

// wireMetrics decorates cfg's sinks as internal/service/app does, one decorator per
// sink (routes sharing a sink share its decorator, so they still share writes).
func wireMetrics(m *metrics.Metrics, cfg *pipeline.Config) {
	wrapped := map[sinks.RowSink]sinks.RowSink{}
	for i := range cfg.Sources {
		for j := range cfg.Sources[i].Routes {
			r := &cfg.Sources[i].Routes[j]
			if r.Sink == nil {
				continue
			}
			w, ok := wrapped[r.Sink]
			if !ok {
				w = m.WrapRowSink(r.SinkName, r.Sink)
				wrapped[r.Sink] = w
			}
			r.Sink = w
		}
	}
	if cfg.DeadLetters != nil {
		cfg.DeadLetters = m.WrapDeadLetterSink(cfg.DeadLetters)
	}
}

func records(shard string, bodies ...string) []record.Record {
	out := make([]record.Record, len(bodies))
	for i, b := range bodies {
		out[i] = record.Record{
			Origin: record.Origin{Source: "orders", ShardID: shard, SequenceNumber: strconv.Itoa(1000 + i), PartitionKey: "pk" + strconv.Itoa(i), ArrivalTime: time.Unix(1700000000, 0).UTC()},
			Data:   []byte(b),
		}
	}
	return out
}

func readJSONL(t testing.TB, dir string) []map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	var out []map[string]any
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 64<<10), 64<<20) // a line of a 10 MiB record fits
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, m)
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		fh.Close()
	}
	return out
}

func TestDeliverEveryRecordBecomesRowOrDeadLetter(t *testing.T) {
	h := newHarness(t, nil)
	recs := records("shardId-0",
		`{"id":1,"amount":1.5,"ts":"2024-01-01T00:00:00Z"}`,
		`{"id":2,"amount":"x","ts":"2024-01-01T00:00:00Z"}`,
		`not json`,
		`{"id":3,"amount":2,"ts":1704067200,"note":"hi"}`,
	)
	if err := h.p.Deliver(t.Context(), "orders", recs); err != nil {
		t.Fatal(err)
	}
	rows := readJSONL(t, h.rowsDir)
	if len(rows) != 2 || rows[0]["id"] != 1.0 || rows[1]["id"] != 3.0 {
		t.Fatalf("rows = %v, want ids 1 and 3 in order", rows)
	}
	dls := readJSONL(t, h.dlDir)
	if len(dls) != 2 {
		t.Fatalf("dead letters = %v, want 2", dls)
	}
	want := map[string]string{"1001": "schema_error", "1002": "decode_error"}
	for _, d := range dls {
		if want[d["sequence_number"].(string)] != d["reason"] {
			t.Errorf("dead letter %v: wrong reason", d)
		}
	}
	if got := testutil.ToFloat64(h.m.RowsWritten.WithLabelValues("orders", "rows")); got != 2 {
		t.Errorf("rows_written_total = %v, want 2", got)
	}
	if got := testutil.ToFloat64(h.m.DeadLetters.WithLabelValues("orders", "decode_error")); got != 1 {
		t.Errorf("dead_letters_total{decode_error} = %v, want 1", got)
	}
}

// rejectOdd is a row sink in front of a real file sink that refuses rows
// whose id is odd for themselves, as a database refuses a value it cannot hold.
type rejectOdd struct{ sinks.RowSink }

func (r rejectOdd) Write(ctx context.Context, rows []record.Row) error {
	var keep []record.Row
	var rejected []int
	for i, row := range rows {
		if row.Fields[0].Value.(int64)%2 == 1 {
			rejected = append(rejected, i)
			continue
		}
		keep = append(keep, row)
	}
	if err := r.RowSink.Write(ctx, keep); err != nil {
		return err
	}
	if len(rejected) > 0 {
		return &sinks.RejectedError{Index: rejected, Err: errors.New("value out of range")}
	}
	return nil
}

func TestRowsRejectedBySinkBecomeDeadLetters(t *testing.T) {
	h := newHarness(t, func(c *pipeline.Config) {
		r := &c.Sources[0].Routes[0]
		r.Sink = rejectOdd{r.Sink}
	})
	recs := records("shardId-0",
		`{"id":1,"amount":1,"ts":"2024-01-01T00:00:00Z"}`,
		`{"id":2,"amount":1,"ts":"2024-01-01T00:00:00Z"}`,
		`{"id":3,"amount":1,"ts":"2024-01-01T00:00:00Z"}`,
	)
	if err := h.p.Deliver(t.Context(), "orders", recs); err != nil {
		t.Fatal(err)
	}
	if rows := readJSONL(t, h.rowsDir); len(rows) != 1 || rows[0]["id"] != 2.0 {
		t.Fatalf("rows = %v, want only id 2", rows)
	}
	dls := readJSONL(t, h.dlDir)
	if len(dls) != 2 || dls[0]["reason"] != "sink_rejected" || dls[1]["reason"] != "sink_rejected" {
		t.Fatalf("dead letters = %v, want ids 1 and 3 as sink_rejected", dls)
	}
}

// tallied records what the pipeline reports as durable.
type tallied struct {
	mu      sync.Mutex
	rows    map[string]int
	letters map[record.Reason]int
}

func (t *tallied) Wrote(dataset string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows[dataset] += n
}

func (t *tallied) DeadLettered(letters []record.DeadLetter) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range letters {
		t.letters[l.Reason]++
	}
}

// TestTallyCountsWhatIsDurable: the rows a sink accepted are rows, the ones
// it refused are counted as the dead letters they became.
func TestTallyCountsWhatIsDurable(t *testing.T) {
	tl := &tallied{rows: map[string]int{}, letters: map[record.Reason]int{}}
	h := newHarness(t, func(c *pipeline.Config) {
		r := &c.Sources[0].Routes[0]
		r.Sink = rejectOdd{r.Sink}
		c.Tally = tl
	})
	recs := records("shardId-0",
		`{"id":1,"amount":1,"ts":"2024-01-01T00:00:00Z"}`,
		`{"id":2,"amount":1,"ts":"2024-01-01T00:00:00Z"}`,
		`{"id":3,"amount":1,"ts":"2024-01-01T00:00:00Z"}`,
		`not json`,
	)
	if err := h.p.Deliver(t.Context(), "orders", recs); err != nil {
		t.Fatal(err)
	}
	if tl.rows["orders"] != 1 || len(tl.rows) != 1 {
		t.Errorf("rows tallied = %v, want orders: 1", tl.rows)
	}
	if tl.letters[record.ReasonSinkRejected] != 2 || tl.letters[record.ReasonDecode] != 1 || len(tl.letters) != 2 {
		t.Errorf("dead letters tallied = %v, want 2 sink_rejected and 1 decode_error", tl.letters)
	}
}

// panicOnce panics on its first call, like a stage with a bug that a later
// attempt does not hit.
type panicOnce struct {
	pipeline.Converter
	calls atomic.Int32
}

func (p *panicOnce) ConvertFrom(rec any, from *record.Record) ([]record.Field, error) {
	if p.calls.Add(1) == 1 {
		panic("bug in a stage")
	}
	return p.Converter.ConvertFrom(rec, from)
}

func TestPanicInStageDeadLettersTheRecordAndMovesOn(t *testing.T) {
	conv := &panicOnce{Converter: ordersSchema(t)}
	h := newHarness(t, func(c *pipeline.Config) { c.Sources[0].Routes[0].Schema = conv })
	recs := records("shardId-0",
		`{"id":7,"amount":1,"ts":"2024-01-01T00:00:00Z"}`,
		`{"id":8,"amount":1,"ts":"2024-01-01T00:00:00Z"}`)
	if err := h.p.Deliver(t.Context(), "orders", recs); err != nil {
		t.Fatal(err)
	}
	if rows := readJSONL(t, h.rowsDir); len(rows) != 1 || rows[0]["id"] != 8.0 {
		t.Fatalf("rows = %v, want id 8 only", rows)
	}
	dls := readJSONL(t, h.dlDir)
	if len(dls) != 1 || dls[0]["reason"] != "schema_error" || !strings.Contains(dls[0]["error"].(string), "panicked") {
		t.Fatalf("dead letters = %v, want the panicking record as schema_error naming the panic", dls)
	}
}

func TestInvalidRecordFromConsumerIsDeadLettered(t *testing.T) {
	h := newHarness(t, nil)
	recs := records("shardId-0", `{"id":1,"amount":1,"ts":"2024-01-01T00:00:00Z"}`, "\xf3\x89\x9a\xc2garbage")
	recs[1].Invalid = errors.New("malformed KPL aggregate: bad protobuf")
	if err := h.p.Deliver(t.Context(), "orders", recs); err != nil {
		t.Fatal(err)
	}
	dls := readJSONL(t, h.dlDir)
	if len(dls) != 1 || dls[0]["reason"] != "decode_error" || !strings.Contains(dls[0]["error"].(string), "KPL") {
		t.Fatalf("dead letters = %v, want the invalid record as decode_error", dls)
	}
}

// TestSinkOutageHoldsTheBatch replaces the row sink's directory with a regular
// file: a real OS-level failure, for root too. Deliver must keep retrying (not
// dead-letter good rows) and succeed once the directory is back.
func TestSinkOutageHoldsTheBatch(t *testing.T) {
	h := newHarness(t, nil)
	if err := os.RemoveAll(h.rowsDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.rowsDir, []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- h.p.Deliver(t.Context(), "orders", records("shardId-0", `{"id":9,"amount":1,"ts":"2024-01-01T00:00:00Z"}`))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(h.m.SinkWriteErrors.WithLabelValues("rows")) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no retried sink errors while the directory is gone")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Deliver returned %v during the outage, want it to wait", err)
	default:
	}
	os.Remove(h.rowsDir)
	if err := <-done; err != nil {
		t.Fatalf("Deliver after the outage ended: %v", err)
	}
	if rows := readJSONL(t, h.rowsDir); len(rows) != 1 {
		t.Fatalf("rows = %v, want the record", rows)
	}
	if dls := readJSONL(t, h.dlDir); len(dls) != 0 {
		t.Fatalf("a good row was dead-lettered because the sink failed: %v", dls)
	}
}

func TestDeliverCancelledDuringOutageReturnsCtxError(t *testing.T) {
	h := newHarness(t, nil)
	os.RemoveAll(h.rowsDir)
	os.WriteFile(h.rowsDir, nil, 0o644)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err := h.p.Deliver(ctx, "orders", records("shardId-0", `{"id":9,"amount":1,"ts":"2024-01-01T00:00:00Z"}`))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Deliver = %v, want the context's error", err)
	}
	os.Remove(h.rowsDir)
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	_, err := pipeline.New(pipeline.Config{})
	for _, want := range []string{"dead-letter", "metrics", "no sources"} {
		if err == nil || !containsFold(err.Error(), want) {
			t.Errorf("New(empty) = %v, want it to mention %q", err, want)
		}
	}
}

func containsFold(s, sub string) bool { return strings.Contains(s, sub) }

// BenchmarkDeliver measures the hot path per record: Watermill message →
// decode → validate → route → durable file write (fsync), for batches of
// different sizes. batch=1 is one message and one fsync per record.
func BenchmarkDeliver(b *testing.B) {
	for _, size := range []int{1, 100, 500} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			h := newHarness(b, nil)
			bodies := make([]string, size)
			for i := range bodies {
				bodies[i] = fmt.Sprintf(`{"id":%d,"amount":%d.25,"ts":"2024-05-01T10:00:00.123456Z","note":"gift wrap please","country":"DE","sku":"SKU-%06d","qty":3,"channel":"web"}`, i, i, i)
			}
			recs := records("shardId-0", bodies...)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := h.p.Deliver(context.Background(), "orders", recs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/record")
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
