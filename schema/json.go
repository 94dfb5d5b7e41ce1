package schema

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

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
// use; it never panics on any input.
func (s *Schema) ConvertJSON(data []byte) (fields []record.Field, ok bool) {
	if s.plan == nil || !utf8.Valid(data) {
		return nil, false
	}
	sc := jscan{s: string(data)}
	sc.ws()
	if sc.peek() != '{' {
		return nil, false // Convert wants an object; empty input is a decode error
	}
	out, ok := sc.object(s.plan, s.fields, 0)
	if !ok {
		return nil, false
	}
	sc.ws()
	if sc.i != len(sc.s) {
		return nil, false
	}
	return out, true
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
	out := make([]record.Field, len(fs))
	for i := range fs {
		f := &fs[i]
		var v any
		if f.isConst {
			v = f.constVal
		} else {
			sl := p.slot[i]
			if sl < 0 {
				return nil, false
			}
			val := ""
			if sp := spans[sl]; sp.end > 0 {
				val = sc.s[sp.start:sp.end]
			}
			if rest := p.rest[i]; rest != nil && val != "" {
				var ok bool
				if val, ok = walk(val, rest); !ok {
					return nil, false
				}
			}
			var ok bool
			if v, ok = convJSON(f.node, val); !ok {
				return nil, false
			}
		}
		out[i] = record.Field{Name: f.name, Value: v}
	}
	return out, true
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
// esc reports whether it has escapes.
func (sc *jscan) str() (esc, ok bool) {
	s := sc.s
	for i := sc.i + 1; i < len(s); {
		for i < len(s) && plain[s[i]] {
			i++
		}
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
			i++
		}
	}
	return false, false
}

// plain[c]: c needs no attention inside a string (not '"', '\\' or a
// control character).
var plain = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\'
	}
	return t
}()

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
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			return unquote(s)
		}
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
func convJSON(n *node, val string) (any, bool) {
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
		return i, true
	case KindFloat:
		if !isNum {
			return nil, false
		}
		f, ok := jsonFloat(val)
		if !ok || n.between && n.checkFloat(f) != nil {
			return nil, false
		}
		return f, true
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
			boxed, in := n.oneofStr[s]
			if !in || n.re != nil && !n.re.MatchString(s) {
				return nil, false
			}
			return boxed, true
		}
		if n.restricted && n.checkStr(s) != nil {
			return nil, false
		}
		return s, true
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
		return t, true
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
			v, ok := convJSON(n.elem, val[st:sc.i])
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
		out := make([]float64, 0, n.dim)
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
			v, ok := convJSON(n.elem, val[st:sc.i])
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
	if _, ok := parseDec(lit); !ok {
		return 0, false
	}
	f, _ := strconv.ParseFloat(lit, 64)
	return f, !math.IsInf(f, 0) && !math.IsNaN(f)
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
