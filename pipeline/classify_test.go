package pipeline_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// TestClassifyIsDeliverWithoutWriting: for each way a record can end (row,
// decode_error, schema_error, a where that takes nothing, no_route, outside
// the window, late), Classify tells what Deliver then writes, and writes
// nothing itself.
func TestClassifyIsDeliverWithoutWriting(t *testing.T) {
	rec := func(id int, amount string, hhmm string) string {
		return fmt.Sprintf(`{"id":%d,"amount":%s,"ts":"2026-01-01T%s:00Z"}`, id, amount, hhmm)
	}
	bodies := []string{
		rec(1, "1.5", "10:00"),
		rec(2, `"x"`, "10:00"),
		`not json`,
		rec(4, "2", "12:00"),
		rec(5, "3", "09:30"),
		rec(6, "4", "11:30"),
	}
	tests := []struct {
		name     string
		mutate   func(*testing.T, *pipeline.Config)
		rows     []string // sequence numbers of the rows
		letters  []string // sequence number: reason
		unrouted int
		filtered int
	}{
		{name: "plain", rows: []string{"1000", "1003", "1004", "1005"},
			letters: []string{"1001:schema_error", "1002:decode_error"}},
		{name: "where takes even ids, the rest unrouted", mutate: func(t *testing.T, c *pipeline.Config) {
			c.Sources[0].Routes[0].Where = mustWhere(t, `id % 2 == 0`, []schema.FieldSpec{{Name: "id", Type: "int"}})
		}, rows: []string{"1003", "1005"}, letters: []string{"1001:schema_error", "1002:decode_error"}, unrouted: 2},
		{name: "unrouted dead-lettered", mutate: func(t *testing.T, c *pipeline.Config) {
			c.Sources[0].Routes[0].Where = mustWhere(t, `id % 2 == 0`, []schema.FieldSpec{{Name: "id", Type: "int"}})
			c.Sources[0].DeadLetterUnrouted = true
		}, rows: []string{"1003", "1005"}, letters: []string{"1000:no_route", "1001:schema_error", "1002:decode_error", "1004:no_route"}, unrouted: 2},
		{name: "window until 11:00", mutate: func(t *testing.T, c *pipeline.Config) {
			c.Sources[0].Routes[0].Window = &pipeline.Window{Timestamp: 2, Until: time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC)}
		}, rows: []string{"1000", "1004"}, letters: []string{"1001:schema_error", "1002:decode_error"}, filtered: 2},
		{name: "disorder 1h", mutate: func(t *testing.T, c *pipeline.Config) {
			c.Sources[0].Routes[0].Disorder = time.Hour
			c.Sources[0].Routes[0].TimestampIndex = 2
		}, rows: []string{"1000", "1003", "1005"}, letters: []string{"1001:schema_error", "1002:decode_error", "1004:late"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *pipeline.Config) {
				if tt.mutate != nil {
					tt.mutate(t, c)
				}
			})
			recs := records("shardId-0", bodies...)
			out, err := h.p.Classify(t.Context(), "orders", recs)
			if err != nil {
				t.Fatal(err)
			}
			if rows, dls := readJSONL(t, h.rowsDir), readJSONL(t, h.dlDir); len(rows)+len(dls) != 0 {
				t.Fatalf("Classify wrote %d rows and %d dead letters", len(rows), len(dls))
			}
			var gotRows, gotLetters []string
			for _, r := range out.Rows {
				gotRows = append(gotRows, r.Origin.SequenceNumber)
			}
			for _, l := range out.Letters {
				gotLetters = append(gotLetters, l.SequenceNumber+":"+string(l.Reason))
			}
			slices.Sort(gotLetters)
			if !slices.Equal(gotRows, tt.rows) || !slices.Equal(gotLetters, tt.letters) || out.Unrouted != tt.unrouted || out.Filtered["orders"] != tt.filtered {
				t.Errorf("Classify: rows %v, letters %v, unrouted %d, filtered %v; want %v, %v, %d, %d",
					gotRows, gotLetters, out.Unrouted, out.Filtered, tt.rows, tt.letters, tt.unrouted, tt.filtered)
			}

			if err := h.p.Deliver(t.Context(), "orders", recs); err != nil {
				t.Fatal(err)
			}
			var wroteRows, wroteLetters []string
			for _, r := range readJSONL(t, h.rowsDir) {
				wroteRows = append(wroteRows, r["_sequence_number"].(string))
			}
			for _, d := range readJSONL(t, h.dlDir) {
				wroteLetters = append(wroteLetters, d["sequence_number"].(string)+":"+d["reason"].(string))
			}
			slices.Sort(wroteLetters)
			if !slices.Equal(wroteRows, gotRows) || !slices.Equal(wroteLetters, gotLetters) {
				t.Errorf("Deliver wrote rows %v and letters %v; Classify said %v and %v", wroteRows, wroteLetters, gotRows, gotLetters)
			}
		})
	}
}

func TestClassifyUnknownSource(t *testing.T) {
	h := newHarness(t, nil)
	if _, err := h.p.Classify(t.Context(), "nope", records("shardId-0", `{}`)); err == nil {
		t.Fatal("Classify of an unknown source: no error")
	}
}
