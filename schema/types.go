package schema

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is the kind of a Type.
type Kind uint8

// The kinds of Fennel types.
const (
	KindInvalid Kind = iota
	KindInt
	KindFloat
	KindBool
	KindStr
	KindBytes
	KindDatetime
	KindDate
	KindDecimal
	KindOptional
	KindList
	KindMap
	KindStruct
	KindEmbedding
)

var kindNames = [...]string{
	KindInvalid:   "invalid",
	KindInt:       "int",
	KindFloat:     "float",
	KindBool:      "bool",
	KindStr:       "str",
	KindBytes:     "bytes",
	KindDatetime:  "datetime",
	KindDate:      "date",
	KindDecimal:   "decimal",
	KindOptional:  "optional",
	KindList:      "list",
	KindMap:       "map",
	KindStruct:    "struct",
	KindEmbedding: "embedding",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Type is a parsed Fennel type.
type Type struct {
	Kind Kind
	// Elem is the element type of optional, list and map.
	Elem *Type
	// Scale is the number of digits after the point of a decimal (1..28).
	Scale int
	// Dim is the length of an embedding.
	Dim int
	// Fields are the fields of a struct. ParseType leaves them empty; the types
	// in Schema.Columns have them.
	Fields []Column
}

// Column is a named, typed field of a schema or a struct.
type Column struct {
	Name string
	Type Type
	// Key says the field is part of the dataset's key (FieldSpec.Key).
	Key bool
}

// Nullable reports whether the type accepts null (it is optional[T]).
func (t Type) Nullable() bool { return t.Kind == KindOptional }

// String formats the type as ParseType reads it (a struct is just "struct").
func (t Type) String() string {
	switch t.Kind {
	case KindDecimal:
		return "decimal[" + strconv.Itoa(t.Scale) + "]"
	case KindEmbedding:
		return "embedding[" + strconv.Itoa(t.Dim) + "]"
	case KindOptional, KindList, KindMap:
		e := "?"
		if t.Elem != nil {
			e = t.Elem.String()
		}
		return t.Kind.String() + "[" + e + "]"
	}
	return t.Kind.String()
}

const (
	maxDecimalScale  = 28
	maxDecimalDigits = 38 // int128 holds every 38-digit unscaled value
	maxEmbeddingDim  = 1 << 20
	maxTypeDepth     = 32
)

const typeList = "int, float, bool, str, bytes, datetime, date, decimal[p], optional[T], list[T], map[T], struct, embedding[n]"

// ParseType parses a Fennel type string: int, float, bool, str, bytes,
// datetime, date, decimal[p] (1 <= p <= 28), optional[T], list[T], map[T]
// (string keys; dict[T] is an alias), struct, embedding[n] (n >= 1). Names are
// case-insensitive (Optional[int] works) and blanks around brackets are allowed.
func ParseType(s string) (Type, error) {
	p := typeParser{s: s}
	p.space()
	if p.i == len(s) {
		return Type{}, fmt.Errorf("required (want %s)", typeList)
	}
	t, err := p.parse(0)
	if err != nil {
		return Type{}, err
	}
	p.space()
	if p.i != len(s) {
		return Type{}, fmt.Errorf("unexpected %q after %s in type %q", s[p.i:], t, s)
	}
	return t, nil
}

type typeParser struct {
	s string
	i int
}

func (p *typeParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= '0' && c <= '9'
}

func (p *typeParser) parse(depth int) (Type, error) {
	if depth > maxTypeDepth {
		return Type{}, fmt.Errorf("type %q nests deeper than %d", p.s, maxTypeDepth)
	}
	p.space()
	start := p.i
	for p.i < len(p.s) && isIdentByte(p.s[p.i]) {
		p.i++
	}
	word := p.s[start:p.i]
	if word == "" {
		if p.i < len(p.s) {
			return Type{}, fmt.Errorf("unexpected %q in type %q (want %s)", p.s[p.i:], p.s, typeList)
		}
		return Type{}, fmt.Errorf("type %q ends early (want %s)", p.s, typeList)
	}
	name := strings.ToLower(word)
	var t Type
	switch name {
	case "int":
		t.Kind = KindInt
	case "float":
		t.Kind = KindFloat
	case "bool":
		t.Kind = KindBool
	case "str":
		t.Kind = KindStr
	case "bytes":
		t.Kind = KindBytes
	case "datetime":
		t.Kind = KindDatetime
	case "date":
		t.Kind = KindDate
	case "struct":
		t.Kind = KindStruct
	case "decimal", "embedding":
		n, err := p.intParam(name)
		if err != nil {
			return Type{}, err
		}
		if name == "decimal" {
			if n < 1 || n > maxDecimalScale {
				return Type{}, fmt.Errorf("decimal[%d]: scale must be 1..%d (use int for scale 0)", n, maxDecimalScale)
			}
			return Type{Kind: KindDecimal, Scale: n}, nil
		}
		if n < 1 || n > maxEmbeddingDim {
			return Type{}, fmt.Errorf("embedding[%d]: dimension must be 1..%d", n, maxEmbeddingDim)
		}
		return Type{Kind: KindEmbedding, Dim: n}, nil
	case "optional", "list", "map", "dict":
		kind := map[string]Kind{"optional": KindOptional, "list": KindList, "map": KindMap, "dict": KindMap}[name]
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != '[' {
			return Type{}, fmt.Errorf("%s needs an element type: %s[T]", name, name)
		}
		p.i++
		elem, err := p.parse(depth + 1)
		if err != nil {
			return Type{}, err
		}
		p.space()
		if p.i < len(p.s) && p.s[p.i] == ',' && kind == KindMap {
			return Type{}, fmt.Errorf("map keys are always str: write map[T], not map[K, T]")
		}
		if p.i >= len(p.s) || p.s[p.i] != ']' {
			return Type{}, fmt.Errorf("missing ']' after %s[%s in type %q", name, elem, p.s)
		}
		p.i++
		if kind == KindOptional && elem.Kind == KindOptional {
			return Type{}, fmt.Errorf("optional[optional[...]] is not a type: write optional[%s]", elem.Elem)
		}
		return Type{Kind: kind, Elem: &elem}, nil
	default:
		return Type{}, fmt.Errorf("unknown type %q (want %s)", word, typeList)
	}
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '[' {
		return Type{}, fmt.Errorf("%s takes no parameter", name)
	}
	return t, nil
}

func (p *typeParser) intParam(name string) (int, error) {
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != '[' {
		return 0, fmt.Errorf("%s needs a size: %s[n]", name, name)
	}
	p.i++
	p.space()
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	digits := p.s[start:p.i]
	p.space()
	if digits == "" || p.i >= len(p.s) || p.s[p.i] != ']' {
		return 0, fmt.Errorf("%s needs an integer size: %s[n], in type %q", name, name, p.s)
	}
	p.i++
	if len(digits) > 9 {
		return 0, fmt.Errorf("%s[%s]: size too large", name, digits)
	}
	n, _ := strconv.Atoi(digits)
	return n, nil
}
