// Package where compiles a dataset's `where` expression (Fennel's `where`: which
// records of the source the dataset takes) and evaluates it on decoded records.
//
// Expressions are written in the expr language (github.com/expr-lang/expr):
//
//	amount >= 100 && country in ["DE", "AT"]
//	note != nil && note startsWith "gift"
//	ts >= date("2024-05-01") && user.tier == "gold"
//
// # Compile once, at config load
//
// Compile parses and type-checks the expression against the dataset's fields
// and compiles it to bytecode, once. Unknown names (`amont > 0`), mismatched
// types (`amount == "x"`, `note > 3`), unknown struct fields and a result that
// is not a bool (`amount + 1`) are Compile errors. Dates in date("...") and
// now() are in UTC.
//
// # What the expression sees
//
// The expression's variables are the dataset's field names, with their values
// as the dataset types them: each named field is read from the record through
// its ref (or is its const) and converted by exactly the rules of the dataset's
// type (package schema, the same code that builds the row), so `amount` is a
// float64 whether the JSON said 100 or 100.0, and `ts` is a time.Time whether
// the record held an ISO string or epoch millis. A nested field of the record
// that the dataset does not declare is not visible.
//
// The where runs before the dataset validates the record, as Fennel's where runs
// on the source data before the dataset's schema. Only the fields the expression
// names are converted, and the type restrictions (oneof, between, regex) are not
// checked there. So a record the where rejects is simply not taken by the
// dataset, even if other fields (or a restriction) would not fit: it is not a
// dead letter for that dataset. A record the where takes is then validated
// whole, and a bad field makes it a schema_error dead letter as usual.
//
// This is the simplest design that is also honest: a where written against the
// dataset's field names sees the same values the row would hold (no second,
// lenient conversion with its own rules), and filtering costs only the
// conversion of the fields it names. Evaluating after the full conversion was
// the alternative; it would dead-letter records that the where was written to
// drop (say, records of another type sharing the stream) and convert every
// field of every record twice.
//
// # Run-time failures
//
// Match returns an error when the where cannot be decided: a named field is
// missing, null where the type is not optional, or not of its type ("amount:
// want float, got string \"x\""); or the expression fails on the values
// (`amount > 0` with an optional amount that is null: "invalid operation: <nil>
// > int"). The pipeline makes such a record a schema_error dead letter of the
// dataset, with the error prefixed by "where: ".
//
// # Types
//
//	int           int64
//	float         float64
//	bool          bool
//	str           string
//	bytes         []byte
//	datetime      time.Time (UTC)
//	date          time.Time at midnight UTC (compare with date("2024-05-01"))
//	decimal[p]    float64, the nearest value (exact decimals are in the row)
//	optional[T]   T, or nil when null or missing: guard it (`note != nil &&
//	              note == "x"`, `(note ?? "") == "x"`)
//	list[T]       array of T (`"gift" in tags`, `len(tags) > 2`,
//	              `any(items, .price > 10)`)
//	map[T]        map with string keys and T values (`attrs.color == "red"`,
//	              `attrs["a.b"]`)
//	struct        object of its fields (`user.address.city`); a field that is
//	              not declared is a Compile error
//	embedding[n]  array of float64
//
// Equality with nil is never an error: `note == "x"` is false when note is nil.
// Order, arithmetic and functions on nil are (`discount > 0` with a null
// discount): use ?? for a default (`(discount ?? 0) > 0`).
//
// The record's fields are also reachable through $env (`$env["order-id"]`) for
// names that are not identifiers.
//
// The stream record's metadata ($partition_key, $arrival_time, ...) is
// read through a field or input whose ref names it (package schema), e.g.
// `{name: pk, type: str, ref: $partition_key}` and `pk startsWith "eu-"`;
// an expression naming $partition_key itself is told so at Compile. A field named like a builtin function (date,
// len, now, ...) hides that builtin in its dataset's where.
//
// A Filter is immutable and safe for concurrent use.
package where

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// ErrFields is wrapped by Compile's error when the dataset's fields themselves
// do not compile (problems schema.Compile reports for the dataset anyway).
var ErrFields = errors.New("the dataset's fields do not compile")

// Filter is a compiled where expression. The nil *Filter takes every record.
type Filter struct {
	src  string
	prog *vm.Program
	// sub converts the fields the expression names: their specs without
	// restrictions, plus a constant timestamp that schema.Compile requires.
	sub  *schema.Schema
	vars []variable
	pool sync.Pool // *state
}

// variable is a field the expression names.
type variable struct {
	name  string
	shape *shape
}

// shape tells how a converted value is shown to the expression.
type shape struct {
	kind   schema.Kind
	elem   *shape
	fields map[string]*shape // struct
	adapt  bool              // the value differs from the converted one
}

type state struct {
	vm  vm.VM
	env map[string]any
	row []record.Field // MatchScanned's fields, reused
}

// Compile type-checks src against the dataset's fields and compiles it. The
// error is one line, e.g. `unknown name amont (at column 1)`.
func Compile(src string, fields []schema.FieldSpec) (*Filter, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("empty expression; omit where to take every record")
	}
	env := types.Map{}
	shapes := map[string]*shape{}
	for i := range fields {
		sp := &fields[i]
		if sp.Name == "" || sp.Expr != "" {
			continue // a computed field is made after the where decided
		}
		t, sh := specType(sp)
		env[sp.Name] = t
		shapes[sp.Name] = sh
	}
	prog, err := expr.Compile(src, expr.Env(env), expr.AsBool(), expr.Timezone("UTC"))
	if err != nil {
		return nil, errors.New(metadataHint(exprMessage(err)))
	}

	// The fields the expression names, in declaration order.
	u := usedNames(prog.Node())
	f := &Filter{src: src, prog: prog}
	var specs []schema.FieldSpec
	for i := range fields {
		sp := &fields[i]
		if sp.Name == "" || sp.Expr != "" || !(u.all || u.names[sp.Name]) {
			continue
		}
		specs = append(specs, unrestricted(*sp))
		f.vars = append(f.vars, variable{name: sp.Name, shape: shapes[sp.Name]})
	}
	if len(specs) > 0 {
		ts := "where_timestamp"
		for taken(specs, ts) {
			ts = "_" + ts
		}
		specs = append(specs, schema.FieldSpec{Name: ts, Type: "datetime", Const: "1970-01-01T00:00:00Z", HasConst: true})
		f.sub, err = schema.Compile(ts, specs)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFields, err)
		}
	}
	n := len(f.vars)
	f.pool.New = func() any { return &state{env: make(map[string]any, n)} }
	return f, nil
}

// String returns the expression as written.
func (f *Filter) String() string {
	if f == nil {
		return ""
	}
	return f.src
}

// Match reports whether the dataset takes the decoded record. An error means
// the where cannot be decided for this record (see the package doc). A
// field it names that reads record metadata has none here: use MatchFrom.
func (f *Filter) Match(rec any) (bool, error) { return f.MatchFrom(rec, nil) }

// MatchFrom is Match for rec decoded from the stream record from, whose
// metadata the fields reading it ($partition_key, ...) take.
func (f *Filter) MatchFrom(rec any, from *record.Record) (bool, error) {
	if f == nil {
		return true, nil
	}
	var row []record.Field
	if f.sub != nil {
		var err error
		if row, err = f.sub.ConvertFrom(rec, from); err != nil {
			return false, err
		}
	}
	return f.eval(row)
}

// MatchJSON is Match on the record that decoders/jsondec decodes from data,
// read straight from its bytes (schema.Schema.ConvertJSON of the fields the
// expression names). ok is false when it cannot give Match's answer itself:
// data is not valid JSON, a named field does not convert, or the expression
// fails on the values. The caller then takes Match's path, which gives the
// answer or the error.
func (f *Filter) MatchJSON(data []byte) (match, ok bool) {
	var r schema.JSONRecord
	if !r.Scan(data) {
		return false, false
	}
	return f.MatchScanned(&r)
}

// MatchScanned is MatchJSON on a record already scanned (and so known to be
// valid JSON): a source with several datasets scans each record once for all
// their where expressions and rows. Fields reading metadata take r.From's.
func (f *Filter) MatchScanned(r *schema.JSONRecord) (match, ok bool) {
	if f == nil {
		return false, false
	}
	st := f.pool.Get().(*state)
	defer f.pool.Put(st)
	if f.sub != nil {
		var ok bool
		if st.row, ok = f.sub.AppendJSON(st.row[:0], r); !ok {
			return false, false
		}
	} else if !r.Valid() {
		return false, false
	}
	m, err := f.evalIn(st, st.row)
	return m, err == nil
}

// eval runs the expression on the converted fields it names.
func (f *Filter) eval(row []record.Field) (bool, error) {
	st := f.pool.Get().(*state)
	defer f.pool.Put(st)
	return f.evalIn(st, row)
}

func (f *Filter) evalIn(st *state, row []record.Field) (bool, error) {
	for i := range f.vars {
		v := &f.vars[i]
		val := row[i].Value
		if v.shape.adapt {
			val = v.shape.value(val)
		}
		st.env[v.name] = val
	}
	// No clear(st.env) after the run: every run sets every name first, and
	// clearing and refilling the map cost a tenth of a where.
	out, err := st.vm.Run(f.prog, st.env)
	if err != nil {
		return false, errors.New(exprMessage(err))
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("the expression gave %v, not a bool", out)
	}
	return b, nil
}

// metadataHint adds, to an unknown name that is record metadata, how to
// read it: through a field or input, as a payload member is.
func metadataHint(msg string) string {
	rest, ok := strings.CutPrefix(msg, "unknown name $")
	if !ok {
		return msg
	}
	name, _, _ := strings.Cut(rest, " ")
	for _, m := range schema.MetadataNames() {
		if m.Name == "$"+name {
			return fmt.Sprintf("%s; the record's metadata is read through a field, as the payload is: add an input {name: %s, type: %s, ref: %s} (or a field) and name %s", msg, name, m.Types[0], m.Name, name)
		}
	}
	return msg
}

// exprMessage is an expr error on one line: its message and position, without
// the source snippet expr puts under it.
func exprMessage(err error) string {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return err.Error()
	}
	if fe.Snippet == "" {
		return fe.Message
	}
	if fe.Line > 1 {
		return fmt.Sprintf("%s (at line %d, column %d)", fe.Message, fe.Line, fe.Column+1)
	}
	return fmt.Sprintf("%s (at column %d)", fe.Message, fe.Column+1)
}

// used is the set of environment names an expression reads.
type used struct {
	names map[string]bool
	all   bool // it reads $env itself
}

func (u *used) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok {
		if id.Value == "$env" {
			u.all = true
		}
		u.names[id.Value] = true
	}
}

func usedNames(n ast.Node) used {
	u := used{names: map[string]bool{}}
	ast.Walk(&n, &u)
	return u
}

func taken(specs []schema.FieldSpec, name string) bool {
	for _, s := range specs {
		if s.Name == name {
			return true
		}
	}
	return false
}

// unrestricted returns sp without oneof, between and regex, at every depth.
func unrestricted(sp schema.FieldSpec) schema.FieldSpec {
	sp.Oneof, sp.Between, sp.Regex = nil, nil, ""
	sp.Input = false // in the where's own schema every field it names is a column
	if len(sp.Fields) > 0 {
		fs := make([]schema.FieldSpec, len(sp.Fields))
		for i := range sp.Fields {
			fs[i] = unrestricted(sp.Fields[i])
		}
		sp.Fields = fs
	}
	return sp
}

var (
	timeType  = types.TypeOf(time.Time{})
	stringPtr = types.TypeOf((*string)(nil))
)

// specType is the expression type of a field and how its values are shown. A
// type that does not parse is any (schema.Compile reports it).
func specType(sp *schema.FieldSpec) (types.Type, *shape) {
	t, err := schema.ParseType(sp.Type)
	if err != nil {
		return types.Any, &shape{kind: schema.KindInvalid}
	}
	return typeOf(t, sp.Fields, false, 0)
}

// typeOf maps a dataset type to an expression type. A str that may be nil (an
// optional, a map value) is *string: expr compiles == between two strings to an
// opcode that fails on nil, and compares *string generically, so that nil ==
// "x" is false (values stay strings; expr dereferences as needed). An array of
// *string would not type-check `"x" in tags`, so an optional str directly in a
// list is any instead.
func typeOf(t schema.Type, structFields []schema.FieldSpec, arrayElem bool, depth int) (types.Type, *shape) {
	s := &shape{kind: t.Kind}
	switch t.Kind {
	case schema.KindInt:
		return types.Int64, s
	case schema.KindFloat:
		return types.Float64, s
	case schema.KindBool:
		return types.Bool, s
	case schema.KindStr:
		return types.String, s
	case schema.KindBytes:
		return types.TypeOf([]byte(nil)), s
	case schema.KindDatetime:
		return timeType, s
	case schema.KindDate:
		s.adapt = true
		return timeType, s
	case schema.KindDecimal:
		s.adapt = true
		return types.Float64, s
	case schema.KindEmbedding:
		return types.Array(types.Float64), s
	case schema.KindOptional, schema.KindList, schema.KindMap:
		if t.Elem == nil || depth > 64 {
			return types.Any, &shape{kind: schema.KindInvalid}
		}
		et, es := typeOf(*t.Elem, structFields, t.Kind == schema.KindList, depth+1)
		s.elem, s.adapt = es, es.adapt
		if t.Elem.Kind == schema.KindStr && t.Kind != schema.KindList {
			et = stringPtr // nil for null, or for a missing map key
		}
		switch t.Kind {
		case schema.KindOptional:
			if arrayElem && et == stringPtr {
				return types.Any, s
			}
			return et, s
		case schema.KindList:
			return types.Array(et), s
		default:
			return types.Map{types.Extra: et}, s
		}
	case schema.KindStruct:
		// Converted structs are []record.Field; the expression sees objects.
		s.adapt = true
		s.fields = map[string]*shape{}
		m := types.Map{}
		for i := range structFields {
			sp := &structFields[i]
			if sp.Name == "" {
				continue
			}
			ft, fs := specType(sp)
			m[sp.Name], s.fields[sp.Name] = ft, fs
		}
		return m, s
	}
	return types.Any, s
}

// value shows a converted value to the expression (only for shapes that adapt).
func (s *shape) value(v any) any {
	if v == nil {
		return nil
	}
	switch s.kind {
	case schema.KindOptional:
		return s.elem.value(v)
	case schema.KindDate:
		if d, ok := v.(record.Date); ok {
			return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
		}
	case schema.KindDecimal:
		if d, ok := v.(record.Decimal); ok {
			f, _ := strconv.ParseFloat(string(d), 64)
			return f
		}
	case schema.KindList:
		if l, ok := v.([]any); ok {
			out := make([]any, len(l))
			for i, e := range l {
				out[i] = s.elem.value(e)
			}
			return out
		}
	case schema.KindMap:
		if m, ok := v.(map[string]any); ok {
			out := make(map[string]any, len(m))
			for k, e := range m {
				out[k] = s.elem.value(e)
			}
			return out
		}
	case schema.KindStruct:
		if fs, ok := v.([]record.Field); ok {
			out := make(map[string]any, len(fs))
			for _, f := range fs {
				fv := f.Value
				if sh := s.fields[f.Name]; sh != nil && sh.adapt {
					fv = sh.value(fv)
				}
				out[f.Name] = fv
			}
			return out
		}
	}
	return v
}
