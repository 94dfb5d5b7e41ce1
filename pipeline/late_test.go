package pipeline_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
)

// TestLateRows: with a disorder of 1h, a record whose timestamp is more than
// 1h older than the newest one seen so far in its shard is a late dead
// letter naming the watermark; the watermarks carry over from batch to batch
// through the state DeliverState returns, and a replay of a batch from the
// state stored with the checkpoint before it (another pipeline: a restarted
// worker) judges the same records late. Without the state (Deliver), the
// second batch alone would judge differently: that is why it is stored.
func TestLateRows(t *testing.T) {
	withDisorder := func(c *pipeline.Config) {
		c.Sources[0].Routes[0].Disorder = 3600e9
		c.Sources[0].Routes[0].TimestampIndex = 2
	}
	rec := func(id int, hhmm string) string {
		return fmt.Sprintf(`{"id":%d,"amount":1,"ts":"2026-01-01T%s:00Z"}`, id, hhmm)
	}
	batch1 := records("shardId-0", rec(1, "10:00"), rec(2, "12:00"), rec(3, "09:30"), rec(4, "11:30"))
	batch2 := records("shardId-0", rec(5, "10:59"), rec(6, "11:00"), rec(7, "13:00"), rec(8, "11:59"))
	for i := range batch2 {
		batch2[i].Origin.SequenceNumber = fmt.Sprint(2000 + i)
	}

	late := func(h *harness) (ids []string, errs []string) {
		for _, d := range readJSONL(t, h.dlDir) {
			if d["reason"] != "late" {
				t.Errorf("dead letter %v: want reason late", d)
			}
			ids = append(ids, d["sequence_number"].(string))
			errs = append(errs, d["error"].(string))
		}
		slices.Sort(ids)
		return ids, errs
	}

	h := newHarness(t, withDisorder)
	state1, err := h.p.DeliverState(t.Context(), "orders", nil, batch1)
	if err != nil {
		t.Fatal(err)
	}
	state2, err := h.p.DeliverState(t.Context(), "orders", state1, batch2)
	if err != nil {
		t.Fatal(err)
	}
	ids, errs := late(h)
	// 09:30 < 12:00-1h; 10:59 < 11:00; 11:59 < 13:00-1h. 11:00 is not older than 11:00.
	if want := []string{"1002", "2000", "2003"}; !slices.Equal(ids, want) {
		t.Fatalf("late records %v, want %v", ids, want)
	}
	want := "ts: 2026-01-01T09:30:00.000000Z is older than the shard's watermark 2026-01-01T11:00:00.000000Z (the newest ts seen in shard shardId-0, 2026-01-01T12:00:00.000000Z, minus disorder 1h0m0s)"
	if !slices.Contains(errs, want) {
		t.Errorf("late errors %q, want one to be %q", errs, want)
	}
	if rows := readJSONL(t, h.rowsDir); len(rows) != 5 {
		t.Errorf("%d rows, want the 5 records that are not late", len(rows))
	}
	var st struct{ Newest map[string]int64 }
	if err := json.Unmarshal(state2, &st); err != nil || st.Newest["orders"] == 0 {
		t.Errorf("state %s: want the newest ts of dataset orders", state2)
	}

	// A restarted worker replays batch2 from the state stored with batch1's
	// checkpoint.
	replay := newHarness(t, withDisorder)
	again, err := replay.p.DeliverState(t.Context(), "orders", state1, batch2)
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := late(replay); !slices.Equal(ids, []string{"2000", "2003"}) {
		t.Errorf("replay: late records %v, want 2000 and 2003 as the first time", ids)
	}
	if string(again) != string(state2) {
		t.Errorf("replay state %s, want %s", again, state2)
	}

	alone := newHarness(t, withDisorder)
	if err := alone.p.Deliver(t.Context(), "orders", batch2); err != nil {
		t.Fatal(err)
	}
	if ids, _ := late(alone); slices.Equal(ids, []string{"2000", "2003"}) {
		t.Errorf("without the stored state the same records were late (%v): the test cannot tell state from none", ids)
	}

	if _, err := h.p.DeliverState(t.Context(), "orders", []byte("garbage"), batch2); err == nil || !strings.Contains(err.Error(), "not a version 1 watermark state") {
		t.Errorf("DeliverState with an unreadable state: %v, want an error", err)
	}
}
