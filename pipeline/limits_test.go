package pipeline_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
)

// TestMaxRecordAge: a record that arrived longer ago than max_record_age is
// an expired dead letter, or skipped and counted; a newer one, and one
// without an arrival time, is a row; the check comes before decoding.
func TestMaxRecordAge(t *testing.T) {
	now := time.Now()
	recs := records("shardId-0",
		`{"id":1,"amount":1,"ts":"2024-01-01T00:00:00Z"}`,
		`{"id":2,"amount":1,"ts":"2024-01-01T00:00:00Z"}`,
		`not json`,
		`{"id":4,"amount":1,"ts":"2024-01-01T00:00:00Z"}`,
	)
	recs[0].Origin.ArrivalTime = now.Add(-2 * time.Hour) // expired
	recs[1].Origin.ArrivalTime = now                     // fresh
	recs[2].Origin.ArrivalTime = now.Add(-3 * time.Hour) // expired, and undecodable
	recs[3].Origin.ArrivalTime = time.Time{}             // unknown: never expired
	tests := []struct {
		name        string
		maxAge      time.Duration
		skip        bool
		wantRows    []float64
		wantLetters map[string]string // sequence number: reason
		wantExpired map[string]float64
	}{
		{name: "off", wantRows: []float64{1, 2, 4}, wantLetters: map[string]string{"1002": "decode_error"}},
		{name: "dead letters", maxAge: time.Hour, wantRows: []float64{2, 4},
			wantLetters: map[string]string{"1000": "expired", "1002": "expired"},
			wantExpired: map[string]float64{pipeline.ExpiredDeadLetter: 2}},
		{name: "skip", maxAge: time.Hour, skip: true, wantRows: []float64{2, 4},
			wantLetters: map[string]string{}, wantExpired: map[string]float64{pipeline.ExpiredSkip: 2}},
		{name: "older bound than any record", maxAge: 5 * time.Hour, wantRows: []float64{1, 2, 4},
			wantLetters: map[string]string{"1002": "decode_error"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *pipeline.Config) {
				c.Sources[0].MaxRecordAge, c.Sources[0].SkipExpired = tc.maxAge, tc.skip
			})
			if err := h.p.Deliver(t.Context(), "orders", recs); err != nil {
				t.Fatal(err)
			}
			var ids []float64
			for _, r := range readJSONL(t, h.rowsDir) {
				ids = append(ids, r["id"].(float64))
			}
			if !slices.Equal(ids, tc.wantRows) {
				t.Errorf("rows %v, want ids %v", ids, tc.wantRows)
			}
			got := map[string]string{}
			for _, d := range readJSONL(t, h.dlDir) {
				got[d["sequence_number"].(string)] = d["reason"].(string)
				if d["reason"] == "expired" && !strings.Contains(d["error"].(string), "max_record_age (1h0m0s)") {
					t.Errorf("expired letter's error %q does not name max_record_age", d["error"])
				}
			}
			if len(got) != len(tc.wantLetters) {
				t.Errorf("dead letters %v, want %v", got, tc.wantLetters)
			}
			for seq, reason := range tc.wantLetters {
				if got[seq] != reason {
					t.Errorf("dead letter of %s: %q, want %q", seq, got[seq], reason)
				}
			}
			// A dry run (Classify) tells the same.
			out, err := h.p.Classify(t.Context(), "orders", recs)
			if err != nil {
				t.Fatal(err)
			}
			expiredLetters := 0
			for _, l := range out.Letters {
				if l.Reason == record.ReasonExpired {
					expiredLetters++
				}
			}
			if wantLetters := int(tc.wantExpired[pipeline.ExpiredDeadLetter]); expiredLetters != wantLetters || out.ExpiredSkipped != int(tc.wantExpired[pipeline.ExpiredSkip]) {
				t.Errorf("Classify: %d expired letters and %d skipped, want %d and %v", expiredLetters, out.ExpiredSkipped, wantLetters, tc.wantExpired[pipeline.ExpiredSkip])
			}
			for _, action := range []string{pipeline.ExpiredDeadLetter, pipeline.ExpiredSkip} {
				if n := testutil.ToFloat64(h.m.RecordsExpired.WithLabelValues("orders", action)); n != tc.wantExpired[action] {
					t.Errorf("records_expired_total{result=%q} = %v, want %v", action, n, tc.wantExpired[action])
				}
			}
		})
	}
}

// outage is a row sink (or a deferred one, with accept) that fails its
// first `fails` calls (all of them when fails < 0) with a sink error, then
// hands over to the real sink; after cancelAt failures it cancels the
// delivery, as a stopping worker does.
type outage struct {
	sinks.RowSink
	mu       sync.Mutex
	fails    int
	calls    int
	cancelAt int
	cancel   context.CancelFunc
}

var errDiskGone = errors.New("write rows: disk gone")

func (o *outage) fail() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls++
	if o.fails >= 0 && o.calls > o.fails {
		return nil
	}
	if o.cancelAt > 0 && o.calls >= o.cancelAt {
		o.cancel()
	}
	return errDiskGone
}

func (o *outage) Write(ctx context.Context, rows []record.Row) error {
	if err := o.fail(); err != nil {
		return err
	}
	return o.RowSink.Write(ctx, rows)
}

// deferredOutage is outage as a sinks.DeferredRowSink whose Accept writes
// at once and reports durable.
type deferredOutage struct{ *outage }

func (d deferredOutage) Accept(ctx context.Context, rows []record.Row, durable func(error)) error {
	if err := d.fail(); err != nil {
		return err
	}
	err := d.RowSink.Write(ctx, rows)
	if err == nil {
		durable(nil)
	}
	return err
}

func (d deferredOutage) Flush(context.Context) error { return nil }

// TestMaxRetryDuration: a sink that keeps failing past its budget has the
// batch's rows dead-lettered as sink_failed with its last error, and the
// delivery succeeds; a shorter outage, or no budget, dead-letters nothing.
func TestMaxRetryDuration(t *testing.T) {
	tests := []struct {
		name     string
		budget   time.Duration
		fails    int  // -1: forever
		cancelAt int  // cancel the delivery at this failure (no budget)
		deferred bool // the sink is a DeferredRowSink, delivered deferred
		wantErr  bool
		wantRows int
		wantDead int
	}{
		{name: "budget spent", budget: 20 * time.Millisecond, fails: -1, wantDead: 3},
		{name: "deferred sink's Accept, budget spent", budget: 20 * time.Millisecond, fails: -1, deferred: true, wantDead: 3},
		{name: "outage shorter than the budget", budget: time.Hour, fails: 3, wantRows: 3},
		{name: "no budget: retried until the delivery ends", fails: -1, cancelAt: 5, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			o := &outage{fails: tc.fails, cancelAt: tc.cancelAt, cancel: cancel}
			tl := &tallied{rows: map[string]int{}, letters: map[record.Reason]int{}}
			h := newHarness(t, func(c *pipeline.Config) {
				r := &c.Sources[0].Routes[0]
				o.RowSink = r.Sink
				r.Sink = o
				if tc.deferred {
					r.Sink = deferredOutage{o}
				}
				r.MaxRetryDuration = tc.budget
				c.Tally = tl
			})
			recs := records("shardId-0",
				`{"id":1,"amount":1,"ts":"2024-01-01T00:00:00Z"}`,
				`{"id":2,"amount":1,"ts":"2024-01-01T00:00:00Z"}`,
				`not json`,
				`{"id":4,"amount":1,"ts":"2024-01-01T00:00:00Z"}`,
			)
			var err error
			if tc.deferred {
				durable := make(chan error, 1)
				_, err = h.p.DeliverDeferred(ctx, "orders", nil, recs, func(err error) { durable <- err })
				if err == nil {
					if derr := <-durable; derr != nil {
						t.Fatalf("durable(%v), want nil: the dead letters are durable", derr)
					}
				}
			} else {
				err = h.p.Deliver(ctx, "orders", recs)
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("Deliver = %v, want error %v", err, tc.wantErr)
			}
			if got := len(readJSONL(t, h.rowsDir)); got != tc.wantRows {
				t.Errorf("%d rows, want %d", got, tc.wantRows)
			}
			failed := 0
			for _, d := range readJSONL(t, h.dlDir) {
				if d["reason"] != string(record.ReasonSinkFailed) {
					continue
				}
				failed++
				if msg := d["error"].(string); !strings.Contains(msg, "disk gone") || !strings.Contains(msg, "max_retry_duration") {
					t.Errorf("sink_failed letter's error %q: want the sink's last error and the budget", msg)
				}
				if d["dataset"] != "orders" || d["shard_id"] != "shardId-0" || d["sequence_number"] == "" {
					t.Errorf("sink_failed letter %v: want the dataset and the record's origin", d)
				}
			}
			if failed != tc.wantDead {
				t.Errorf("%d sink_failed dead letters, want %d", failed, tc.wantDead)
			}
			if got := testutil.ToFloat64(h.m.DeadLetters.WithLabelValues("orders", string(record.ReasonSinkFailed))); got != float64(tc.wantDead) {
				t.Errorf("dead_letters_total{reason=sink_failed} = %v, want %d", got, tc.wantDead)
			}
			wantSpent := 0.0
			if tc.wantDead > 0 {
				wantSpent = 1
			}
			if got := testutil.ToFloat64(h.m.SinkBudgetSpent.WithLabelValues("rows")); got != wantSpent {
				t.Errorf("sink_retry_budget_spent_total = %v, want %v", got, wantSpent)
			}
			if !tc.wantErr && (tl.letters[record.ReasonSinkFailed] != tc.wantDead || tl.rows["orders"] != tc.wantRows) {
				t.Errorf("tallied rows %v and letters %v, want %d rows and %d sink_failed", tl.rows, tl.letters, tc.wantRows, tc.wantDead)
			}
		})
	}
}

// TestDeadLetterSinkHasNoBudget: with the row sink past its budget and the
// dead-letter sink down too, the batch is held (nothing is acked) until the
// delivery ends: the letters have nowhere else to go.
func TestDeadLetterSinkHasNoBudget(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rows := &outage{fails: -1}
	letters := &deadLetterOutage{outage: &outage{fails: -1, cancelAt: 5, cancel: cancel}}
	h := newHarness(t, func(c *pipeline.Config) {
		r := &c.Sources[0].Routes[0]
		rows.RowSink, r.Sink, r.MaxRetryDuration = r.Sink, rows, 10*time.Millisecond
		letters.DeadLetterSink, c.DeadLetters = c.DeadLetters, letters
	})
	err := h.p.Deliver(ctx, "orders", records("shardId-0", `{"id":1,"amount":1,"ts":"2024-01-01T00:00:00Z"}`))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Deliver = %v, want the delivery's cancellation: the dead-letter sink is retried without a budget", err)
	}
	if n := len(readJSONL(t, h.dlDir)); n != 0 {
		t.Fatalf("%d dead letters written while the dead-letter sink was down", n)
	}
}

type deadLetterOutage struct {
	*outage
	sinks.DeadLetterSink
}

func (d *deadLetterOutage) Write(ctx context.Context, letters []record.DeadLetter) error {
	if err := d.fail(); err != nil {
		return err
	}
	return d.DeadLetterSink.Write(ctx, letters)
}

func (d *deadLetterOutage) Close() error { return d.DeadLetterSink.Close() }
