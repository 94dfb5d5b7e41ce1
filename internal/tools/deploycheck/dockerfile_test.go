package deploycheck

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dockerfile is a parsed Dockerfile: its global ARGs and its stages.
type dockerfile struct {
	args   map[string]string // ARGs before the first FROM, with their defaults
	stages []*stage
}

type stage struct {
	from, name string
	instrs     []instr
}

type instr struct {
	cmd  string // upper case: RUN, COPY, ...
	args string // the rest, continuation lines joined
	line int
}

func (d *dockerfile) final() *stage { return d.stages[len(d.stages)-1] }

func (d *dockerfile) stage(name string) *stage {
	for _, s := range d.stages {
		if s.name == name {
			return s
		}
	}
	return nil
}

// last returns the arguments of the stage's last cmd instruction, or "".
func (s *stage) last(cmd string) string {
	for i := len(s.instrs) - 1; i >= 0; i-- {
		if s.instrs[i].cmd == cmd {
			return s.instrs[i].args
		}
	}
	return ""
}

// execForm returns the stage's last cmd instruction (CMD, ENTRYPOINT) in
// exec (JSON array) form, or nil.
func (s *stage) execForm(cmd string) []string {
	var l []string
	if json.Unmarshal([]byte(s.last(cmd)), &l) != nil {
		return nil
	}
	return l
}

// parseDockerfile reads the instructions of a Dockerfile: comments and parser
// directives dropped, backslash continuations joined.
func parseDockerfile(t *testing.T, file string) *dockerfile {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerfile{args: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	var cur strings.Builder
	start, n := 0, 0
	flush := func() {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := instr{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			f = slices.DeleteFunc(f, func(s string) bool { return strings.HasPrefix(s, "--") })
			s := &stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			d.stages = append(d.stages, s)
			return
		}
		if len(d.stages) == 0 {
			if in.cmd == "ARG" {
				k, v, _ := strings.Cut(in.args, "=")
				d.args[k] = v
			}
			return
		}
		s := d.final()
		s.instrs = append(s.instrs, in)
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue // a comment, also between continuation lines
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	if len(d.stages) == 0 {
		t.Fatalf("%s: no FROM", file)
	}
	return d
}

// shellWords splits a shell command line into words, honouring quotes and
// backslashes; it fails on anything that would make it more than one simple
// command.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated '")
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				w.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated \"")
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case strings.IndexByte(";&|<>`()", c) >= 0:
			return nil, fmt.Errorf("%q: only one simple command is supported here", string(c))
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// goBuild is the build stage's `go build` line, split into its environment
// assignments and arguments, with ${VAR} expanded from the ARGs.
type goBuild struct {
	env    map[string]string
	args   []string // after "go": build ...
	output string   // the -o value
	line   int
}

func findGoBuild(t *testing.T, d *dockerfile, args map[string]string) (*goBuild, *stage) {
	t.Helper()
	for _, s := range d.stages {
		for _, in := range s.instrs {
			if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
				continue
			}
			text := in.args
			for strings.HasPrefix(text, "--") { // RUN flags: --mount=..., --network=...
				_, text, _ = strings.Cut(text, " ")
				text = strings.TrimSpace(text)
			}
			words, err := shellWords(text)
			if err != nil {
				t.Fatalf("Dockerfile line %d: RUN %s: %v", in.line, in.args, err)
			}
			gb := &goBuild{env: map[string]string{}, line: in.line}
			i := 0
			for ; i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-"); i++ {
				k, v, _ := strings.Cut(words[i], "=")
				gb.env[k] = os.Expand(v, func(name string) string { return args[name] })
			}
			if i+1 >= len(words) || words[i] != "go" || words[i+1] != "build" {
				t.Fatalf("Dockerfile line %d: RUN %s: want [VAR=value ...] go build ...", in.line, in.args)
			}
			for _, w := range words[i+1:] {
				gb.args = append(gb.args, os.Expand(w, func(name string) string { return args[name] }))
			}
			if j := slices.Index(gb.args, "-o"); j >= 0 && j+1 < len(gb.args) {
				gb.output = gb.args[j+1]
			}
			return gb, s
		}
	}
	t.Fatal("Dockerfile has no RUN ... go build")
	return nil, nil
}

// buildArgs are the values of the ARGs as a plain `docker build` on this
// machine would set them: the Dockerfile's defaults, and BuildKit's target
// platform.
func buildArgs(d *dockerfile) map[string]string {
	args := map[string]string{"TARGETOS": "linux", "TARGETARCH": runtime.GOARCH, "BUILDPLATFORM": "linux/" + runtime.GOARCH}
	for k, v := range d.args {
		args[k] = v
	}
	for _, s := range d.stages {
		for _, in := range s.instrs {
			if in.cmd == "ARG" {
				if k, v, ok := strings.Cut(in.args, "="); ok {
					args[k] = v
				}
			}
		}
	}
	return args
}

func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	d := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	if len(d.stages) < 2 {
		t.Fatalf("Dockerfile has %d stage(s), want a multi-stage build (build, then a small runtime image)", len(d.stages))
	}
	args := buildArgs(d)
	gb, buildStage := findGoBuild(t, d, args)
	final := d.final()
	if final == buildStage {
		t.Fatalf("the final stage is the build stage (FROM %s)", final.from)
	}

	// The build stage's Go is at least go.mod's.
	from := os.Expand(buildStage.from, func(name string) string { return args[name] })
	m := regexp.MustCompile(`^golang:(\d+)\.(\d+)`).FindStringSubmatch(from)
	if m == nil {
		t.Errorf("build stage FROM %s: want an official golang:MAJOR.MINOR image", from)
	} else {
		gomod, _ := os.ReadFile(filepath.Join(root, "go.mod"))
		g := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindStringSubmatch(string(gomod))
		if g == nil {
			t.Fatal("go.mod has no go directive")
		}
		have, _ := strconv.Atoi(m[1] + fmt.Sprintf("%03s", m[2]))
		need, _ := strconv.Atoi(g[1] + fmt.Sprintf("%03s", g[2]))
		if have < need {
			t.Errorf("build stage FROM %s is older than go.mod's go %s.%s", from, g[1], g[2])
		}
	}

	// The flags of a static, reproducible, small binary.
	if gb.env["CGO_ENABLED"] != "0" {
		t.Errorf("Dockerfile line %d: go build without CGO_ENABLED=0", gb.line)
	}
	if !slices.Contains(gb.args, "-trimpath") {
		t.Errorf("Dockerfile line %d: go build without -trimpath", gb.line)
	}
	ldflags := ""
	for i, a := range gb.args {
		if v, ok := strings.CutPrefix(a, "-ldflags="); ok {
			ldflags = v
		} else if a == "-ldflags" && i+1 < len(gb.args) {
			ldflags = gb.args[i+1]
		}
	}
	if f := strings.Fields(ldflags); !slices.Contains(f, "-s") || !slices.Contains(f, "-w") {
		t.Errorf("Dockerfile line %d: go build -ldflags %q, want -s -w", gb.line, ldflags)
	}
	if gb.args[len(gb.args)-1] != "./cmd/kinesis-ingest" {
		t.Errorf("Dockerfile line %d: go build of %s, want ./cmd/kinesis-ingest", gb.line, gb.args[len(gb.args)-1])
	}
	if gb.output == "" {
		t.Fatalf("Dockerfile line %d: go build without -o", gb.line)
	}

	// The runtime stage copies that binary and runs it.
	copied := ""
	for _, in := range final.instrs {
		if in.cmd == "COPY" && strings.HasPrefix(in.args, "--from="+buildStage.name+" ") {
			f := strings.Fields(in.args)
			if len(f) == 3 && f[1] == gb.output {
				copied = f[2]
			}
		}
	}
	if copied == "" {
		t.Errorf("final stage: no COPY --from=%s %s DEST", buildStage.name, gb.output)
	}
	if ep := final.execForm("ENTRYPOINT"); len(ep) == 0 || ep[0] != copied {
		t.Errorf("final stage: ENTRYPOINT %q, want [%q] (exec form)", final.last("ENTRYPOINT"), copied)
	}
	if base := final.from; !regexp.MustCompile(`^(alpine|busybox|gcr\.io/distroless/static[\w-]*|scratch)(:|$)`).MatchString(base) {
		t.Errorf("final stage FROM %s: want a small base (alpine, busybox, distroless static, scratch)", base)
	}

	// Not root.
	user := final.last("USER")
	name, _, _ := strings.Cut(user, ":")
	if name == "" || name == "root" || name == "0" {
		t.Errorf("final stage: USER %q, want an unprivileged user", user)
	}

	// HEALTHCHECK on /healthz of the port the compose worker serves.
	c := loadCompose(t, root)
	_, listen := workerConfig(t, root, c)
	hc := final.last("HEALTHCHECK")
	if hc == "" {
		t.Errorf("final stage: no HEALTHCHECK")
	} else {
		checkHealthURL(t, "HEALTHCHECK", hc, listen)
	}
	_, port, _ := net.SplitHostPort(listen)
	if !slices.Contains(strings.Fields(final.last("EXPOSE")), port) {
		t.Errorf("final stage: EXPOSE %q, want the metrics port %s", final.last("EXPOSE"), port)
	}
	// Only the metrics port: the errors view shows record data.
	for _, p := range strings.Fields(final.last("EXPOSE")) {
		if p := strings.TrimSuffix(p, "/tcp"); p != port {
			t.Errorf("final stage: EXPOSE %s besides the metrics port %s; expose nothing else (the errors view stays on loopback)", p, port)
		}
	}

	// The default command runs the config the compose worker mounts.
	cmd := final.execForm("CMD")
	if i := slices.Index(cmd, "--config"); len(cmd) == 0 || cmd[0] != "run" || i < 0 || i+1 >= len(cmd) {
		t.Errorf("final stage: CMD %q, want [run --config FILE]", final.last("CMD"))
	}

	t.Run("build", func(t *testing.T) { runDockerBuild(t, root, gb) })
	t.Run("dockerignore", func(t *testing.T) { checkDockerignore(t, root, gb) })
}

// runDockerBuild runs the Dockerfile's go build, as it is written there but
// with -o in a temporary directory, from the repository root (the build
// context), and checks the result: a static, stripped ELF binary with no
// build paths in it, that starts.
func runDockerBuild(t *testing.T, root string, gb *goBuild) {
	out := filepath.Join(t.TempDir(), "kinesis-ingest")
	args := slices.Clone(gb.args)
	args[slices.Index(args, "-o")+1] = out
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	// The golang image has no GOFLAGS, GOOS, ...: only the line's own.
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "GOFLAGS" && k != "CGO_ENABLED" && k != "GOOS" && k != "GOARCH" && !strings.HasPrefix(k, "GOAMD64") {
			env = append(env, kv)
		}
	}
	for k, v := range gb.env {
		env = append(env, k+"="+v)
	}
	cmd.Env = env
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s go %s: %v\n%s", strings.Join(envList(gb.env), " "), strings.Join(args, " "), err, b)
	}
	t.Logf("%s go %s: %s", strings.Join(envList(gb.env), " "), strings.Join(args, " "), time.Since(start).Round(time.Millisecond))

	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("binary has a PT_INTERP program header: it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v (%v)", libs, err)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("binary has a symbol table: -ldflags -s did not apply")
	}
	if b, err := os.ReadFile(out); err == nil && bytes.Contains(b, []byte(root+string(filepath.Separator))) {
		t.Errorf("binary contains the build directory %s: -trimpath did not apply", root)
	}

	help := exec.Command(out, "--help")
	help.Env = []string{} // the image's environment is as good as empty
	b, err := help.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "kinesis-ingest run") {
		t.Errorf("%s --help: %v\n%s", out, err, b)
	}
}

func envList(m map[string]string) []string {
	var l []string
	for _, k := range sortedKeys(m) {
		l = append(l, k+"="+m[k])
	}
	return l
}

// checkDockerignore requires that .dockerignore leaves in the build context
// every file the go build reads: go.mod, go.sum, and for each package of
// this module that the command imports, its Go files and embedded files.
func checkDockerignore(t *testing.T, root string, gb *goBuild) {
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatalf(".dockerignore: %v (without it the context holds .git and node_modules)", err)
	}
	var patterns []ignorePattern
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := ignorePattern{}
		if p.negate = strings.HasPrefix(line, "!"); p.negate {
			line = strings.TrimSpace(line[1:])
		}
		line = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(line)), "/")
		p.re = regexp.MustCompile("^" + globToRegexp(line) + "$")
		p.text = line
		patterns = append(patterns, p)
	}
	list := exec.Command("go", "list", "-deps", "-f", `{{if .Module}}{{if .Module.Main}}{{.Dir}}{{range .GoFiles}}|{{.}}{{end}}{{range .EmbedFiles}}|{{.}}{{end}}{{end}}{{end}}`, gb.args[len(gb.args)-1])
	list.Dir = root
	list.Env = append(os.Environ(), envList(gb.env)...)
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	need := []string{"go.mod", "go.sum"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		rel, err := filepath.Rel(root, f[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range f[1:] {
			need = append(need, filepath.ToSlash(filepath.Join(rel, name)))
		}
	}
	if len(need) < 10 {
		t.Fatalf("go list found only %v", need)
	}
	for _, file := range need {
		if p := ignoredBy(patterns, file); p != "" {
			t.Errorf(".dockerignore %q leaves %s, which go build needs, out of the build context", p, file)
		}
	}
	for _, file := range []string{".git/HEAD", "internal/testenv/emulators/node_modules/dynalite/package.json"} {
		if ignoredBy(patterns, file) == "" {
			t.Errorf(".dockerignore does not leave %s out of the build context", file)
		}
	}
}

type ignorePattern struct {
	text   string
	re     *regexp.Regexp
	negate bool
}

// ignoredBy returns the pattern that excludes file (or a directory above it)
// from the build context, or "": the last matching pattern decides, as in
// Docker.
func ignoredBy(patterns []ignorePattern, file string) string {
	excludedBy := ""
	for _, p := range patterns {
		match := false
		for d := file; d != "." && d != "/"; d = filepath.ToSlash(filepath.Dir(d)) {
			if p.re.MatchString(d) {
				match = true
				break
			}
		}
		if match {
			if p.negate {
				excludedBy = ""
			} else {
				excludedBy = p.text
			}
		}
	}
	return excludedBy
}

// globToRegexp converts a .dockerignore pattern (Go filepath.Match syntax plus
// ** for any number of directories) to a regular expression.
func globToRegexp(g string) string {
	var b strings.Builder
	for i := 0; i < len(g); i++ {
		switch c := g[i]; c {
		case '*':
			if strings.HasPrefix(g[i:], "**/") {
				b.WriteString("(.*/)?")
				i += 2
			} else if strings.HasPrefix(g[i:], "**") {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}
