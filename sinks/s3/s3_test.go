package s3_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/duckread"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/s3test"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	s3sink "github.com/kinesis-ingest/kinesis-ingest/sinks/s3"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/sinktest"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func typ(s string) schema.Type {
	t, err := schema.ParseType(s)
	if err != nil {
		panic(err)
	}
	return t
}

// The package's tests share one server; each test gets buckets of its own.
var (
	srvOnce sync.Once
	srv     *s3test.Server
	srvErr  error
)

func server(t *testing.T) *s3test.Server {
	t.Helper()
	srvOnce.Do(func() { srv, srvErr = s3test.New(context.Background()) })
	if srvErr != nil {
		t.Fatal(srvErr)
	}
	return srv
}

// testBuckets gives each subtest of a conformance suite a bucket of its
// own: New creates it, Reopen and Read find it again.
type testBuckets struct {
	s  *s3test.Server
	mu sync.Mutex
	m  map[*testing.T]string
}

func (b *testBuckets) create(t *testing.T) string {
	bucket := b.s.CreateBucket(t)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[*testing.T]string{}
	}
	b.m[t] = bucket
	return bucket
}

func (b *testBuckets) get(t *testing.T) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	bucket, ok := b.m[t]
	if !ok {
		t.Fatal("no storage: New was not called in this test")
	}
	return bucket
}

func TestMain(m *testing.M) {
	code := m.Run()
	if srv != nil {
		_ = srv.Close()
	}
	os.Exit(code)
}

// readJSONL returns the rows of every object under dir of bucket, objects in
// key order (a chain's order), lines in object order. Fields keep their
// order in the line; the origin columns fill Origin.
func readJSONL(t testing.TB, c *s3.Client, bucket, prefix string) []record.Row {
	t.Helper()
	var out []record.Row
	for _, key := range listKeys(t, c, bucket, prefix) {
		obj, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		body, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		var r io.Reader = bytes.NewReader(body)
		switch {
		case strings.HasSuffix(key, ".gz"):
			if r, err = gzip.NewReader(r); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
		case strings.HasSuffix(key, ".zst"):
			zr, err := zstd.NewReader(r)
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			defer zr.Close()
			r = zr
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<26)
		for sc.Scan() {
			out = append(out, parseLine(t, key, sc.Bytes()))
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
	}
	return out
}

func listKeys(t testing.TB, c *s3.Client, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("list %s: %v", prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	slices.Sort(keys)
	return keys
}

// parseLine reads one JSON line keeping the order of its keys.
func parseLine(t testing.TB, key string, line []byte) record.Row {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%s: line %q is not an object", key, line)
	}
	var r record.Row
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: line %q: %v", key, line, err)
		}
		name := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: line %q: %v", key, line, err)
		}
		switch name {
		case "_source":
			r.Origin.Source = v.(string)
		case "_shard_id":
			r.Origin.ShardID = v.(string)
		case "_sequence_number":
			r.Origin.SequenceNumber = v.(string)
		case "_subsequence":
			n, _ := v.(json.Number).Int64()
			r.Origin.SubSequence = int(n)
		case "_arrival_time":
			at, err := time.Parse(time.RFC3339Nano, v.(string))
			if err != nil {
				t.Fatalf("%s: _arrival_time %q: %v", key, v, err)
			}
			r.Origin.ArrivalTime = at
		case "_op":
			r.Delete = v == "delete"
		default:
			r.Fields = append(r.Fields, record.Field{Name: name, Value: v})
		}
	}
	return r
}

// The conformance suite on the JSON Lines format (zstd): it writes rows of
// every value type without a dataset schema, which only a schema-free
// format holds; the Parquet format's types are TestParquetTypes'.
func TestConformance(t *testing.T) { conformance(t, nil) }

// The conformance suite on a sink whose buffers are small and young: it
// stores objects on its own (by size, by age, by the sink's buffer bound)
// while the suite accepts, flushes and breaks the storage.
func TestConformanceFlushingOnItsOwn(t *testing.T) {
	conformance(t, func(c *s3sink.Config) {
		c.MaxBytes, c.BufferBytes, c.MaxInterval = 2048, 8192, 50*time.Millisecond
	})
}

func conformance(t *testing.T, mod func(*s3sink.Config)) {
	s := server(t)
	c := s.Client()
	b := &testBuckets{s: s}
	open := func(t *testing.T, bucket string) sinks.RowSink {
		cfg := s3sink.Config{Client: c, Bucket: bucket, Prefix: "lake", Dataset: "sinktest",
			Format: s3sink.FormatJSONL, Compression: "zstd"}
		if mod != nil {
			mod(&cfg)
		}
		rs, err := s3sink.New(cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	sinktest.RunRowSink(t, sinktest.RowHarness{
		New:     func(t *testing.T) sinks.RowSink { return open(t, b.create(t)) },
		Reopen:  func(t *testing.T) sinks.RowSink { return open(t, b.get(t)) },
		Read:    func(t *testing.T) []record.Row { return readJSONL(t, c, b.get(t), "lake/") },
		Dedupes: true,
		Break:   func(t *testing.T) { s.Stop(t) },
		Heal:    func(t *testing.T) { s.Start(t) },
		// JSON has no NaN: the JSON Lines encoder refuses it.
		Refuse: func(r record.Row) record.Row {
			r.Fields = append(slices.Clone(r.Fields), record.Field{Name: "nan", Value: math.NaN()})
			return r
		},
	})
}

// lakeColumns is a small dataset partitioned by country and hour.
var lakeColumns = []schema.Column{
	{Name: "id", Type: typ("int")},
	{Name: "country", Type: typ("str")},
	{Name: "ts", Type: typ("datetime")},
	{Name: "note", Type: typ("optional[str]")},
}

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func seq(n int) string { return fmt.Sprintf("49590338271490256608559692538361571095921575989%09d", n) }

// lakeRows are records from..to-1 of one shard, spread over 3 countries and
// 2 hours: each batch touches several partitions.
func lakeRows(shard string, from, to int) []record.Row {
	var out []record.Row
	for i := from; i < to; i++ {
		out = append(out, record.Row{Dataset: "orders",
			Origin: record.Origin{Source: "orders", ShardID: shard, SequenceNumber: seq(i), ArrivalTime: t0},
			Fields: []record.Field{
				{Name: "id", Value: int64(i)},
				{Name: "country", Value: []string{"DE", "FR", "NL"}[i%3]},
				{Name: "ts", Value: t0.Add(time.Duration(i%2) * time.Hour)},
				{Name: "note", Value: nil},
			}})
	}
	return out
}

func newLake(t *testing.T, api s3sink.API, bucket string, mod ...func(*s3sink.Config)) *s3sink.RowSink {
	t.Helper()
	cfg := s3sink.Config{Client: api, Bucket: bucket, Prefix: "lake", Dataset: "orders", Columns: lakeColumns,
		Timestamp: "ts", PartitionBy: []string{"country", s3sink.PartitionDate, s3sink.PartitionHour}}
	for _, m := range mod {
		m(&cfg)
	}
	rs, err := s3sink.New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Close() })
	return rs
}

func write(t *testing.T, rs sinks.RowSink, rows []record.Row, batch int) {
	t.Helper()
	for len(rows) > 0 {
		n := min(batch, len(rows))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := rs.Write(ctx, rows[:n])
		cancel()
		if err != nil {
			t.Fatalf("Write: %v", err)
		}
		rows = rows[n:]
	}
}

// exactlyOnce fails the test unless the ids from..to-1 are each in exactly
// one row of the Parquet objects in the bucket's directory, as DuckDB
// reads them, and nothing else is.
func exactlyOnce(t *testing.T, counts map[string]int, from, to int) {
	t.Helper()
	bad := 0
	for i := from; i < to; i++ {
		if n := counts[fmt.Sprint(i)]; n != 1 {
			if bad++; bad <= 10 {
				t.Errorf("id %d: %d rows, want 1", i, n)
			}
		}
	}
	if len(counts) != to-from {
		t.Errorf("%d distinct ids stored, want %d", len(counts), to-from)
	}
}

// crashAfter passes puts to the server until n have succeeded, then fails
// every call, as a worker killed between two uploads of one Write.
type crashAfter struct {
	s3sink.API
	n atomic.Int64
}

var errCrashed = fmt.Errorf("crashed")

func (c *crashAfter) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if c.n.Add(-1) < 0 {
		return nil, errCrashed
	}
	return c.API.PutObject(ctx, in, opts...)
}

// countPuts counts the objects a sink stores.
type countPuts struct {
	s3sink.API
	puts atomic.Int64
}

func (c *countPuts) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	out, err := c.API.PutObject(ctx, in, opts...)
	if err == nil {
		c.puts.Add(1)
	}
	return out, err
}

func lakeCounts(t *testing.T, s *s3test.Server, bucket string) map[string]int {
	t.Helper()
	return duckread.CountByID(t, s.BucketDir(bucket)+"/lake", "id")
}

// A Write whose rows span several partitions stores some of their objects
// and then the worker dies; its checkpoint did not move, so the next owner
// writes the whole batch again, with other batch boundaries: every row ends
// in one object.
func TestCrashMidBatchThenReplay(t *testing.T) {
	s := server(t)
	bucket := s.CreateBucket(t)
	rows := lakeRows("shardId-000000000001", 0, 120)

	first := newLake(t, s.Client(), bucket)
	write(t, first, rows[:30], 30) // checkpointed
	c := &crashAfter{API: s.Client()}
	c.n.Store(3) // 3 of the batch's 6 partitions, then the crash
	crashing := newLake(t, c, bucket)
	if err := crashing.Write(context.Background(), rows[30:60]); err == nil {
		t.Fatal("the crashing Write succeeded")
	}
	if got := len(lakeCounts(t, s, bucket)); got <= 30 || got >= 60 {
		t.Fatalf("after the crash %d ids are stored, want some of the batch's (30 < n < 60)", got)
	}

	next := newLake(t, s.Client(), bucket)
	write(t, next, rows[30:], 17) // from the checkpoint, other boundaries
	exactlyOnce(t, lakeCounts(t, s, bucket), 0, 120)
}

// reset --to trim_horizon: a new worker reads the shard again from its
// start, in batches cut elsewhere than the first run's, and goes on past
// where the first run stopped.
func TestReplayFromTrimHorizon(t *testing.T) {
	s := server(t)
	bucket := s.CreateBucket(t)
	rows := lakeRows("shardId-000000000002", 0, 200)
	puts := &countPuts{API: s.Client()}
	write(t, newLake(t, puts, bucket), rows[:150], 7)
	before := puts.puts.Load()

	obs := &observer{}
	replay := newLake(t, puts, bucket, func(c *s3sink.Config) { c.Observer = obs })
	write(t, replay, rows, 13)
	exactlyOnce(t, lakeCounts(t, s, bucket), 0, 200)
	if dups := obs.duplicates.Load(); dups != 150 {
		t.Errorf("the replay dropped %d rows as already stored, want 150", dups)
	}
	if puts.puts.Load() == before {
		t.Error("the replay stored no object for the 50 new records")
	}
}

// A worker that lost its lease without knowing (a zombie) keeps writing
// what it read while the new owner replays from the checkpoint: both
// learn each other's objects through the conditional create, in either
// order, and every row is stored once.
func TestZombieAndNewOwner(t *testing.T) {
	s := server(t)
	bucket := s.CreateBucket(t)
	rows := lakeRows("shardId-000000000003", 0, 300)
	obs := &observer{}
	onConflict := func(c *s3sink.Config) { c.Observer = obs }

	zombie := newLake(t, s.Client(), bucket, onConflict)
	write(t, zombie, rows[:50], 50)
	owner := newLake(t, s.Client(), bucket, onConflict)
	write(t, owner, rows[20:100], 40) // from an older checkpoint, past the zombie
	write(t, zombie, rows[50:80], 30) // stale: all stored by the owner
	exactlyOnce(t, lakeCounts(t, s, bucket), 0, 100)
	write(t, zombie, rows[80:130], 25)
	write(t, owner, rows[100:160], 60)
	if obs.conflicts.Load() == 0 {
		t.Error("no conflict was resolved: the writers did not meet at a key")
	}

	// And racing: both write the rest at once, in different batch sizes.
	var wg sync.WaitGroup
	for i, rs := range []*s3sink.RowSink{zombie, owner} {
		wg.Go(func() { write(t, rs, rows[160:], 11+20*i) })
	}
	wg.Wait()
	exactlyOnce(t, lakeCounts(t, s, bucket), 0, 300)
}

// Parquet columns are typed from the dataset, in declaration order, then
// the origin columns; DuckDB reads them back as those types and values.
func TestParquetTypes(t *testing.T) {
	s := server(t)
	bucket := s.CreateBucket(t)
	cols := []schema.Column{
		{Name: "i", Type: typ("int")}, {Name: "f", Type: typ("float")}, {Name: "b", Type: typ("bool")},
		{Name: "s", Type: typ("str")}, {Name: "by", Type: typ("bytes")}, {Name: "dt", Type: typ("datetime")},
		{Name: "d", Type: typ("date")}, {Name: "dec", Type: typ("decimal[2]")}, {Name: "e", Type: typ("embedding[3]")},
		{Name: "l", Type: typ("list[int]")}, {Name: "m", Type: typ("map[str]")}, {Name: "st", Type: typ("struct")},
		{Name: "o", Type: typ("optional[int]")}, {Name: "oe", Type: typ("optional[embedding[2]]")},
	}
	at := time.Date(2026, 12, 7, 10, 11, 12, 345678000, time.UTC)
	row := record.Row{Dataset: "types", Origin: record.Origin{Source: "src", ShardID: "shardId-000000000000", SequenceNumber: seq(1), SubSequence: 2, ArrivalTime: at},
		Fields: []record.Field{
			{Name: "i", Value: int64(-7)}, {Name: "f", Value: 2.5}, {Name: "b", Value: true},
			{Name: "s", Value: "héllo"}, {Name: "by", Value: []byte{0, 0xff}}, {Name: "dt", Value: at},
			{Name: "d", Value: record.Date{Year: 2024, Month: 2, Day: 29}}, {Name: "dec", Value: record.Decimal("-12.50")},
			{Name: "e", Value: []float64{0.5, -1, 2}}, {Name: "l", Value: []any{int64(1), int64(2)}},
			{Name: "m", Value: map[string]any{"k": "v"}}, {Name: "st", Value: []record.Field{{Name: "z", Value: int64(1)}, {Name: "a", Value: "x"}}},
			{Name: "o", Value: nil}, {Name: "oe", Value: []float64{}},
		}}
	// The same with the edges: nulls, an empty embedding, a negative decimal
	// of 38 digits.
	edge := record.Row{Dataset: "types", Origin: record.Origin{Source: "src", ShardID: "shardId-000000000000", SequenceNumber: seq(2), ArrivalTime: at},
		Fields: slices.Clone(row.Fields)}
	edge.Fields[0].Value = int64(-8)
	edge.Fields[7].Value = record.Decimal("-123456789012345678901234567890123456.78")
	edge.Fields[8].Value = []float64{}
	edge.Fields[12].Value = int64(5)
	edge.Fields[13].Value = nil
	rs, err := s3sink.New(s3sink.Config{Client: s.Client(), Bucket: bucket, Prefix: "lake", Dataset: "types", Columns: cols}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	write(t, rs, []record.Row{row, edge}, 2)

	from := "read_parquet(" + duckread.Quote(s.BucketDir(bucket)+"/lake/**/*.parquet") + ")"
	var got []string
	for _, r := range duckread.Query(t, "DESCRIBE SELECT * FROM "+from) {
		got = append(got, fmt.Sprint(r["column_name"], " ", r["column_type"]))
	}
	want := []string{"i BIGINT", "f DOUBLE", "b BOOLEAN", "s VARCHAR", "by BLOB", "dt TIMESTAMP WITH TIME ZONE",
		"d DATE", "dec DECIMAL(38,2)", "e DOUBLE[]", "l JSON", "m JSON", "st JSON", "o BIGINT", "oe DOUBLE[]",
		"_source VARCHAR", "_shard_id VARCHAR", "_sequence_number VARCHAR", "_subsequence INTEGER", "_arrival_time TIMESTAMP WITH TIME ZONE"}
	if !slices.Equal(got, want) {
		t.Errorf("columns:\n got %q\nwant %q", got, want)
	}
	vals := duckread.Query(t, `SELECT i, f, b, s, hex("by") AS hex_by, epoch_us(dt) AS dt, CAST(d AS VARCHAR) AS d, CAST(dec AS VARCHAR) AS dec,
		e, CAST(l AS VARCHAR) AS l, CAST(m AS VARCHAR) AS m, st->>'$.a' AS st_a, o, oe, _sequence_number, _subsequence, epoch_us(_arrival_time) AS at FROM `+from+` ORDER BY _sequence_number`)
	if len(vals) != 2 {
		t.Fatalf("%d rows, want 2", len(vals))
	}
	v := vals[0]
	for name, w := range map[string]string{"i": "-7", "f": "2.5", "b": "true", "s": "héllo", "hex_by": "00FF", "dt": fmt.Sprint(at.UnixMicro()),
		"d": "2024-02-29", "dec": "-12.50", "e": "[0.5 -1 2]", "l": "[1,2]", "m": `{"k":"v"}`, "st_a": "x", "o": "<nil>",
		"oe": "[]", "_sequence_number": seq(1), "_subsequence": "2", "at": fmt.Sprint(at.UnixMicro())} {
		if g := fmt.Sprint(v[name]); g != w {
			t.Errorf("%s = %s, want %s", name, g, w)
		}
	}
	for name, w := range map[string]string{"i": "-8", "dec": "-123456789012345678901234567890123456.78", "e": "[]", "o": "5", "oe": "<nil>"} {
		if g := fmt.Sprint(vals[1][name]); g != w {
			t.Errorf("edge row: %s = %s, want %s", name, g, w)
		}
	}
}

// loseAnswers stores every object but answers the first n puts with an
// error, as a connection dropped after S3 stored the object.
type loseAnswers struct {
	s3sink.API
	n atomic.Int64
}

func (l *loseAnswers) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	out, err := l.API.PutObject(ctx, in, opts...)
	if err == nil && l.n.Add(-1) >= 0 {
		return nil, fmt.Errorf("connection reset after the upload")
	}
	return out, err
}

// A Write whose uploads were stored but not acknowledged is retried with the
// same rows (the pipeline's retry): the retry meets its own objects through
// the conditional create and stores nothing twice.
func TestRetryAfterLostAnswer(t *testing.T) {
	s := server(t)
	bucket := s.CreateBucket(t)
	rows := lakeRows("shardId-000000000004", 0, 60)
	api := &loseAnswers{API: s.Client()}
	api.n.Store(2)
	obs := &observer{}
	rs := newLake(t, api, bucket, func(c *s3sink.Config) { c.Observer = obs })
	attempts := 0
	for err := error(nil); attempts == 0 || err != nil; attempts++ {
		if attempts > 5 {
			t.Fatalf("still failing after %d attempts: %v", attempts, err)
		}
		err = rs.Write(context.Background(), rows)
	}
	if conflicts := obs.conflicts.Load(); attempts < 2 || conflicts == 0 {
		t.Errorf("%d attempts, %d conflicts: the lost answers were not retried into their own objects", attempts, conflicts)
	}
	write(t, rs, lakeRows("shardId-000000000004", 60, 90), 10)
	exactlyOnce(t, lakeCounts(t, s, bucket), 0, 90)
}
