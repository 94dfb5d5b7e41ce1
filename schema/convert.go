package schema

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// Convert validates one decoded record (a decoders.Decoder value tree) and
// returns its fields in declaration order, typed as documented on record.Field.
// A record that does not fit returns a *FieldError and no fields. The record is
// not modified; []byte values and const values are shared, not copied. A
// field reading record metadata ($partition_key, ...) has none to read here:
// use ConvertFrom.
func (s *Schema) Convert(rec any) ([]record.Field, error) { return s.ConvertFrom(rec, nil) }

// ConvertFrom is Convert for rec decoded from the stream record from: the
// fields whose ref is a metadata name ($partition_key, $arrival_time, ...,
// see MetadataNames) read from's metadata, the others rec. from is only
// read; $data as bytes shares from.Data.
func (s *Schema) ConvertFrom(rec any, from *record.Record) ([]record.Field, error) {
	obj, ok := rec.(map[string]any)
	if !ok {
		return nil, &FieldError{Path: "$", Msg: "want object, got " + describe(rec)}
	}
	out, fe := convertFields(s.fields, obj, from)
	if fe != nil {
		return nil, fe
	}
	if len(s.computed) > 0 {
		if fe := s.compute(out); fe != nil {
			return nil, fe
		}
	}
	return out[:s.visible:s.visible], nil
}

// compute fills the computed fields of a converted row.
func (s *Schema) compute(out []record.Field) *FieldError {
	for _, c := range s.computed {
		f := &s.fields[c.idx]
		v, err := c.expr.Eval(out)
		if err != nil {
			return ferr("expr: " + err.Error()).prefix(f.name)
		}
		if v == nil && f.node.kind != KindOptional {
			return ferr("expr gave null, but the type is not optional").prefix(f.name)
		}
		v = exprValue(v)
		if t, ok := v.(time.Time); ok && (f.node.kind == KindDate || f.node.kind == KindOptional && f.node.elem.kind == KindDate) {
			t = t.UTC() // an expression's dates (date("2024-05-01")) are times at midnight
			v = t.Format(time.DateOnly)
		}
		cv, fe := f.node.convert(v)
		if fe != nil {
			return (&FieldError{Path: fe.Path, Msg: "expr: " + fe.Msg}).prefix(f.name)
		}
		out[c.idx].Value = cv
	}
	return nil
}

// exprValue turns the Go types an expression gives into those a decoded
// record holds.
func exprValue(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case float32:
		return float64(x)
	}
	return v
}

// ConvertKeys is Convert for a delete: only the key fields and the timestamp
// are read (a deleted row's image may hold nothing else, as Debezium's before
// image of a table without REPLICA IDENTITY FULL); the other fields are nil.
func (s *Schema) ConvertKeys(rec any) ([]record.Field, error) { return s.ConvertKeysFrom(rec, nil) }

// ConvertKeysFrom is ConvertKeys for rec decoded from the stream record
// from, as ConvertFrom is Convert's.
func (s *Schema) ConvertKeysFrom(rec any, from *record.Record) ([]record.Field, error) {
	obj, ok := rec.(map[string]any)
	if !ok {
		return nil, &FieldError{Path: "$", Msg: "want object, got " + describe(rec)}
	}
	out := make([]record.Field, len(s.fields))
	for i := range s.fields {
		f := &s.fields[i]
		out[i].Name = f.name
		if !s.columns[i].Key && i != s.tsIndex {
			continue
		}
		if f.isConst {
			out[i].Value = f.constVal
			continue
		}
		if f.meta != metaNone {
			v, fe := f.convertMeta(from)
			if fe != nil {
				return nil, fe.prefix(f.name)
			}
			out[i].Value = v
			continue
		}
		raw, found, fe := f.lookup(obj)
		if fe == nil {
			out[i].Value, fe = f.convertValue(raw, found)
		}
		if fe != nil {
			return nil, fe.prefix(f.name)
		}
	}
	return out, nil
}

// convertFields converts fs from obj; fields reading metadata read from's
// (only a dataset's own fields do: from is nil for a struct's).
func convertFields(fs []field, obj map[string]any, from *record.Record) ([]record.Field, *FieldError) {
	out := make([]record.Field, len(fs))
	for i := range fs {
		f := &fs[i]
		var v any
		switch {
		case f.isConst:
			v = f.constVal
		case f.meta != metaNone:
			var fe *FieldError
			if v, fe = f.convertMeta(from); fe != nil {
				return nil, fe.prefix(f.name)
			}
		default:
			raw, found, fe := f.lookup(obj)
			if fe == nil {
				v, fe = f.convertValue(raw, found)
			}
			if fe != nil {
				return nil, fe.prefix(f.name)
			}
		}
		out[i] = record.Field{Name: f.name, Value: v}
	}
	return out, nil
}

// lookup finds the field's value in obj. found is false when the value or one
// of its parents is missing or null.
func (f *field) lookup(obj map[string]any) (any, bool, *FieldError) {
	if f.path == nil {
		v, ok := obj[f.key]
		return v, ok, nil
	}
	var cur any = obj
	for i, sg := range f.path {
		if cur == nil {
			return nil, false, nil
		}
		if sg.isIdx {
			l, ok := cur.([]any)
			if !ok {
				return nil, false, refErr(f, i, "list", cur)
			}
			if sg.idx >= len(l) {
				return nil, false, nil
			}
			cur = l[sg.idx]
		} else {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false, refErr(f, i, "object", cur)
			}
			v, ok := m[sg.key]
			if !ok {
				return nil, false, nil
			}
			cur = v
		}
	}
	return cur, true, nil
}

func refErr(f *field, i int, want string, got any) *FieldError {
	at := "the record"
	if i > 0 {
		at = refString(f.path[:i])
	}
	return ferr("ref " + f.ref + ": want " + want + " at " + at + ", got " + describe(got))
}

func refString(p []seg) string {
	s := ""
	for i, sg := range p {
		switch {
		case sg.isIdx:
			s += "[" + strconv.Itoa(sg.idx) + "]"
		case i > 0:
			s += keyPath(sg.key)
		default:
			s += sg.key
		}
	}
	return s
}

// convertValue converts a looked-up value; found is false if it is missing.
func (f *field) convertValue(v any, found bool) (any, *FieldError) {
	if v == nil && f.node.kind == KindOptional {
		return nil, nil
	}
	if !found && v == nil {
		if f.path != nil {
			return nil, ferr("missing (ref " + f.ref + ")")
		}
		return nil, ferr("missing")
	}
	return f.node.convert(v)
}

// PathStep renders member k of an object as a step of a ref path, as a
// FieldError's Path writes it: .name, or ["odd name"] when k needs quoting.
func PathStep(k string) string { return keyPath(k) }

// keyPath renders a map key or struct field as a path step.
func keyPath(k string) string {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return "[" + strconv.Quote(k) + "]"
		}
	}
	if k == "" {
		return `[""]`
	}
	return "." + k
}

func (n *node) convert(v any) (any, *FieldError) {
	switch n.kind {
	case KindOptional:
		if v == nil {
			return nil, nil
		}
		return n.elem.convert(v)
	case KindInt:
		i, fe := toInt(v)
		if fe != nil {
			return nil, fe
		}
		if n.restricted {
			if fe := n.checkInt(i); fe != nil {
				return nil, fe
			}
		}
		if _, same := v.(int64); same {
			return v, nil // v already boxes i: re-boxing would allocate
		}
		return i, nil
	case KindFloat:
		f, fe := toFloat(v, "float")
		if fe != nil {
			return nil, fe
		}
		if n.between {
			if fe := n.checkFloat(f); fe != nil {
				return nil, fe
			}
		}
		if _, same := v.(float64); same {
			return v, nil
		}
		return f, nil
	case KindBool:
		if _, ok := v.(bool); !ok {
			return nil, wantGot("bool", v)
		}
		return v, nil
	case KindStr:
		s, ok := v.(string)
		if !ok {
			return nil, wantGot("str", v)
		}
		if !utf8.ValidString(s) {
			return nil, ferr("want str, got string with invalid UTF-8")
		}
		if n.restricted {
			if fe := n.checkStr(s); fe != nil {
				return nil, fe
			}
		}
		return v, nil // v already boxes s: re-boxing would allocate
	case KindBytes:
		return toBytes(v)
	case KindDatetime:
		t, fe := toDatetime(v)
		if fe != nil {
			return nil, fe
		}
		if in, same := v.(time.Time); same && in == t {
			return v, nil // already UTC to the microsecond (Avro timestamps)
		}
		return t, nil
	case KindDate:
		return toDate(v)
	case KindDecimal:
		return toDecimal(v, n.scale)
	case KindList:
		l, ok := v.([]any)
		if !ok {
			return nil, wantGot("list", v)
		}
		out := make([]any, len(l))
		for i, e := range l {
			c, fe := n.elem.convert(e)
			if fe != nil {
				return nil, fe.prefix("[" + strconv.Itoa(i) + "]")
			}
			out[i] = c
		}
		return out, nil
	case KindMap:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, wantGot("map (object)", v)
		}
		out := make(map[string]any, len(m))
		for k, e := range m {
			c, fe := n.elem.convert(e)
			if fe != nil {
				return nil, fe.prefix(keyPath(k))
			}
			out[k] = c
		}
		return out, nil
	case KindStruct:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, wantGot("struct (object)", v)
		}
		fs, fe := convertFields(n.fields, m, nil)
		if fe != nil {
			return nil, fe.prefix(".")
		}
		return fs, nil
	case KindEmbedding:
		return toEmbedding(v, n.dim)
	}
	return nil, ferr("unsupported type " + n.kind.String())
}

func (n *node) checkInt(i int64) *FieldError {
	if n.oneofInt != nil {
		if _, ok := n.oneofInt[i]; !ok {
			return ferr(strconv.FormatInt(i, 10) + " is not one of " + n.oneofDesc)
		}
	}
	if n.between {
		if n.hasMin && (i < n.minI || n.strictMin && i == n.minI) ||
			n.hasMax && (i > n.maxI || n.strictMax && i == n.maxI) {
			return ferr(strconv.FormatInt(i, 10) + " is not in " + n.betweenStr)
		}
	}
	return nil
}

func (n *node) checkFloat(f float64) *FieldError {
	if n.hasMin && (f < n.minF || n.strictMin && f == n.minF) ||
		n.hasMax && (f > n.maxF || n.strictMax && f == n.maxF) {
		return ferr(strconv.FormatFloat(f, 'g', -1, 64) + " is not in " + n.betweenStr)
	}
	return nil
}

func (n *node) checkStr(s string) *FieldError {
	if n.oneofStr != nil {
		if _, ok := n.oneof(s); !ok {
			return ferr(strconv.Quote(clip(s)) + " is not one of " + n.oneofDesc)
		}
	}
	if n.re != nil && !n.matchRegex(s) {
		return ferr(strconv.Quote(clip(s)) + " does not match regex " + strconv.Quote(n.reSrc))
	}
	return nil
}

func (n *node) matchRegex(s string) bool {
	if n.reSeq != nil {
		return n.reSeq.match(s)
	}
	return n.re.MatchString(s)
}

func toInt(v any) (int64, *FieldError) {
	switch x := v.(type) {
	case json.Number:
		if i, ok := smallInt(string(x)); ok {
			return i, nil
		}
		n, ok := parseDec(string(x))
		if !ok {
			return 0, wantGot("int", v)
		}
		i, why := decToInt64(&n)
		if why != "" {
			return 0, ferr("want int, got " + describe(v) + " (" + why + ")")
		}
		return i, nil
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case int:
		return int64(x), nil
	case float64:
		i, why := floatToInt64(x)
		if why != "" {
			return 0, ferr("want int, got " + describe(v) + " (" + why + ")")
		}
		return i, nil
	case float32:
		i, why := floatToInt64(float64(x))
		if why != "" {
			return 0, ferr("want int, got " + describe(v) + " (" + why + ")")
		}
		return i, nil
	}
	return 0, wantGot("int", v)
}

func toFloat(v any, want string) (float64, *FieldError) {
	var f float64
	switch x := v.(type) {
	case json.Number:
		if i, ok := smallInt(string(x)); ok && i < 1<<53 && i > -(1<<53) {
			return float64(i), nil
		}
		if _, ok := parseDec(string(x)); !ok {
			return 0, wantGot(want, v)
		}
		// A range error is either overflow (±Inf, rejected below) or underflow,
		// where f is the nearest float (0 or a denormal): accepted.
		f, _ = strconv.ParseFloat(string(x), 64)
		if math.IsInf(f, 0) {
			return 0, ferr("want " + want + ", got " + describe(v) + " (outside float64 range)")
		}
	case float64:
		f = x
	case float32:
		f = float64(x)
	case int64:
		f = float64(x)
	case int32:
		f = float64(x)
	case int:
		f = float64(x)
	default:
		return 0, wantGot(want, v)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, ferr("want " + want + ", got " + describe(v) + " (not finite)")
	}
	return f, nil
}

func toBytes(v any) (any, *FieldError) {
	switch x := v.(type) {
	case []byte:
		return v, nil
	case string:
		for _, enc := range [...]*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(x); err == nil {
				return b, nil
			}
		}
		return nil, ferr("want bytes, got " + describe(v) + " (not base64)")
	}
	return nil, wantGot("bytes (base64 string)", v)
}

const datetimeHint = " (want RFC 3339, RFC 2822 or epoch s/ms/µs/ns)"

func toDatetime(v any) (time.Time, *FieldError) {
	var t time.Time
	switch x := v.(type) {
	case string:
		var ok bool
		if isNumericString(x) {
			return epochDec(x, v)
		}
		if t, ok = parseISO(x); !ok {
			if t, ok = parseRFC2822(x); !ok {
				return time.Time{}, ferr("want datetime, got " + describe(v) + datetimeHint)
			}
		}
	case json.Number:
		if i, ok := smallInt(string(x)); ok {
			return time.UnixMicro(epochMicros(i)).UTC(), nil
		}
		return epochDec(string(x), v)
	case int64:
		return time.UnixMicro(epochMicros(x)).UTC(), nil
	case int32:
		return time.UnixMicro(epochMicros(int64(x))).UTC(), nil
	case int:
		return time.UnixMicro(epochMicros(int64(x))).UTC(), nil
	case float64, float32:
		f, fe := toFloat(x, "datetime")
		if fe != nil {
			return time.Time{}, fe
		}
		bits := 64
		if _, ok := x.(float32); ok {
			bits = 32 // an Avro float's shortest text, as for decimals
		}
		return epochDec(strconv.FormatFloat(f, 'e', -1, bits), v)
	case time.Time:
		t = x
	default:
		return time.Time{}, wantGot("datetime", v)
	}
	t = t.UTC()
	if !inTimeRange(t) {
		return time.Time{}, ferr("want datetime, got " + describe(v) + " (outside years 1..9999)")
	}
	return t.Truncate(time.Microsecond), nil
}

// epochDec reads an epoch number with digits that smallInt does not take.
func epochDec(s string, v any) (time.Time, *FieldError) {
	n, ok := parseDec(s)
	if !ok {
		return time.Time{}, ferr("want datetime, got " + describe(v) + datetimeHint)
	}
	if n.nsig == 0 {
		return time.UnixMicro(0).UTC(), nil
	}
	if n.fracDigits() == 0 {
		if i, why := decToInt64(&n); why == "" {
			return time.UnixMicro(epochMicros(i)).UTC(), nil
		}
	}
	us, why := decEpochMicros(&n)
	if why != "" {
		return time.Time{}, ferr("want datetime, got " + describe(v) + " (" + why + ")")
	}
	return time.UnixMicro(us).UTC(), nil
}

const (
	minDateDays = -719162 // 0001-01-01
	maxDateDays = 2932896 // 9999-12-31
)

func toDate(v any) (any, *FieldError) {
	switch x := v.(type) {
	case string:
		y, m, d, ok := parseYMD(x)
		if !ok || len(x) != 10 {
			return nil, ferr("want date, got " + describe(v) + " (want YYYY-MM-DD)")
		}
		if y < 1 {
			return nil, ferr("want date, got " + describe(v) + " (outside years 1..9999)")
		}
		return record.Date{Year: y, Month: time.Month(m), Day: d}, nil
	case json.Number, int64, int32, int:
		days, fe := toInt(v)
		if fe != nil {
			return nil, ferr("want date, got " + describe(v) + " (want YYYY-MM-DD or whole days since 1970-01-01)")
		}
		if days < minDateDays || days > maxDateDays {
			return nil, ferr("want date, got " + describe(v) + " (days outside years 1..9999)")
		}
		t := time.Unix(days*86400, 0).UTC()
		return record.Date{Year: t.Year(), Month: t.Month(), Day: t.Day()}, nil
	case time.Time:
		u := x.UTC()
		if u.Hour() != 0 || u.Minute() != 0 || u.Second() != 0 || u.Nanosecond() != 0 {
			return nil, ferr("want date, got " + describe(v) + " (not midnight UTC)")
		}
		if !inTimeRange(u) {
			return nil, ferr("want date, got " + describe(v) + " (outside years 1..9999)")
		}
		return record.Date{Year: u.Year(), Month: u.Month(), Day: u.Day()}, nil
	}
	return nil, wantGot("date", v)
}

func toDecimal(v any, scale int) (any, *FieldError) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = x
	case int64:
		s = strconv.FormatInt(x, 10)
	case int32:
		s = strconv.FormatInt(int64(x), 10)
	case int:
		s = strconv.Itoa(x)
	case float64, float32:
		f, fe := toFloat(x, "decimal")
		if fe != nil {
			return nil, fe
		}
		bits := 64
		if _, ok := x.(float32); ok {
			bits = 32 // an Avro float's shortest text: float32(0.1) is 0.1
		}
		s = strconv.FormatFloat(f, 'e', -1, bits)
	case *big.Rat:
		if x == nil {
			return nil, wantGot("decimal", nil)
		}
		out, why := ratToDecimal(x, scale)
		if why != "" {
			return nil, ferr("want decimal[" + strconv.Itoa(scale) + "], got " + describe(v) + " (" + why + ")")
		}
		return record.Decimal(out), nil
	default:
		return nil, wantGot("decimal", v)
	}
	n, ok := parseDec(s)
	if !ok {
		return nil, ferr("want decimal[" + strconv.Itoa(scale) + "], got " + describe(v) + " (not a decimal number)")
	}
	out, why := formatDecimal(&n, scale)
	if why != "" {
		return nil, ferr("want decimal[" + strconv.Itoa(scale) + "], got " + describe(v) + " (" + why + ")")
	}
	return record.Decimal(out), nil
}

func toEmbedding(v any, dim int) (any, *FieldError) {
	want := "embedding[" + strconv.Itoa(dim) + "]"
	switch x := v.(type) {
	case []any:
		if len(x) != dim {
			return nil, ferr("want " + want + ", got list of " + strconv.Itoa(len(x)))
		}
		out := make([]float64, len(x))
		for i, e := range x {
			f, fe := toFloat(e, "float")
			if fe != nil {
				return nil, fe.prefix("[" + strconv.Itoa(i) + "]")
			}
			out[i] = f
		}
		return out, nil
	case []float64:
		if len(x) != dim {
			return nil, ferr("want " + want + ", got list of " + strconv.Itoa(len(x)))
		}
		for i, f := range x {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, ferr("want float, got " + describe(f) + " (not finite)").prefix("[" + strconv.Itoa(i) + "]")
			}
		}
		return x, nil
	}
	return nil, wantGot(want, v)
}
