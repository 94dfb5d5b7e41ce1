// Package table reads and writes the files of an Apache Iceberg table in
// format version 2: the metadata JSON (schemas, partition specs, snapshots),
// the partition transforms, and the manifests and manifest lists (Avro object
// container files with Iceberg field ids). It does no I/O of its own: callers
// hand it bytes, io.Readers and io.Writers, and own storage and the catalog.
//
// The format is the Iceberg table spec (format/spec.md in apache/iceberg);
// what other implementations write (Java, pyiceberg, iceberg-go) is read too,
// field by field name, tolerating what they add or leave out.
package table

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Type is an Iceberg type: a primitive (Primitive set, e.g. "long",
// "decimal(38,9)", "fixed[16]"), a list (Element), a map (Key and Value) or a
// struct (Fields, Primitive empty and Element, Key nil). The JSON form is the
// spec's Appendix C: a primitive is a string, a nested type an object.
type Type struct {
	Primitive string
	Element   *Field // list: ID is element-id, Required is element-required
	Key       *Field // map: ID is key-id (keys are always required)
	Value     *Field // map: ID is value-id, Required is value-required
	Fields    []Field
}

// Field is a named struct field (a column) with its id, unique in the schema.
type Field struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Required bool   `json:"required"`
	Type     Type   `json:"type"`
	Doc      string `json:"doc,omitempty"`
}

// Schema is a table schema: a struct with an id. IdentifierFieldIDs is kept
// from other writers' tables; this package does not interpret it.
type Schema struct {
	ID                 int
	IdentifierFieldIDs []int
	Fields             []Field
}

// Primitive types by name, for callers building a schema.
const (
	TypeBoolean     = "boolean"
	TypeInt         = "int"
	TypeLong        = "long"
	TypeFloat       = "float"
	TypeDouble      = "double"
	TypeString      = "string"
	TypeBinary      = "binary"
	TypeDate        = "date"
	TypeTime        = "time"
	TypeTimestamp   = "timestamp"
	TypeTimestampTZ = "timestamptz"
	TypeUUID        = "uuid"
)

// Primitive returns the primitive type named p.
func Primitive(p string) Type { return Type{Primitive: p} }

// Decimal returns the type decimal(precision,scale).
func Decimal(precision, scale int) Type {
	return Type{Primitive: fmt.Sprintf("decimal(%d,%d)", precision, scale)}
}

// ListOf returns a list type whose element has id elementID.
func ListOf(elementID int, element Type, elementRequired bool) Type {
	return Type{Element: &Field{ID: elementID, Name: "element", Required: elementRequired, Type: element}}
}

// MapOf returns a map type with key id keyID and value id valueID.
func MapOf(keyID int, key Type, valueID int, value Type, valueRequired bool) Type {
	return Type{
		Key:   &Field{ID: keyID, Name: "key", Required: true, Type: key},
		Value: &Field{ID: valueID, Name: "value", Required: valueRequired, Type: value},
	}
}

// StructOf returns a struct type of fields.
func StructOf(fields ...Field) Type { return Type{Fields: fields} }

// IsPrimitive reports whether t is a primitive type.
func (t Type) IsPrimitive() bool { return t.Primitive != "" }

// IsList, IsMap and IsStruct report the nested kind of t.
func (t Type) IsList() bool   { return t.Primitive == "" && t.Element != nil }
func (t Type) IsMap() bool    { return t.Primitive == "" && t.Key != nil }
func (t Type) IsStruct() bool { return t.Primitive == "" && t.Element == nil && t.Key == nil }

// String is the spec's name of t ("long", "list<string>", ...), for errors.
func (t Type) String() string {
	switch {
	case t.IsPrimitive():
		return t.Primitive
	case t.IsList():
		return "list<" + t.Element.Type.String() + ">"
	case t.IsMap():
		return "map<" + t.Key.Type.String() + ", " + t.Value.Type.String() + ">"
	}
	parts := make([]string, len(t.Fields))
	for i, f := range t.Fields {
		parts[i] = f.Name + ": " + f.Type.String()
	}
	return "struct<" + strings.Join(parts, ", ") + ">"
}

var (
	decimalRe = regexp.MustCompile(`^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$`)
	fixedRe   = regexp.MustCompile(`^fixed\[\s*(\d+)\s*\]$`)
)

// DecimalParams returns the precision and scale of a decimal type.
func (t Type) DecimalParams() (precision, scale int, ok bool) {
	m := decimalRe.FindStringSubmatch(t.Primitive)
	if m == nil {
		return 0, 0, false
	}
	p, err1 := strconv.Atoi(m[1])
	s, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil || p < 1 || p > 38 || s > p {
		return 0, 0, false
	}
	return p, s, true
}

// FixedLength returns L of fixed[L].
func (t Type) FixedLength() (int, bool) {
	m := fixedRe.FindStringSubmatch(t.Primitive)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil && n > 0
}

// knownPrimitive reports whether p is a primitive this package understands.
// Others (v3's variant, geometry, timestamp_ns, ...) are refused when parsed:
// a v2 table has none, and a v3 table is refused before its schema is read.
func knownPrimitive(p string) bool {
	switch p {
	case TypeBoolean, TypeInt, TypeLong, TypeFloat, TypeDouble, TypeString, TypeBinary,
		TypeDate, TypeTime, TypeTimestamp, TypeTimestampTZ, TypeUUID:
		return true
	}
	t := Type{Primitive: p}
	if _, _, ok := t.DecimalParams(); ok {
		return true
	}
	_, ok := t.FixedLength()
	return ok
}

// canonicalPrimitive drops the whitespace readers must accept inside
// parameterised type names ("decimal(9, 2)"), so comparisons and the
// metadata this package writes use the canonical form.
func canonicalPrimitive(p string) string {
	t := Type{Primitive: p}
	if pr, s, ok := t.DecimalParams(); ok {
		return fmt.Sprintf("decimal(%d,%d)", pr, s)
	}
	if l, ok := t.FixedLength(); ok {
		return fmt.Sprintf("fixed[%d]", l)
	}
	return p
}

type typeJSON struct {
	Type            string          `json:"type"`
	ElementID       *int            `json:"element-id,omitempty"`
	ElementRequired *bool           `json:"element-required,omitempty"`
	Element         json.RawMessage `json:"element,omitempty"`
	KeyID           *int            `json:"key-id,omitempty"`
	Key             json.RawMessage `json:"key,omitempty"`
	ValueID         *int            `json:"value-id,omitempty"`
	ValueRequired   *bool           `json:"value-required,omitempty"`
	Value           json.RawMessage `json:"value,omitempty"`
	Fields          []Field         `json:"fields,omitempty"`
}

// MarshalJSON writes t as the spec's Appendix C.
func (t Type) MarshalJSON() ([]byte, error) {
	switch {
	case t.IsPrimitive():
		return json.Marshal(t.Primitive)
	case t.IsList():
		el, err := json.Marshal(t.Element.Type)
		if err != nil {
			return nil, err
		}
		return json.Marshal(typeJSON{Type: "list", ElementID: &t.Element.ID, ElementRequired: &t.Element.Required, Element: el})
	case t.IsMap():
		if t.Value == nil {
			return nil, errors.New("map type without a value field")
		}
		k, err := json.Marshal(t.Key.Type)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(t.Value.Type)
		if err != nil {
			return nil, err
		}
		return json.Marshal(typeJSON{Type: "map", KeyID: &t.Key.ID, Key: k, ValueID: &t.Value.ID, ValueRequired: &t.Value.Required, Value: v})
	}
	fields := t.Fields
	if fields == nil {
		fields = []Field{} // "fields" is required, even empty
	}
	return json.Marshal(struct {
		Type   string  `json:"type"`
		Fields []Field `json:"fields"`
	}{"struct", fields})
}

// UnmarshalJSON reads the spec's Appendix C.
func (t *Type) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var p string
		if err := json.Unmarshal(b, &p); err != nil {
			return err
		}
		p = strings.TrimSpace(p)
		if !knownPrimitive(p) {
			return fmt.Errorf("unsupported Iceberg type %q (format v2 types only)", p)
		}
		*t = Type{Primitive: canonicalPrimitive(p)}
		return nil
	}
	var j typeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	switch j.Type {
	case "list":
		if j.ElementID == nil || j.Element == nil {
			return errors.New("list type without element-id or element")
		}
		var el Type
		if err := json.Unmarshal(j.Element, &el); err != nil {
			return fmt.Errorf("list element: %w", err)
		}
		*t = Type{Element: &Field{ID: *j.ElementID, Name: "element", Required: j.ElementRequired != nil && *j.ElementRequired, Type: el}}
	case "map":
		if j.KeyID == nil || j.ValueID == nil || j.Key == nil || j.Value == nil {
			return errors.New("map type without key-id, key, value-id or value")
		}
		var k, v Type
		if err := json.Unmarshal(j.Key, &k); err != nil {
			return fmt.Errorf("map key: %w", err)
		}
		if err := json.Unmarshal(j.Value, &v); err != nil {
			return fmt.Errorf("map value: %w", err)
		}
		*t = Type{
			Key:   &Field{ID: *j.KeyID, Name: "key", Required: true, Type: k},
			Value: &Field{ID: *j.ValueID, Name: "value", Required: j.ValueRequired != nil && *j.ValueRequired, Type: v},
		}
	case "struct":
		*t = Type{Fields: j.Fields}
	default:
		return fmt.Errorf("unknown nested Iceberg type %q", j.Type)
	}
	return nil
}

type schemaJSON struct {
	Type               string  `json:"type"`
	ID                 int     `json:"schema-id"`
	IdentifierFieldIDs []int   `json:"identifier-field-ids,omitempty"`
	Fields             []Field `json:"fields"`
}

// MarshalJSON writes s as the spec's schema object.
func (s Schema) MarshalJSON() ([]byte, error) {
	fields := s.Fields
	if fields == nil {
		fields = []Field{}
	}
	return json.Marshal(schemaJSON{Type: "struct", ID: s.ID, IdentifierFieldIDs: s.IdentifierFieldIDs, Fields: fields})
}

// UnmarshalJSON reads the spec's schema object.
func (s *Schema) UnmarshalJSON(b []byte) error {
	var j schemaJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if j.Type != "" && j.Type != "struct" {
		return fmt.Errorf("schema of type %q, want struct", j.Type)
	}
	*s = Schema{ID: j.ID, IdentifierFieldIDs: j.IdentifierFieldIDs, Fields: j.Fields}
	return nil
}

// FieldByName returns the top-level field called name.
func (s Schema) FieldByName(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// FieldByID returns the field with id, at any depth (a list element or map
// key/value included).
func (s Schema) FieldByID(id int) (Field, bool) {
	var found Field
	ok := false
	walkFields(s.Fields, func(f Field) {
		if f.ID == id && !ok {
			found, ok = f, true
		}
	})
	return found, ok
}

// HighestFieldID is the largest field id in s, at any depth (0 when empty).
func (s Schema) HighestFieldID() int {
	highest := 0
	walkFields(s.Fields, func(f Field) { highest = max(highest, f.ID) })
	return highest
}

// validate checks what a reader relies on: ids positive and unique at every
// depth, names unique within a struct, types complete.
func (s Schema) validate() error {
	seen := map[int]string{}
	var errs []error
	walkFields(s.Fields, func(f Field) {
		if f.ID <= 0 {
			errs = append(errs, fmt.Errorf("field %q: id %d, want a positive id", f.Name, f.ID))
		} else if prev, dup := seen[f.ID]; dup {
			errs = append(errs, fmt.Errorf("field %q: id %d is already the id of %q", f.Name, f.ID, prev))
		}
		seen[f.ID] = f.Name
		if f.Type.IsPrimitive() && !knownPrimitive(f.Type.Primitive) {
			errs = append(errs, fmt.Errorf("field %q: unsupported type %q", f.Name, f.Type.Primitive))
		}
		if f.Type.IsMap() && f.Type.Value == nil {
			errs = append(errs, fmt.Errorf("field %q: map without a value", f.Name))
		}
	})
	var checkNames func(fields []Field)
	checkNames = func(fields []Field) {
		names := map[string]bool{}
		for _, f := range fields {
			if f.Name == "" {
				errs = append(errs, fmt.Errorf("field id %d: empty name", f.ID))
			} else if names[f.Name] {
				errs = append(errs, fmt.Errorf("field %q: name used twice in one struct", f.Name))
			}
			names[f.Name] = true
			if f.Type.IsStruct() {
				checkNames(f.Type.Fields)
			}
		}
	}
	checkNames(s.Fields)
	return errors.Join(errs...)
}

// walkFields calls fn for every field under fields, depth first, including
// list elements and map keys and values (they carry ids too).
func walkFields(fields []Field, fn func(Field)) {
	for _, f := range fields {
		walkField(f, fn, 0)
	}
}

func walkField(f Field, fn func(Field), depth int) {
	// A schema nested beyond this is not a table schema but an attack on
	// the worker's stack (metadata JSON comes from outside).
	if depth > 100 {
		return
	}
	fn(f)
	t := f.Type
	switch {
	case t.IsList():
		walkField(*t.Element, fn, depth+1)
	case t.IsMap():
		walkField(*t.Key, fn, depth+1)
		if t.Value != nil {
			walkField(*t.Value, fn, depth+1)
		}
	case t.IsStruct():
		for _, c := range t.Fields {
			walkField(c, fn, depth+1)
		}
	}
}
