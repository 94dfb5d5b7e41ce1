// Package parquetenc encodes a dataset's rows as Parquet files: the
// dataset's columns in declaration order, typed as the dataset declares them,
// then the origin columns. The lake's sinks (S3 objects, Iceberg data files)
// share it; Iceberg's data files also carry each column's field id.
package parquetenc

import (
	"bytes"
	"fmt"
	"io"
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

// parquetZstd is zstd at its fastest level: on the hot path's objects of
// 1,000 rows it cost a quarter less CPU than the library's default (level
// 3) with PLAIN integers, and still a little less with delta-encoded ones,
// for the same bytes within 1% (docs/lake.md).
var parquetZstd = &zstd.Codec{Level: zstd.SpeedFastest}

// parquetCodecs are the compressions of Config.Compression for Parquet.
var parquetCodecs = map[string]compress.Codec{
	"":       parquetZstd,
	"zstd":   parquetZstd,
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

// Encoder turns rows into one Parquet file per object: the
// dataset's columns in declaration order, then the origin columns (and
// _op for a changelog), typed as the dataset declares them. list, map and
// struct values are JSON text (Parquet's JSON logical type): their elements'
// types are not fixed by every dataset (a struct may declare no fields).
//
// It writes with parquet-go, one column at a time straight into the
// writer's column writers (no rows assembled, no reflection), and keeps
// that writer from object to object (Reset), so an object costs its
// values, its pages' compression and a footer. The library's own schemas
// from Go maps sort columns by name, so the root is an ordered group of
// this package (orderedGroup).
//
// check may run concurrently; encode may not (the writer and the buffers
// are reused): the sink serialises it.
type Encoder struct {
	cols    []column
	schema  *parquet.Schema
	w       *parquet.Writer
	vals    []parquet.Value // one column's values of a chunk
	scratch []byte          // the bytes of the values built here (decimal, JSON)
}

// A column's values go to its writer in chunks of chunkRows rows, or of
// about chunkValues values for an embedding: the writer cuts pages only
// between its calls, so a chunk bounds how far a page overshoots its
// target size, and it bounds the values held at once (24 bytes each).
const (
	chunkRows   = 1024
	chunkValues = 16384
)

// Options are an Encoder's choices beyond the columns.
type Options struct {
	// Changelog (a keyed dataset) adds _op: upsert or delete; a delete
	// carries only its key and timestamp, so the other columns are OPTIONAL.
	Changelog bool
	// Compression is zstd (the default), snappy, gzip or none.
	Compression string
	// Codec, when set, replaces Compression (benchmarks compare levels).
	Codec compress.Codec
	// FieldIDs, when set, gives every column its Parquet field_id (Iceberg
	// matches a data file's columns to the table's by id, not by name): one
	// per dataset column and origin column (OriginColumns), and "<name>.element"
	// for an embedding's element. A column without one is an error.
	FieldIDs map[string]int
}

// OriginColumns are the columns after the dataset's, in order: where each row
// came from. A changelog adds ChangelogColumn after them.
var OriginColumns = []string{"_source", "_shard_id", "_sequence_number", "_subsequence", "_arrival_time"}

// ChangelogColumn says of a changelog's row whether it is an upsert or a delete.
const ChangelogColumn = "_op"

// New returns an Encoder of cols; it checks that every column has a Parquet type.
func New(cols []schema.Column, o Options) (*Encoder, error) {
	codec := o.Codec
	if codec == nil {
		var ok bool
		if codec, ok = parquetCodecs[o.Compression]; !ok {
			return nil, fmt.Errorf("parquet: compression %q is not one of zstd, snappy, gzip, none", o.Compression)
		}
	}
	e := &Encoder{}
	var root orderedGroup
	withID := func(n parquet.Node, name string) (parquet.Node, error) {
		if o.FieldIDs == nil {
			return n, nil
		}
		id, ok := o.FieldIDs[name]
		if !ok || id <= 0 {
			return nil, fmt.Errorf("parquet: column %q has no field id", name)
		}
		return parquet.FieldID(n, id), nil
	}
	for _, c := range cols {
		t, null := c.Type, false
		if t.Kind == schema.KindOptional {
			t, null = *t.Elem, true
		}
		if o.Changelog && !c.Key {
			null = true
		}
		n, err := parquetNode(t)
		if err != nil {
			return nil, fmt.Errorf("parquet: field %q: %w", c.Name, err)
		}
		if t.Kind == schema.KindEmbedding && o.FieldIDs != nil {
			elem, err := withID(parquet.Leaf(parquet.DoubleType), c.Name+".element")
			if err != nil {
				return nil, err
			}
			n = parquet.List(elem)
		}
		if null {
			n = parquet.Optional(n)
		}
		if n, err = withID(n, c.Name); err != nil {
			return nil, err
		}
		e.cols = append(e.cols, column{name: c.Name, typ: t, null: null})
		root = append(root, namedField{Node: n, name: c.Name})
	}
	origin := []parquet.Node{parquet.String(), parquet.String(), parquet.String(),
		delta(parquet.Int(32)), delta(parquet.Timestamp(parquet.Microsecond))}
	names := OriginColumns
	if o.Changelog {
		origin = append(origin, parquet.String())
		names = append(names[:len(names):len(names)], ChangelogColumn)
	}
	for k, n := range origin {
		n, err := withID(n, names[k])
		if err != nil {
			return nil, err
		}
		root = append(root, namedField{Node: n, name: names[k]})
	}
	e.schema = parquet.NewSchema("row", root)
	e.w = parquet.NewWriter(io.Discard, e.schema, parquet.Compression(codec), parquet.CreatedBy("kinesis-ingest", "", ""))
	return e, nil
}

// delta is n, an integer column, in DELTA_BINARY_PACKED: a stream's ids,
// timestamps and dates mostly step by little, so their deltas pack into a
// few bits and leave zstd less to do; BenchmarkEncode's objects came out
// 29% smaller than PLAIN's, at the same CPU within the noise.
func delta(n parquet.Node) parquet.Node { return parquet.Encoded(n, &parquet.DeltaBinaryPacked) }

func parquetNode(t schema.Type) (parquet.Node, error) {
	switch t.Kind {
	case schema.KindInt:
		return delta(parquet.Int(64)), nil
	case schema.KindFloat:
		return parquet.Leaf(parquet.DoubleType), nil
	case schema.KindBool:
		return parquet.Leaf(parquet.BooleanType), nil
	case schema.KindStr:
		return parquet.String(), nil
	case schema.KindBytes:
		return parquet.Leaf(parquet.ByteArrayType), nil
	case schema.KindDatetime:
		return delta(parquet.Timestamp(parquet.Microsecond)), nil
	case schema.KindDate:
		return delta(parquet.Date()), nil
	case schema.KindDecimal:
		return parquet.Decimal(t.Scale, decimalPrecision, parquet.FixedLenByteArrayType(decimalBytes)), nil
	case schema.KindEmbedding:
		return parquet.List(parquet.Leaf(parquet.DoubleType)), nil
	case schema.KindList, schema.KindMap, schema.KindStruct:
		return parquet.JSON(), nil
	}
	return nil, fmt.Errorf("type %s has no Parquet column type", t)
}

// Check reports whether r fits the columns: each value of the Go type its
// column's kind holds, null only where the column is OPTIONAL. A row that
// does not fit is refused (a dead letter), not written in part.
func (e *Encoder) Check(r *record.Row, scratch *[]byte) error {
	for i := range e.cols {
		c := &e.cols[i]
		v := r.FieldValue(i, c.name)
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
				var err error
				if *scratch, err = decimalBytesOf((*scratch)[:0], d, c.typ.Scale); err != nil {
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

// Encode writes rows (each passed check) as one Parquet file of one row
// group into buf, one column after the other: each column's writer keeps
// its own pages until the row group is written.
func (e *Encoder) Encode(buf *bytes.Buffer, rows []*record.Row) error {
	e.w.Reset(buf)
	n := len(e.cols)
	for i, cw := range e.w.ColumnWriters() {
		per := chunkRows
		if i < n && e.cols[i].typ.Kind == schema.KindEmbedding {
			per = max(1, chunkValues/max(1, e.cols[i].typ.Dim))
		}
		for rest := rows; len(rest) > 0; {
			chunk := rest[:min(per, len(rest))]
			rest = rest[len(chunk):]
			var err error
			e.vals, e.scratch = e.vals[:0], e.scratch[:0]
			if i < n {
				e.vals, err = e.appendColumn(e.vals, i, chunk)
			} else {
				e.vals = e.appendOrigin(e.vals, i-n, chunk)
			}
			if err != nil {
				return err
			}
			if _, err := cw.WriteRowValues(e.vals); err != nil {
				return fmt.Errorf("parquet: encode parquet column %d: %w", i, err)
			}
		}
	}
	clear(e.vals[:cap(e.vals)]) // drop the references to the rows' strings and bytes
	if err := e.w.Close(); err != nil {
		return fmt.Errorf("parquet: finish parquet: %w", err)
	}
	return nil
}

// appendColumn appends the leaf values of dataset column i of rows: its
// definition level is 1 for a value of an OPTIONAL column, 0 for a null;
// an embedding's list adds a repeated level. Bytes made here (decimal,
// JSON) go to e.scratch, which the caller keeps until the values are
// written.
func (e *Encoder) appendColumn(vals []parquet.Value, i int, rows []*record.Row) ([]parquet.Value, error) {
	c := &e.cols[i]
	def := 0
	if c.null {
		def = 1
	}
	if c.typ.Kind == schema.KindEmbedding {
		return appendEmbeddings(vals, rows, i, c, def)
	}
	start := len(vals)
	vals, err := e.appendLeaves(vals, i, c, rows)
	if err != nil {
		return vals, err
	}
	setLevels(vals[start:], def, i)
	return vals, nil
}

// appendLeaves appends the values of column i (not an embedding) of rows,
// without their levels: a null is the zero Value.
func (e *Encoder) appendLeaves(vals []parquet.Value, i int, c *column, rows []*record.Row) ([]parquet.Value, error) {
	switch c.typ.Kind {
	case schema.KindInt:
		return appendScalars(vals, rows, i, c, parquet.Int64Value)
	case schema.KindFloat:
		return appendScalars(vals, rows, i, c, parquet.DoubleValue)
	case schema.KindBool:
		return appendScalars(vals, rows, i, c, parquet.BooleanValue)
	case schema.KindStr:
		return appendScalars(vals, rows, i, c, func(s string) parquet.Value { return parquet.ByteArrayValue(bytesOf(s)) })
	case schema.KindBytes:
		return appendScalars(vals, rows, i, c, func(b []byte) parquet.Value {
			if b == nil {
				return parquet.Value{} // null, as record.IsNull says
			}
			return parquet.ByteArrayValue(b)
		})
	case schema.KindDatetime:
		return appendScalars(vals, rows, i, c, func(t time.Time) parquet.Value { return parquet.Int64Value(t.UnixMicro()) })
	case schema.KindDate:
		return appendScalars(vals, rows, i, c, func(d record.Date) parquet.Value {
			return parquet.Int32Value(int32(time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Unix() / 86400))
		})
	case schema.KindDecimal:
		for _, r := range rows {
			v := r.FieldValue(i, c.name)
			d, ok := v.(record.Decimal)
			if !ok {
				if !record.IsNull(v) {
					return vals, wrongType(c, v)
				}
				vals = append(vals, parquet.Value{})
				continue
			}
			start := len(e.scratch)
			var err error
			if e.scratch, err = decimalBytesOf(e.scratch, d, c.typ.Scale); err != nil {
				return vals, fmt.Errorf("parquet: field %q: %w", c.name, err)
			}
			vals = append(vals, parquet.FixedLenByteArrayValue(e.scratch[start:]))
		}
		return vals, nil
	case schema.KindList, schema.KindMap, schema.KindStruct:
		for _, r := range rows {
			v := r.FieldValue(i, c.name)
			if record.IsNull(v) {
				vals = append(vals, parquet.Value{})
				continue
			}
			start := len(e.scratch)
			var err error
			if e.scratch, err = jsonenc.AppendValue(e.scratch, v); err != nil {
				return vals, fmt.Errorf("parquet: field %q: %w", c.name, err)
			}
			vals = append(vals, parquet.ByteArrayValue(e.scratch[start:]))
		}
		return vals, nil
	}
	return vals, fmt.Errorf("parquet: field %q: no encoding for %s", c.name, c.typ)
}

// appendScalars appends the values of column i (of Go type T) of rows,
// made by value; a null is the zero Value (so is what value makes of a
// nil slice).
func appendScalars[T any](vals []parquet.Value, rows []*record.Row, i int, c *column, value func(T) parquet.Value) ([]parquet.Value, error) {
	for _, r := range rows {
		v := r.FieldValue(i, c.name)
		if x, ok := v.(T); ok {
			vals = append(vals, value(x))
			continue
		}
		if !record.IsNull(v) {
			return vals, wrongType(c, v)
		}
		vals = append(vals, parquet.Value{})
	}
	return vals, nil
}

// appendEmbeddings appends the values of embedding column i of rows, with
// their levels: a list of doubles, each element one value.
func appendEmbeddings(vals []parquet.Value, rows []*record.Row, i int, c *column, def int) ([]parquet.Value, error) {
	for _, r := range rows {
		v := r.FieldValue(i, c.name)
		var null parquet.Value
		null.SetColumnIndex(i)
		if record.IsNull(v) {
			vals = append(vals, null)
			continue
		}
		fs, ok := v.([]float64)
		if !ok {
			return vals, wrongType(c, v)
		}
		if len(fs) == 0 {
			// An empty list: defined up to the list, no element.
			null.SetDefinitionLevel(def)
			vals = append(vals, null)
			continue
		}
		for j, f := range fs {
			vals = append(vals, parquet.DoubleValue(f))
			p := &vals[len(vals)-1]
			p.SetDefinitionLevel(def + 1)
			p.SetColumnIndex(i)
			if j > 0 {
				p.SetRepetitionLevel(1)
			}
		}
	}
	return vals, nil
}

// setLevels gives vals, the values of column col, their definition level:
// def, or 0 for a null.
func setLevels(vals []parquet.Value, def, col int) {
	for j := range vals {
		v := &vals[j]
		if def > 0 && !v.IsNull() {
			v.SetDefinitionLevel(def)
		}
		v.SetColumnIndex(col)
	}
}

func wrongType(c *column, v any) error {
	return fmt.Errorf("parquet: field %q holds a %T, which its %s column cannot", c.name, v, c.typ)
}

// appendOrigin appends the values of origin column k (0: _source, …, 4:
// _arrival_time, 5: _op) of rows; its leaf comes after the dataset's.
func (e *Encoder) appendOrigin(vals []parquet.Value, k int, rows []*record.Row) []parquet.Value {
	start := len(vals)
	str := func(s string) parquet.Value { return parquet.ByteArrayValue(bytesOf(s)) }
	switch k {
	case 0:
		for _, r := range rows {
			vals = append(vals, str(r.Origin.Source))
		}
	case 1:
		for _, r := range rows {
			vals = append(vals, str(r.Origin.ShardID))
		}
	case 2:
		for _, r := range rows {
			vals = append(vals, str(r.Origin.SequenceNumber))
		}
	case 3:
		for _, r := range rows {
			vals = append(vals, parquet.Int32Value(int32(r.Origin.SubSequence)))
		}
	case 4:
		for _, r := range rows {
			vals = append(vals, parquet.Int64Value(r.Origin.ArrivalTime.UnixMicro()))
		}
	default:
		for _, r := range rows {
			op := "upsert"
			if r.Delete {
				op = "delete"
			}
			vals = append(vals, str(op))
		}
	}
	setLevels(vals[start:], 0, len(e.cols)+k)
	return vals
}

// bytesOf is s's bytes without a copy: WriteRowValues copies every value
// into the column's buffer before it returns, and nothing writes to them.
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
	b = append(b, make([]byte, decimalBytes)...)
	out := b[len(b)-decimalBytes:]
	if n.Sign() >= 0 {
		n.FillBytes(out)
	} else {
		// Two's complement: 2^128 + n.
		var m big.Int
		m.Lsh(big.NewInt(1), 8*decimalBytes)
		m.Add(&m, &n)
		m.FillBytes(out)
	}
	return b, nil
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
