package pipeline_test

import (
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

func TestWindowReason(t *testing.T) {
	since := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	until := since.Add(time.Hour)
	w := &pipeline.Window{Timestamp: 1, Since: since, Until: until}
	for _, tc := range []struct {
		ts   time.Time
		want string
	}{
		{since.Add(-time.Microsecond), pipeline.FilteredSince},
		{since, ""}, // since is inclusive
		{until.Add(-time.Microsecond), ""},
		{until, pipeline.FilteredUntil}, // until is exclusive
	} {
		row := []record.Field{{Name: "id", Value: int64(1)}, {Name: "ts", Value: tc.ts}}
		if got := w.Reason(row); got != tc.want {
			t.Errorf("ts %s: reason %q, want %q", tc.ts, got, tc.want)
		}
	}
	var none *pipeline.Window
	if none.Reason(nil) != "" || none.Active() {
		t.Error("a nil window drops rows")
	}
}

// The sample keeps about its rate of distinct rows, and the same rows every
// time (it hashes values: a replay keeps exactly the same records).
func TestWindowSample(t *testing.T) {
	w := &pipeline.Window{SampleRate: 0.3, SampleColumns: []int{0, 2}}
	const n = 20000
	kept := map[int]bool{}
	for i := range n {
		row := []record.Field{{Name: "id", Value: int64(i)}, {Name: "ts", Value: time.Now()}, {Name: "user", Value: "u"}}
		if w.Reason(row) == "" {
			kept[i] = true
		}
	}
	if got := float64(len(kept)) / n; got < 0.28 || got > 0.32 {
		t.Errorf("kept %.3f of the rows, want about 0.3", got)
	}
	for i := range n {
		// Other values in columns not hashed (ts) change nothing.
		row := []record.Field{{Name: "id", Value: int64(i)}, {Name: "ts", Value: time.Unix(int64(i), 0)}, {Name: "user", Value: "u"}}
		if (w.Reason(row) == "") != kept[i] {
			t.Fatalf("id %d: sampled differently the second time", i)
		}
	}
	// Values of different types never hash alike by accident of encoding.
	a := []record.Field{{Value: "1"}, {}, {Value: "u"}}
	b := []record.Field{{Value: int64(1)}, {}, {Value: "u"}}
	same := 0
	for r := 0.05; r < 1; r += 0.05 {
		w.SampleRate = r
		if w.Reason(a) == w.Reason(b) {
			same++
		}
	}
	if same == 19 {
		t.Error(`"1" and 1 sample alike at every rate: the type is not hashed`)
	}
}
