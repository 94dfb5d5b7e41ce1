package schema

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/kinesis-ingest/kinesis-ingest/internal/jsontext"
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
	var local [16]member
	text := string(data)
	ms, dups, ok := scanRecord(text, local[:0])
	if !ok {
		return nil, false
	}
	return s.appendJSON(make([]record.Field, 0, len(s.fields)), text, ms, dups, nil)
}

// JSONRecord is a JSON record scanned once: validated by jsondec's rules and
// its top-level members indexed, so that the where expressions and the
// conversions of every dataset a record feeds read it without scanning it
// again. The zero value is ready for Scan; reuse one per goroutine.
type JSONRecord struct {
	s       string
	members []member
	// dups: a key occurs twice (the last one wins, as in encoding/json), so
	// lookups cannot stop at the first match.
	dups bool
	ok   bool // the last Scan succeeded
	// boxes hold the values converted from the records scanned, kept across
	// Scans: one JSONRecord per batch makes the batch's boxes a few slabs.
	boxes boxes
}

// member is a top-level key and where its value is.
type member struct {
	key string
	val span
	// raw: key is the string's bytes as they stand in the text (no escapes),
	// so they hold no '"', '\\' or control byte and are valid UTF-8.
	raw bool
}

// Scan validates data as one JSON object and indexes its members; false means
// data is not a JSON object by jsondec's rules (or is nested deeper than
// maxScanDepth) and no dataset can take it from here: the caller takes the
// general path. The record, and the string values of fields converted from
// it, share data's memory without a copy: data must not change while they are
// in use (the pipeline's records are never modified once received).
func (r *JSONRecord) Scan(data []byte) bool {
	return r.scan(unsafe.String(unsafe.SliceData(data), len(data)))
}

func (r *JSONRecord) scan(s string) bool {
	r.s = s
	r.members, r.dups, r.ok = scanRecord(s, r.members[:0])
	return r.ok
}

// scanRecord scans s, appending its members to ms. Not a method, and s not
// among the results, so that ConvertJSON's ms can stay on its stack.
func scanRecord(s string, ms []member) (_ []member, dups, ok bool) {
	sc := jscan{s: s}
	sc.ws()
	if sc.peek() != '{' {
		return ms, false, false // Convert wants an object; empty input is a decode error
	}
	if ms, ok = sc.index(ms, &dups); !ok {
		return ms, false, false
	}
	sc.ws()
	return ms, dups, sc.i == len(sc.s)
}

// Reset makes r forget the values of every field converted from it so far
// (AppendJSON's rows): their memory is reused by the next conversions, so a
// caller that reuses r from batch to batch allocates nothing once it has seen
// its largest batch. Call it only when no row converted from r before is in
// use any more; such a row would then read the values of later rows. The
// record last scanned stays scanned.
func (r *JSONRecord) Reset() { r.boxes.reset() }

// Valid reports whether the last Scan succeeded.
func (r *JSONRecord) Valid() bool { return r.ok }

// Bytes returns the text last scanned; callers must not modify it.
func (r *JSONRecord) Bytes() []byte { return unsafe.Slice(unsafe.StringData(r.s), len(r.s)) }

// find returns the value of key in s ("" when absent), looking first at
// guess: records usually list their members in the order the fields do. The
// text and the members come apart so that escape analysis sees that only s
// flows into the row (a caller's members array stays on its stack).
func find(s string, ms []member, dups bool, key string, guess int) (val string, at int) {
	if dups {
		for j := len(ms) - 1; j >= 0; j-- {
			if ms[j].key == key {
				return s[ms[j].val.start:ms[j].val.end], j
			}
		}
		return "", guess
	}
	if guess < len(ms) && ms[guess].key == key {
		return s[ms[guess].val.start:ms[guess].val.end], guess
	}
	for j := range ms {
		if ms[j].key == key {
			return s[ms[j].val.start:ms[j].val.end], j
		}
	}
	return "", guess
}

// AppendJSON appends the fields of the scanned record r to dst, with what
// ConvertJSON promises (ok false: nothing usable was appended; dst's spare
// capacity may have been written). Appending the rows of a batch to one slice
// is one allocation per batch instead of one per row.
func (s *Schema) AppendJSON(dst []record.Field, r *JSONRecord) (fields []record.Field, ok bool) {
	if s.plan == nil || !r.ok {
		return dst, false
	}
	return s.appendJSON(dst, r.s, r.members, r.dups, &r.boxes)
}

func (s *Schema) appendJSON(dst []record.Field, text string, ms []member, dups bool, bx *boxes) ([]record.Field, bool) {
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
		vals[j], at = find(text, ms, dups, k, guess)
		guess = at + 1
	}
	start := len(dst)
	out, ok := s.plan.fill(dst, s.fields, vals, bx)
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
const maxScanDepth = 1000

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
		if f.isConst {
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

// span is where a member's value is in the scanned text; end == 0: absent.
type span struct{ start, end int }

// jscan validates and reads JSON text, by the rules of encoding/json's scanner.
// The text is known to be valid UTF-8.
type jscan struct {
	s string
	i int
}

func (sc *jscan) peek() byte {
	if sc.i < len(sc.s) {
		return sc.s[sc.i]
	}
	return 0
}

func (sc *jscan) ws() {
	for sc.i < len(sc.s) {
		switch c := sc.s[sc.i]; {
		case c > ' ':
			return
		case c == ' ', c == '\t', c == '\n', c == '\r':
			sc.i++
		default:
			return
		}
	}
}

// object reads the object at sc.i (its '{') and converts fs from it.
func (sc *jscan) object(p *objPlan, fs []field, depth int) ([]record.Field, bool) {
	var local [16]span
	spans := local[:0]
	if len(p.keys) <= len(local) {
		spans = local[:len(p.keys)]
	} else {
		spans = make([]span, len(p.keys))
	}
	if !sc.members(p, spans, depth) {
		return nil, false
	}
	var lv [16]string
	vals := lv[:0]
	if len(spans) <= len(lv) {
		vals = lv[:len(spans)]
	} else {
		vals = make([]string, len(spans))
	}
	for j, sp := range spans {
		if sp.end > 0 {
			vals[j] = sc.s[sp.start:sp.end]
		}
	}
	return p.fill(make([]record.Field, 0, len(fs)), fs, vals, nil)
}

// fill appends fs converted from the values of p's keys (vals[j] is the
// text of keys[j]'s value, "" when absent).
func (p *objPlan) fill(dst []record.Field, fs []field, vals []string, bx *boxes) ([]record.Field, bool) {
	dst = slices.Grow(dst, len(fs))
	for i := range fs {
		f := &fs[i]
		var v any
		if f.isConst {
			v = f.constVal
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

// index validates the object at sc.i and appends its members to ms (passed
// and returned rather than kept in r, so that a caller's array can stay on
// its stack), setting *dups if a key repeats.
func (sc *jscan) index(ms []member, dups *bool) ([]member, bool) {
	var bloom uint64 // per key: bit (len^key[0]*7) mod 64, to notice repeats cheaply
	sc.i++           // '{'
	sc.ws()
	if sc.peek() == '}' {
		sc.i++
		return ms, true
	}
	for {
		if sc.peek() != '"' {
			return ms, false
		}
		ks := sc.i
		var key string
		esc := false
		// Records of a stream mostly list the same keys in the same order:
		// if the text here is the previous record's raw key at this position
		// followed by '"', it is that same valid, escape-free string, and
		// one comparison replaces scanning it. ms's spare capacity still
		// holds the previous record's members (stale or zero entries only
		// make the guess miss).
		if n := len(ms); n < cap(ms) {
			if g := ms[:n+1][n]; g.raw && g.key != "" {
				if e := ks + 1 + len(g.key); e < len(sc.s) && sc.s[e] == '"' && sc.s[ks+1:e] == g.key {
					key = sc.s[ks+1 : e]
					sc.i = e + 1
				}
			}
		}
		if key == "" {
			var ok bool
			if esc, ok = sc.str(); !ok {
				return ms, false
			}
			key = sc.s[ks+1 : sc.i-1]
			if esc {
				key = unquote(key)
			}
		}
		sc.ws()
		if sc.peek() != ':' {
			return ms, false
		}
		sc.i++
		sc.ws()
		vs := sc.i
		if !sc.value(1) {
			return ms, false
		}
		var bit uint64
		if len(key) > 0 {
			// The last byte too: keys of a record often share their length
			// and first letter (country, channel).
			bit = 1 << ((uint(len(key)) ^ uint(key[0])*7 ^ uint(key[len(key)-1])*13) & 63)
		}
		if bloom&bit != 0 && !*dups {
			for j := range ms {
				if ms[j].key == key {
					*dups = true
					break
				}
			}
		}
		bloom |= bit
		ms = append(ms, member{key, span{vs, sc.i}, !esc})
		sc.ws()
		switch sc.peek() {
		case ',':
			sc.i++
			sc.ws()
		case '}':
			sc.i++
			return ms, true
		default:
			return ms, false
		}
	}
}

// members validates the object at sc.i and records in spans where the values
// of p's keys are (the last one wins for a repeated key, as in encoding/json).
func (sc *jscan) members(p *objPlan, spans []span, depth int) bool {
	if depth >= maxScanDepth {
		return false
	}
	sc.i++ // '{'
	sc.ws()
	if sc.peek() == '}' {
		sc.i++
		return true
	}
	for {
		if sc.peek() != '"' {
			return false
		}
		ks := sc.i
		esc, ok := sc.str()
		if !ok {
			return false
		}
		key := sc.s[ks+1 : sc.i-1]
		if esc {
			key = unquote(key)
		}
		sc.ws()
		if sc.peek() != ':' {
			return false
		}
		sc.i++
		sc.ws()
		vs := sc.i
		if !sc.value(depth + 1) {
			return false
		}
		if p != nil {
			if j := p.find(key); j >= 0 {
				spans[j] = span{vs, sc.i}
			}
		}
		sc.ws()
		switch sc.peek() {
		case ',':
			sc.i++
			sc.ws()
		case '}':
			sc.i++
			return true
		default:
			return false
		}
	}
}

// value validates one JSON value at sc.i and moves past it.
func (sc *jscan) value(depth int) bool {
	switch c := sc.peek(); {
	case c == '"':
		_, ok := sc.str()
		return ok
	case c == '{':
		return sc.members(nil, nil, depth)
	case c == '[':
		if depth >= maxScanDepth {
			return false
		}
		sc.i++
		sc.ws()
		if sc.peek() == ']' {
			sc.i++
			return true
		}
		for {
			if !sc.value(depth + 1) {
				return false
			}
			sc.ws()
			switch sc.peek() {
			case ',':
				sc.i++
				sc.ws()
			case ']':
				sc.i++
				return true
			default:
				return false
			}
		}
	case c == 't':
		return sc.lit("true")
	case c == 'f':
		return sc.lit("false")
	case c == 'n':
		return sc.lit("null")
	case c == '-' || c >= '0' && c <= '9':
		return sc.number()
	}
	return false
}

func (sc *jscan) lit(w string) bool {
	if len(sc.s)-sc.i >= len(w) && sc.s[sc.i:sc.i+len(w)] == w {
		sc.i += len(w)
		return true
	}
	return false
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (sc *jscan) number() bool {
	s, i := sc.s, sc.i
	if s[i] == '-' {
		i++
	}
	switch {
	case i >= len(s):
		return false
	case s[i] == '0':
		i++
	case s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		st := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == st {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		st := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == st {
			return false
		}
	}
	sc.i = i
	return true
}

// str validates the string at sc.i (its opening quote) and moves past it;
// esc reports whether it has escapes. It also checks the string is valid
// UTF-8 (the only place non-ASCII bytes can be in valid JSON), since jsondec
// would replace invalid bytes and the row would differ.
func (sc *jscan) str() (esc, ok bool) {
	s := sc.s
	for i := sc.i + 1; i < len(s); {
		i += jsontext.PlainLen(s[i:])
		if i >= len(s) {
			break
		}
		c := s[i]
		switch {
		case c == '"':
			sc.i = i + 1
			return esc, true
		case c == '\\':
			esc = true
			if i+1 >= len(s) {
				return false, false
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s) || hex4(s[i+2:i+6]) < 0 {
					return false, false
				}
				i += 6
			default:
				return false, false
			}
		case c < 0x20:
			return false, false
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return false, false
			}
			i += size
		}
	}
	return false, false
}

func hex4(s string) rune {
	var r rune
	for i := 0; i < 4; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// unquote decodes the escapes of a validated string's contents as
// encoding/json does, a lone surrogate becoming U+FFFD.
func unquote(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		switch e := s[i+1]; e {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			rr := hex4(s[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(rr) {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if dec := utf16.DecodeRune(rr, hex4(s[i+2:i+6])); dec != utf8.RuneError {
						b = utf8.AppendRune(b, dec)
						i += 6
						continue
					}
				}
				rr = utf8.RuneError
			}
			b = utf8.AppendRune(b, rr)
			continue
		default: // '"', '\\', '/'
			b = append(b, e)
		}
		i += 2
	}
	return string(b)
}

// strValue returns the contents of the string token tok.
func strValue(tok string) string {
	s := tok[1 : len(tok)-1]
	if strings.IndexByte(s, '\\') >= 0 {
		return unquote(s)
	}
	return s
}

// walk follows a ref path inside a validated value, as field.lookup does: ""
// when a parent is null or a key or index is missing; ok false when a parent
// has the wrong kind (an error even for optional fields).
func walk(val string, path []seg) (string, bool) {
	for _, sg := range path {
		if val == "null" {
			return "", true
		}
		sc := jscan{s: val}
		found := ""
		if sg.isIdx {
			if val[0] != '[' {
				return "", false
			}
			sc.i = 1
			sc.ws()
			for n := 0; sc.peek() != ']'; n++ {
				st := sc.i
				if !sc.value(0) {
					return "", false
				}
				if n == sg.idx {
					found = val[st:sc.i]
					break
				}
				sc.ws()
				if sc.peek() == ',' {
					sc.i++
					sc.ws()
				}
			}
		} else {
			if val[0] != '{' {
				return "", false
			}
			sc.i = 1
			sc.ws()
			for sc.peek() == '"' {
				ks := sc.i
				esc, ok := sc.str()
				if !ok {
					return "", false
				}
				key := sc.s[ks+1 : sc.i-1]
				if esc {
					key = unquote(key)
				}
				sc.ws()
				sc.i++ // ':'
				sc.ws()
				st := sc.i
				if !sc.value(0) {
					return "", false
				}
				if key == sg.key {
					found = val[st:sc.i] // the last one wins
				}
				sc.ws()
				if sc.peek() == ',' {
					sc.i++
					sc.ws()
				}
			}
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
		s := strValue(val)
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
			t, ok = datetimeString(strValue(val))
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
			text = strValue(val)
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
			v = strValue(val)
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
		sc := jscan{s: val, i: 1}
		sc.ws()
		for sc.peek() != ']' {
			st := sc.i
			if !sc.value(0) {
				return nil, false
			}
			v, ok := convJSON(n.elem, val[st:sc.i], nil)
			if !ok {
				return nil, false
			}
			out = append(out, v)
			sc.ws()
			if sc.peek() == ',' {
				sc.i++
				sc.ws()
			}
		}
		return out, true
	case KindEmbedding:
		if c != '[' {
			return nil, false
		}
		// An element takes at least two bytes ("1,"), so the input bounds the
		// vector: a record of "[1]" costs no embedding[1048576]'s 8 MiB.
		out := make([]float64, 0, min(n.dim, len(val)/2+1))
		ok := elements(val, func(e string) bool {
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
		sc := jscan{s: val, i: 1}
		sc.ws()
		for sc.peek() == '"' {
			ks := sc.i
			esc, ok := sc.str()
			if !ok {
				return nil, false
			}
			key := sc.s[ks+1 : sc.i-1]
			if esc {
				key = unquote(key)
			}
			sc.ws()
			sc.i++ // ':'
			sc.ws()
			st := sc.i
			if !sc.value(0) {
				return nil, false
			}
			// A repeated key keeps its last value, and only that one must fit.
			prev, seen := out[key]
			wasBad := seen && prev == badValue
			v, ok := convJSON(n.elem, val[st:sc.i], nil)
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
			sc.ws()
			if sc.peek() == ',' {
				sc.i++
				sc.ws()
			}
		}
		if bad > 0 {
			return nil, false
		}
		return out, true
	case KindStruct:
		if c != '{' {
			return nil, false
		}
		sc := jscan{s: val}
		fs, ok := sc.object(n.plan, n.fields, 0)
		if !ok {
			return nil, false
		}
		return fs, true
	}
	return nil, false
}

// badValue marks a map entry whose value does not convert.
var badValue any = new(byte)

// elements calls f on each element of the validated array val until f
// returns false.
func elements(val string, f func(string) bool) bool {
	sc := jscan{s: val, i: 1}
	sc.ws()
	for sc.peek() != ']' {
		st := sc.i
		if !sc.value(0) || !f(val[st:sc.i]) {
			return false
		}
		sc.ws()
		if sc.peek() == ',' {
			sc.i++
			sc.ws()
		}
	}
	return true
}

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
