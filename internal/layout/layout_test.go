package layout

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/kinesis-ingest/kinesis-ingest"

// pkg is what go list says of one package of the module (tests left out: a
// test may import what its package may not).
type pkg struct {
	path    string // relative to the module: "sinks/file"
	dir     string
	files   []string // non-test Go files
	imports []string // direct import paths
	deps    []string // transitive import paths
}

func list(t *testing.T) map[string]*pkg {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the import rules are checked with go list: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-f",
		"{{.ImportPath}}\t{{.Dir}}\t{{join .GoFiles \",\"}}\t{{join .Imports \",\"}}\t{{join .Deps \",\"}}", module+"/...").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list %s/...: %v\n%s", module, err, stderr)
	}
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	pkgs := map[string]*pkg{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 5 {
			t.Fatalf("go list line %q: want 5 tab-separated fields", sc.Text())
		}
		p := &pkg{path: strings.TrimPrefix(f[0], module+"/"), dir: f[1], files: split(f[2]), imports: split(f[3]), deps: split(f[4])}
		pkgs[p.path] = p
	}
	return pkgs
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

// in reports whether the import path dep is the module's folder dir or inside it.
func in(dep, dir string) bool { return under(dep, module+"/"+dir) }

func ours(dep string) bool { return under(dep, module) }

func TestImportRules(t *testing.T) {
	pkgs := list(t)
	tests := []struct {
		name string
		// of: the packages the rule is about (a folder and what is below it).
		of []string
		// forbidden: what none of them may depend on, directly or not.
		forbidden func(dep string) bool
	}{
		{name: "record, the data model, depends on nothing of ours", of: []string{"record"},
			forbidden: ours},
		{name: "retry depends on nothing of ours", of: []string{"retry"},
			forbidden: ours},
		{name: "the stages depend on nothing under internal but its leaf helpers (internal/kit)",
			of:        []string{"record", "retry", "consumers", "decoders", "schema", "pipeline", "sinks", "metrics"},
			forbidden: func(d string) bool { return in(d, "internal") && !in(d, "internal/kit") }},
		{name: "the leaf helpers depend on nothing of ours", of: []string{"internal/kit"},
			forbidden: ours},
		{name: "the consumers depend on no sink and no pipeline", of: []string{"consumers"},
			forbidden: func(d string) bool { return in(d, "sinks") || in(d, "pipeline") }},
		{name: "no sink depends on the pipeline or a consumer", of: []string{"sinks"},
			forbidden: func(d string) bool { return in(d, "pipeline") || in(d, "consumers") }},
		{name: "the dataset types and config depend on no pipeline", of: []string{"schema", "internal/service/config"},
			forbidden: func(d string) bool { return in(d, "pipeline") }},
		{name: "the decoders depend on no sink, pipeline or consumer", of: []string{"decoders"},
			forbidden: func(d string) bool { return in(d, "sinks") || in(d, "pipeline") || in(d, "consumers") }},
		{name: "the worker binary links no testing and no test environment", of: []string{"cmd/kinesis-ingest"},
			forbidden: func(d string) bool { return under(d, "testing") || in(d, "internal/testenv") }},
		{name: "the product links no tool", of: []string{"cmd", "consumers", "decoders", "internal/kit", "internal/service", "metrics", "pipeline", "record", "retry", "schema", "sinks"},
			forbidden: func(d string) bool { return in(d, "internal/tools") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			for _, p := range pkgs {
				if !slices.ContainsFunc(tt.of, func(dir string) bool { return under(p.path, dir) }) {
					continue
				}
				n++
				for _, d := range p.deps {
					if tt.forbidden(d) {
						t.Errorf("%s depends on %s (%s)", p.path, d, why(pkgs, p, d))
					}
				}
			}
			if n == 0 {
				t.Fatalf("no package under %v: the rule checks nothing", tt.of)
			}
		})
	}
}

// why names the direct import of p through which it depends on dep.
func why(pkgs map[string]*pkg, p *pkg, dep string) string {
	for _, imp := range p.imports {
		if imp == dep {
			return "imported directly"
		}
		if q := pkgs[strings.TrimPrefix(imp, module+"/")]; q != nil && slices.Contains(q.deps, dep) {
			return "through " + imp
		}
	}
	return "through a dependency outside the module"
}

// TestTestEnvironmentsStayOutOfTheProduct: only the test environments
// themselves, the benchmark tools and the demo command (its own binary,
// cmd/kinesis-ingest-demo) import internal/testenv; tests may, and are not
// listed.
func TestTestEnvironmentsStayOutOfTheProduct(t *testing.T) {
	pkgs := list(t)
	checked := 0
	for _, p := range pkgs {
		if under(p.path, "internal/testenv") || under(p.path, "internal/tools/bench") || p.path == "cmd/kinesis-ingest-demo" {
			continue
		}
		checked++
		for _, imp := range p.imports {
			if in(imp, "internal/testenv") {
				t.Errorf("%s imports a test environment (%s): only tests, the bench tools and the demo command may", p.path, imp)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package checked")
	}
}

// TestInternalHasFourLayers: every package under internal/ says by its
// folder which layer it is: leaf helpers the stages may import (kit), the
// product's top layer (service), test environments (testenv) or tools, and
// this test.
func TestInternalHasFourLayers(t *testing.T) {
	layers := []string{"internal/kit", "internal/service", "internal/testenv", "internal/tools", "internal/layout"}
	n := 0
	for _, p := range list(t) {
		if !under(p.path, "internal") {
			continue
		}
		n++
		if !slices.ContainsFunc(layers, func(l string) bool { return under(p.path, l) }) {
			t.Errorf("%s is in none of the layers %v: move it into the one it belongs to", p.path, layers)
		}
	}
	if n == 0 {
		t.Fatal("no package under internal/")
	}
}
