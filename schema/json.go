package schema

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// ConvertJSON converts a JSON record straight from its bytes, without the
// decoded value tree: a schema-directed scan that reads only what the fields
// need and boxes only the row's values.
//
// When ok is true, fields are exactly what Convert returns for the value
// decoders/jsondec decodes from data (the same Go types and values). ok is
// false whenever it cannot vouch for that: data is not one valid JSON value by
// jsondec's rules, the record does not fit the schema, or it has a form left to
// the general path (nesting deeper than maxScanDepth). The caller then takes
// the general path, jsondec then Convert, which gives the row or the exact
// error: ConvertJSON never produces an error of its own, so the split between
// decode errors (invalid JSON) and schema errors (valid JSON of the wrong
// shape), and every message, stay those of the general path.
//
// It allocates one copy of data (string values of the row share it, so a
// retained row keeps the record's text alive), the []record.Field, and a box for
// each value that does not fit in an interface for free. Safe for concurrent
// use; it never panics on any input. A caller that converts many records, or
// one record for several datasets, uses JSONRecord and AppendJSON instead.
func (s *Schema) ConvertJSON(data []byte) (fields []record.Field, ok bool) {
	if s.plan == nil {
		return nil, false
	}
	r := scanned.Get().(*jsondec.Record)
	defer func() {
		r.Forget() // keep no record's text alive from the pool
		scanned.Put(r)
	}()
	if !r.Scan(slices.Clone(data)) { // the row keeps the text, not data
		return nil, false
	}
	return s.appendJSON(make([]record.Field, 0, len(s.fields)), r, nil, nil)
}

// scanned holds ConvertJSON's scans between calls: a scan's index of
// members would be a few allocations per record.
var scanned = sync.Pool{New: func() any { return new(jsondec.Record) }}

// JSONRecord is a JSON record scanned once (jsondec.Record: validated by
// jsondec's rules, its top-level members indexed), so that the where
// expressions and the conversions of every dataset a record feeds read it
// without scanning it again, and the values converted from the records
// scanned into it. The zero value is ready for Scan; reuse one per goroutine.
type JSONRecord struct {
	jsondec.Record
	// boxes hold the values converted from the records scanned, kept across
	// Scans: one JSONRecord per batch makes the batch's boxes a few slabs.
	boxes boxes
	// From is the stream record last scanned, whose metadata the fields
	// reading it ($partition_key, ...) take; nil: none, and a schema with
	// such a field declines. The caller sets it with each Scan.
	From *record.Record
}

// Reset makes r forget the values of every field converted from it so far
// (AppendJSON's rows): their memory is reused by the next conversions, so a
// caller that reuses r from batch to batch allocates nothing once it has seen
// its largest batch. Call it only when no row converted from r before is in
// use any more; such a row would then read the values of later rows. The
// record last scanned stays scanned.
func (r *JSONRecord) Reset() { r.boxes.reset() }

// AppendJSON appends the fields of the scanned record r to dst, with what
// ConvertJSON promises, the fields reading metadata taking r.From's: exactly
// ConvertFrom's fields for the decoded record and r.From (ok false: nothing
// usable was appended; dst's spare capacity may have been written). Appending the rows of a batch to one slice
// is one allocation per batch instead of one per row.
func (s *Schema) AppendJSON(dst []record.Field, r *JSONRecord) (fields []record.Field, ok bool) {
	if s.plan == nil || !r.Valid() {
		return dst, false
	}
	return s.appendJSON(dst, &r.Record, &r.boxes, r.From)
}

func (s *Schema) appendJSON(dst []record.Field, r *jsondec.Record, bx *boxes, from *record.Record) ([]record.Field, bool) {
	var local [16]string
	vals := local[:0]
	if len(s.plan.keys) <= len(local) {
		vals = local[:len(s.plan.keys)]
	} else {
		vals = make([]string, len(s.plan.keys))
	}
	guess := 0
	for j, k := range s.plan.keys {
		var at int
		vals[j], at = r.Lookup(k, guess)
		guess = at + 1
	}
	start := len(dst)
	out, ok := s.plan.fill(dst, s.fields, vals, bx, from)
	if ok && len(s.computed) > 0 && s.compute(out[start:]) != nil {
		return dst, false // Convert gives the error
	}
	if ok && s.visible < len(s.fields) {
		out = out[:start+s.visible] // the inputs' values are not the row's
	}
	return out, ok
}

// maxScanDepth bounds the nesting ConvertJSON validates itself (encoding/json
// allows 10000); deeper records take the general path.
const maxScanDepth = jsondec.MaxDepth

// objPlan says which keys of an object (the record, or a struct's object) the
// fields read.
type objPlan struct {
	keys []string // distinct first keys of the fields' refs, in field order
	slot []int    // per field: index into keys; -1 for a const field
	rest [][]seg  // per field: the ref path after its first key, nil if none
}

func newObjPlan(fs []field) *objPlan {
	p := &objPlan{slot: make([]int, len(fs)), rest: make([][]seg, len(fs))}
	for i := range fs {
		f := &fs[i]
		p.slot[i] = -1
		if f.isConst || f.meta != metaNone {
			continue
		}
		key := f.key
		if f.path != nil { // Compile refuses a path that starts with an index
			key, p.rest[i] = f.path[0].key, f.path[1:]
		}
		j := p.find(key)
		if j < 0 {
			j = len(p.keys)
			p.keys = append(p.keys, key)
		}
		p.slot[i] = j
	}
	return p
}

func (p *objPlan) find(key string) int {
	for j, k := range p.keys {
		if k == key {
			return j
		}
	}
	return -1
}

// plans builds the plans of the schema and of every struct type in it.
func plans(fs []field) *objPlan {
	for i := range fs {
		structPlans(fs[i].node)
	}
	return newObjPlan(fs)
}

func structPlans(n *node) {
	for ; n != nil; n = n.elem {
		if n.kind == KindStruct {
			n.plan = plans(n.fields)
		}
	}
}

// objectJSON converts fs from val, a struct's JSON object.
func objectJSON(p *objPlan, fs []field, val string) ([]record.Field, bool) {
	var lv [16]string
	vals := lv[:0]
	if len(p.keys) <= len(lv) {
		vals = lv[:len(p.keys)]
	} else {
		vals = make([]string, len(p.keys))
	}
	ok := jsondec.Members(val, func(key, v string) bool {
		if j := p.find(key); j >= 0 {
			vals[j] = v // the last one wins, as in encoding/json
		}
		return true
	})
	if !ok {
		return nil, false
	}
	return p.fill(make([]record.Field, 0, len(fs)), fs, vals, nil, nil)
}

// fill appends fs converted from the values of p's keys (vals[j] is the
// text of keys[j]'s value, "" when absent) and, for those reading metadata,
// from from.
func (p *objPlan) fill(dst []record.Field, fs []field, vals []string, bx *boxes, from *record.Record) ([]record.Field, bool) {
	dst = slices.Grow(dst, len(fs))
	for i := range fs {
		f := &fs[i]
		var v any
		if f.isConst {
			v = f.constVal
		} else if f.meta != metaNone {
			var fe *FieldError
			if v, fe = f.convertMeta(from); fe != nil {
				return dst, false
			}
		} else {
			sl := p.slot[i]
			if sl < 0 {
				return dst, false
			}
			val := vals[sl]
			if rest := p.rest[i]; rest != nil && val != "" {
				var ok bool
				if val, ok = walk(val, rest); !ok {
					return dst, false
				}
			}
			var ok bool
			if v, ok = convJSON(f.node, val, bx); !ok {
				return dst, false
			}
		}
		dst = append(dst, record.Field{Name: f.name, Value: v})
	}
	return dst, true
}

// walk follows a ref path inside a validated value, as field.lookup does: ""
// when a parent is null or a key or index is missing; ok false when a parent
// has the wrong kind (an error even for optional fields).
func walk(val string, path []seg) (string, bool) {
	for _, sg := range path {
		if val == "null" {
			return "", true
		}
		found := ""
		var ok bool
		if sg.isIdx {
			n := 0
			ok = jsondec.Elements(val, func(e string) bool {
				if n == sg.idx {
					found = e
					return false
				}
				n++
				return true
			}) || found != ""
		} else {
			ok = jsondec.Members(val, func(key, v string) bool {
				if key == sg.key {
					found = v // the last one wins
				}
				return true
			})
		}
		if !ok {
			return "", false
		}
		if found == "" {
			return "", true
		}
		val = found
	}
	return val, true
}

// convJSON converts the validated JSON value val ("" when missing) as
// convertValue would convert its decoded form; ok false where that fails.
func convJSON(n *node, val string, bx *boxes) (any, bool) {
	if val == "" || val == "null" {
		return nil, n.kind == KindOptional
	}
	if n.kind == KindOptional {
		n = n.elem
	}
	c := val[0]
	isNum := c == '-' || c >= '0' && c <= '9'
	switch n.kind {
	case KindInt:
		if !isNum {
			return nil, false
		}
		i, ok := jsonInt(val)
		if !ok || n.restricted && n.checkInt(i) != nil {
			return nil, false
		}
		return bx.int(i), true
	case KindFloat:
		if !isNum {
			return nil, false
		}
		f, ok := jsonFloat(val)
		if !ok || n.between && n.checkFloat(f) != nil {
			return nil, false
		}
		return bx.float(f), true
	case KindBool:
		switch c {
		case 't':
			return true, true
		case 'f':
			return false, true
		}
		return nil, false
	case KindStr:
		if c != '"' {
			return nil, false
		}
		s := jsondec.Unquote(val)
		if n.oneofStr != nil {
			// The set's own boxed copy: one allocation less per row.
			boxed, in := n.oneof(s)
			if !in || n.re != nil && !n.matchRegex(s) {
				return nil, false
			}
			return boxed, true
		}
		if n.restricted && n.checkStr(s) != nil {
			return nil, false
		}
		return bx.str(s), true
	case KindDatetime:
		var t time.Time
		var ok bool
		switch {
		case c == '"':
			t, ok = datetimeString(jsondec.Unquote(val))
		case isNum:
			t, ok = datetimeNumber(val)
		}
		if !ok {
			return nil, false
		}
		return bx.time(t), true
	case KindDecimal:
		// toDecimal of a json.Number or a string: the same text either way.
		text := val
		switch {
		case c == '"':
			text = jsondec.Unquote(val)
		case !isNum:
			return nil, false
		}
		d, ok := parseDec(text)
		if !ok {
			return nil, false
		}
		out, why := formatDecimal(&d, n.scale)
		if why != "" {
			return nil, false
		}
		return record.Decimal(out), true
	case KindBytes, KindDate:
		// Rare in hot paths: the general conversion, on the value as
		// jsondec would decode it (a string or a json.Number).
		var v any
		switch {
		case c == '"':
			v = jsondec.Unquote(val)
		case isNum:
			v = json.Number(val)
		default:
			return nil, false
		}
		out, fe := n.convert(v)
		return out, fe == nil
	case KindList:
		if c != '[' {
			return nil, false
		}
		out := make([]any, 0, 4)
		ok := jsondec.Elements(val, func(e string) bool {
			v, ok := convJSON(n.elem, e, nil)
			out = append(out, v)
			return ok
		})
		if !ok {
			return nil, false
		}
		return out, true
	case KindEmbedding:
		if c != '[' {
			return nil, false
		}
		// An element takes at least two bytes ("1,"), so the input bounds the
		// vector: a record of "[1]" costs no embedding[1048576]'s 8 MiB.
		out := make([]float64, 0, min(n.dim, len(val)/2+1))
		ok := jsondec.Elements(val, func(e string) bool {
			if len(out) == n.dim || e == "null" || !(e[0] == '-' || e[0] >= '0' && e[0] <= '9') {
				return false
			}
			f, ok := jsonFloat(e)
			out = append(out, f)
			return ok
		})
		if !ok || len(out) != n.dim {
			return nil, false
		}
		return out, true
	case KindMap:
		if c != '{' {
			return nil, false
		}
		out := map[string]any{}
		bad := 0 // keys whose last value so far does not convert
		ok := jsondec.Members(val, func(key, e string) bool {
			// A repeated key keeps its last value, and only that one must fit.
			prev, seen := out[key]
			wasBad := seen && prev == badValue
			v, ok := convJSON(n.elem, e, nil)
			switch {
			case !ok && !wasBad:
				bad++
				v = badValue
			case !ok:
				v = badValue
			case wasBad:
				bad--
			}
			out[key] = v
			return true
		})
		if !ok {
			return nil, false
		}
		if bad > 0 {
			return nil, false
		}
		return out, true
	case KindStruct:
		if c != '{' {
			return nil, false
		}
		fs, ok := objectJSON(n.plan, n.fields, val)
		if !ok {
			return nil, false
		}
		return fs, true
	}
	return nil, false
}

// badValue marks a map entry whose value does not convert.
var badValue any = new(byte)

// jsonInt is toInt of json.Number(lit).
func jsonInt(lit string) (int64, bool) {
	if i, ok := smallInt(lit); ok {
		return i, true
	}
	n, ok := parseDec(lit)
	if !ok {
		return 0, false
	}
	i, why := decToInt64(&n)
	return i, why == ""
}

// jsonFloat is toFloat of json.Number(lit).
func jsonFloat(lit string) (float64, bool) {
	if i, ok := smallInt(lit); ok && i < 1<<53 && i > -(1<<53) {
		return float64(i), true
	}
	if f, ok := exactFloat(lit); ok {
		return f, true
	}
	// lit passed the scanner's number grammar, which is stricter than
	// toFloat's parseDec check.
	f, _ := strconv.ParseFloat(lit, 64)
	return f, !math.IsInf(f, 0) && !math.IsNaN(f)
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// exactFloat reads a number of the scanner's grammar without an exponent and
// with at most 15 digits, such as 1234.25: its digits as an integer m (below
// 2^53) and the value m/10^k, both exact in a float64, so the one division is
// correctly rounded: the float strconv.ParseFloat gives, without its general
// machinery. ok false for anything else.
func exactFloat(lit string) (float64, bool) {
	i, neg := 0, false
	if lit != "" && lit[0] == '-' {
		i, neg = 1, true
	}
	var m uint64
	nd, frac := 0, -1
	for ; i < len(lit); i++ {
		c := lit[i]
		switch {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			nd++
			if frac >= 0 {
				frac++
			}
		case c == '.' && frac < 0:
			frac = 0
		default:
			return 0, false
		}
	}
	if nd == 0 || nd > 15 {
		return 0, false
	}
	f := float64(m)
	if frac > 0 {
		f /= pow10[frac]
	}
	if neg {
		f = -f
	}
	return f, true
}

// datetimeString is toDatetime of a string.
func datetimeString(x string) (time.Time, bool) {
	if isNumericString(x) {
		t, fe := epochDec(x, nil)
		return t, fe == nil
	}
	t, ok := parseISO(x)
	if !ok {
		if t, ok = parseRFC2822(x); !ok {
			return time.Time{}, false
		}
	}
	t = t.UTC()
	if !inTimeRange(t) {
		return time.Time{}, false
	}
	return t.Truncate(time.Microsecond), true
}

// datetimeNumber is toDatetime of json.Number(lit).
func datetimeNumber(lit string) (time.Time, bool) {
	if i, ok := smallInt(lit); ok {
		return time.UnixMicro(epochMicros(i)).UTC(), true
	}
	t, fe := epochDec(lit, nil)
	return t, fe == nil
}
