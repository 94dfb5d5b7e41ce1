package pipeline_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/decompress"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// compressed returns the records of bodies compressed in turn with gzip,
// zstd and not at all, as a source with compression: auto may receive them.
func compressed(t testing.TB, bodies []string) []record.Record {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	recs := records("shardId-0", bodies...)
	for i := range recs {
		switch i % 3 {
		case 0:
			recs[i].Data = gzipped(t, recs[i].Data)
		case 1:
			recs[i].Data = enc.EncodeAll(recs[i].Data, nil)
		}
	}
	return recs
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// notJSON counts the records jsonText was handed that were not JSON text.
var notJSON atomic.Int64

// jsonText checks, as the fast path converts a record, that its scanned
// bytes are JSON text (every body that scans starts with '{'), not gzip or
// zstd.
type jsonText struct{ countingSchema }

func (j jsonText) AppendJSON(dst []record.Field, r *schema.JSONRecord) ([]record.Field, bool) {
	if b := r.Bytes(); len(b) == 0 || b[0] != '{' {
		notJSON.Add(1)
	}
	return j.countingSchema.AppendJSON(dst, r)
}

// TestCompressedSourceFastPath delivers records of every fate compressed
// (gzip, zstd, plain) to a source with compression: auto, and the same
// records plain to a plain source: the rows are the same byte for byte, the
// dead letters have the same reasons, the fast path took the compressed
// records, and every record it scanned was JSON, never gzip or zstd.
func TestCompressedSourceFastPath(t *testing.T) {
	type output struct {
		rows    []string
		reasons []string
		letters []map[string]any
	}
	run := func(recs []record.Record, compress bool) (output, *atomic.Int64, *scans) {
		var took, declined atomic.Int64
		seen := &scans{byID: map[string][]*schema.JSONRecord{}}
		h := newHarness(t, func(c *pipeline.Config) {
			src := &c.Sources[0]
			if compress {
				dec, err := decompress.New(jsondec.New(), decompress.Config{Codec: decompress.Auto})
				if err != nil {
					t.Fatal(err)
				}
				src.Decoder = dec
			}
			r := &src.Routes[0]
			r.Schema = jsonText{countingSchema{r.Schema.(*schema.Schema), &took, &declined, seen}}
		})
		if err := h.p.Deliver(t.Context(), "orders", recs); err != nil {
			t.Fatal(err)
		}
		out := output{rows: lines(t, h.rowsDir)}
		for _, l := range lines(t, h.dlDir) {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatal(err)
			}
			out.reasons = append(out.reasons, m["sequence_number"].(string)+" "+m["reason"].(string))
			out.letters = append(out.letters, m)
		}
		return out, &took, seen
	}
	plain, plainTook, _ := run(records("shardId-0", fastPathBodies...), false)
	recs := compressed(t, fastPathBodies)
	got, took, seen := run(recs, true)

	if strings.Join(got.rows, "") != strings.Join(plain.rows, "") {
		t.Errorf("rows differ:\ncompressed:\n%s\nplain:\n%s", strings.Join(got.rows, ""), strings.Join(plain.rows, ""))
	}
	if strings.Join(got.reasons, "\n") != strings.Join(plain.reasons, "\n") {
		t.Errorf("dead letters differ:\ncompressed:\n%s\nplain:\n%s", strings.Join(got.reasons, "\n"), strings.Join(plain.reasons, "\n"))
	}
	if len(got.rows) == 0 || len(got.reasons) == 0 {
		t.Fatalf("want rows and dead letters, got %d and %d", len(got.rows), len(got.reasons))
	}
	if took.Load() == 0 || took.Load() != plainTook.Load() {
		t.Errorf("the fast path took %d compressed records, %d plain ones", took.Load(), plainTook.Load())
	}
	if len(seen.bad) > 0 {
		t.Errorf("%v", seen.bad)
	}
	if n := notJSON.Load(); n > 0 {
		t.Errorf("the fast path was handed %d records that were not JSON text", n)
	}
	// A dead letter keeps the record as it came, compressed.
	for _, l := range got.letters {
		var data []byte
		if err := json.Unmarshal([]byte(`"`+l["data"].(string)+`"`), &data); err != nil {
			t.Fatal(err)
		}
		var want []byte
		for _, r := range recs {
			if r.Origin.SequenceNumber == l["sequence_number"] {
				want = r.Data
			}
		}
		if !bytes.Equal(data, want) {
			t.Errorf("dead letter %v: data %q, want the record as received %q", l["sequence_number"], data, want)
		}
	}
}
