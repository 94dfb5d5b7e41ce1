package s3

import (
	"bytes"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/jsonenc"
)

// decimalPrecision is the precision of every decimal column: the most an
// int128 holds, which is also the most a dataset's decimal may have.
const decimalPrecision = 38

// parquetCodecs are the compressions of Config.Compression for Parquet.
var parquetCodecs = map[string]compress.Compression{
	"":       compress.Codecs.Zstd,
	"zstd":   compress.Codecs.Zstd,
	"snappy": compress.Codecs.Snappy,
	"gzip":   compress.Codecs.Gzip,
	"none":   compress.Codecs.Uncompressed,
}

// column is one Parquet column: a dataset field or an origin column.
type column struct {
	name string
	typ  schema.Type // base type (optional unwrapped); KindInvalid for origin columns
	null bool        // OPTIONAL in the file
}

// parquetEncoder turns rows into one Parquet file per object: the
// dataset's columns in declaration order, then the origin columns (and
// _op for a changelog), typed as the dataset declares them. list, map and
// struct values are JSON text (Parquet's JSON logical type): their elements'
// types are not fixed by every dataset (a struct may declare no fields).
type parquetEncoder struct {
	cols      []column
	schema    *arrow.Schema
	props     *parquet.WriterProperties
	changelog bool
	mem       memory.Allocator
	scratch   []byte
}

func newParquetEncoder(cols []schema.Column, changelog bool, compression string) (*parquetEncoder, error) {
	codec, ok := parquetCodecs[compression]
	if !ok {
		return nil, fmt.Errorf("s3 sink: compression %q is not one of zstd, snappy, gzip, none for parquet", compression)
	}
	e := &parquetEncoder{changelog: changelog, mem: memory.NewGoAllocator()}
	var fields []arrow.Field
	for _, c := range cols {
		t, null := c.Type, false
		if t.Kind == schema.KindOptional {
			t, null = *t.Elem, true
		}
		// A delete in a changelog carries only its key and timestamp.
		if changelog && !c.Key {
			null = true
		}
		at, err := arrowType(t)
		if err != nil {
			return nil, fmt.Errorf("s3 sink: field %q: %w", c.Name, err)
		}
		e.cols = append(e.cols, column{name: c.Name, typ: t, null: null})
		fields = append(fields, arrow.Field{Name: c.Name, Type: at, Nullable: null})
	}
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	fields = append(fields,
		arrow.Field{Name: "_source", Type: arrow.BinaryTypes.String},
		arrow.Field{Name: "_shard_id", Type: arrow.BinaryTypes.String},
		arrow.Field{Name: "_sequence_number", Type: arrow.BinaryTypes.String},
		arrow.Field{Name: "_subsequence", Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: "_arrival_time", Type: ts},
	)
	if changelog {
		fields = append(fields, arrow.Field{Name: "_op", Type: arrow.BinaryTypes.String})
	}
	e.schema = arrow.NewSchema(fields, nil)
	e.props = parquet.NewWriterProperties(
		parquet.WithCompression(codec),
		parquet.WithDictionaryDefault(true),
		parquet.WithStats(true),
		parquet.WithCreatedBy("kinesis-ingest"),
	)
	return e, nil
}

func arrowType(t schema.Type) (arrow.DataType, error) {
	switch t.Kind {
	case schema.KindInt:
		return arrow.PrimitiveTypes.Int64, nil
	case schema.KindFloat:
		return arrow.PrimitiveTypes.Float64, nil
	case schema.KindBool:
		return arrow.FixedWidthTypes.Boolean, nil
	case schema.KindStr:
		return arrow.BinaryTypes.String, nil
	case schema.KindBytes:
		return arrow.BinaryTypes.Binary, nil
	case schema.KindDatetime:
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, nil
	case schema.KindDate:
		return arrow.FixedWidthTypes.Date32, nil
	case schema.KindDecimal:
		return &arrow.Decimal128Type{Precision: decimalPrecision, Scale: int32(t.Scale)}, nil
	case schema.KindEmbedding:
		return arrow.ListOfNonNullable(arrow.PrimitiveTypes.Float64), nil
	case schema.KindList, schema.KindMap, schema.KindStruct:
		return extensions.NewJSONType(arrow.BinaryTypes.String)
	}
	return nil, fmt.Errorf("type %s has no Parquet column type", t)
}

func (e *parquetEncoder) ext() string { return ".parquet" }

func (e *parquetEncoder) contentType() string { return "application/vnd.apache.parquet" }

// check reports whether r fits the columns: each value of the Go type its
// column's kind holds, null only where the column is OPTIONAL. A row that
// does not fit is refused (a dead letter), not written in part.
func (e *parquetEncoder) check(r *record.Row, scratch *[]byte) error {
	for i := range e.cols {
		c := &e.cols[i]
		v := fieldValue(r, i, c.name)
		if record.IsNull(v) {
			if !c.null {
				return fmt.Errorf("field %q is null, but its column is not optional", c.name)
			}
			continue
		}
		ok := false
		switch c.typ.Kind {
		case schema.KindInt:
			_, ok = v.(int64)
		case schema.KindFloat:
			_, ok = v.(float64)
		case schema.KindBool:
			_, ok = v.(bool)
		case schema.KindStr:
			_, ok = v.(string)
		case schema.KindBytes:
			_, ok = v.([]byte)
		case schema.KindDatetime:
			_, ok = v.(time.Time)
		case schema.KindDate:
			_, ok = v.(record.Date)
		case schema.KindDecimal:
			var d record.Decimal
			if d, ok = v.(record.Decimal); ok {
				if _, err := decimal128.FromString(string(d), decimalPrecision, int32(c.typ.Scale)); err != nil {
					return fmt.Errorf("field %q: decimal %s does not fit decimal(%d, %d): %w", c.name, d, decimalPrecision, c.typ.Scale, err)
				}
			}
		case schema.KindEmbedding:
			_, ok = v.([]float64)
		case schema.KindList, schema.KindMap, schema.KindStruct:
			var err error
			if *scratch, err = jsonenc.AppendValue((*scratch)[:0], v); err != nil {
				return fmt.Errorf("field %q: %w", c.name, err)
			}
			ok = true
		}
		if !ok {
			return fmt.Errorf("field %q holds a %T, which its %s column cannot", c.name, v, c.typ)
		}
	}
	return nil
}

// fieldValue is the value of column i (named name) in r: Fields are in
// declaration order, so position i is tried first.
func fieldValue(r *record.Row, i int, name string) any {
	if i < len(r.Fields) && r.Fields[i].Name == name {
		return r.Fields[i].Value
	}
	for _, f := range r.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return nil
}

// encode writes rows (each passed check) as one Parquet file of one row
// group into buf.
func (e *parquetEncoder) encode(buf *bytes.Buffer, rows []*record.Row) error {
	b := array.NewRecordBuilder(e.mem, e.schema)
	defer b.Release()
	b.Reserve(len(rows))
	n := len(e.cols)
	for _, r := range rows {
		for i := range e.cols {
			if err := e.appendValue(b.Field(i), &e.cols[i], fieldValue(r, i, e.cols[i].name)); err != nil {
				return err
			}
		}
		o := &r.Origin
		b.Field(n).(*array.StringBuilder).Append(o.Source)
		b.Field(n + 1).(*array.StringBuilder).Append(o.ShardID)
		b.Field(n + 2).(*array.StringBuilder).Append(o.SequenceNumber)
		b.Field(n + 3).(*array.Int32Builder).Append(int32(o.SubSequence))
		b.Field(n + 4).(*array.TimestampBuilder).Append(arrow.Timestamp(o.ArrivalTime.UnixMicro()))
		if e.changelog {
			op := "upsert"
			if r.Delete {
				op = "delete"
			}
			b.Field(n + 5).(*array.StringBuilder).Append(op)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	w, err := pqarrow.NewFileWriter(e.schema, buf, e.props, pqarrow.DefaultWriterProps())
	if err != nil {
		return fmt.Errorf("s3 sink: parquet writer: %w", err)
	}
	if err := w.Write(rec); err != nil {
		_ = w.Close()
		return fmt.Errorf("s3 sink: encode parquet: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("s3 sink: finish parquet: %w", err)
	}
	return nil
}

func (e *parquetEncoder) appendValue(fb array.Builder, c *column, v any) error {
	if record.IsNull(v) {
		fb.AppendNull()
		return nil
	}
	switch c.typ.Kind {
	case schema.KindInt:
		fb.(*array.Int64Builder).Append(v.(int64))
	case schema.KindFloat:
		fb.(*array.Float64Builder).Append(v.(float64))
	case schema.KindBool:
		fb.(*array.BooleanBuilder).Append(v.(bool))
	case schema.KindStr:
		fb.(*array.StringBuilder).Append(v.(string))
	case schema.KindBytes:
		fb.(*array.BinaryBuilder).Append(v.([]byte))
	case schema.KindDatetime:
		fb.(*array.TimestampBuilder).Append(arrow.Timestamp(v.(time.Time).UnixMicro()))
	case schema.KindDate:
		d := v.(record.Date)
		fb.(*array.Date32Builder).Append(arrow.Date32(time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Unix() / 86400))
	case schema.KindDecimal:
		n, err := decimal128.FromString(string(v.(record.Decimal)), decimalPrecision, int32(c.typ.Scale))
		if err != nil {
			return fmt.Errorf("s3 sink: field %q: %w", c.name, err)
		}
		fb.(*array.Decimal128Builder).Append(n)
	case schema.KindEmbedding:
		lb := fb.(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.Float64Builder).AppendValues(v.([]float64), nil)
	case schema.KindList, schema.KindMap, schema.KindStruct:
		var err error
		if e.scratch, err = jsonenc.AppendValue(e.scratch[:0], v); err != nil {
			return fmt.Errorf("s3 sink: field %q: %w", c.name, err)
		}
		fb.(*array.ExtensionBuilder).StorageBuilder().(*array.StringBuilder).BinaryBuilder.Append(e.scratch)
	default:
		return fmt.Errorf("s3 sink: field %q: no encoding for %s", c.name, c.typ)
	}
	return nil
}
