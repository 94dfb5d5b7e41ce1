package avrodec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Single-object encoding carries the CRC-64-AVRO fingerprint of the writer
// schema's Parsing Canonical Form (Avro specification, "Schema Resolution" >
// "Parsing Canonical Form for Schemas"). goavro's Codec.Rabin is computed
// over goavro's own canonical form, which keeps logical types as objects
// ({"type":"long"} instead of "long") and names decimals ("bytes.decimal"),
// so for any schema with a logical type it differs from what Java, avsc and
// the other implementations put in the header. We compute the specified one
// here, and accept goavro's as well.

// canonicalForm returns the Parsing Canonical Form of a schema parsed by
// encoding/json.
func canonicalForm(schema any) (string, error) {
	var b strings.Builder
	if err := writeCanonical(&b, schema, "", map[string]bool{}); err != nil {
		return "", err
	}
	return b.String(), nil
}

func writeCanonical(b *strings.Builder, s any, ns string, seen map[string]bool) error {
	switch x := s.(type) {
	case string:
		switch _, prim := primitives[x]; {
		case prim || strings.Contains(x, "."):
			writeString(b, x)
		case ns != "" && seen[ns+"."+x]:
			writeString(b, ns+"."+x)
		case seen[x]:
			writeString(b, x) // a type of the null namespace
		default:
			writeString(b, qualify(x, ns))
		}
		return nil
	case []any:
		b.WriteByte('[')
		for i, m := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeCanonical(b, m, ns, seen); err != nil {
				return err
			}
		}
		b.WriteByte(']')
		return nil
	case map[string]any:
		return writeCanonicalObject(b, x, ns, seen)
	}
	return fmt.Errorf("unexpected %T in schema", s)
}

func writeCanonicalObject(b *strings.Builder, m map[string]any, ns string, seen map[string]bool) error {
	t, ok := m["type"].(string)
	if !ok {
		if m["type"] == nil {
			return errors.New("schema object without a type")
		}
		return writeCanonical(b, m["type"], ns, seen)
	}
	switch t {
	case "array":
		b.WriteString(`{"type":"array","items":`)
		if err := writeCanonical(b, m["items"], ns, seen); err != nil {
			return err
		}
		b.WriteByte('}')
		return nil
	case "map":
		b.WriteString(`{"type":"map","values":`)
		if err := writeCanonical(b, m["values"], ns, seen); err != nil {
			return err
		}
		b.WriteByte('}')
		return nil
	case "record", "error", "enum", "fixed":
	default:
		// A primitive (its attributes, logicalType included, stripped) or a
		// reference to a named type.
		return writeCanonical(b, t, ns, seen)
	}
	name, _ := m["name"].(string)
	if name == "" {
		return fmt.Errorf("%s without a name", t)
	}
	full := name
	if !strings.Contains(name, ".") {
		if space, _ := m["namespace"].(string); space != "" {
			full = space + "." + name
		} else if ns != "" {
			full = ns + "." + name
		}
	}
	if seen[full] {
		writeString(b, full)
		return nil
	}
	seen[full] = true
	space := ""
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		space = full[:i]
	}
	b.WriteString(`{"name":`)
	writeString(b, full)
	b.WriteString(`,"type":`)
	if t == "error" {
		t = "record"
	}
	writeString(b, t)
	switch t {
	case "record":
		b.WriteString(`,"fields":[`)
		fields, _ := m["fields"].([]any)
		for i, f := range fields {
			fm, ok := f.(map[string]any)
			if !ok {
				return fmt.Errorf("record %s: field %d is not an object", full, i)
			}
			if i > 0 {
				b.WriteByte(',')
			}
			fname, _ := fm["name"].(string)
			b.WriteString(`{"name":`)
			writeString(b, fname)
			b.WriteString(`,"type":`)
			if err := writeCanonical(b, fm["type"], space, seen); err != nil {
				return err
			}
			b.WriteByte('}')
		}
		b.WriteByte(']')
	case "enum":
		b.WriteString(`,"symbols":[`)
		syms, _ := m["symbols"].([]any)
		for i, sym := range syms {
			if i > 0 {
				b.WriteByte(',')
			}
			s, _ := sym.(string)
			writeString(b, s)
		}
		b.WriteByte(']')
	case "fixed":
		b.WriteString(`,"size":`)
		switch size := m["size"].(type) {
		case float64:
			b.WriteString(strconv.FormatInt(int64(size), 10))
		case string: // goavro accepts a quoted size
			n, err := strconv.ParseInt(size, 10, 64)
			if err != nil {
				return fmt.Errorf("fixed %s: bad size %q", full, size)
			}
			b.WriteString(strconv.FormatInt(n, 10))
		default:
			return fmt.Errorf("fixed %s: bad size", full)
		}
	}
	b.WriteByte('}')
	return nil
}

// qualify makes a type reference a full name.
func qualify(name, ns string) string {
	if ns == "" || strings.Contains(name, ".") {
		return name
	}
	return ns + "." + name
}

// writeString writes s as a JSON string with no escapes beyond those JSON
// requires ([STRINGS]: characters as themselves, in UTF-8).
func writeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// rabin is the CRC-64-AVRO fingerprint of the Avro specification.
func rabin(b []byte) uint64 {
	fp := rabinEmpty
	for _, c := range b {
		fp = (fp >> 8) ^ rabinTable[byte(fp)^c]
	}
	return fp
}

const rabinEmpty uint64 = 0xc15d213aa4d7a795

var rabinTable = func() (t [256]uint64) {
	for i := range t {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (rabinEmpty & -(fp & 1))
		}
		t[i] = fp
	}
	return t
}()
