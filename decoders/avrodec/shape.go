package avrodec

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// A node is the shape of one Avro type, compiled from the writer schema next to
// goavro's codec. It serves two passes around goavro's NativeFromBinary:
//   - check walks the bytes first, without allocating, and rejects what
//     goavro would accept silently or could not survive: trailing bytes,
//     over-long or out-of-range varints, invalid UTF-8, block counts that
//     promise more items than there are bytes left (goavro preallocates them:
//     a 3-byte payload could ask for 32 GiB), nesting deeper than maxDepth;
//   - normalize rewrites goavro's value tree into the decoders.Decoder one:
//     union values unwrapped from goavro's map{"branch": v}, and a few
//     logical types goavro leaves raw or gives as time.Duration.
type node struct {
	kind    kind
	logical logical
	// key is goavro's name for the type, which keys a union's value map
	// ("string", "long.timestamp-millis", "com.example.Address", "array").
	key      string
	size     int              // fixed
	symbols  int              // enum
	elem     *node            // array items, map values
	fields   []field          // record, in schema order
	branches []*node          // union, in schema order
	byKey    map[string]*node // union: branch by key
	single   *node            // union: the only non-null branch, if one

	zeroSize bool // a value may take no bytes at all (null, fixed of size 0, records of such)
	work     bool // normalize must visit values of this type

	symbolNames []string // enum
	decimal     bool     // bytes or fixed with the decimal logical type
	// noDirect: values of this type are left to goavro (decimals, and what
	// holds them); see direct.go.
	noDirect bool
}

type field struct {
	name string
	node *node
}

type kind uint8

const (
	kNull kind = iota
	kBoolean
	kInt
	kLong
	kFloat
	kDouble
	kBytes
	kString
	kFixed
	kEnum
	kArray
	kMap
	kRecord
	kUnion
)

// logical marks the logical types normalize converts.
type logical uint8

const (
	lNone        logical = iota
	lTimeMillis          // int time-millis: goavro gives time.Duration, we give int32 ms after midnight
	lTimeMicros          // long time-micros: time.Duration → int64 µs after midnight
	lLocalMillis         // long local-timestamp-millis: goavro gives int64 → time.Time (wall clock read as UTC)
	lLocalMicros         // long local-timestamp-micros: likewise
	lUUIDFixed           // fixed(16) uuid: goavro gives []byte → canonical string
)

// compiler builds nodes from a parsed schema, mirroring goavro's
// buildCodec so that union keys match goavro's: the same name resolution,
// the same symbol table (including its "bytes.decimal.P.S" cache).
type compiler struct {
	st    map[string]*node
	nodes []*node
}

var primitives = map[string]kind{
	"null": kNull, "boolean": kBoolean, "int": kInt, "long": kLong,
	"float": kFloat, "double": kDouble, "bytes": kBytes, "string": kString,
}

// goavroLogical are the logical types goavro has codecs for, by typeName.logicalType.
var goavroLogical = map[string]logical{
	"long.timestamp-millis": lNone,
	"long.timestamp-micros": lNone,
	"int.date":              lNone,
	"int.time-millis":       lTimeMillis,
	"long.time-micros":      lTimeMicros,
}

// compileShape compiles a schema parsed by encoding/json (as goavro parses it).
// It is called only after goavro accepted the same schema.
func compileShape(schema any) (*node, error) {
	c := &compiler{st: map[string]*node{}}
	root, err := c.build("", schema)
	if err != nil {
		return nil, err
	}
	c.settle()
	return root, nil
}

func (c *compiler) newNode(k kind, key string) *node {
	n := &node{kind: k, key: key}
	c.nodes = append(c.nodes, n)
	return n
}

func (c *compiler) build(ns string, schema any) (*node, error) {
	switch s := schema.(type) {
	case string:
		return c.byName(ns, s, nil)
	case map[string]any:
		return c.byMap(ns, s)
	case []any:
		return c.union(ns, s)
	}
	return nil, fmt.Errorf("unknown schema type %T", schema)
}

func (c *compiler) byMap(ns string, m map[string]any) (*node, error) {
	switch t := m["type"].(type) {
	case string:
		return c.byName(ns, t, m)
	case map[string]any:
		return c.byMap(ns, t)
	case []any:
		return c.union(ns, t)
	}
	return nil, fmt.Errorf("missing or bad type in %v", m)
}

// byName mirrors goavro's buildCodecForTypeDescribedByString: m is the map
// holding the type name (nil for a bare name) and may carry a logicalType.
func (c *compiler) byName(ns, typeName string, m map[string]any) (*node, error) {
	lt, hasLT := "", false
	if m != nil && m["logicalType"] != nil {
		hasLT = true
		lt = fmt.Sprint(m["logicalType"])
	}
	search := typeName
	if hasLT {
		search = typeName + "." + lt
	}
	if l, ok := goavroLogical[search]; ok {
		n := c.newNode(primitives[typeName], search)
		n.logical = l
		return n, nil
	}
	if search == "bytes.decimal" {
		if _, ok := c.st["bytes.decimal"]; ok {
			p, s := decimalParams(m)
			if n, ok := c.st[fmt.Sprintf("bytes.decimal.%d.%d", p, s)]; ok {
				return n, nil
			}
		}
	} else if n, ok := c.st[search]; ok {
		return n, nil
	}
	if !hasLT {
		if k, ok := primitives[typeName]; ok {
			return c.newNode(k, typeName), nil
		}
	}
	if ns != "" {
		if n, ok := c.st[ns+"."+typeName]; ok {
			return n, nil
		}
	}
	switch search {
	case "array":
		n := c.newNode(kArray, "array")
		items, err := c.build(ns, m["items"])
		n.elem = items
		return n, err
	case "map":
		n := c.newNode(kMap, "map")
		values, err := c.build(ns, m["values"])
		n.elem = values
		return n, err
	case "enum", "fixed", "record", "fixed.decimal":
		k := map[string]kind{"enum": kEnum, "fixed": kFixed, "fixed.decimal": kFixed, "record": kRecord}[search]
		if _, ok := m["name"]; !ok && search == "fixed.decimal" {
			m = withName(m, "fixed.decimal")
		}
		full, space, err := fullName(ns, m)
		if err != nil {
			return nil, err
		}
		n := c.newNode(k, full)
		c.st[full] = n
		switch k {
		case kEnum:
			syms, _ := m["symbols"].([]any)
			n.symbols = len(syms)
			for _, sym := range syms {
				name, _ := sym.(string)
				n.symbolNames = append(n.symbolNames, name)
			}
		case kFixed:
			n.size = fixedSize(m)
			// goavro takes "size": "0": such a value takes no bytes, so an
			// array of them must be bounded as one of nulls, not by the bytes
			// left (8 KB of block counts made goavro build 16M items).
			n.zeroSize = n.size == 0
			n.decimal = search == "fixed.decimal"
		case kRecord:
			fs, _ := m["fields"].([]any)
			for _, f := range fs {
				fm, ok := f.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("record %q: field %v is not an object", full, f)
				}
				// goavro builds a field's type from the field object itself, so
				// a logicalType written next to the field's name applies.
				fn, err := c.byMap(space, fm)
				if err != nil {
					return nil, err
				}
				name, _ := fm["name"].(string)
				if i := strings.LastIndexByte(name, '.'); i >= 0 {
					name = name[i+1:] // goavro keys fields by their short name
				}
				n.fields = append(n.fields, field{name: name, node: fn})
			}
		}
		return n, nil
	case "bytes.decimal":
		if _, ok := m["name"]; !ok {
			m = withName(m, "bytes.decimal")
		}
		full, _, err := fullName(ns, m)
		if err != nil {
			return nil, err
		}
		n := c.newNode(kBytes, full)
		c.st[full] = n
		p, s := decimalParams(m)
		c.st[fmt.Sprintf("bytes.decimal.%d.%d", p, s)] = n
		n.decimal = true
		return n, nil
	}
	if hasLT {
		// goavro drops a logical type it does not know and builds the
		// underlying type from the same map; we convert a few of those
		// values ourselves.
		n, err := c.byName(ns, typeName, withoutLogical(m))
		if err != nil {
			return nil, err
		}
		switch {
		case n.kind == kLong && lt == "local-timestamp-millis":
			n.logical = lLocalMillis // a fresh node: primitives are not shared
		case n.kind == kLong && lt == "local-timestamp-micros":
			n.logical = lLocalMicros
		case typeName == "fixed" && lt == "uuid" && n.size == 16:
			n.logical = lUUIDFixed // a fixed defined right here
		}
		return n, nil
	}
	return nil, fmt.Errorf("unknown type name %q", search)
}

func (c *compiler) union(ns string, members []any) (*node, error) {
	n := c.newNode(kUnion, "union")
	n.byKey = make(map[string]*node, len(members))
	nonNull := 0
	for _, m := range members {
		b, err := c.build(ns, m)
		if err != nil {
			return nil, err
		}
		n.branches = append(n.branches, b)
		n.byKey[b.key] = b
		if b.kind != kNull {
			nonNull++
			n.single = b
		}
	}
	if nonNull != 1 {
		n.single = nil
	}
	return n, nil
}

// settle computes zeroSize and work over the whole (possibly cyclic) graph as
// least fixpoints.
func (c *compiler) settle() {
	for changed := true; changed; {
		changed = false
		for _, n := range c.nodes {
			z, w := n.zeroSize, n.work
			switch n.kind {
			case kNull:
				z = true
			case kRecord:
				z = true
				for _, f := range n.fields {
					z = z && f.node.zeroSize
					w = w || f.node.work
				}
			case kUnion:
				w = true
			case kArray, kMap:
				w = w || n.elem.work
			}
			if n.logical != lNone {
				w = true
			}
			nd := n.noDirect || n.decimal
			switch n.kind {
			case kRecord:
				for _, f := range n.fields {
					nd = nd || f.node.noDirect
				}
			case kUnion:
				for _, b := range n.branches {
					nd = nd || b.noDirect
				}
			case kArray, kMap:
				nd = nd || n.elem.noDirect
			}
			if z != n.zeroSize || w != n.work || nd != n.noDirect {
				n.zeroSize, n.work, n.noDirect, changed = z, w, nd, true
			}
		}
	}
}

// fullName mirrors goavro's newNameFromSchemaMap: a dotted name is full; else
// the type's own namespace, else the enclosing one. It returns the full name
// and the namespace for the type's children.
func fullName(enclosing string, m map[string]any) (string, string, error) {
	name, _ := m["name"].(string)
	if name == "" {
		return "", "", errors.New("named type without a name")
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name, name[:i], nil
	}
	if ns, _ := m["namespace"].(string); ns != "" {
		return ns + "." + name, ns, nil
	}
	if enclosing != "" {
		return enclosing + "." + name, enclosing, nil
	}
	return name, "", nil
}

func decimalParams(m map[string]any) (int, int) {
	p, _ := m["precision"].(float64)
	s, _ := m["scale"].(float64)
	return int(p), int(s)
}

func fixedSize(m map[string]any) int {
	switch v := m["size"].(type) {
	case float64:
		return int(v)
	case string:
		n, _ := strconv.Atoi(v)
		return n
	}
	return 0
}

func withName(m map[string]any, name string) map[string]any {
	cp := make(map[string]any, len(m)+1)
	for k, v := range m {
		cp[k] = v
	}
	cp["name"] = name
	return cp
}

func withoutLogical(m map[string]any) map[string]any {
	cp := make(map[string]any, len(m))
	for k, v := range m {
		if k != "logicalType" {
			cp[k] = v
		}
	}
	return cp
}

// Limits of check.
const (
	// maxDepth bounds the nesting of records, arrays, maps and unions in one
	// payload (encoding/json's limit), so that a recursive schema cannot drive
	// goavro's recursive decoder into a fatal stack overflow.
	maxDepth = 10000
	// maxZeroSizeItems bounds the array items of a type that takes no bytes
	// (null, records of such), which a count alone could make endless.
	maxZeroSizeItems = 1 << 16
)

// checker walks a payload against a node before goavro decodes it.
type checker struct {
	buf       []byte
	zeroItems int
}

func (c *checker) fail(pos int, format string, args ...any) error {
	return &Error{Offset: pos, Msg: fmt.Sprintf(format, args...)}
}

// varint reads a zig-zag varint of at most maxBytes bytes (5 for int, 10 for long).
func (c *checker) varint(pos, maxBytes int, what string) (int64, int, error) {
	var u uint64
	for i := 0; i < maxBytes; i++ {
		if pos+i >= len(c.buf) {
			return 0, 0, c.fail(len(c.buf), "payload ends inside %s", what)
		}
		b := c.buf[pos+i]
		if i == 9 && b > 1 {
			return 0, 0, c.fail(pos, "%s overflows 64 bits", what)
		}
		u |= uint64(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			return int64(u>>1) ^ -int64(u&1), pos + i + 1, nil
		}
	}
	return 0, 0, c.fail(pos, "%s is longer than %d bytes", what, maxBytes)
}

func (c *checker) value(n *node, pos, depth int) (int, error) {
	switch n.kind {
	case kNull:
		return pos, nil
	case kBoolean:
		if pos >= len(c.buf) {
			return 0, c.fail(pos, "payload ends inside a boolean")
		}
		if b := c.buf[pos]; b > 1 {
			return 0, c.fail(pos, "boolean byte is 0x%02x, want 0x00 or 0x01", b)
		}
		return pos + 1, nil
	case kInt:
		v, next, err := c.varint(pos, 5, "an int")
		if err == nil && (v < math.MinInt32 || v > math.MaxInt32) {
			err = c.fail(pos, "int %d is outside 32 bits", v)
		}
		return next, err
	case kLong:
		_, next, err := c.varint(pos, 10, "a long")
		return next, err
	case kFloat:
		return c.fixedLen(pos, 4, "a float")
	case kDouble:
		return c.fixedLen(pos, 8, "a double")
	case kFixed:
		return c.fixedLen(pos, n.size, "a fixed of "+strconv.Itoa(n.size)+" bytes")
	case kBytes, kString:
		what := "bytes"
		if n.kind == kString {
			what = "a string"
		}
		return c.lenBytes(pos, what, n.kind == kString)
	case kEnum:
		v, next, err := c.varint(pos, 10, "an enum index")
		if err == nil && (v < 0 || v >= int64(n.symbols)) {
			err = c.fail(pos, "enum %s index %d is not in 0..%d", n.key, v, n.symbols-1)
		}
		return next, err
	case kUnion:
		v, next, err := c.varint(pos, 10, "a union branch index")
		if err != nil {
			return 0, err
		}
		if v < 0 || v >= int64(len(n.branches)) {
			return 0, c.fail(pos, "union branch index %d is not in 0..%d", v, len(n.branches)-1)
		}
		return c.nested(n.branches[v], next, depth)
	case kRecord:
		var err error
		for _, f := range n.fields {
			if pos, err = c.nested(f.node, pos, depth); err != nil {
				return 0, err
			}
		}
		return pos, nil
	case kArray, kMap:
		return c.blocks(n, pos, depth)
	}
	return 0, c.fail(pos, "unsupported type")
}

func (c *checker) nested(n *node, pos, depth int) (int, error) {
	if depth >= maxDepth {
		return 0, c.fail(pos, "nesting deeper than %d", maxDepth)
	}
	return c.value(n, pos, depth+1)
}

func (c *checker) fixedLen(pos, size int, what string) (int, error) {
	if len(c.buf)-pos < size {
		return 0, c.fail(len(c.buf), "payload ends inside %s", what)
	}
	return pos + size, nil
}

func (c *checker) lenBytes(pos int, what string, isString bool) (int, error) {
	lenWhat := "the length of bytes" // constants: no allocation on the good path
	switch what {
	case "a string":
		lenWhat = "the length of a string"
	case "a map key":
		lenWhat = "the length of a map key"
	}
	l, start, err := c.varint(pos, 10, lenWhat)
	if err != nil {
		return 0, err
	}
	if l < 0 {
		return 0, c.fail(pos, "negative length %d of %s", l, what)
	}
	if l > int64(len(c.buf)-start) {
		return 0, c.fail(pos, "length %d of %s is beyond the %d bytes left", l, what, len(c.buf)-start)
	}
	end := start + int(l)
	if isString && !utf8.Valid(c.buf[start:end]) {
		return 0, c.fail(start, "string is not valid UTF-8")
	}
	return end, nil
}

func (c *checker) blocks(n *node, pos, depth int) (int, error) {
	what, countWhat, sizeWhat := "array", "an array block count", "an array block size"
	if n.kind == kMap {
		what, countWhat, sizeWhat = "map", "a map block count", "a map block size"
	}
	for {
		count, next, err := c.varint(pos, 10, countWhat)
		if err != nil {
			return 0, err
		}
		if count == 0 {
			return next, nil
		}
		if count < 0 {
			if count == math.MinInt64 {
				return 0, c.fail(pos, "%s block count %d", what, count)
			}
			count = -count
			var size int64
			if size, next, err = c.varint(next, 10, sizeWhat); err != nil {
				return 0, err
			}
			if size < 0 || size > int64(len(c.buf)-next) {
				return 0, c.fail(pos, "%s block size %d is not in 0..%d (the bytes left)", what, size, len(c.buf)-next)
			}
		}
		// Every map entry and every item of a non-empty type takes a byte at
		// least: a count beyond the bytes left is a lie goavro would believe
		// (it preallocates count items).
		if n.kind == kMap || !n.elem.zeroSize {
			if count > int64(len(c.buf)-next) {
				return 0, c.fail(pos, "%s block of %d items is longer than the %d bytes left", what, count, len(c.buf)-next)
			}
		} else {
			if count > int64(maxZeroSizeItems-c.zeroItems) {
				return 0, c.fail(pos, "more than %d items of an empty type in one payload", maxZeroSizeItems)
			}
			c.zeroItems += int(count)
		}
		pos = next
		for i := int64(0); i < count; i++ {
			if n.kind == kMap {
				if pos, err = c.lenBytes(pos, "a map key", true); err != nil {
					return 0, err
				}
			}
			if pos, err = c.nested(n.elem, pos, depth); err != nil {
				return 0, err
			}
		}
	}
}

// normalize turns goavro's value of type n into the decoders.Decoder value
// tree, in place where it can (goavro's maps and slices are ours).
func normalize(n *node, v any) any {
	if !n.work {
		return v
	}
	switch n.kind {
	case kUnion:
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return v // nil (the null branch), or not goavro's wrapper
		}
		for k, inner := range m {
			b := n.byKey[k]
			if b == nil {
				b = n.single
			}
			if b == nil {
				return inner
			}
			return normalize(b, inner)
		}
	case kRecord:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		for _, f := range n.fields {
			if f.node.work {
				if fv, ok := m[f.name]; ok {
					m[f.name] = normalize(f.node, fv)
				}
			}
		}
		return m
	case kArray:
		l, ok := v.([]any)
		if !ok {
			return v
		}
		for i := range l {
			l[i] = normalize(n.elem, l[i])
		}
		return l
	case kMap:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		for k, e := range m {
			m[k] = normalize(n.elem, e)
		}
		return m
	}
	switch n.logical {
	case lTimeMillis:
		if d, ok := v.(time.Duration); ok {
			return int32(d / time.Millisecond)
		}
	case lTimeMicros:
		if d, ok := v.(time.Duration); ok {
			return int64(d / time.Microsecond)
		}
	case lLocalMillis:
		if i, ok := v.(int64); ok {
			return time.UnixMilli(i).UTC()
		}
	case lLocalMicros:
		if i, ok := v.(int64); ok {
			return time.UnixMicro(i).UTC()
		}
	case lUUIDFixed:
		if b, ok := v.([]byte); ok && len(b) == 16 {
			return formatUUID(b)
		}
	}
	return v
}

func formatUUID(b []byte) string {
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// soeFingerprint returns the fingerprint of a single-object encoded payload:
// C3 01, then the schema's 8-byte little-endian CRC-64-AVRO (Rabin)
// fingerprint.
func soeFingerprint(data []byte) (uint64, bool) {
	if len(data) < soeHeaderLen || data[0] != 0xC3 || data[1] != 0x01 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(data[2:soeHeaderLen]), true
}

const (
	soeHeaderLen       = 10
	confluentHeaderLen = 5
)
