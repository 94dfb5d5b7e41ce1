package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// comparable drops what Load compiles (schemas, filters) and the warnings,
// so configs can be compared by what they say.
func comparable(c *Config) *Config {
	cp := *c
	cp.Warnings = nil
	cp.Datasets = append([]Dataset(nil), c.Datasets...)
	for i := range cp.Datasets {
		cp.Datasets[i].Schema, cp.Datasets[i].Filter, cp.Datasets[i].TimestampOnly = nil, nil, nil
	}
	return &cp
}

// TestPrintRoundTrip: the printed effective config (unmasked) loads back to
// the same config, for every good file and the spec's coverage configs, so
// print leaves out nothing the worker uses.
func TestPrintRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yaml")
	var cfgs []*Config
	var names []string
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		cfgs, names = append(cfgs, c), append(names, filepath.Base(f))
	}
	for i, d := range specCoverage {
		c, err := Parse([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		cfgs, names = append(cfgs, c), append(names, "specCoverage"+string(rune('0'+i)))
	}
	s := compileJSONSchema(t)
	for i, c := range cfgs {
		t.Run(names[i], func(t *testing.T) {
			out, err := render(c, false)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(out)
			if err != nil {
				t.Fatalf("the printed config does not load: %v\n%s", err, out)
			}
			if got, want := comparable(back), comparable(c); !reflect.DeepEqual(got, want) {
				t.Errorf("the printed config loads differently:\n got %+v\nwant %+v\nprinted:\n%s", got, want, out)
			}
			var root yaml.Node
			if err := yaml.Unmarshal(out, &root); err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(yamlValue(t, root.Content[0])); err != nil {
				t.Errorf("the printed config fails the JSON Schema: %v\n%s", err, out)
			}
		})
	}
}

// TestPrintDollarBraces: a value holding a literal ${ prints as $${, so the
// output does not ask for a variable on its way back in.
func TestPrintDollarBraces(t *testing.T) {
	c, err := Parse([]byte(minimalWith(`
consumer: {worker_id: "w-$${HOST}"}`)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Print(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "worker_id: w-$${HOST}") {
		t.Errorf("worker_id not escaped:\n%s", out)
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if back.Consumer.WorkerID != "w-${HOST}" {
		t.Errorf("worker_id after a round trip = %q", back.Consumer.WorkerID)
	}
}

func minimalWith(extra string) string {
	return `
sources:
  - name: orders
    kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}
datasets:
  - {name: orders, source: orders, sink: out, fields: [{name: ts, type: datetime}]}
sinks:
  - {name: out, file: {path: out}}
dead_letter:
  file: {path: errors}
` + extra
}

// TestPrintShowsSpecDefaults: a config that sets nothing optional prints
// every key that has a default in the spec with exactly that default, so the
// defaults the JSON Schema documents are the ones the worker uses.
func TestPrintShowsSpecDefaults(t *testing.T) {
	for name, doc := range map[string]string{
		"file": minimalWith(""),
		"postgres and avro": `
sources:
  - name: orders
    kinesis:
      stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
      format: {avro: {schema_file: testdata/clicks.avsc}}
datasets:
  - {name: orders, source: orders, sink: pg, fields: [{name: ts, type: datetime}]}
sinks:
  - {name: pg, postgres: {dsn: "host=db", table: t}}
dead_letter:
  postgres: {dsn: "host=db", table: dl}
`} {
		t.Run(name, func(t *testing.T) {
			c, err := Parse([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			out, err := render(c, false)
			if err != nil {
				t.Fatal(err)
			}
			var root yaml.Node
			if err := yaml.Unmarshal(out, &root); err != nil {
				t.Fatal(err)
			}
			checked := 0
			var check func(path string, s *spec, n *yaml.Node)
			check = func(path string, s *spec, n *yaml.Node) {
				s = s.resolved()
				switch {
				case s.kind == kObject && n.Kind == yaml.MappingNode:
					for _, k := range s.keys {
						var v *yaml.Node
						for i := 0; i+1 < len(n.Content); i += 2 {
							if n.Content[i].Value == k.name {
								v = n.Content[i+1]
							}
						}
						if v == nil {
							if k.def != nil {
								t.Errorf("%s: has default %v in the spec but is not printed", join(path, k.name), k.def)
							}
							continue
						}
						if k.def != nil && (k.kind != kOneOf || v.Kind == yaml.ScalarNode) {
							checked++
							if got := yamlValue(t, v); !reflect.DeepEqual(got, k.def) {
								t.Errorf("%s: the worker uses %v (%T), the spec documents %v (%T)", join(path, k.name), got, got, k.def, k.def)
							}
						}
						check(join(path, k.name), k.spec, v)
					}
				case s.kind == kArray && n.Kind == yaml.SequenceNode && s.ref == "" && s.items != nil:
					for _, item := range n.Content {
						check(path+"[]", s.items, item)
					}
				}
			}
			check("", configSpec(), root.Content[0])
			if checked < 10 {
				t.Errorf("only %d defaults checked", checked)
			}
		})
	}
}

// TestPrintMasksSecrets: every secret a config can hold is masked; the test
// config sets every key the spec marks secret, and passwords in DSNs of both
// forms and in a registry URL.
func TestPrintMasksSecrets(t *testing.T) {
	doc := `
sources:
  - name: orders
    kinesis:
      stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
      role_arn: arn:aws:iam::000000000000:role/reader
      external_id: secret-external-1
      format: {avro: {registry: {url: "https://u:secret-url-2@r.example.com", username: u, password: "${PRINT_TEST_PW}"}}}
  - name: clicks
    kinesis:
      stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/clicks"
      format: {avro: {registry: {url: "https://r.example.com/?api_key=secret-query-10&region=eu", token: secret-token-4}}}
  - name: events
    kinesis:
      stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/events"
      format: {avro: {registry: {glue: {registry_name: shop, role_arn: "arn:aws:iam::000000000000:role/glue", external_id: secret-external-12}}}}
datasets:
  - {name: orders, source: orders, sink: url, fields: [{name: ts, type: datetime}]}
  - {name: clicks, source: clicks, sink: kv, fields: [{name: ts, type: datetime}]}
  - {name: q, source: clicks, sink: query, fields: [{name: ts, type: datetime}]}
  - {name: lakehouse, source: clicks, sink: ice, fields: [{name: ts, type: datetime}]}
  - {name: events, source: events, sink: glue, fields: [{name: ts, type: datetime}]}
sinks:
  - {name: url, postgres: {dsn: "postgres://ingest:secret-dsn-5@db:5432/x?sslmode=require", table: a}}
  - {name: kv, postgres: {dsn: "host=db user=ingest password='secret dsn 6' sslpassword=secret-dsn-7 dbname=x", table: b}}
  - {name: query, postgres: {dsn: "postgresql://db/x?user=ingest&password=secret-dsn-8", table: c}}
  - {name: glue, postgres: {dsn: "host=db", table: e}}
  - {name: ice, iceberg: {catalog: {uri: "postgres://cat:secret-dsn-11@db/catalog"}, warehouse: "s3://lake/wh", namespace: raw}}
dead_letter:
  postgres: {dsn: "host=db password=secret-dsn-9", table: dl}
`
	t.Setenv("PRINT_TEST_PW", "secret-env-3")
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Print(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"secret-external-1", "secret-url-2", "secret-env-3", "secret-token-4", "secret-dsn-5", "secret dsn 6", "secret-dsn-7", "secret-dsn-8", "secret-dsn-9", "secret-query-10", "secret-dsn-11", "secret-external-12", "secret"} {
		if strings.Contains(string(out), s) {
			t.Errorf("printed config shows %q:\n%s", s, out)
		}
	}
	for _, want := range []string{
		"external_id: '*****'", "password: '*****'", "token: '*****'",
		"url: https://*****@r.example.com",
		"url: https://r.example.com/?api_key=*****&region=eu",
		"dsn: postgres://*****@db:5432/x?sslmode=require",
		"dsn: host=db user=ingest password=***** sslpassword=***** dbname=x",
		"dsn: postgresql://db/x?user=ingest&password=*****",
		"dsn: host=db password=*****",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("printed config lacks %q:\n%s", want, out)
		}
	}
	// Every key the spec marks secret is set above, so a new secret key
	// fails here until this test sets it too.
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	var collect func(path string, n *yaml.Node)
	collect = func(path string, n *yaml.Node) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				collect(join(path, n.Content[i].Value), n.Content[i+1])
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				collect(path+"[]", c)
			}
		default:
			set[path] = true
		}
	}
	collect("", root.Content[0])
	configSpec().walk("", map[string]bool{}, false, func(path string, s *spec, _ bool) {
		if s.secret && !set[path] {
			t.Errorf("%s is secret in the spec but this test does not set it", path)
		}
	})
}
