package iceberg

import (
	"fmt"
	"strings"

	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/iceberg/table"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/parquetenc"
)

// A dataset's columns in the table: its fields in declaration order, then
// the origin columns (where each row came from: the table's own record of
// what it holds, and the changelog's order), then _op for a changelog.
// list, map and struct fields are JSON text (string), as in the S3 sink's
// Parquet: a dataset does not fix their elements' types.

// column is one top-level column as the sink writes it.
type column struct {
	name     string
	typ      table.Type // without ids
	required bool
}

func primitive(p string) table.Type { return table.Type{Primitive: p} }

// icebergType is the Iceberg type of a dataset type (optional unwrapped).
func icebergType(t schema.Type) (table.Type, error) {
	switch t.Kind {
	case schema.KindInt:
		return primitive("long"), nil
	case schema.KindFloat:
		return primitive("double"), nil
	case schema.KindBool:
		return primitive("boolean"), nil
	case schema.KindStr, schema.KindList, schema.KindMap, schema.KindStruct:
		return primitive("string"), nil
	case schema.KindBytes:
		return primitive("binary"), nil
	case schema.KindDatetime:
		return primitive("timestamptz"), nil
	case schema.KindDate:
		return primitive("date"), nil
	case schema.KindDecimal:
		return primitive(fmt.Sprintf("decimal(%d, %d)", 38, t.Scale)), nil
	case schema.KindEmbedding:
		return table.Type{Element: &table.Field{Name: "element", Required: true, Type: primitive("double")}}, nil
	}
	return table.Type{}, fmt.Errorf("type %s has no Iceberg type", t)
}

// columns are the table's columns for a dataset.
func columns(cols []schema.Column, changelog bool) ([]column, error) {
	var out []column
	for _, c := range cols {
		t, required := c.Type, true
		if t.Kind == schema.KindOptional {
			t, required = *t.Elem, false
		}
		if changelog && !c.Key {
			required = false // a delete carries only its key
		}
		it, err := icebergType(t)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", c.Name, err)
		}
		out = append(out, column{name: c.Name, typ: it, required: required})
	}
	origin := []table.Type{primitive("string"), primitive("string"), primitive("string"), primitive("int"), primitive("timestamptz")}
	for i, name := range parquetenc.OriginColumns {
		out = append(out, column{name: name, typ: origin[i], required: true})
	}
	if changelog {
		out = append(out, column{name: parquetenc.ChangelogColumn, typ: primitive("string"), required: true})
	}
	return out, nil
}

// newSchema is the schema of a table created for the dataset: ids from 1 in
// column order, an embedding's element after every top-level column; a
// changelog's key fields are its identifier fields.
func newSchema(cols []schema.Column, changelog bool) (table.Schema, error) {
	cs, err := columns(cols, changelog)
	if err != nil {
		return table.Schema{}, err
	}
	s := table.Schema{ID: 0}
	next := len(cs)
	for i, c := range cs {
		f := table.Field{ID: i + 1, Name: c.name, Required: c.required, Type: c.typ}
		if c.typ.Element != nil {
			next++
			e := *c.typ.Element
			e.ID = next
			f.Type.Element = &e
		}
		s.Fields = append(s.Fields, f)
	}
	if changelog {
		for i, c := range cols {
			if c.Key {
				s.IdentifierFieldIDs = append(s.IdentifierFieldIDs, i+1)
			}
		}
	}
	return s, nil
}

// sameType reports whether the table's type t holds what the sink writes as
// w: the same type, a decimal's precision and scale included.
func sameType(t, w table.Type) bool {
	if w.Element != nil {
		return t.Element != nil && sameType(t.Element.Type, w.Element.Type)
	}
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), " ", "") }
	return w.Primitive != "" && norm(t.Primitive) == norm(w.Primitive)
}

func typeString(t table.Type) string {
	switch {
	case t.Element != nil:
		return "list<" + typeString(t.Element.Type) + ">"
	case t.Key != nil:
		return "map<" + typeString(t.Key.Type) + ", " + typeString(t.Value.Type) + ">"
	case t.Primitive == "":
		return "struct"
	}
	return t.Primitive
}

// checkSchema compares the table's current schema with the dataset's
// columns: the fields to add (a dataset field or origin column the table
// lacks: added as optional, the rows before it have none) and what stops
// the sink, each with its fix.
func checkSchema(ts table.Schema, table string, cols []schema.Column, changelog bool) (add []table.Field, problems []string) {
	cs, err := columns(cols, changelog)
	if err != nil {
		return nil, []string{err.Error()}
	}
	want := map[string]bool{}
	for _, c := range cs {
		want[c.name] = true
		f, ok := ts.FieldByName(c.name)
		if !ok {
			nf := tableField(c)
			nf.Required = false
			add = append(add, nf)
			continue
		}
		if !sameType(f.Type, c.typ) {
			problems = append(problems, fmt.Sprintf("column %q of table %s is %s, but the sink writes %s: change the dataset's field type, or write to another table (Iceberg cannot change %s to %s)",
				c.name, table, typeString(f.Type), typeString(c.typ), typeString(f.Type), typeString(c.typ)))
			continue
		}
		if f.Required && !c.required {
			problems = append(problems, fmt.Sprintf("column %q of table %s is required, but the dataset's field may be null: make the column optional (ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL) or the field required",
				c.name, table, table, c.name))
		}
	}
	for _, f := range ts.Fields {
		if !want[f.Name] && f.Required {
			problems = append(problems, fmt.Sprintf("column %q of table %s is required, and the dataset has no such field: add it to the dataset, or make the column optional (ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL)",
				f.Name, table, table, f.Name))
		}
	}
	return add, problems
}

func tableField(c column) table.Field {
	f := table.Field{Name: c.name, Required: c.required, Type: c.typ}
	if c.typ.Element != nil {
		e := *c.typ.Element
		f.Type.Element = &e
	}
	return f
}

// fieldIDs names every column's field id in ts, as the Parquet encoder
// wants them (an embedding's element as "<name>.element").
func fieldIDs(ts table.Schema, cols []schema.Column, changelog bool) (map[string]int, error) {
	cs, err := columns(cols, changelog)
	if err != nil {
		return nil, err
	}
	ids := make(map[string]int, len(cs))
	for _, c := range cs {
		f, ok := ts.FieldByName(c.name)
		if !ok {
			return nil, fmt.Errorf("the table has no column %q", c.name)
		}
		ids[c.name] = f.ID
		if f.Type.Element != nil {
			ids[c.name+".element"] = f.Type.Element.ID
		}
	}
	return ids, nil
}
