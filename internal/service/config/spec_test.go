package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the committed JSON Schema (../../../kinesis-ingest.schema.json)")

// schemaFile is the committed JSON Schema, for editors.
const schemaFile = "../../../kinesis-ingest.schema.json"

// TestSchemaFileIsCurrent fails when the committed schema is not what the
// spec generates: run `go test ./internal/service/config -run TestSchemaFileIsCurrent -update`.
func TestSchemaFileIsCurrent(t *testing.T) {
	got := JSONSchema()
	if *update {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatalf("%v; generate it with go test ./internal/service/config -run TestSchemaFileIsCurrent -update", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what the spec generates; regenerate it with go test ./internal/service/config -run TestSchemaFileIsCurrent -update", schemaFile)
	}
}

func compileJSONSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSONSchema()))
	if err != nil {
		t.Fatalf("the generated schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("the generated schema does not compile (draft-07): %v", err)
	}
	return s
}

// yamlValue is a YAML document as the JSON value a YAML language server
// validates: mappings (merge keys applied), lists, and scalars by their
// resolved tag (timestamps stay strings, as in JSON).
func yamlValue(t *testing.T, n *yaml.Node) any {
	t.Helper()
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		var merges []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].ShortTag() == "!!merge" {
				merges = append(merges, deref(n.Content[i+1]))
				continue
			}
			m[n.Content[i].Value] = yamlValue(t, n.Content[i+1])
		}
		for _, mv := range merges {
			srcs := []*yaml.Node{mv}
			if mv.Kind == yaml.SequenceNode {
				srcs = mv.Content
			}
			for _, src := range srcs {
				for k, v := range yamlValue(t, src).(map[string]any) {
					if _, ok := m[k]; !ok {
						m[k] = v
					}
				}
			}
		}
		return m
	case yaml.SequenceNode:
		s := []any{}
		for _, c := range n.Content {
			s = append(s, yamlValue(t, c))
		}
		return s
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				t.Fatal(err)
			}
			return b
		case "!!int":
			if v, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
				return v
			}
			var f float64
			if err := n.Decode(&f); err != nil {
				t.Fatal(err)
			}
			return f
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				t.Fatal(err)
			}
			return f
		}
		return n.Value
	}
	return nil
}

func fileValue(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil // not YAML: nothing for the schema to check
	}
	if len(root.Content) == 0 {
		return nil
	}
	return yamlValue(t, root.Content[0])
}

// TestSchemaAcceptsGoodConfigs: every config the loader accepts is valid
// under the JSON Schema, so an editor never flags a working config.
func TestSchemaAcceptsGoodConfigs(t *testing.T) {
	s := compileJSONSchema(t)
	files, _ := filepath.Glob("testdata/*.good.yaml")
	files = append(files, "../../../deploy/compose/worker.yaml", "../../../cmd/kinesis-ingest-demo/demo.yaml")
	// deploy/kubernetes's config is checked by internal/tools/deploycheck.
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if err := s.Validate(fileValue(t, f)); err != nil {
				t.Errorf("the schema rejects a good config:\n%v", err)
			}
		})
	}
}

// TestSchemaRejectsShapeBadConfigs: every bad config fails the schema
// unless its header says `# schema: valid: <why>` (its problem is one only
// the loader can see: a reference to another section, a file's contents, a
// where expression); such a file must then pass the schema, so the marker
// cannot go stale.
func TestSchemaRejectsShapeBadConfigs(t *testing.T) {
	s := compileJSONSchema(t)
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			valid := slices.ContainsFunc(header(data, "schema"), func(s string) bool { return strings.HasPrefix(s, "valid") })
			v := fileValue(t, f)
			if v == nil {
				return // not YAML: the loader's error is all there is
			}
			err = s.Validate(v)
			switch {
			case err == nil && !valid:
				t.Errorf("the schema accepts this bad config; tighten the spec, or mark the file `# schema: valid: <why only the loader sees it>`")
			case err != nil && valid:
				t.Errorf("marked `# schema: valid` but the schema rejects it:\n%v", err)
			}
		})
	}
}

// specCoverage are configs that, with the good files, reach every object of
// the spec: each branch of an exactly-one (file or postgres, schema_file or
// registry) once.
var specCoverage = []string{`
sources:
  - name: orders
    kinesis:
      stream_arn: arn:aws:kinesis:us-east-1:000000000000:stream/orders
      format: {avro: {registry: {url: "https://r.example.com", token: t, ca_file: testdata/clicks.avsc}}}
    env: [prod, staging]
    bounded: true
    idleness: 5m
    max_record_age: 24h
    expired: skip
  - name: clicks
    kinesis:
      stream_arn: arn:aws:kinesis:us-east-1:000000000000:stream/clicks
      format: {avro: {schema_file: testdata/clicks.avsc, framing: binary}}
  - name: logs
    kinesis:
      stream_arn: arn:aws:kinesis:us-east-1:000000000000:stream/logs
      format: {cloudwatch_logs: {message: json}}
      max_decompressed_bytes: 1048576
  - name: events
    kinesis:
      stream_arn: arn:aws:kinesis:us-east-1:000000000000:stream/events
      format: {avro: {registry: {glue: {registry_name: shop, region: eu-west-1, role_arn: "arn:aws:iam::000000000000:role/glue", external_id: ext-1}}}}
datasets:
  - name: orders
    source: orders
    fields:
      - {name: ts, type: datetime}
      - {name: n, type: int, between: {min: 0, max: 9, strict_min: true, strict_max: false}, oneof: [1, 2]}
      - {name: s, type: str, regex: "a+", const: a}
      - {name: addr, type: struct, fields: [{name: city, type: str}]}
      - {name: n2, type: int, expr: n * 2}
      - {name: n3, type: int, expr: raw + 1}
    inputs:
      - {name: raw, type: int, ref: payload.raw}
    sink: pg
    since: 2024-05-01T00:00:00Z
    until: "2024-06-01T00:00:00Z"
    sample: {rate: 0.5, using: [n]}
    env: prod
  - {name: clicks, source: clicks, fields: [{name: ts, type: datetime}], sink: pg2}
  - {name: events, source: [events, orders], fields: [{name: ts, type: datetime}], sink: pg3}
sinks:
  - {name: pg, max_retry_duration: 1h, postgres: {dsn: "host=db", table: t}}
  - {name: pg2, postgres: {dsn: "host=db", table: t2}}
  - {name: pg3, postgres: {dsn: "host=db", table: t3}}
dead_letter:
  postgres: {dsn: "host=db", table: dl}
errors: {listen: "127.0.0.1:0"}
`, `
sources:
  - {name: orders, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}}
datasets:
  - {name: orders, source: orders, sink: files, sample: 0.1, fields: [{name: ts, type: datetime}, {name: id, type: int}]}
sinks:
  - {name: files, file: {path: out/rows, mode: 0640}}
dead_letter:
  file: {path: out/errors, mode: "0600"}
`, `
sources:
  - {name: orders, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}}
datasets:
  - {name: orders, source: orders, sink: lake, timestamp: ts, fields: [{name: ts, type: datetime}, {name: country, type: str}]}
sinks:
  - name: lake
    s3: {bucket: my-lake, prefix: raw/orders, format: parquet, compression: snappy, partition_by: [date, hour, country],
         max_bytes: 1000000, max_interval: 30s, force_path_style: true, role_arn: "arn:aws:iam::123456789012:role/lake",
         sse_kms_key_id: "arn:aws:kms:us-east-1:123456789012:key/abc"}
dead_letter:
  file: {path: out/errors}
`, `
sources:
  - {name: orders, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}}
datasets:
  - {name: orders, source: orders, sink: lake, fields: [{name: ts, type: datetime}]}
sinks:
  - {name: lake, s3: {bucket: my-lake, prefix: lake}}
dead_letter:
  s3: {bucket: my-lake, prefix: errors/orders, compression: zstd, force_path_style: true,
       role_arn: "arn:aws:iam::123456789012:role/lake", sse_kms_key_id: "arn:aws:kms:us-east-1:123456789012:key/abc"}
`, `
sources:
  - {name: orders, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}}
datasets:
  - {name: orders, source: orders, sink: ice, fields: [{name: ts, type: datetime}, {name: id, type: int}]}
sinks:
  - name: ice
    iceberg: {catalog: {type: sql, uri: "host=db", name: lake}, warehouse: "s3://my-lake/warehouse", namespace: analytics.raw,
              table: orders_v1, create_table: true, partition_by: ["day(ts)", "bucket(16, id)"], commit_interval: 30s,
              buffer_bytes: 1000000, compression: snappy, force_path_style: true, role_arn: "arn:aws:iam::123456789012:role/lake",
              sse_kms_key_id: "arn:aws:kms:us-east-1:123456789012:key/abc"}
dead_letter:
  file: {path: out/errors}
`}

// TestSpecMatchesLoader ties the spec (and so the JSON Schema) to the
// loader: it loads the good files and specCoverage while the loader records
// the keys of every mapping it reads and how it reads each scalar, then
// fails on any key, type, default or bound where the two disagree, and on
// any object of the spec the configs never reach.
func TestSpecMatchesLoader(t *testing.T) {
	rec := &recording{objects: map[string][]string{}, scalars: map[string]scalarUse{}}
	files, _ := filepath.Glob("testdata/*.good.yaml")
	var docs [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, data)
	}
	for _, d := range specCoverage {
		docs = append(docs, []byte(d))
	}
	for i, d := range docs {
		l := newLoader("testdata")
		if i >= len(files) {
			l = newLoader("")
		}
		l.rec = rec
		if _, err := parseWith(l, d); err != nil {
			t.Fatalf("config %d does not load: %v", i, err)
		}
	}

	for path, keys := range rec.objects {
		s := configSpec().at(path)
		if s == nil || s.kind != kObject {
			t.Errorf("%s: the loader reads a mapping here (keys %s) that the spec does not have; add it to spec.go", path, strings.Join(keys, ", "))
			continue
		}
		var specKeys []string
		for _, k := range s.keys {
			specKeys = append(specKeys, k.name)
		}
		for _, k := range keys {
			if !slices.Contains(specKeys, k) {
				t.Errorf("%s: the loader accepts key %q that the spec lacks; add it to spec.go with its type, default and doc", path, k)
			}
		}
		for _, k := range specKeys {
			if !slices.Contains(keys, k) {
				t.Errorf("%s: the spec has key %q that the loader rejects", path, k)
			}
		}
	}
	for path, u := range rec.scalars {
		s := configSpec().at(path)
		if s == nil {
			continue // reported with its mapping
		}
		if s.kind == kOneOf {
			// A scalar read as text whose forms the spec spells out (file.mode:
			// "0640" or 0640): one alternative must be what the loader reads.
			if !slices.ContainsFunc(s.alts, func(a *spec) bool { return a.kind == u.kind }) {
				t.Errorf("%s: the loader reads a %s, which none of the spec's alternatives is", path, kindName2(u.kind))
			}
			continue
		}
		if s.kind != u.kind {
			t.Errorf("%s: the loader reads a %s, the spec says %s", path, kindName2(u.kind), kindName2(s.kind))
			continue
		}
		if s.def == nil && s.defaultDoc != "" {
			continue // no default of its own (idleness: required with bounded)
		}
		switch u.kind {
		case kInteger:
			if s.def != u.def || s.min == nil || *s.min != u.lo || (u.hi == unbounded) != (s.max == nil) || (s.max != nil && *s.max != u.hi) {
				t.Errorf("%s: the loader's default %v and range %d..%d differ from the spec's %v and %s", path, u.def, u.lo, u.hi, s.def, specRange(s))
			}
		case kBoolean, kDuration:
			if s.def != u.def || s.zeroOK != u.zeroOK {
				t.Errorf("%s: the loader's default %v (zero allowed: %v) differs from the spec's %v (%v)", path, u.def, u.zeroOK, s.def, s.zeroOK)
			}
		}
	}
	configSpec().walk("", map[string]bool{}, false, func(path string, s *spec, reflected bool) {
		if s.doc == "" && path != "" {
			t.Errorf("%s: no doc in the spec; editors show it", path)
		}
		switch {
		case reflected && s.kind != kObject:
			return // yaml.v3 decodes it into schema.FieldSpec: no typed reader
		case s.kind == kObject:
			if _, ok := rec.objects[path]; !ok {
				t.Errorf("%s: no config of this test reaches this object of the spec; extend specCoverage", path)
			}
		case s.kind == kInteger || s.kind == kBoolean || s.kind == kDuration:
			if _, ok := rec.scalars[path]; !ok {
				t.Errorf("%s: the loader never reads this %s with a typed reader; read it with l.integer, l.boolean or l.duration so its default is checked", path, kindName2(s.kind))
			}
		}
	})
}

func specRange(s *spec) string {
	lo, hi := "-", "unbounded"
	if s.min != nil {
		lo = strconv.FormatInt(*s.min, 10)
	}
	if s.max != nil {
		hi = strconv.FormatInt(*s.max, 10)
	}
	return lo + ".." + hi
}

func kindName2(k kind) string {
	return [...]string{"object", "list", "string", "integer", "number", "boolean", "duration", "any value", "one of"}[k]
}

// at returns the spec of the value at a recorded path (list indexes
// dropped), following lists, definitions and the object alternative of a
// one-of; nil if the spec has none.
func (s *spec) at(path string) *spec {
	cur := s
	for _, tok := range splitPath(path) {
		cur = cur.resolved()
		if tok == "[]" {
			if cur.kind != kArray {
				return nil
			}
			if cur.ref != "" {
				cur = definitions()[cur.ref]
			} else {
				cur = cur.items
			}
			continue
		}
		if cur.kind != kObject {
			return nil
		}
		var next *spec
		for _, k := range cur.keys {
			if k.name == tok {
				next = k.spec
			}
		}
		if next == nil {
			return nil
		}
		cur = next
	}
	if cur != nil && cur.kind == kOneOf {
		// A mapping the loader reads here is the one-of's object alternative
		// (format: {avro: ...}); scalars have no typed reader to compare.
		return cur.resolved()
	}
	return cur
}

// resolved is the object alternative of a one-of, or s.
func (s *spec) resolved() *spec {
	if s != nil && s.kind == kOneOf {
		for _, a := range s.alts {
			if a.kind == kObject {
				return a
			}
		}
	}
	return s
}

func splitPath(p string) []string {
	var out []string
	for _, part := range strings.Split(p, ".") {
		if part == "" {
			continue
		}
		name, rest, _ := strings.Cut(part, "[")
		if name != "" {
			out = append(out, name)
		}
		for range strings.Count("["+rest, "[]") {
			out = append(out, "[]")
		}
	}
	return out
}

// walk calls fn on every value of the spec with its path, entering each
// definition once; reflected is true below an object the loader decodes
// with yaml.v3 (its keys checked against a struct's yaml tags).
func (s *spec) walk(path string, seen map[string]bool, reflected bool, fn func(string, *spec, bool)) {
	reflected = reflected || s.reflected
	fn(path, s, reflected)
	switch s.kind {
	case kObject:
		for _, k := range s.keys {
			k.walk(join(path, k.name), seen, reflected, fn)
		}
	case kArray:
		if s.ref != "" {
			if !seen[s.ref] {
				seen[s.ref] = true
				definitions()[s.ref].walk(path+"[]", seen, reflected, fn)
			}
		} else if s.items != nil && s.items.kind != kAny {
			s.items.walk(path+"[]", seen, reflected, fn)
		}
	case kOneOf:
		for _, a := range s.alts {
			if a.kind == kObject {
				a.walk(path, seen, reflected, fn)
			}
		}
	}
}

func TestSplitPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                                "",
		"sources[].kinesis":               "sources [] kinesis",
		"datasets[].fields[].fields[]":    "datasets [] fields [] fields []",
		"sources[].kinesis.format.avro":   "sources [] kinesis format avro",
		"datasets[].fields[].between.min": "datasets [] fields [] between min",
	} {
		if got := strings.Join(splitPath(in), " "); got != want {
			t.Errorf("splitPath(%q) = %q, want %q", in, got, want)
		}
	}
	if s := configSpec().at("sources[].kinesis.format.avro.registry"); s == nil || s.kind != kObject {
		t.Errorf("at(registry) = %v", s)
	}
	if s := configSpec().at("datasets[].fields[].fields[].between"); s == nil || s.kind != kObject {
		t.Errorf("at(nested between) = %v", s)
	}
}
