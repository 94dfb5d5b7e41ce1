package app

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// TestDefaultSampleOfSeveralSources: a dataset fed by two sources takes
// the records of both, and its default sample (no using) hashes the
// record's own fields only, as Fennel's leaves out preproc columns: the same
// id is kept or dropped whichever source, sequence number or arrival
// carried it, though the dataset also has a metadata field and a computed
// one that differ between those records.
func TestDefaultSampleOfSeveralSources(t *testing.T) {
	t.Setenv("KI_DIR", t.TempDir())
	cfg, err := config.Parse([]byte(`
sources:
  - {name: orders_a, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/a"}}
  - {name: orders_b, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/b"}}
datasets:
  - name: orders
    source: [orders_a, orders_b]
    sample: 0.5
    fields:
      - {name: id, type: int}
      - {name: seq, type: str, ref: $sequence_number}
      - {name: seq_len, type: int, expr: id * 0 + len(seq)}
      - {name: ts, type: datetime}
    sink: out
sinks:
  - {name: out, file: {path: "${KI_DIR}/rows"}}
dead_letter:
  file: {path: "${KI_DIR}/letters"}
consumer: {worker_id: w1}
`))
	if err != nil {
		t.Fatal(err)
	}
	if u := cfg.Datasets[0].Sample.Using; fmt.Sprint(u) != "[id]" {
		t.Fatalf("sample.using defaulted to %v, want [id]", u)
	}
	c, err := NewClassifier(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	const ids, copies = 40, 4
	kept := map[int]map[bool]int{} // id: kept or not: how many
	for _, src := range []string{"orders_a", "orders_b"} {
		var recs []record.Record
		for i := range ids * copies {
			id := i % ids
			recs = append(recs, record.Record{
				Origin: record.Origin{Source: src, ShardID: "shardId-000000000000", SequenceNumber: fmt.Sprint(1_000_000 + i*7919),
					ArrivalTime: time.Unix(1_700_000_000+int64(i), 0)},
				Data: fmt.Appendf(nil, `{"id":%d,"ts":"2026-01-01T00:00:00Z"}`, id),
			})
		}
		out, err := c.Classify(t.Context(), src, recs)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Letters) != 0 || out.Unrouted != 0 || len(out.Rows)+out.Filtered["orders"] != len(recs) {
			t.Fatalf("%s: %d rows, %v filtered, %d unrouted, letters %+v; want every record a row or sampled out", src, len(out.Rows), out.Filtered, out.Unrouted, out.Letters)
		}
		rows := map[string]bool{}
		for _, r := range out.Rows {
			rows[r.Origin.SequenceNumber] = true
		}
		for i, r := range recs {
			id := i % ids
			if kept[id] == nil {
				kept[id] = map[bool]int{}
			}
			kept[id][rows[r.Origin.SequenceNumber]]++
		}
	}
	var in, outs int
	for id, k := range kept {
		if len(k) != 1 {
			t.Errorf("id %d: kept %d times, dropped %d: the sample hashed more than the record's own fields", id, k[true], k[false])
		}
		if k[true] > 0 {
			in++
		} else {
			outs++
		}
	}
	if in == 0 || outs == 0 {
		t.Errorf("%d ids kept, %d dropped: a 0.5 sample of %d ids keeps some and drops some", in, outs, ids)
	}
}
