package schema

import (
	"gopkg.in/yaml.v3"
)

// FieldSpec is one dataset field as written in YAML config.
type FieldSpec struct {
	Name string `yaml:"name"`
	// Type is a Fennel type string, see ParseType.
	Type string `yaml:"type"`
	// Ref is the path of the value in the record (user.address[0].city,
	// ["key.with.dots"].x). Empty means Name. For a field of a struct it is
	// relative to the struct's object.
	Ref string `yaml:"ref"`
	// Const is a constant value used for every record instead of Ref. HasConst
	// tells `const: null` apart from no const at all: UnmarshalYAML sets it when
	// the key is present; code building a FieldSpec by hand must set it.
	Const    any  `yaml:"const"`
	HasConst bool `yaml:"-"`
	// Expr computes the field (Fennel's preproc eval): an expression in the
	// where language over the dataset's other fields, evaluated on the row;
	// see CompileWith. Only top-level fields may have one, without ref or
	// const.
	Expr string `yaml:"expr"`
	// Input marks a field read from the record only for the computed fields
	// (and where) to use: it is not a column of the row. Inputs come after
	// every other field. Set by the config's dataset inputs, not in YAML.
	Input bool `yaml:"-"`
	// Fields are the fields of a struct type (struct, list[struct],
	// optional[struct], ...).
	Fields []FieldSpec `yaml:"fields"`
	// Oneof restricts an int or str (or optional of one) to a set of values.
	Oneof []any `yaml:"oneof"`
	// Between restricts an int or float (or optional of one) to a range.
	Between *Between `yaml:"between"`
	// Regex restricts a str (or optional[str]) to values the RE2 pattern
	// matches in full.
	Regex string `yaml:"regex"`
	// Key makes the field part of the dataset's key (Fennel's field(key=True)):
	// a keyed dataset holds one current row per key. Only top-level fields of
	// type int, str, bool, date, datetime or decimal, never optional, may be
	// keys.
	Key bool `yaml:"key"`
}

// Between restricts an int or float field to a range, inclusive by default.
// Min and Max are numbers (for an int field they must be integers); at least one
// must be set, a nil one is unbounded.
type Between struct {
	Min       any  `yaml:"min"`
	Max       any  `yaml:"max"`
	StrictMin bool `yaml:"strict_min"`
	StrictMax bool `yaml:"strict_max"`
}

// UnmarshalYAML decodes a FieldSpec and records in HasConst whether the const
// key is present (so that `const: null` is a null constant).
func (f *FieldSpec) UnmarshalYAML(n *yaml.Node) error {
	type plain FieldSpec
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*f = FieldSpec(p)
	f.HasConst = false
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "const" {
				f.HasConst = true
			}
		}
	}
	return nil
}
