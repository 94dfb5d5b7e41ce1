package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/sinktest"
)

const testWorker = "worker-7"

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// dirs remembers the storage directory of each subtest of the suite.
type dirs struct {
	mu sync.Mutex
	m  map[*testing.T]string
}

func (d *dirs) fresh(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "data")
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[*testing.T]string{}
	}
	d.m[t] = dir
	t.Cleanup(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		delete(d.m, t)
	})
	return dir
}

func (d *dirs) of(t *testing.T) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	dir, ok := d.m[t]
	if !ok {
		t.Fatal("no storage: New was not called in this test")
	}
	return dir
}

// breakDir causes a real outage that root cannot write through either: the
// directory is moved away and a regular file takes its place, so creating,
// stat-ing or opening anything in Dir fails in the kernel with ENOTDIR.
func breakDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// healDir puts the directory back, with what was written to it.
func healDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
}

func newRowSink(t testing.TB, dir string, maxBytes int64) *RowSink {
	t.Helper()
	s, err := NewRowSink(Config{Dir: dir, WorkerID: testWorker, Prefix: "orders", MaxBytes: maxBytes}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newDeadLetterSink(t testing.TB, dir string) *DeadLetterSink {
	t.Helper()
	s, err := NewDeadLetterSink(Config{Dir: dir, WorkerID: testWorker}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRowSinkConformance(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxBytes int64
	}{
		{"default", 0},
		{"rotating", 2048}, // every few batches a new file
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d dirs
			sinktest.RunRowSink(t, sinktest.RowHarness{
				New:    func(t *testing.T) sinks.RowSink { return newRowSink(t, d.fresh(t), tc.maxBytes) },
				Reopen: func(t *testing.T) sinks.RowSink { return newRowSink(t, d.of(t), tc.maxBytes) },
				Read:   func(t *testing.T) []record.Row { return readRows(t, d.of(t), "orders") },
				Break:  func(t *testing.T) { breakDir(t, d.of(t)) },
				Heal:   func(t *testing.T) { healDir(t, d.of(t)) },
			})
		})
	}
}

func TestDeadLetterSinkConformance(t *testing.T) {
	var d dirs
	sinktest.RunDeadLetterSink(t, sinktest.DeadLetterHarness{
		New:    func(t *testing.T) sinks.DeadLetterSink { return newDeadLetterSink(t, d.fresh(t)) },
		Reopen: func(t *testing.T) sinks.DeadLetterSink { return newDeadLetterSink(t, d.of(t)) },
		Read:   func(t *testing.T) []record.DeadLetter { return readDeadLetters(t, d.of(t), "dead-letters") },
		Break:  func(t *testing.T) { breakDir(t, d.of(t)) },
		Heal:   func(t *testing.T) { healDir(t, d.of(t)) },
	})
}

func TestConfigValidation(t *testing.T) {
	base := t.TempDir()
	notDir := filepath.Join(base, "plain-file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  Config
		want []string // substrings of the error
	}{
		{Config{WorkerID: "w"}, []string{"Config.Dir", `""`}},
		{Config{Dir: base}, []string{"Config.WorkerID", `""`}},
		{Config{Dir: base, WorkerID: "a/b"}, []string{"Config.WorkerID", `"a/b"`}},
		{Config{Dir: base, WorkerID: ".."}, []string{"Config.WorkerID", `".."`}},
		{Config{Dir: base, WorkerID: "w", Prefix: "my orders"}, []string{"Config.Prefix", `"my orders"`}},
		{Config{Dir: base, WorkerID: "w", MaxBytes: -1}, []string{"Config.MaxBytes", "-1"}},
		{Config{Dir: notDir, WorkerID: "w"}, []string{"Config.Dir", notDir, "not a directory"}},
	} {
		_, err := NewRowSink(tc.cfg, nil)
		if err == nil {
			t.Errorf("NewRowSink(%+v) succeeded", tc.cfg)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("NewRowSink(%+v) = %q, want it to mention %q", tc.cfg, err, w)
			}
		}
	}

	// Defaults, and Dir is created.
	dir := filepath.Join(base, "a", "b")
	s, err := NewRowSink(Config{Dir: dir, WorkerID: "w"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.c.cfg.MaxBytes != DefaultMaxBytes || s.c.cfg.Prefix != "rows" {
		t.Errorf("defaults: %+v", s.c.cfg)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Errorf("Dir not created: %v", err)
	}
	d, err := NewDeadLetterSink(Config{Dir: dir, WorkerID: "w"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.c.cfg.Prefix != "dead-letters" {
		t.Errorf("dead letter prefix %q", d.c.cfg.Prefix)
	}
}

var fixedTime = time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)

func TestRowJSONFormat(t *testing.T) {
	dir := t.TempDir()
	s := newRowSink(t, dir, 0)
	row := record.Row{
		Dataset: "orders",
		Origin: record.Origin{Source: "src", StreamARN: "arn", ShardID: "shardId-1", SequenceNumber: "4959",
			SubSequence: 3, PartitionKey: "pk", ArrivalTime: time.Date(2024, 1, 2, 4, 4, 5, 0, time.FixedZone("CET", 3600))},
		Fields: []record.Field{
			{Name: "z_first", Value: int64(-7)},
			{Name: "b", Value: true},
			{Name: "f", Value: 1.5},
			{Name: "f_whole", Value: 2.0},
			{Name: "f_small", Value: 1e-7},
			{Name: "f_big", Value: 1e21},
			{Name: "f_neg_zero", Value: math.Copysign(0, -1)},
			{Name: "s", Value: "a\"b\\c\n\t\x00\x1f<>&é\u2028\xff"},
			{Name: "bytes", Value: []byte("hi?")},
			{Name: "nil_bytes", Value: []byte(nil)},
			{Name: "ts", Value: fixedTime},
			{Name: "ts_nanos", Value: time.Date(2024, 1, 2, 3, 4, 5, 999999999, time.UTC)},
			{Name: "ts_zone", Value: time.Date(2024, 1, 2, 0, 0, 0, 0, time.FixedZone("EST", -5*3600))},
			{Name: "date", Value: record.Date{Year: 2024, Month: time.March, Day: 9}},
			{Name: "dec", Value: record.Decimal("-12.50")},
			{Name: "emb", Value: []float64{0.25, -1, 3}},
			{Name: "nil_emb", Value: []float64(nil)},
			{Name: "list", Value: []any{int64(1), "x", nil, []any{}, fixedTime, record.Date{Year: 1, Month: 1, Day: 1}}},
			{Name: "map", Value: map[string]any{"b": int64(2), "a": int64(1), "c": map[string]any{"y": nil, "x": []byte{1}}}},
			{Name: "struct", Value: []record.Field{{Name: "z", Value: int64(1)}, {Name: "a", Value: []record.Field{{Name: "q", Value: record.Decimal("1")}}}}},
			{Name: "empty_struct", Value: []record.Field{}},
			{Name: "null", Value: nil},
		},
	}
	if err := s.Write(context.Background(), []record.Row{row, {Origin: row.Origin}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := `{"z_first":-7,"b":true,"f":1.5,"f_whole":2,"f_small":1e-7,"f_big":1e+21,"f_neg_zero":-0,` +
		`"s":"a\"b\\c\n\t\u0000\u001f<>&é\u2028\ufffd","bytes":"aGk/","nil_bytes":null,` +
		`"ts":"2024-01-02T03:04:05.000006Z","ts_nanos":"2024-01-02T03:04:05.999999Z","ts_zone":"2024-01-02T05:00:00.000000Z",` +
		`"date":"2024-03-09","dec":"-12.50","emb":[0.25,-1,3],"nil_emb":null,` +
		`"list":[1,"x",null,[],"2024-01-02T03:04:05.000006Z","0001-01-01"],` +
		`"map":{"a":1,"b":2,"c":{"x":"AQ==","y":null}},"struct":{"z":1,"a":{"q":"1"}},"empty_struct":{},"null":null,` +
		`"_source":"src","_shard_id":"shardId-1","_sequence_number":"4959","_subsequence":3,"_arrival_time":"2024-01-02T03:04:05.000000Z"}` + "\n" +
		`{"_source":"src","_shard_id":"shardId-1","_sequence_number":"4959","_subsequence":3,"_arrival_time":"2024-01-02T03:04:05.000000Z"}` + "\n"
	fs := files(t, dir, "orders")
	if len(fs) != 1 {
		t.Fatalf("files: %v", fs)
	}
	got, err := os.ReadFile(fs[0])
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("file content\n got: %s\nwant: %s", got, want)
	}
}

func TestDeadLetterJSONFormat(t *testing.T) {
	dir := t.TempDir()
	s := newDeadLetterSink(t, dir)
	o := record.Origin{Source: "src", StreamARN: "arn:aws:kinesis:eu-west-1:1:stream/s", ShardID: "shardId-1",
		SequenceNumber: "4959", SubSequence: 0, PartitionKey: "pk\"1", ArrivalTime: fixedTime}
	letters := []record.DeadLetter{
		{Origin: o, Dataset: "orders", Reason: record.ReasonSchema, Error: "bad \"x\"", Data: []byte{0, 0xff}},
		{Origin: o, Reason: record.ReasonNoRoute, Error: "", Data: nil},
	}
	if err := s.Write(context.Background(), letters); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := `{"source":"src","stream_arn":"arn:aws:kinesis:eu-west-1:1:stream/s","shard_id":"shardId-1","sequence_number":"4959",` +
		`"subsequence":0,"partition_key":"pk\"1","arrival_time":"2024-01-02T03:04:05.000006Z","dataset":"orders",` +
		`"reason":"schema_error","error":"bad \"x\"","data":"AP8="}` + "\n" +
		`{"source":"src","stream_arn":"arn:aws:kinesis:eu-west-1:1:stream/s","shard_id":"shardId-1","sequence_number":"4959",` +
		`"subsequence":0,"partition_key":"pk\"1","arrival_time":"2024-01-02T03:04:05.000006Z",` +
		`"reason":"no_route","error":"","data":""}` + "\n"
	fs := files(t, dir, "dead-letters")
	if len(fs) != 1 {
		t.Fatalf("files: %v", fs)
	}
	got, err := os.ReadFile(fs[0])
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("file content\n got: %s\nwant: %s", got, want)
	}
}

func TestFileNames(t *testing.T) {
	dir := t.TempDir()
	before := time.Now().UTC().Truncate(time.Second)
	a := newRowSink(t, dir, 0)
	b := newRowSink(t, dir, 0) // same worker id, same second: must not share a file
	for _, s := range []*RowSink{a, b} {
		if err := s.Write(context.Background(), []record.Row{testRow("shardId-1", 1, 0)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	after := time.Now().UTC()
	fs := files(t, dir, "orders")
	if len(fs) != 2 {
		t.Fatalf("want 2 files, got %v", fs)
	}
	re := regexp.MustCompile(`^orders-` + testWorker + `-(\d{8}T\d{6})-(\d{6})\.jsonl$`)
	for _, f := range fs {
		m := re.FindStringSubmatch(filepath.Base(f))
		if m == nil {
			t.Fatalf("file name %q does not match %v", filepath.Base(f), re)
		}
		ts, err := time.Parse("20060102T150405", m[1])
		if err != nil || ts.Before(before) || ts.After(after) {
			t.Errorf("file name %q: start time %v not between %v and %v (%v)", f, ts, before, after, err)
		}
	}
	if n := len(lines(t, dir, "orders")); n != 2 {
		t.Errorf("%d lines in all, want 2", n)
	}
}

func testRow(shard string, seq, batch int) record.Row {
	return record.Row{
		Origin: record.Origin{Source: "test", ShardID: shard, SequenceNumber: seqString(seq), ArrivalTime: fixedTime},
		Fields: []record.Field{
			{Name: "batch", Value: int64(batch)},
			{Name: "seq", Value: int64(seq)},
			{Name: "pad", Value: strings.Repeat("p", 40)},
		},
	}
}

func seqString(n int) string { return "4959" + strings.Repeat("0", 20) + pad6(n) }

func testBatch(shard string, batch, from, n int) []record.Row {
	rows := make([]record.Row, n)
	for i := range rows {
		rows[i] = testRow(shard, from+i, batch)
	}
	return rows
}

// rowInt reads an int64 field of a row read back.
func rowInt(t testing.TB, r record.Row, name string) int64 {
	t.Helper()
	for _, f := range r.Fields {
		if f.Name == name {
			n, err := f.Value.(interface{ Int64() (int64, error) }).Int64()
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("row has no field %q", name)
	return 0
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 4096
	s := newRowSink(t, dir, maxBytes)
	const batches, perBatch = 40, 7
	ctx := context.Background()
	for b := range batches {
		if err := s.Write(ctx, testBatch("shardId-1", b, b*perBatch, perBatch)); err != nil {
			t.Fatal(err)
		}
	}
	// One batch bigger than MaxBytes on its own.
	big := testBatch("shardId-1", batches, batches*perBatch, 100)
	if err := s.Write(ctx, big); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, testBatch("shardId-1", batches+1, batches*perBatch+100, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	fs := files(t, dir, "orders")
	if len(fs) < 5 {
		t.Fatalf("only %d files with MaxBytes %d", len(fs), maxBytes)
	}
	fileOfBatch := map[int64]string{}
	lastSeq := int64(-1)
	for _, f := range fs {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, line := range bytes.SplitAfter(data, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			r, err := parseRowLine(line)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			n++
			b := rowInt(t, r, "batch")
			if prev, ok := fileOfBatch[b]; ok && prev != f {
				t.Errorf("batch %d split between %s and %s", b, filepath.Base(prev), filepath.Base(f))
			}
			fileOfBatch[b] = f
			if seq := rowInt(t, r, "seq"); seq <= lastSeq {
				t.Errorf("seq %d after %d across files sorted by name", seq, lastSeq)
			} else {
				lastSeq = seq
			}
		}
		if st.Size() > maxBytes && fileOfBatch[batches] != f {
			t.Errorf("%s has %d bytes > MaxBytes %d without holding the big batch", filepath.Base(f), st.Size(), maxBytes)
		}
		if fileOfBatch[batches] == f && n != 100 {
			t.Errorf("the batch bigger than MaxBytes shares its file with %d other rows", n-100)
		}
	}
	if len(fileOfBatch) != batches+2 {
		t.Errorf("read %d batches, wrote %d", len(fileOfBatch), batches+2)
	}
	if lastSeq != batches*perBatch+100 {
		t.Errorf("last seq %d", lastSeq)
	}
}

// Concurrent writers: the rows of each Write stay contiguous and in order.
func TestConcurrentWritesContiguous(t *testing.T) {
	dir := t.TempDir()
	s := newRowSink(t, dir, 64<<10)
	const writers, batches, perBatch = 8, 30, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				id := w*batches + b
				if err := s.Write(context.Background(), testBatch("shardId-x", id, id*perBatch, perBatch)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rows := readRows(t, dir, "orders")
	if len(rows) != writers*batches*perBatch {
		t.Fatalf("%d rows, want %d", len(rows), writers*batches*perBatch)
	}
	for i := 0; i < len(rows); i += perBatch {
		id := rowInt(t, rows[i], "batch")
		for j := range perBatch {
			r := rows[i+j]
			if rowInt(t, r, "batch") != id || rowInt(t, r, "seq") != id*perBatch+int64(j) {
				t.Fatalf("row %d: batch %d seq %d, want batch %d seq %d", i+j, rowInt(t, r, "batch"), rowInt(t, r, "seq"), id, id*perBatch+int64(j))
			}
		}
	}
}

func TestRejectedRows(t *testing.T) {
	dir := t.TempDir()
	s := newRowSink(t, dir, 0)
	defer s.Close()
	bad := func(name string, v any) record.Row {
		r := testRow("shardId-1", 0, 0)
		r.Fields = append(r.Fields, record.Field{Name: name, Value: v})
		return r
	}
	rows := []record.Row{
		testRow("shardId-1", 1, 0),
		bad("nan", math.NaN()),
		testRow("shardId-1", 2, 0),
		bad("inf_in_embedding", []float64{1, math.Inf(1)}),
		bad("nested_inf", []any{map[string]any{"x": []record.Field{{Name: "y", Value: math.Inf(-1)}}}}),
		bad("int_not_int64", 5),
		bad("year_10000", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)),
		testRow("shardId-1", 3, 0),
		bad("month_13", record.Date{Year: 2024, Month: 13, Day: 1}),
	}
	err := s.Write(context.Background(), rows)
	rej, ok := sinks.IsRejected(err)
	if !ok {
		t.Fatalf("Write = %v, want a RejectedError", err)
	}
	if want := []int{1, 3, 4, 5, 6, 8}; !equalInts(rej.Index, want) {
		t.Errorf("rejected %v, want %v", rej.Index, want)
	}
	for _, w := range []string{"row 1", `field "nan"`, "NaN"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	got := readRows(t, dir, "orders")
	if len(got) != 3 {
		t.Fatalf("stored %d rows, want the 3 good ones", len(got))
	}
	for i, r := range got {
		if seq := rowInt(t, r, "seq"); seq != int64(i+1) {
			t.Errorf("row %d has seq %d", i, seq)
		}
	}
	// Only bad rows: nothing written, still a RejectedError.
	if _, ok := sinks.IsRejected(s.Write(context.Background(), rows[1:2])); !ok {
		t.Error("all-bad batch: want a RejectedError")
	}
	if n := len(readRows(t, dir, "orders")); n != 3 {
		t.Errorf("%d rows after the all-bad batch", n)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOutageErrorAndRecovery(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	var logBuf syncBuffer
	s, err := NewRowSink(Config{Dir: dir, WorkerID: testWorker, Prefix: "orders"}, slog.New(slog.NewTextHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Write(ctx, testBatch("shardId-1", 0, 0, 5)); err != nil {
		t.Fatal(err)
	}
	breakDir(t, dir)
	err = s.Write(ctx, testBatch("shardId-1", 1, 5, 5))
	if err == nil {
		t.Fatal("Write into a directory replaced by a file succeeded")
	}
	// The error names the file, the OS error and what to do.
	for _, w := range []string{dir, "not a directory", "retry", "without a restart"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if logs := logBuf.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "path=") || !strings.Contains(logs, "not a directory") {
		t.Errorf("no warning with path and err logged: %s", logs)
	}
	healDir(t, dir)
	if err := s.Write(ctx, testBatch("shardId-1", 1, 5, 5)); err != nil {
		t.Fatalf("Write after healing: %v", err)
	}

	// The directory removed altogether: created again, no restart.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, testBatch("shardId-1", 2, 10, 5)); err != nil {
		t.Fatalf("Write after the directory was removed: %v", err)
	}
	// The current file unlinked: a new one.
	for _, f := range files(t, dir, "orders") {
		os.Remove(f)
	}
	if err := s.Write(ctx, testBatch("shardId-1", 3, 15, 5)); err != nil {
		t.Fatal(err)
	}
	rows := readRows(t, dir, "orders")
	if len(rows) != 5 || rowInt(t, rows[0], "seq") != 15 {
		t.Errorf("after unlinking, want the 5 rows of the last batch, got %d", len(rows))
	}
}

func TestCloseAndWriteAfterClose(t *testing.T) {
	dir := t.TempDir()
	s := newRowSink(t, dir, 0)
	if err := s.Write(context.Background(), testBatch("shardId-1", 0, 0, 3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, rows := range [][]record.Row{testBatch("shardId-1", 1, 3, 3), nil} {
		if err := s.Write(context.Background(), rows); !errors.Is(err, errClosed) {
			t.Errorf("Write(%d rows) after Close = %v", len(rows), err)
		}
	}
	if n := len(readRows(t, dir, "orders")); n != 3 {
		t.Errorf("%d rows", n)
	}
}

// Writes whose ctx ends while they wait behind others: they return ctx's error
// or succeed, the acknowledged rows are stored and no line is torn.
func TestCancelWhileQueued(t *testing.T) {
	dir := t.TempDir()
	s := newRowSink(t, dir, 0)
	defer s.Close()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked = map[int64]bool{}
	)
	for w := range 4 {
		wg.Go(func() {
			for b := range 50 {
				id := w*50 + b
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(b%5)*100*time.Microsecond)
				err := s.Write(ctx, testBatch("shardId-1", id, id*10, 10))
				cancel()
				switch {
				case err == nil:
					mu.Lock()
					acked[int64(id)] = true
					mu.Unlock()
				case !errors.Is(err, context.DeadlineExceeded):
					t.Errorf("Write: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if err := s.Write(context.Background(), testBatch("shardId-1", 1000, 10000, 1)); err != nil {
		t.Fatal(err)
	}
	stored := map[int64]int{}
	for _, r := range readRows(t, dir, "orders") {
		stored[rowInt(t, r, "batch")]++
	}
	for id := range acked {
		if stored[id] != 10 {
			t.Errorf("acknowledged batch %d has %d rows stored", id, stored[id])
		}
	}
	t.Logf("%d of 200 Writes acknowledged, %d batches stored", len(acked), len(stored)-1)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// The encoder keeps the encodings of field names and of the source and
// shard from row to row: a batch mixing datasets (other names at the same
// positions, more or fewer fields), sources and shards writes each row as a
// batch of that row alone does.
func TestRowLinesIndependentOfBatch(t *testing.T) {
	o1 := record.Origin{Source: "a", ShardID: "shardId-1", SequenceNumber: "1", ArrivalTime: fixedTime}
	o2 := record.Origin{Source: "b\"", ShardID: "shardId-2", SequenceNumber: "2", SubSequence: 1, ArrivalTime: fixedTime}
	rows := []record.Row{
		{Origin: o1, Fields: []record.Field{{Name: "id", Value: int64(1)}, {Name: "x", Value: "s"}}},
		{Origin: o1, Fields: []record.Field{{Name: "id", Value: int64(2)}, {Name: "y\n", Value: 1.5}, {Name: "z", Value: nil}}},
		{Origin: o2, Fields: []record.Field{{Name: "id", Value: int64(3)}}},
		{Origin: o2},
		{Origin: o1, Fields: []record.Field{{Name: "other", Value: true}, {Name: "x", Value: "t"}}},
		{Origin: o1, Fields: []record.Field{{Name: "id", Value: int64(4)}, {Name: "x", Value: "u"}}},
	}
	var e rowEncoder
	batch, _, err := encodeBatch(nil, rows, "row", e.appendRow)
	if err != nil {
		t.Fatal(err)
	}
	var alone []byte
	for i := range rows {
		var fresh rowEncoder
		if alone, err = fresh.appendRow(alone, &rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	if string(batch) != string(alone) {
		t.Errorf("as one batch:\n%s\nrow by row:\n%s", batch, alone)
	}
	for i, l := range strings.Split(strings.TrimSuffix(string(batch), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || len(m) != len(rows[i].Fields)+5 {
			t.Errorf("line %d %s: %v, %d keys", i, l, err, len(m))
		}
	}
}

// TestFileModes: rows and dead letters hold raw payloads, so files are
// created 0600 in 0700 directories unless Mode asks for group read.
func TestFileModes(t *testing.T) {
	for _, tt := range []struct {
		name              string
		mode              fs.FileMode
		wantFile, wantDir fs.FileMode
	}{
		{"default", 0, 0o600, 0o700},
		{"group read", 0o640, 0o640, 0o750},
	} {
		t.Run(tt.name, func(t *testing.T) {
			old := syscall.Umask(0o022)
			defer syscall.Umask(old)
			dir := filepath.Join(t.TempDir(), "out", "letters")
			s, err := NewDeadLetterSink(Config{Dir: dir, WorkerID: testWorker, Mode: tt.mode}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Write(context.Background(), []record.DeadLetter{{Reason: record.ReasonDecode, Data: []byte("secret payload")}}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
			if len(files) != 1 {
				t.Fatalf("files %v", files)
			}
			for path, want := range map[string]fs.FileMode{files[0]: tt.wantFile, dir: tt.wantDir, filepath.Dir(dir): tt.wantDir} {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != want {
					t.Errorf("%s: %v, want %v", path, fi.Mode().Perm(), want)
				}
			}
		})
	}
	if _, err := NewRowSink(Config{Dir: t.TempDir(), WorkerID: testWorker, Mode: 0o444}, testLogger(t)); err == nil || !strings.Contains(err.Error(), "Config.Mode is 0444") {
		t.Errorf("a mode the owner cannot write: %v", err)
	}
}

// TestChangelog: a keyed dataset's file is its changes in arrival order, each
// with _op; a delete line holds the key and the timestamp only, and a
// keyless sink's lines have no _op.
func TestChangelog(t *testing.T) {
	dir := t.TempDir()
	s, err := NewRowSink(Config{Dir: dir, WorkerID: testWorker, Prefix: "users", Changelog: true}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	o := record.Origin{Source: "src", ShardID: "shardId-1", SequenceNumber: "1", ArrivalTime: fixedTime}
	at := func(seq string) record.Origin { c := o; c.SequenceNumber = seq; return c }
	rows := []record.Row{
		{Origin: at("1"), Fields: []record.Field{{Name: "id", Value: int64(7)}, {Name: "name", Value: "ann"}, {Name: "ts", Value: fixedTime}}},
		{Origin: at("2"), Delete: true, Fields: []record.Field{{Name: "id", Value: int64(7)}, {Name: "name", Value: nil}, {Name: "ts", Value: fixedTime.Add(time.Second)}}},
		{Origin: at("3"), Fields: []record.Field{{Name: "id", Value: int64(7)}, {Name: "name", Value: nil}, {Name: "ts", Value: fixedTime}}},
	}
	if err := s.Write(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	origin := func(seq string) string {
		return `"_source":"src","_shard_id":"shardId-1","_sequence_number":"` + seq + `","_subsequence":0,"_arrival_time":"2024-01-02T03:04:05.000006Z"`
	}
	want := []string{
		`{"id":7,"name":"ann","ts":"2024-01-02T03:04:05.000006Z",` + origin("1") + `,"_op":"upsert"}`,
		`{"id":7,"ts":"2024-01-02T03:04:06.000006Z",` + origin("2") + `,"_op":"delete"}`,
		`{"id":7,"name":null,"ts":"2024-01-02T03:04:05.000006Z",` + origin("3") + `,"_op":"upsert"}`,
	}
	got := lines(t, dir, "users")
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("line %d\n got: %s\nwant: %s", i, got[i], want[i])
		}
	}

	plain := t.TempDir()
	p := newRowSink(t, plain, 0)
	if err := p.Write(context.Background(), rows[:1]); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if l := lines(t, plain, "orders"); len(l) != 1 || bytes.Contains(l[0], []byte(`"_op"`)) {
		t.Errorf("keyless sink wrote %q, want one line without _op", l)
	}
}
