package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// SchemaID is the $id of the generated JSON Schema: where the committed file
// is served raw, for a modeline that names a URL.
const SchemaID = "https://raw.githubusercontent.com/kinesis-ingest/kinesis-ingest/main/kinesis-ingest.schema.json"

// durationPattern matches what time.ParseDuration takes without a sign
// (negative durations are never valid here).
const durationPattern = `^(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h))+$`

// envRefPattern matches a value that names an environment variable: it is
// only known after ${VAR} expansion, so the schema accepts it wherever a
// typed value goes, as the loader does.
const envRefPattern = `\$\{[^}]+\}`

// JSONSchema returns the config's JSON Schema (draft-07, which editors'
// YAML language servers read), generated from the spec in spec.go. It checks
// the shape of a config (keys, types, defaults, ranges, patterns, exactly one
// of file or postgres), not what only the loader can check (references
// between sections, file contents, where expressions, field types).
func JSONSchema() []byte {
	root := schemaOf(configSpec())
	doc := obj{
		{"$schema", "http://json-schema.org/draft-07/schema#"},
		{"$id", SchemaID},
		{"title", "kinesis-ingest configuration"},
	}
	doc = append(doc, root...)
	defs := obj{{"envRef", obj{
		{"type", "string"},
		{"pattern", envRefPattern},
		{"description", "${VAR}: the value of an environment variable, expanded when the config loads."},
	}}}
	for _, name := range []string{"field"} {
		defs = append(defs, member{name, schemaOf(definitions()[name])})
	}
	doc = append(doc, member{"definitions", defs})
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		panic(fmt.Sprintf("encode the config's JSON Schema: %v", err)) // only plain values above
	}
	return buf.Bytes()
}

// schemaOf is s as a JSON Schema.
func schemaOf(s *spec) obj {
	var o obj
	desc := s.doc
	if d := s.defaultString(); d != "" {
		desc += " Default: " + d + "."
	}
	typed := obj{}
	switch s.kind {
	case kObject:
		typed = append(typed, member{"type", "object"})
		props := obj{}
		var req []string
		for _, k := range s.keys {
			ks := schemaOf(k.spec)
			if k.def == nil && k.defaultDoc == "" {
				// Every key says what happens without it.
				note := " Optional; no default."
				if k.required {
					note = " Required."
				}
				for i := range ks {
					if ks[i].k == "description" {
						ks[i].v = ks[i].v.(string) + note
					}
				}
			}
			props = append(props, member{k.name, ks})
			if k.required {
				req = append(req, k.name)
			}
		}
		typed = append(typed, member{"properties", props})
		if len(req) > 0 {
			typed = append(typed, member{"required", req})
		}
		typed = append(typed, member{"additionalProperties", false})
		if len(s.exactlyOne) > 0 {
			var alts []obj
			for _, k := range s.exactlyOne {
				alts = append(alts, obj{{"required", []string{k}}})
			}
			typed = append(typed, member{"oneOf", alts})
		}
	case kArray:
		typed = append(typed, member{"type", "array"})
		if s.ref != "" {
			typed = append(typed, member{"items", obj{{"$ref", "#/definitions/" + s.ref}}})
		} else if s.items != nil {
			typed = append(typed, member{"items", schemaOf(s.items)})
		}
		if s.minItems > 0 {
			typed = append(typed, member{"minItems", s.minItems})
		}
	case kString:
		if s.nullable {
			typed = append(typed, member{"type", []string{"string", "null"}})
		} else {
			typed = append(typed, member{"type", "string"})
		}
		if len(s.enum) > 0 {
			typed = append(typed, member{"enum", s.enum})
		}
		if s.pattern != "" {
			typed = append(typed, member{"pattern", s.pattern})
		}
		if s.minLen > 0 {
			typed = append(typed, member{"minLength", s.minLen})
		}
		if s.maxLen > 0 {
			typed = append(typed, member{"maxLength", s.maxLen})
		}
	case kInteger:
		typed = append(typed, member{"type", "integer"})
		if s.min != nil {
			typed = append(typed, member{"minimum", *s.min})
		}
		if s.max != nil {
			typed = append(typed, member{"maximum", *s.max})
		}
	case kNumber:
		typed = append(typed, member{"type", "number"})
	case kBoolean:
		typed = append(typed, member{"type", "boolean"})
	case kDuration:
		typed = append(typed, member{"type", "string"}, member{"pattern", durationPattern})
	case kAny:
	case kOneOf:
		var alts []obj
		for _, a := range s.alts {
			alts = append(alts, schemaOf(a))
		}
		typed = append(typed, member{"anyOf", alts})
	}
	if desc != "" {
		o = append(o, member{"description", strings.TrimSpace(desc)})
	}
	if s.def != nil {
		o = append(o, member{"default", s.def})
	}
	if s.needsEnvRef() {
		o = append(o, member{"anyOf", []obj{typed, {{"$ref", "#/definitions/envRef"}}}})
	} else {
		o = append(o, typed...)
	}
	return o
}

// needsEnvRef reports whether a ${VAR} string would fail s's own schema:
// typed scalars, and strings held to a pattern or a set of values.
func (s *spec) needsEnvRef() bool {
	switch s.kind {
	case kInteger, kNumber, kBoolean, kDuration:
		return true
	case kString:
		return s.pattern != "" || len(s.enum) > 0 || s.minLen > 0 || s.maxLen > 0
	}
	return false // a kOneOf's alternatives each accept ${VAR} where they need to
}

// obj is a JSON object that keeps its members in order, so the generated
// schema reads in the order of the config and diffs stay small.
type obj []member

type member struct {
	k string
	v any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(m.k)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		v, err := marshalNoEscape(m.v)
		if err != nil {
			return nil, err
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
