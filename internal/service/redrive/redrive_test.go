package redrive_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/app"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/redrive"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/sinkreg"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
)

// The config the letters are redriven through: source orders feeds a (every
// record), b (ids above 5) and lake, on an s3 sink.
const cfgYAML = `
sources:
  - name: orders
    kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}
datasets:
  - {name: a, source: orders, sink: files, fields: &fields [{name: id, type: int}, {name: ts, type: datetime}]}
  - {name: b, source: orders, sink: files, where: "id > 5", fields: *fields}
  - {name: lake, source: orders, sink: s3, fields: *fields}
sinks:
  - {name: files, file: {path: "%[1]s/rows"}}
  - {name: s3, s3: {bucket: lake, prefix: rows}}
dead_letter:
  file: {path: "%[1]s/letters"}
consumer: {worker_id: w1}
metrics: {listen: ""}
errors: {listen: ""}
`

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func letter(shard, seq, dataset string, reason record.Reason, data string, minute int) record.DeadLetter {
	return record.DeadLetter{
		Origin: record.Origin{Source: "orders", StreamARN: "arn:aws:kinesis:us-east-1:000000000000:stream/orders", ShardID: shard,
			SequenceNumber: seq, PartitionKey: "k" + seq, ArrivalTime: t0.Add(time.Duration(minute) * time.Minute)},
		Dataset: dataset, Reason: reason, Error: "failed before", Data: []byte(data),
	}
}

func body(id int) string { return fmt.Sprintf(`{"id":%d,"ts":"2026-11-01T12:00:00Z"}`, id) }

// letters are what a worker dead-lettered, in the order it wrote them.
var letters = []record.DeadLetter{
	letter("shardId-0", "30", "a", record.ReasonSchema, body(3), 3),
	letter("shardId-0", "10", "a", record.ReasonSchema, body(1), 1),
	letter("shardId-0", "20", "", record.ReasonDecode, body(2), 2),
	letter("shardId-0", "10", "a", record.ReasonSchema, body(1), 1), // written again (a replay)
	letter("shardId-1", "40", "b", record.ReasonSchema, body(7), 4),
	letter("shardId-0", "50", "lake", record.ReasonSchema, body(5), 5),
	{Origin: record.Origin{Source: "gone", ShardID: "shardId-0", SequenceNumber: "60", ArrivalTime: t0}, Reason: record.ReasonDecode, Data: []byte(`{}`)},
	letter("shardId-0", "70", "a", record.ReasonSchema, `not json`, 7),
	letter("shardId-0", "100", "a", record.ReasonLate, body(10), 10),
}

type rowLine struct {
	ID  int64  `json:"id"`
	Seq string `json:"_sequence_number"`
}

// rowsOf reads dataset's rows, in the order the files hold them.
func rowsOf(t *testing.T, dir, dataset string) []string {
	t.Helper()
	var out []string
	_, err := file.Reader{Dir: filepath.Join(dir, "rows"), Prefix: dataset}.Lines(t.Context(), func(_ string, line []byte) error {
		var r rowLine
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%d@%s", r.ID, r.Seq))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func setup(t *testing.T) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf(cfgYAML, dir)))
	if err != nil {
		t.Fatal(err)
	}
	dl, err := file.NewDeadLetterSink(file.Config{Dir: filepath.Join(dir, "letters"), WorkerID: "w1", Prefix: sinkreg.DeadLetterPrefix}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := dl.Write(t.Context(), letters); err != nil {
		t.Fatal(err)
	}
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg, dir
}

// TestRun redrives the letters above through real file sinks: each into the
// dataset it names (one of no dataset into every dataset redrive may write),
// each shard in stream order, a letter read twice once, letters of a
// dataset on an s3 sink or of a source no longer configured skipped with
// why; what fails again is counted, and no letter is written.
func TestRun(t *testing.T) {
	type want struct {
		a, b                       []string // rows: id@sequence number, in file order
		letters, repeated, records int
		failedA, unroutedB         int
		skipped                    []string
	}
	all := want{
		a: []string{"1@10", "2@20", "3@30", "10@100"}, b: []string{"7@40"},
		letters: 8, repeated: 1, records: 6, failedA: 1, unroutedB: 1,
		skipped: []string{"dataset lake: its sink s3 (s3) cannot store rows older than those it holds", "source gone is not in the config"},
	}
	tests := []struct {
		name   string
		filter redrive.Filter
		want   want
	}{
		{name: "every letter", want: all},
		{name: "decode errors", filter: redrive.Filter{Reasons: []string{"decode_error"}},
			want: want{a: []string{"2@20"}, letters: 2, records: 1, unroutedB: 1, skipped: []string{"source gone is not in the config"}}},
		{name: "dataset b", filter: redrive.Filter{Datasets: []string{"b"}}, want: want{b: []string{"7@40"}, letters: 1, records: 1}},
		{name: "shard 1", filter: redrive.Filter{Shard: "shardId-1"}, want: want{b: []string{"7@40"}, letters: 1, records: 1}},
		{name: "arrived from minute 2 to before 7", filter: redrive.Filter{Since: t0.Add(2 * time.Minute), Until: t0.Add(7 * time.Minute)},
			want: want{a: []string{"2@20", "3@30"}, b: []string{"7@40"}, letters: 4, records: 3, unroutedB: 1,
				skipped: []string{"dataset lake: its sink s3 (s3) cannot store rows older than those it holds"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, dir := setup(t)
			s := run(t, cfg, tt.filter, false)
			var skipped []string
			for _, sk := range s.Skipped {
				skipped = append(skipped, sk.Why)
			}
			slices.Sort(skipped)
			byDataset := map[string]int{}
			for _, d := range s.Datasets {
				byDataset[d.Dataset+" failed"] = d.Letters
				byDataset[d.Dataset+" unrouted"] = d.Unrouted
				if d.Duplicates != 0 {
					t.Errorf("dataset %s: %d duplicates; a file sink cannot tell", d.Dataset, d.Duplicates)
				}
			}
			w := tt.want
			if a, b := rowsOf(t, dir, "a"), rowsOf(t, dir, "b"); !slices.Equal(a, w.a) || !slices.Equal(b, w.b) {
				t.Errorf("rows of a %v and b %v, want %v and %v", a, b, w.a, w.b)
			}
			if s.Letters != w.letters || s.Repeated != w.repeated || s.Records != w.records ||
				byDataset["a failed"] != w.failedA || byDataset["b unrouted"] != w.unroutedB || !slices.Equal(skipped, w.skipped) {
				t.Errorf("summary: %d letters (%d repeated), %d records, a failed again %d, b unrouted %d, skipped %q; want %d (%d), %d, %d, %d, %q",
					s.Letters, s.Repeated, s.Records, byDataset["a failed"], byDataset["b unrouted"], skipped,
					w.letters, w.repeated, w.records, w.failedA, w.unroutedB, w.skipped)
			}
			if got := letterCount(t, dir); got != len(letters) {
				t.Errorf("%d letters in the dead-letter files after redrive, want the %d written before", got, len(letters))
			}
		})
	}
}

// TestRunTwiceIntoFiles: a file sink does not de-duplicate, so a second
// redrive appends every row again, with the same origin.
func TestRunTwiceIntoFiles(t *testing.T) {
	cfg, dir := setup(t)
	f := redrive.Filter{Datasets: []string{"a"}}
	run(t, cfg, f, false)
	run(t, cfg, f, false)
	want := []string{"1@10", "3@30", "10@100", "1@10", "3@30", "10@100"}
	if got := rowsOf(t, dir, "a"); !slices.Equal(got, want) {
		t.Errorf("rows of a after two redrives: %v, want %v", got, want)
	}
}

// TestDryRun says what TestRun's first case does, writing nothing.
func TestDryRun(t *testing.T) {
	cfg, dir := setup(t)
	s := run(t, cfg, redrive.Filter{}, true)
	if a, b := rowsOf(t, dir, "a"), rowsOf(t, dir, "b"); len(a)+len(b) != 0 {
		t.Fatalf("a dry run wrote rows: %v %v", a, b)
	}
	if !s.DryRun || s.Records != 6 || s.Totals.Rows != 5 || s.Totals.Letters != 1 || s.Totals.Unrouted != 1 {
		t.Errorf("dry run: %+v, want 6 records, 5 rows, 1 failing again, 1 unrouted", s.Totals)
	}
}

func TestMaxBytes(t *testing.T) {
	cfg, _ := setup(t)
	r, err := app.NewRedriver(t.Context(), cfg, slog.New(slog.DiscardHandler), true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = redrive.Run(t.Context(), sinkreg.Letters(cfg), r, redrive.Options{MaxBytes: 20})
	if err == nil || !strings.Contains(err.Error(), "more than 20 bytes") {
		t.Errorf("Run over MaxBytes: %v, want an error saying so", err)
	}
}

func run(t *testing.T, cfg *config.Config, f redrive.Filter, dryRun bool) *redrive.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := app.NewRedriver(ctx, cfg, log, dryRun)
	if err != nil {
		t.Fatal(err)
	}
	s, err := redrive.Run(ctx, sinkreg.Letters(cfg), r, redrive.Options{Filter: f, DryRun: dryRun, Batch: 2, Log: log})
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func letterCount(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	if _, err := (file.Reader{Dir: filepath.Join(dir, "letters")}).DeadLetters(t.Context(), 0, func(*file.Letter) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}
