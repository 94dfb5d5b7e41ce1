package s3

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strconv"

	"github.com/klauspost/compress/zstd"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/jsonenc"
)

// jsonlEncoder writes rows as JSON Lines, the file sink's line format: the
// fields in declaration order, then _source, _shard_id, _sequence_number,
// _subsequence, _arrival_time (and _op in a changelog), optionally gzip- or
// zstd-compressed as a whole object.
type jsonlEncoder struct {
	compression string
	changelog   bool
	line        []byte
	// zw is reused from object to object: a new zstd encoder allocates
	// about 18 MB of buffers (measured, BenchmarkEncode).
	zw *zstd.Encoder
}

func newJSONLEncoder(changelog bool, compression string) (*jsonlEncoder, error) {
	switch compression {
	case "", "none", "gzip", "zstd":
	default:
		return nil, fmt.Errorf("s3 sink: compression %q is not one of gzip, zstd, none for jsonl", compression)
	}
	return &jsonlEncoder{compression: compression, changelog: changelog}, nil
}

func (e *jsonlEncoder) ext() string {
	switch e.compression {
	case "gzip":
		return ".jsonl.gz"
	case "zstd":
		return ".jsonl.zst"
	}
	return ".jsonl"
}

func (e *jsonlEncoder) contentType() string {
	if e.compression == "" || e.compression == "none" {
		return "application/x-ndjson"
	}
	return "application/octet-stream"
}

// check refuses rows holding a value JSON cannot (NaN, an unknown Go type).
func (e *jsonlEncoder) check(r *record.Row, scratch *[]byte) error {
	var err error
	*scratch, err = e.appendRow((*scratch)[:0], r)
	return err
}

func (e *jsonlEncoder) encode(buf *bytes.Buffer, rows []*record.Row) error {
	return e.compress(buf, func(w io.Writer) error {
		for _, r := range rows {
			var err error
			if e.line, err = e.appendRow(e.line[:0], r); err != nil {
				return err
			}
			if _, err := w.Write(e.line); err != nil {
				return fmt.Errorf("s3 sink: compress: %w", err)
			}
		}
		return nil
	})
}

// compress makes buf one object's body: write writes its lines, which are
// compressed as a whole (the dead-letter sink's objects are made the same
// way).
func (e *jsonlEncoder) compress(buf *bytes.Buffer, write func(w io.Writer) error) error {
	var w io.Writer = buf
	var closer io.Closer
	switch e.compression {
	case "gzip":
		gz := gzip.NewWriter(buf)
		w, closer = gz, gz
	case "zstd":
		if e.zw == nil {
			zw, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
			if err != nil {
				return fmt.Errorf("s3 sink: zstd: %w", err)
			}
			e.zw = zw
		}
		e.zw.Reset(buf)
		w, closer = e.zw, e.zw
	}
	if err := write(w); err != nil {
		return err
	}
	if closer != nil {
		if err := closer.Close(); err != nil {
			return fmt.Errorf("s3 sink: compress: %w", err)
		}
	}
	return nil
}

func (e *jsonlEncoder) appendRow(b []byte, r *record.Row) ([]byte, error) {
	b = append(b, '{')
	first := true
	for _, f := range r.Fields {
		if r.Delete && e.changelog && f.Value == nil {
			continue // a delete carries its key and timestamp only
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(jsonenc.AppendString(b, f.Name), ':')
		var err error
		if b, err = jsonenc.AppendValue(b, f.Value); err != nil {
			return b, fmt.Errorf("field %q: %w", f.Name, err)
		}
	}
	if !first {
		b = append(b, ',')
	}
	o := &r.Origin
	b = append(b, `"_source":`...)
	b = jsonenc.AppendString(b, o.Source)
	b = append(b, `,"_shard_id":`...)
	b = jsonenc.AppendString(b, o.ShardID)
	b = append(b, `,"_sequence_number":`...)
	b = jsonenc.AppendString(b, o.SequenceNumber)
	b = append(b, `,"_subsequence":`...)
	b = strconv.AppendInt(b, int64(o.SubSequence), 10)
	b = append(b, `,"_arrival_time":`...)
	var err error
	if b, err = jsonenc.AppendTime(b, o.ArrivalTime); err != nil {
		return b, fmt.Errorf("arrival time: %w", err)
	}
	if e.changelog {
		if r.Delete {
			b = append(b, `,"_op":"delete"`...)
		} else {
			b = append(b, `,"_op":"upsert"`...)
		}
	}
	return append(b, '}', '\n'), nil
}
