package pipeline_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// panickyJSON is a schema whose fast path has a bug: AppendJSON panics.
type panickyJSON struct{ *schema.Schema }

func (panickyJSON) AppendJSON([]record.Field, *schema.JSONRecord) ([]record.Field, bool) {
	panic("bug in the fast path")
}

// TestFastPathPanicLogsThroughTheInjectedLogger: a panic on the JSON fast
// path is logged, with the record's origin, by the logger the pipeline was
// given (not the process's default logger), and the record still becomes
// its row through the general path.
func TestFastPathPanicLogsThroughTheInjectedLogger(t *testing.T) {
	var global bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&global, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	var injected bytes.Buffer
	h := newHarness(t, func(c *pipeline.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&injected, nil))
		c.Sources[0].Routes[0].Schema = panickyJSON{ordersSchema(t)}
	})
	if err := h.p.Deliver(t.Context(), "orders", records("shardId-0", `{"id":1,"amount":1.5,"ts":"2024-01-01T00:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	if rows := readJSONL(t, h.rowsDir); len(rows) != 1 || rows[0]["id"] != float64(1) {
		t.Fatalf("rows = %v, want the record's row from the general path", rows)
	}
	log := injected.String()
	if !strings.Contains(log, "fast path panicked") || !strings.Contains(log, "sequence_number=1000") || !strings.Contains(log, "bug in the fast path") {
		t.Errorf("the injected logger got %q, want the panic with the record's sequence number", log)
	}
	if strings.Contains(global.String(), "fast path") {
		t.Errorf("the default logger got %q: the pipeline must log through its own", global.String())
	}
}
