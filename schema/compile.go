package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// Schema is a compiled dataset schema. It is immutable and safe for concurrent
// use.
type Schema struct {
	fields    []field
	columns   []Column
	timestamp string
	tsIndex   int
	keys      []int    // indexes of the key fields, in declaration order
	plan      *objPlan // for ConvertJSON
	computed  []computed
	// visible is the number of fields that are columns of the row: the
	// input fields after them are converted, then cut off.
	visible int
}

// Expr computes a field's value from the row's other fields. Eval's result
// is converted to the field's type as a record's value would be; an error
// makes the record a schema_error dead letter.
type Expr interface {
	Eval(row []record.Field) (any, error)
}

// ExprCompiler compiles the expr of field index i of specs, whose type is
// want, type-checking it against the fields it may read (those of specs
// without expr). Package where provides one (where.CompileExpr).
type ExprCompiler func(src string, i int, specs []FieldSpec, want Type) (Expr, error)

type computed struct {
	idx  int
	expr Expr
}

// Keys returns the indexes (in Columns and in Convert's result) of the key
// fields, in declaration order; none for a keyless dataset.
func (s *Schema) Keys() []int { return s.keys }

// Columns returns the fields in declaration order with their types (struct
// types have their Fields).
func (s *Schema) Columns() []Column { return s.columns }

// Timestamp returns the name of the timestamp field.
func (s *Schema) Timestamp() string { return s.timestamp }

// TimestampIndex returns the index of the timestamp field in Convert's result.
func (s *Schema) TimestampIndex() int { return s.tsIndex }

// field is a compiled FieldSpec.
type field struct {
	name     string
	key      string // lookup key when the ref is a single name
	path     []seg  // otherwise the ref path
	ref      string // the ref as written, for messages
	isConst  bool
	constVal any
	meta     meta // the record metadata it reads, metaNone for the payload
	node     *node
}

// seg is one step of a ref path: a key of an object or an index of a list.
type seg struct {
	key   string
	idx   int
	isIdx bool
}

// node is a compiled type.
type node struct {
	kind   Kind
	elem   *node    // optional, list, map
	scale  int      // decimal
	dim    int      // embedding
	fields []field  // struct
	plan   *objPlan // struct, for ConvertJSON

	restricted bool
	oneofInt   map[int64]struct{}
	oneofStr   map[string]any // the value, boxed once (ConvertJSON returns it)
	oneofSmall []oneofEntry   // oneofStr when it is small: a scan beats hashing
	oneofDesc  string
	between    bool
	minI, maxI int64
	minF, maxF float64
	hasMin     bool
	hasMax     bool
	strictMin  bool
	strictMax  bool
	betweenStr string
	re         *regexp.Regexp
	reSeq      runeSeq // re, when it is a fixed sequence of runes
	reSrc      string
}

type oneofEntry struct {
	s     string
	boxed any
}

// oneof returns s's boxed copy in the oneof set, and whether it is in it.
func (n *node) oneof(s string) (any, bool) {
	if n.oneofSmall != nil {
		for i := range n.oneofSmall {
			if n.oneofSmall[i].s == s {
				return n.oneofSmall[i].boxed, true
			}
		}
		return nil, false
	}
	boxed, in := n.oneofStr[s]
	return boxed, in
}

type compiler struct {
	errs []error
}

func (c *compiler) errf(path, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// Compile checks the field specs and builds a Schema. timestamp names the
// dataset's timestamp field, which must be a top-level datetime (not optional);
// empty means the only datetime field. It reports every problem, each prefixed
// by its path (fields[2].type, fields[0].fields[1].regex, timestamp), joined
// with errors.Join.
func Compile(timestamp string, specs []FieldSpec) (*Schema, error) {
	return CompileWith(timestamp, specs, nil)
}

// CompileWith is Compile for fields that may be computed (FieldSpec.Expr):
// exprs compiles each expression; with exprs nil, a computed field is an error.
// Computed fields are evaluated after every other field converted, in
// declaration order, and see only the fields that are not computed.
func CompileWith(timestamp string, specs []FieldSpec, exprs ExprCompiler) (*Schema, error) {
	c := &compiler{}
	if len(specs) == 0 {
		c.errf("fields", "at least one field is required")
	}
	fs, cols := c.fields("fields", specs)
	visible := len(specs)
	for i := range specs {
		if specs[i].Input && visible == len(specs) {
			visible = i
		}
		if !specs[i].Input && visible < len(specs) {
			c.errf("fields["+strconv.Itoa(i)+"]", "an input field must come after every other field")
		}
		if specs[i].Input && specs[i].Key {
			c.errf("fields["+strconv.Itoa(i)+"].key", "an input field is not a column of the row, so it cannot be a key")
		}
		if specs[i].Input && specs[i].Expr != "" {
			c.errf("fields["+strconv.Itoa(i)+"].expr", "an input is read from the record, it cannot be computed")
		}
	}
	s := &Schema{fields: fs, columns: cols[:visible], tsIndex: -1, visible: visible}
	for i, col := range s.columns {
		if col.Key {
			s.keys = append(s.keys, i)
		}
	}

	if timestamp == "" {
		var dts []string
		idx := -1
		for i, col := range cols[:visible] {
			if col.Type.Kind == KindDatetime {
				dts = append(dts, col.Name)
				idx = i
			}
		}
		switch len(dts) {
		case 1:
			timestamp, s.tsIndex = dts[0], idx
		case 0:
			if len(specs) > 0 {
				c.errf("timestamp", "required: no field is a datetime")
			}
		default:
			c.errf("timestamp", "required: several datetime fields (%s), name one", strings.Join(dts, ", "))
		}
	} else {
		for i, col := range cols[:visible] {
			if col.Name == timestamp {
				s.tsIndex = i
				break
			}
		}
		if s.tsIndex < 0 {
			c.errf("timestamp", "no field %q", timestamp)
		} else if t := cols[s.tsIndex].Type; t.Kind != KindDatetime && t.Kind != KindInvalid {
			c.errf("timestamp", "field %q is %s, want datetime", timestamp, t)
		}
	}
	s.timestamp = timestamp
	for i := range specs {
		if specs[i].Expr == "" || fs[i].node == nil {
			continue
		}
		p := "fields[" + strconv.Itoa(i) + "].expr"
		if exprs == nil {
			c.errf(p, "computed fields are not supported here")
			continue
		}
		e, err := exprs(specs[i].Expr, i, specs, cols[i].Type)
		if err != nil {
			c.errf(p, "%v", err)
			continue
		}
		s.computed = append(s.computed, computed{idx: i, expr: e})
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	s.plan = plans(fs)
	return s, nil
}

func (c *compiler) fields(at string, specs []FieldSpec) ([]field, []Column) {
	fs := make([]field, len(specs))
	cols := make([]Column, len(specs))
	seen := make(map[string]int, len(specs))
	for i := range specs {
		sp := &specs[i]
		p := at + "[" + strconv.Itoa(i) + "]"
		f := &fs[i]
		f.name = sp.Name
		if sp.Name == "" {
			c.errf(p+".name", "required")
		} else if j, dup := seen[sp.Name]; dup {
			c.errf(p+".name", "duplicate field %q (also %s[%d])", sp.Name, at, j)
		} else {
			seen[sp.Name] = i
		}
		t, err := ParseType(sp.Type)
		if err != nil {
			c.errf(p+".type", "%v", err)
			cols[i] = Column{Name: sp.Name}
			continue
		}
		n, tt := c.node(p, t, sp)
		f.node = n
		cols[i] = Column{Name: sp.Name, Type: tt, Key: sp.Key}
		c.restrictions(p, n, sp)
		if sp.Key {
			c.key(p, at, tt)
		}

		if sp.Expr != "" {
			// Computed after the others: no lookup, like a const (nil until
			// the expression runs).
			f.isConst = true
			switch {
			case at != "fields":
				c.errf(p+".expr", "only a dataset's own fields may be computed, not a struct's")
			case sp.Ref != "" || sp.HasConst || sp.Const != nil:
				c.errf(p+".expr", "a field has one of ref, const and expr")
			case sp.Key:
				c.errf(p+".key", "a computed field cannot be a key: a delete carries its key fields only, so there is nothing to compute it from")
			}
			continue
		}
		if sp.HasConst || sp.Const != nil {
			f.isConst = true
			if sp.Ref != "" {
				c.errf(p+".const", "a field has either ref or const, not both")
			}
			if n != nil {
				v, err := normalizeConst(sp.Const)
				if err != nil {
					c.errf(p+".const", "%v", err)
				} else if cv, fe := f.convertValue(v, true); fe != nil {
					c.errf(p+".const"+fe.Path, "%s", fe.Msg)
				} else {
					f.constVal = cv
				}
			}
			continue
		}
		ref := sp.Ref
		if ref == "" {
			f.key = sp.Name
			continue
		}
		if m := lookupMeta(ref); m != metaNone {
			f.ref, f.meta = ref, m
			if at != "fields" {
				c.errf(p+".ref", "%s is the stream record's metadata, which only a dataset's own fields and inputs may read, not a struct's; a payload key that starts with $ is written [%q]", ref, ref)
			} else if n != nil {
				c.checkMeta(p, sp, m, tt)
			}
			continue
		}
		path, err := parseRef(ref)
		if err != nil {
			c.errf(p+".ref", "%v", err)
			continue
		}
		if path[0].isIdx {
			// The record, like a struct's value, is an object: such a ref
			// would dead-letter every record.
			c.errf(p+".ref", "%q starts with a list index; a record is an object: start with a key, as in items[0].price", ref)
			continue
		}
		f.ref = ref
		if len(path) == 1 && !path[0].isIdx {
			f.key = path[0].key
		} else {
			f.path = path
		}
	}
	return fs, cols
}

// key checks that a field marked key: true can be one, by Fennel's rules: a
// top-level field of a type with a total order and an exact equality, never
// null (a row without its key could not be found again).
func (c *compiler) key(p, at string, t Type) {
	if at != "fields" {
		c.errf(p+".key", "only a dataset's own fields can be keys, not a struct's")
		return
	}
	switch t.Kind {
	case KindInt, KindStr, KindBool, KindDate, KindDatetime, KindDecimal:
	case KindOptional:
		c.errf(p+".key", "a key cannot be %s: a key is never null; drop optional[] or key: true", t)
	default:
		c.errf(p+".key", "a key cannot be %s: keys are int, str, bool, date, datetime or decimal", t)
	}
}

// node builds the node of type t; struct fields come from sp.Fields.
func (c *compiler) node(p string, t Type, sp *FieldSpec) (*node, Type) {
	var structs int
	var build func(t Type) (*node, Type)
	build = func(t Type) (*node, Type) {
		n := &node{kind: t.Kind, scale: t.Scale, dim: t.Dim}
		switch t.Kind {
		case KindOptional, KindList, KindMap:
			e, et := build(*t.Elem)
			n.elem = e
			t.Elem = &et
		case KindStruct:
			structs++
			if len(sp.Fields) == 0 {
				c.errf(p+".fields", "a struct needs fields")
			}
			n.fields, t.Fields = c.fields(p+".fields", sp.Fields)
		}
		return n, t
	}
	n, tt := build(t)
	if structs == 0 && len(sp.Fields) > 0 {
		c.errf(p+".fields", "only a struct type has fields, %s has none", t)
	}
	return n, tt
}

// restrictions attaches oneof, between and regex to the node they restrict: the
// field's type or, for optional[T], T.
func (c *compiler) restrictions(p string, n *node, sp *FieldSpec) {
	if sp.Oneof == nil && sp.Between == nil && sp.Regex == "" {
		return
	}
	optional := n.kind == KindOptional
	target := n
	if optional {
		target = n.elem
	}
	tname := target.kind.String()
	if sp.Oneof != nil {
		switch target.kind {
		case KindInt, KindStr:
			c.oneof(p+".oneof", target, sp.Oneof, optional)
		default:
			c.errf(p+".oneof", "oneof restricts int or str, not %s", tname)
		}
	}
	if sp.Between != nil {
		switch target.kind {
		case KindInt, KindFloat:
			c.between(p+".between", target, sp.Between)
		default:
			c.errf(p+".between", "between restricts int or float, not %s", tname)
		}
	}
	if sp.Regex != "" {
		if target.kind != KindStr {
			c.errf(p+".regex", "regex restricts str, not %s", tname)
		} else if re, err := regexp.Compile(`^(?:` + sp.Regex + `)$`); err != nil {
			c.errf(p+".regex", "%v", err)
		} else {
			target.re, target.reSrc, target.restricted = re, sp.Regex, true
			target.reSeq = compileRuneSeq(sp.Regex)
		}
	}
}

func (c *compiler) oneof(p string, n *node, vals []any, optional bool) {
	if len(vals) == 0 {
		c.errf(p, "empty: no value could pass")
		return
	}
	var parts []string
	ok := true
	if n.kind == KindInt {
		n.oneofInt = make(map[int64]struct{}, len(vals))
	} else {
		n.oneofStr = make(map[string]any, len(vals))
	}
	for i, v := range vals {
		ip := p + "[" + strconv.Itoa(i) + "]"
		if v == nil {
			if !optional {
				c.errf(ip, "null, but the type is not optional")
				ok = false
			}
			continue // null always passes an optional field
		}
		if n.kind == KindInt {
			x, good := asInt64(v)
			if !good {
				c.errf(ip, "%s is not an int", describe(v))
				ok = false
				continue
			}
			n.oneofInt[x] = struct{}{}
			parts = append(parts, strconv.FormatInt(x, 10))
		} else {
			x, good := v.(string)
			if !good {
				c.errf(ip, "%s is not a str", describe(v))
				ok = false
				continue
			}
			n.oneofStr[x] = x
			parts = append(parts, strconv.Quote(x))
		}
	}
	if ok {
		n.oneofDesc = "[" + strings.Join(parts, ", ") + "]"
		n.restricted = true
	}
	if len(n.oneofStr) <= 8 {
		for x, boxed := range n.oneofStr {
			n.oneofSmall = append(n.oneofSmall, oneofEntry{x, boxed})
		}
	}
}

func (c *compiler) between(p string, n *node, b *Between) {
	if b.Min == nil && b.Max == nil {
		c.errf(p, "needs min or max")
		return
	}
	ok := true
	bound := func(name string, v any) (int64, float64, bool) {
		if v == nil {
			return 0, 0, false
		}
		if n.kind == KindInt {
			i, good := asInt64(v)
			if !good {
				c.errf(p+"."+name, "%s is not an int (the field is int)", describe(v))
				ok = false
			}
			return i, float64(i), true
		}
		f, good := asFloat64(v)
		if !good {
			c.errf(p+"."+name, "%s is not a finite number", describe(v))
			ok = false
		}
		return 0, f, true
	}
	n.minI, n.minF, n.hasMin = bound("min", b.Min)
	n.maxI, n.maxF, n.hasMax = bound("max", b.Max)
	n.strictMin, n.strictMax = b.StrictMin, b.StrictMax
	if !ok {
		return
	}
	lo, hi := "[", "]"
	if n.strictMin {
		lo = "("
	}
	if n.strictMax {
		hi = ")"
	}
	show := func(has bool, i int64, f float64, inf string) string {
		if !has {
			return inf
		}
		if n.kind == KindInt {
			return strconv.FormatInt(i, 10)
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	n.betweenStr = lo + show(n.hasMin, n.minI, n.minF, "-inf") + ", " + show(n.hasMax, n.maxI, n.maxF, "+inf") + hi
	if n.hasMin && n.hasMax {
		empty := false
		if n.kind == KindInt {
			empty = n.minI > n.maxI || (n.strictMin || n.strictMax) && n.minI == n.maxI ||
				n.strictMin && n.strictMax && n.maxI-n.minI == 1 && n.maxI > n.minI
		} else {
			empty = n.minF > n.maxF || (n.strictMin || n.strictMax) && n.minF == n.maxF
		}
		if empty {
			c.errf(p, "%s is empty: no value could pass", n.betweenStr)
			return
		}
	}
	n.between, n.restricted = true, true
}

// parseRef parses a ref path: name(.name|[index]|["key"])*, where a name is
// any run of characters other than . [ ] and a key is a Go/JSON quoted string.
func parseRef(s string) ([]seg, error) {
	var out []seg
	i := 0
	first := true
	for i < len(s) {
		switch {
		case s[i] == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("bad ref %q: '[' without ']' at byte %d", s, i)
			}
			in := s[i+1 : i+j]
			if len(in) > 0 && in[0] == '"' {
				// quoted keys may contain ']': find the closing quote first
				k, err := strconv.QuotedPrefix(s[i+1:])
				if err != nil || i+1+len(k) >= len(s) || s[i+1+len(k)] != ']' {
					return nil, fmt.Errorf("bad ref %q: bad quoted key at byte %d", s, i)
				}
				key, _ := strconv.Unquote(k)
				out = append(out, seg{key: key})
				i += len(k) + 2
			} else {
				n, err := strconv.Atoi(in)
				if err != nil || n < 0 || in[0] == '+' {
					return nil, fmt.Errorf("bad ref %q: want [index] or [\"key\"] at byte %d", s, i)
				}
				out = append(out, seg{idx: n, isIdx: true})
				i += j + 1
			}
		case s[i] == '.' && !first:
			i++
			fallthrough
		default:
			st := i
			for i < len(s) && s[i] != '.' && s[i] != '[' && s[i] != ']' {
				i++
			}
			if i == st {
				return nil, fmt.Errorf("bad ref %q: empty name at byte %d", s, st)
			}
			out = append(out, seg{key: s[st:i]})
		}
		first = false
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bad ref %q: empty", s)
	}
	return out, nil
}

// normalizeConst turns a YAML-decoded value into the decoder value tree.
func normalizeConst(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string, json.Number, float64, float32, int32, int64, []byte, time.Time:
		return x, nil
	case int:
		return int64(x), nil
	case int8, int16, uint8, uint16, uint32:
		i, _ := asInt64(x)
		return i, nil
	case uint, uint64:
		if i, ok := asInt64(x); ok {
			return i, nil
		}
		return json.Number(fmt.Sprint(x)), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			ne, err := normalizeConst(e)
			if err != nil {
				return nil, err
			}
			out[i] = ne
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ne, err := normalizeConst(e)
			if err != nil {
				return nil, err
			}
			out[k] = ne
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("object key %v is not a string", k)
			}
			ne, err := normalizeConst(e)
			if err != nil {
				return nil, err
			}
			out[ks] = ne
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value of Go type %T", v)
}
