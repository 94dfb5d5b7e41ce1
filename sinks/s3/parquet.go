package s3

import (
	"bytes"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/jsonenc"
)

// decimalPrecision is the precision of every decimal column: the most an
// int128 holds, which is also the most a dataset's decimal may have. Its
// values are 16-byte two's complement (FIXED_LEN_BYTE_ARRAY).
const (
	decimalPrecision = 38
	decimalBytes     = 16
)

// parquetCodecs are the compressions of Config.Compression for Parquet.
var parquetCodecs = map[string]compress.Codec{
	"":       &zstd.Codec{},
	"zstd":   &zstd.Codec{},
	"snappy": &snappy.Codec{},
	"gzip":   &gzip.Codec{},
	"none":   &uncompressed.Codec{},
}

// column is one Parquet column: a dataset field or an origin column. Each
// has exactly one leaf, so a column's position is its leaf's index.
type column struct {
	name string
	typ  schema.Type // base type (optional unwrapped)
	null bool        // OPTIONAL in the file
}

// Origin columns, after the dataset's.
const originColumns = 5

// parquetEncoder turns rows into one Parquet file per object: the
// dataset's columns in declaration order, then the origin columns (and
// _op for a changelog), typed as the dataset declares them. list, map and
// struct values are JSON text (Parquet's JSON logical type): their elements'
// types are not fixed by every dataset (a struct may declare no fields).
//
// It writes with parquet-go, building each row's leaf values itself: the
// library's own schemas from Go maps sort columns by name, so the root is
// an ordered group of this package (orderedGroup).
type parquetEncoder struct {
	cols      []column
	schema    *parquet.Schema
	opts      []parquet.WriterOption
	changelog bool
	row       parquet.Row
	scratch   []byte
}

func newParquetEncoder(cols []schema.Column, changelog bool, compression string) (*parquetEncoder, error) {
	codec, ok := parquetCodecs[compression]
	if !ok {
		return nil, fmt.Errorf("s3 sink: compression %q is not one of zstd, snappy, gzip, none for parquet", compression)
	}
	e := &parquetEncoder{changelog: changelog}
	var root orderedGroup
	for _, c := range cols {
		t, null := c.Type, false
		if t.Kind == schema.KindOptional {
			t, null = *t.Elem, true
		}
		// A delete in a changelog carries only its key and timestamp.
		if changelog && !c.Key {
			null = true
		}
		n, err := parquetNode(t)
		if err != nil {
			return nil, fmt.Errorf("s3 sink: field %q: %w", c.Name, err)
		}
		if null {
			n = parquet.Optional(n)
		}
		e.cols = append(e.cols, column{name: c.Name, typ: t, null: null})
		root = append(root, namedField{Node: n, name: c.Name})
	}
	root = append(root,
		namedField{Node: parquet.String(), name: "_source"},
		namedField{Node: parquet.String(), name: "_shard_id"},
		namedField{Node: parquet.String(), name: "_sequence_number"},
		namedField{Node: parquet.Int(32), name: "_subsequence"},
		namedField{Node: parquet.Timestamp(parquet.Microsecond), name: "_arrival_time"},
	)
	if changelog {
		root = append(root, namedField{Node: parquet.String(), name: "_op"})
	}
	e.schema = parquet.NewSchema("row", root)
	e.opts = []parquet.WriterOption{e.schema, parquet.Compression(codec), parquet.CreatedBy("kinesis-ingest", "", "")}
	return e, nil
}

func parquetNode(t schema.Type) (parquet.Node, error) {
	switch t.Kind {
	case schema.KindInt:
		return parquet.Int(64), nil
	case schema.KindFloat:
		return parquet.Leaf(parquet.DoubleType), nil
	case schema.KindBool:
		return parquet.Leaf(parquet.BooleanType), nil
	case schema.KindStr:
		return parquet.String(), nil
	case schema.KindBytes:
		return parquet.Leaf(parquet.ByteArrayType), nil
	case schema.KindDatetime:
		return parquet.Timestamp(parquet.Microsecond), nil
	case schema.KindDate:
		return parquet.Date(), nil
	case schema.KindDecimal:
		return parquet.Decimal(t.Scale, decimalPrecision, parquet.FixedLenByteArrayType(decimalBytes)), nil
	case schema.KindEmbedding:
		return parquet.List(parquet.Leaf(parquet.DoubleType)), nil
	case schema.KindList, schema.KindMap, schema.KindStruct:
		return parquet.JSON(), nil
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
				if _, err := decimalBytesOf((*scratch)[:0], d, c.typ.Scale); err != nil {
					return fmt.Errorf("field %q: %w", c.name, err)
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
	w := parquet.NewGenericWriter[any](buf, e.opts...)
	n := len(e.cols)
	for _, r := range rows {
		row := e.row[:0]
		for i := range e.cols {
			var err error
			if row, err = e.appendValue(row, i, &e.cols[i], fieldValue(r, i, e.cols[i].name)); err != nil {
				return err
			}
		}
		o := &r.Origin
		row = append(row,
			parquet.ByteArrayValue(bytesOf(o.Source)).Level(0, 0, n),
			parquet.ByteArrayValue(bytesOf(o.ShardID)).Level(0, 0, n+1),
			parquet.ByteArrayValue(bytesOf(o.SequenceNumber)).Level(0, 0, n+2),
			parquet.Int32Value(int32(o.SubSequence)).Level(0, 0, n+3),
			parquet.Int64Value(o.ArrivalTime.UnixMicro()).Level(0, 0, n+4),
		)
		if e.changelog {
			op := "upsert"
			if r.Delete {
				op = "delete"
			}
			row = append(row, parquet.ByteArrayValue(bytesOf(op)).Level(0, 0, n+originColumns))
		}
		e.row = row
		if _, err := w.WriteRows([]parquet.Row{row}); err != nil {
			return fmt.Errorf("s3 sink: encode parquet: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("s3 sink: finish parquet: %w", err)
	}
	return nil
}

// appendValue appends the leaf values of column i: its definition level is
// 1 for a value of an OPTIONAL column, 0 for a null; an embedding's list
// adds a repeated level.
func (e *parquetEncoder) appendValue(row parquet.Row, i int, c *column, v any) (parquet.Row, error) {
	def := 0
	if c.null {
		def = 1
	}
	if record.IsNull(v) {
		return append(row, parquet.NullValue().Level(0, 0, i)), nil
	}
	var pv parquet.Value
	switch c.typ.Kind {
	case schema.KindInt:
		pv = parquet.Int64Value(v.(int64))
	case schema.KindFloat:
		pv = parquet.DoubleValue(v.(float64))
	case schema.KindBool:
		pv = parquet.BooleanValue(v.(bool))
	case schema.KindStr:
		pv = parquet.ByteArrayValue(bytesOf(v.(string)))
	case schema.KindBytes:
		pv = parquet.ByteArrayValue(v.([]byte))
	case schema.KindDatetime:
		pv = parquet.Int64Value(v.(time.Time).UnixMicro())
	case schema.KindDate:
		d := v.(record.Date)
		pv = parquet.Int32Value(int32(time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Unix() / 86400))
	case schema.KindDecimal:
		b, err := decimalBytesOf(nil, v.(record.Decimal), c.typ.Scale)
		if err != nil {
			return row, fmt.Errorf("s3 sink: field %q: %w", c.name, err)
		}
		pv = parquet.FixedLenByteArrayValue(b)
	case schema.KindEmbedding:
		fs := v.([]float64)
		if len(fs) == 0 {
			// An empty list: defined up to the list, no element.
			return append(row, parquet.NullValue().Level(0, def, i)), nil
		}
		for j, f := range fs {
			rep := 0
			if j > 0 {
				rep = 1
			}
			row = append(row, parquet.DoubleValue(f).Level(rep, def+1, i))
		}
		return row, nil
	case schema.KindList, schema.KindMap, schema.KindStruct:
		b, err := jsonenc.AppendValue(nil, v)
		if err != nil {
			return row, fmt.Errorf("s3 sink: field %q: %w", c.name, err)
		}
		pv = parquet.ByteArrayValue(b)
	default:
		return row, fmt.Errorf("s3 sink: field %q: no encoding for %s", c.name, c.typ)
	}
	return append(row, pv.Level(0, def, i)), nil
}

// bytesOf is s's bytes without a copy: WriteRows copies every value into
// the column's page buffer before it returns, and nothing writes to them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// decimalBytesOf appends d, scaled by 10^scale, as a 16-byte big-endian
// two's complement integer: Parquet's DECIMAL on FIXED_LEN_BYTE_ARRAY.
func decimalBytesOf(b []byte, d record.Decimal, scale int) ([]byte, error) {
	s := string(d)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > scale {
		if strings.Trim(frac[scale:], "0") != "" {
			return b, fmt.Errorf("decimal %s has more than %d digits after the point", d, scale)
		}
		frac = frac[:scale]
	}
	digits := strings.TrimLeft(whole+frac+strings.Repeat("0", scale-len(frac)), "0")
	if len(digits) > decimalPrecision {
		return b, fmt.Errorf("decimal %s has more than %d digits", d, decimalPrecision)
	}
	var n big.Int
	if digits != "" {
		if _, ok := n.SetString(digits, 10); !ok {
			return b, fmt.Errorf("decimal %s is not a number", d)
		}
	}
	if neg {
		n.Neg(&n)
	}
	out := make([]byte, decimalBytes)
	if n.Sign() >= 0 {
		n.FillBytes(out)
	} else {
		// Two's complement: 2^128 + n.
		var m big.Int
		m.Lsh(big.NewInt(1), 8*decimalBytes)
		m.Add(&m, &n)
		m.FillBytes(out)
	}
	return append(b, out...), nil
}

// orderedGroup is a Parquet group whose fields keep their order, unlike
// parquet.Group (a map, sorted by name): the dataset's columns come in
// declaration order.
type orderedGroup []parquet.Field

func (g orderedGroup) ID() int                     { return 0 }
func (g orderedGroup) String() string              { return fmt.Sprintf("group(%d fields)", len(g)) }
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Fields() []parquet.Field     { return g }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }

// GoType is for reading into Go values, which the sink never does.
func (g orderedGroup) GoType() reflect.Type { return reflect.TypeFor[map[string]any]() }

// namedField is a node with its name in its parent.
type namedField struct {
	parquet.Node
	name string
}

func (f namedField) Name() string { return f.name }

// Value is for reading into Go values, which the sink never does.
func (f namedField) Value(reflect.Value) reflect.Value { return reflect.Value{} }
