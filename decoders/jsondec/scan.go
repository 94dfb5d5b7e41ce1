package jsondec

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/jsontext"
)

// MaxDepth bounds the nesting Record.Scan validates itself (encoding/json,
// and so Decode, allow 10000): a record nested deeper is declined, and its
// caller takes Decode.
const MaxDepth = 1000

// Record is a JSON record scanned once, in place: validated by Decode's
// rules (one JSON object, valid UTF-8, nothing after it) and its top-level
// members indexed, so that every reader of the record (a dataset's where,
// its conversion) finds a member's value without scanning it again, and
// without the value tree Decode builds. The zero value is ready for Scan;
// reuse one per goroutine.
//
// The values it gives are the members' JSON text (`"a\u0020b"`, `12.5`,
// `[1,2]`), slices of the scanned bytes: Elements, Members and Unquote read
// them further.
type Record struct {
	s       string
	members []member
	// dups: a key occurs twice (the last one wins, as in encoding/json), so
	// lookups cannot stop at the first match.
	dups bool
	ok   bool // the last Scan succeeded
}

// member is a top-level key and where its value is.
type member struct {
	key string
	val span
	// raw: key is the string's bytes as they stand in the text (no escapes),
	// so they hold no '"', '\\' or control byte and are valid UTF-8.
	raw bool
}

// span is where a member's value is in the scanned text.
type span struct{ start, end int }

// Scan validates data as one JSON object and indexes its members; false means
// data is not a JSON object by Decode's rules (or is nested deeper than
// MaxDepth): Decode then gives the value or the error. The record, and the
// values read from it, share data's memory without a copy: data must not
// change while they are in use (the pipeline's records are never modified
// once received).
func (r *Record) Scan(data []byte) bool {
	r.s = unsafe.String(unsafe.SliceData(data), len(data))
	r.members, r.dups, r.ok = scanRecord(r.s, r.members[:0])
	return r.ok
}

// ScanJSON is Scan for a caller that holds a Decoder (the pipeline's fast
// path): records this decoder decodes, scanned in place.
func (*Decoder) ScanJSON(r *Record, data []byte) bool { return r.Scan(data) }

// scanRecord scans s, appending its members to ms.
func scanRecord(s string, ms []member) (_ []member, dups, ok bool) {
	sc := scanner{s: s}
	sc.ws()
	if sc.peek() != '{' {
		return ms, false, false // a record is an object; empty input is a decode error
	}
	if ms, ok = sc.index(ms, &dups); !ok {
		return ms, false, false
	}
	sc.ws()
	return ms, dups, sc.i == len(sc.s)
}

// Forget makes r keep nothing of the records scanned into it: Scan's guess
// at a key reads the previous record's keys, which are that record's bytes,
// so call Forget before the memory of a record scanned is reused (or to let
// it be collected); the records a batch scans, one after the other, stay
// unchanged until the batch ends, and need none between them.
func (r *Record) Forget() {
	clear(r.members[:cap(r.members)])
	r.members, r.s, r.dups, r.ok = r.members[:0], "", false, false
}

// Valid reports whether the last Scan succeeded.
func (r *Record) Valid() bool { return r.ok }

// Bytes returns the text last scanned; callers must not modify it.
func (r *Record) Bytes() []byte { return unsafe.Slice(unsafe.StringData(r.s), len(r.s)) }

// Lookup returns the JSON text of the value of key ("" when absent; the
// last one when the key repeats), and the member's position, looking first
// at position guess: records usually list their members in the order their
// readers ask for them, so a caller passes the last position plus one.
func (r *Record) Lookup(key string, guess int) (val string, at int) {
	s, ms := r.s, r.members
	if r.dups {
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

// Elements calls f with the text of each element of val, a JSON array read
// from a Record, until f returns false; it reports whether every call
// returned true.
func Elements(val string, f func(elem string) bool) bool {
	if val == "" || val[0] != '[' {
		return false
	}
	sc := scanner{s: val, i: 1}
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

// Members calls f with the key (escapes decoded) and the value's text of
// each member of val, a JSON object read from a Record, in order (a
// repeated key comes once per occurrence: the last one is encoding/json's),
// until f returns false; it reports whether every call returned true.
func Members(val string, f func(key, val string) bool) bool {
	if val == "" || val[0] != '{' {
		return false
	}
	sc := scanner{s: val, i: 1}
	sc.ws()
	for sc.peek() == '"' {
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
		sc.i++ // ':'
		sc.ws()
		st := sc.i
		if !sc.value(0) || !f(key, val[st:sc.i]) {
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

// Unquote returns the contents of tok, a JSON string read from a Record,
// its escapes decoded as Decode decodes them (a lone surrogate becomes
// U+FFFD).
func Unquote(tok string) string {
	s := tok[1 : len(tok)-1]
	if strings.IndexByte(s, '\\') >= 0 {
		return unquote(s)
	}
	return s
}

// scanner validates and reads JSON text, by the rules of encoding/json's
// scanner. The text is known to be valid UTF-8.
type scanner struct {
	s string
	i int
}

func (sc *scanner) peek() byte {
	if sc.i < len(sc.s) {
		return sc.s[sc.i]
	}
	return 0
}

func (sc *scanner) ws() {
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

// index validates the object at sc.i and appends its members to ms (passed
// and returned rather than kept in r, so that a caller's array can stay on
// its stack), setting *dups if a key repeats.
func (sc *scanner) index(ms []member, dups *bool) ([]member, bool) {
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
				// (The previous record's memory must not have changed
				// since: see Forget.)
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
		bit := uint64(1) // the empty key's: it repeats like any other
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

// object validates the object at sc.i and moves past it.
func (sc *scanner) object(depth int) bool {
	if depth >= MaxDepth {
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
		if _, ok := sc.str(); !ok {
			return false
		}
		sc.ws()
		if sc.peek() != ':' {
			return false
		}
		sc.i++
		sc.ws()
		if !sc.value(depth + 1) {
			return false
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
func (sc *scanner) value(depth int) bool {
	switch c := sc.peek(); {
	case c == '"':
		_, ok := sc.str()
		return ok
	case c == '{':
		return sc.object(depth)
	case c == '[':
		if depth >= MaxDepth {
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

func (sc *scanner) lit(w string) bool {
	if len(sc.s)-sc.i >= len(w) && sc.s[sc.i:sc.i+len(w)] == w {
		sc.i += len(w)
		return true
	}
	return false
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (sc *scanner) number() bool {
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
// UTF-8 (the only place non-ASCII bytes can be in valid JSON), since
// encoding/json would replace invalid bytes and the row would differ.
func (sc *scanner) str() (esc, ok bool) {
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
