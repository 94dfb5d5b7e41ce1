package s3

import (
	"bytes"

	"github.com/parquet-go/parquet-go/compress"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/parquetenc"
)

// parquetEncoder is the sink's encoder of Parquet objects (package
// parquetenc), one per sink: encode may not run concurrently, and the sink
// serialises it.
type parquetEncoder struct{ *parquetenc.Encoder }

func newParquetEncoder(cols []schema.Column, changelog bool, compression string) (*parquetEncoder, error) {
	return newParquetEncoderWith(cols, parquetenc.Options{Changelog: changelog, Compression: compression})
}

func newParquetEncoderCodec(cols []schema.Column, changelog bool, codec compress.Codec) (*parquetEncoder, error) {
	return newParquetEncoderWith(cols, parquetenc.Options{Changelog: changelog, Codec: codec})
}

func newParquetEncoderWith(cols []schema.Column, o parquetenc.Options) (*parquetEncoder, error) {
	e, err := parquetenc.New(cols, o)
	if err != nil {
		return nil, err
	}
	return &parquetEncoder{e}, nil
}

func (e *parquetEncoder) check(r *record.Row, scratch *[]byte) error { return e.Check(r, scratch) }

func (e *parquetEncoder) encode(buf *bytes.Buffer, rows []*record.Row) error {
	return e.Encode(buf, rows)
}

func (e *parquetEncoder) ext() string { return ".parquet" }

func (e *parquetEncoder) contentType() string { return "application/vnd.apache.parquet" }
