// The generic half of the loader: walking a yaml.v3 node tree with paths,
// collecting every problem with its line, and reading typed scalars with
// defaults and bounds. What each section of the config means is in
// sections.go.

package config

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// loader collects every problem found while decoding and validating.
type loader struct {
	dir      string
	errs     []*Error
	bad      map[string]bool   // paths that already have an error
	broken   map[string]bool   // paths whose value could not be decoded
	lines    map[string][2]int // path -> line and column, for ordering errors
	warnings []string
	// rec, when set, learns what the loader accepts (see recording).
	rec *recording
	// visited counts the YAML nodes walked, aliases and merge keys followed
	// each time: a few hundred bytes of anchors can stand for 2^n nodes.
	visited   int
	exhausted bool // visited passed MaxNodes: the walk stopped
	// logEventSources are the sources of format cloudwatch_logs (set by
	// validate before datasets compile).
	logEventSources map[string]bool
}

// recording is what the loader accepts, learnt while it decodes: the keys
// of every mapping it reads and the type, default and bounds of every scalar
// it reads through the typed readers below. TestSpecMatchesLoader compares
// it with the spec (spec.go), so the JSON Schema cannot drift from the
// loader. Paths have their list indexes dropped: sources[].kinesis.
type recording struct {
	objects map[string][]string
	scalars map[string]scalarUse
}

// scalarUse is how the loader reads one scalar key.
type scalarUse struct {
	kind   kind
	def    any // int64, bool or a duration's String(); nil for strings
	lo, hi int64
	zeroOK bool
}

var indexRE = regexp.MustCompile(`\[\d+\]`)

func (r *recording) object(path string, keys []string) {
	if r != nil {
		r.objects[indexRE.ReplaceAllString(path, "[]")] = keys
	}
}

func (r *recording) scalar(path string, u scalarUse) {
	if r != nil {
		r.scalars[indexRE.ReplaceAllString(path, "[]")] = u
	}
}

// MaxNodes bounds the YAML nodes a config may expand to through aliases and
// merge keys (<<). Configs are checked on pull requests by validate, so a
// hostile one must cost no more than this; real ones have a few thousand.
const MaxNodes = 50_000

// maxErrors bounds the problems a config error lists.
const maxErrors = 200

// visit counts n nodes walked at path. It reports false, and reports the
// config once, when the walk has gone past MaxNodes: callers then stop.
func (l *loader) visit(path string, node *yaml.Node, n int) bool {
	if l.exhausted {
		return false
	}
	l.visited += n
	if l.visited <= MaxNodes {
		return true
	}
	l.exhausted = true
	l.errs = nil // what was found so far may be the bomb's noise
	l.report(path, node, fmt.Sprintf("the config expands to more than %d YAML nodes through aliases and merge keys (<<); stopped reading it here. Anchors that refer to anchors that refer to anchors multiply: write the repeated parts out, or nest fewer aliases", MaxNodes))
	return false
}

// expanded counts the nodes under n with aliases followed, as yaml.v3's
// Decode will see them, and visits them; it stops early, reporting false,
// once MaxNodes would be passed.
func (l *loader) expanded(path string, n *yaml.Node) bool {
	count := 0
	var walk func(n *yaml.Node, depth int) bool
	walk = func(n *yaml.Node, depth int) bool {
		count++
		if count > MaxNodes-l.visited || depth > 1000 {
			return false
		}
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			return walk(n.Alias, depth+1)
		}
		for _, c := range n.Content {
			if !walk(c, depth+1) {
				return false
			}
		}
		return true
	}
	if !walk(n, 0) {
		return l.visit(path, n, MaxNodes+1)
	}
	return l.visit(path, n, count)
}

func newLoader(dir string) *loader {
	return &loader{dir: dir, bad: map[string]bool{}, broken: map[string]bool{}, lines: map[string][2]int{}}
}

// errorf records a problem at path. Only the first problem per path is kept,
// so a value that failed to decode does not cause follow-up noise, and
// problems below a value that could not be decoded (say, a list item that is
// not a mapping) are dropped too.
func (l *loader) errorf(path string, n *yaml.Node, format string, args ...any) {
	if l.bad[path] || badAncestor(l.broken, path) {
		return
	}
	l.broken[path] = true
	l.report(path, n, fmt.Sprintf(format, args...))
}

// softErrorf is errorf for a problem that does not hide the problems of the
// value's children, such as "needs exactly one of file or postgres".
func (l *loader) softErrorf(path string, n *yaml.Node, format string, args ...any) {
	if l.bad[path] || badAncestor(l.broken, path) {
		return
	}
	l.report(path, n, fmt.Sprintf(format, args...))
}

// report records a problem at path; once the walk stopped at MaxNodes, only
// that.
func (l *loader) report(path string, n *yaml.Node, msg string) {
	if l.exhausted && len(l.errs) > 0 {
		return
	}
	l.bad[path] = true
	e := &Error{Path: path, Msg: msg}
	if n != nil {
		e.Line, e.col = n.Line, n.Column
	} else {
		e.Line, e.col = l.lineOf(path)
	}
	l.errs = append(l.errs, e)
}

func (l *loader) warnf(path string, format string, args ...any) {
	l.warnings = append(l.warnings, path+": "+fmt.Sprintf(format, args...))
}

// lineOf returns the position of path or of its nearest recorded ancestor.
func (l *loader) lineOf(path string) (line, col int) {
	for path != "" {
		if pos, ok := l.lines[path]; ok {
			return pos[0], pos[1]
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0, 0
}

// err returns all problems in document order (problems without a line last).
func (l *loader) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(l.errs, func(a, b *Error) int {
		la, lb := a.Line, b.Line
		if la == 0 {
			la = 1 << 30
		}
		if lb == 0 {
			lb = 1 << 30
		}
		return cmp.Or(cmp.Compare(la, lb), cmp.Compare(a.col, b.col))
	})
	errs := make([]error, 0, min(len(l.errs), maxErrors)+1)
	for _, e := range l.errs[:min(len(l.errs), maxErrors)] {
		errs = append(errs, e)
	}
	if more := len(l.errs) - maxErrors; more > 0 {
		errs = append(errs, fmt.Errorf("... and %d more problems; fix these first", more))
	}
	return errors.Join(errs...)
}

func pos(n *yaml.Node) [2]int { return [2]int{n.Line, n.Column} }

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return deref(n.Content[0])
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func kindName(n *yaml.Node) string {
	switch deref(n).Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar"
	}
	return "nothing"
}

// mapNode is a decoded YAML mapping with its path.
type mapNode struct {
	path string
	vals map[string]*yaml.Node
	keys map[string]*yaml.Node
}

// has reports whether key is present with a non-null value.
func (m *mapNode) has(key string) bool { return !isNull(m.vals[key]) }

// mapping checks that n is a mapping whose keys are all in allowed and
// unique, and returns it. A null or missing n gives an empty mapping.
// YAML merge keys (<<) are honoured.
func (l *loader) mapping(path string, n *yaml.Node, allowed ...string) *mapNode {
	m := &mapNode{path: path, vals: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}}
	l.rec.object(path, allowed)
	n = deref(n)
	if isNull(n) || !l.visit(path, n, 1+len(n.Content)/2) {
		return m
	}
	if n.Kind != yaml.MappingNode {
		what := "a mapping"
		if len(allowed) > 0 {
			what = "a mapping with keys " + strings.Join(allowed, ", ")
		}
		l.errorf(path, n, "expected %s, got %s %q", what, kindName(n), n.Value)
		return m
	}
	l.lines[path] = pos(n)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		kp := join(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			l.errorf(path, k, "keys must be plain strings, got a %s", kindName(k))
			continue
		}
		if !slices.Contains(allowed, k.Value) {
			l.errorf(kp, k, "unknown key %q%s; valid keys here are %s", k.Value, suggest(k.Value, allowed), strings.Join(allowed, ", "))
			continue
		}
		if first, dup := m.keys[k.Value]; dup {
			l.errorf(kp, k, "duplicate key; it is already set on line %d", first.Line)
			continue
		}
		m.keys[k.Value], m.vals[k.Value] = k, v
		l.lines[kp] = pos(k)
	}
	// Explicit keys win over merged ones; earlier merges win over later ones.
	for _, mv := range merges {
		mv = deref(mv)
		var srcs []*yaml.Node
		switch mv.Kind {
		case yaml.MappingNode:
			srcs = []*yaml.Node{mv}
		case yaml.SequenceNode:
			for _, s := range mv.Content {
				srcs = append(srcs, deref(s))
			}
		}
		for _, src := range srcs {
			if src == nil || src.Kind != yaml.MappingNode {
				l.errorf(join(path, "<<"), mv, "merge key needs a mapping or a list of mappings")
				continue
			}
			sub := l.mapping(path, src, allowed...)
			for k, v := range sub.vals {
				if _, ok := m.vals[k]; !ok {
					m.vals[k], m.keys[k] = v, sub.keys[k]
				}
			}
		}
	}
	return m
}

// suggest returns `; did you mean "x"?` for a close allowed key.
func suggest(key string, allowed []string) string {
	best, bestD := "", 3
	for _, a := range allowed {
		if d := levenshtein(strings.ToLower(key), a); d < bestD {
			best, bestD = a, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// seq returns the items of the list at key (nil if absent or null).
func (l *loader) seq(m *mapNode, key string) []*yaml.Node {
	n := deref(m.vals[key])
	path := join(m.path, key)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		l.errorf(path, n, "expected a list, got a %s", kindName(n))
		return nil
	}
	if !l.visit(path, n, 1+len(n.Content)) {
		return nil
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		items[i] = deref(c)
		l.lines[index(path, i)] = pos(c)
	}
	return items
}

// scalar returns the scalar at key, or nil if it is absent, null or not a
// scalar (which is reported).
func (l *loader) scalar(m *mapNode, key, want string) *yaml.Node {
	n := deref(m.vals[key])
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		l.errorf(join(m.path, key), n, "expected %s, got a %s", want, kindName(n))
		return nil
	}
	return n
}

func (l *loader) str(m *mapNode, key string) string {
	l.rec.scalar(join(m.path, key), scalarUse{kind: kString})
	if n := l.scalar(m, key, "a string"); n != nil {
		return n.Value
	}
	return ""
}

// required reports key as missing unless it is present and not empty.
func (l *loader) required(m *mapNode, key, hint string) bool {
	n := deref(m.vals[key])
	if !isNull(n) && !(n.Kind == yaml.ScalarNode && n.Value == "") {
		return true
	}
	p := join(m.path, key)
	if k := m.keys[key]; k != nil {
		l.errorf(p, k, "is empty; %s", hint)
	} else {
		l.errorf(p, nil, "required; %s", hint)
	}
	return false
}

func (l *loader) integer(m *mapNode, key string, def, lo, hi int64) int64 {
	l.rec.scalar(join(m.path, key), scalarUse{kind: kInteger, def: def, lo: lo, hi: hi})
	n := l.scalar(m, key, "an integer")
	if n == nil {
		return def
	}
	path := join(m.path, key)
	var v int64
	var err error
	if n.ShortTag() == "!!int" {
		err = n.Decode(&v)
	} else {
		v, err = strconv.ParseInt(n.Value, 10, 64)
	}
	if err != nil {
		l.errorf(path, n, "%q is not an integer; write a whole number such as %d", n.Value, def)
		return def
	}
	if v < lo || v > hi {
		if hi == 1<<62 {
			l.errorf(path, n, "%d is out of range; must be at least %d", v, lo)
		} else {
			l.errorf(path, n, "%d is out of range; must be between %d and %d", v, lo, hi)
		}
		return def
	}
	return v
}

func (l *loader) boolean(m *mapNode, key string, def bool) bool {
	l.rec.scalar(join(m.path, key), scalarUse{kind: kBoolean, def: def})
	n := l.scalar(m, key, "true or false")
	if n == nil {
		return def
	}
	switch strings.ToLower(n.Value) {
	case "true":
		return true
	case "false":
		return false
	}
	l.errorf(join(m.path, key), n, "%q is not a boolean; write true or false", n.Value)
	return def
}

// duration parses a positive Go duration such as 200ms, 2s or 1m30s.
func (l *loader) duration(m *mapNode, key string, def time.Duration) time.Duration {
	return l.durationMin(m, key, def, false)
}

// durationMin is duration; with zeroOK, 0 is accepted too (a window that can
// be switched off).
func (l *loader) durationMin(m *mapNode, key string, def time.Duration, zeroOK bool) time.Duration {
	l.rec.scalar(join(m.path, key), scalarUse{kind: kDuration, def: def.String(), zeroOK: zeroOK})
	n := l.scalar(m, key, "a duration")
	if n == nil {
		return def
	}
	path := join(m.path, key)
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		hint := ""
		if _, e := strconv.ParseFloat(n.Value, 64); e == nil {
			hint = " (a unit is required)"
		}
		l.errorf(path, n, "%q is not a duration%s; write a number with a unit such as %s", n.Value, hint, def)
		return def
	}
	if d < 0 && zeroOK {
		l.errorf(path, n, "%q must not be negative; use 0s to switch it off or a duration such as 5ms", n.Value)
		return def
	}
	if d <= 0 && !zeroOK {
		l.errorf(path, n, "%q must be positive; use a duration such as %s", n.Value, def)
		return def
	}
	return d
}

func (l *loader) name(m *mapNode, what string) string {
	if !l.required(m, keyName, "give the "+what+" a name") {
		return ""
	}
	v := l.str(m, keyName)
	if v != "" && !nameRE.MatchString(v) {
		l.errorf(join(m.path, keyName), m.vals[keyName], "%q is not a valid name; use 1 to 64 letters, digits, _ or -, starting with a letter or _", v)
	}
	return v
}

// filePath resolves p against the config file's directory.
func (l *loader) filePath(p string) string {
	if p == "" || l.dir == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(l.dir, p)
}

func (l *loader) roleARN(m *mapNode, key string) *RoleARN {
	s := l.str(m, key)
	if s == "" {
		return nil
	}
	a, err := ParseRoleARN(s)
	if err != nil {
		l.errorf(join(m.path, key), m.vals[key], "%v", err)
		return nil
	}
	return &a
}

// yamlErrText flattens a yaml.TypeError into one line.
func yamlErrText(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			msgs[i] = yamlLineRE.ReplaceAllString(m, "")
		}
		return strings.Join(msgs, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// checkKeys reports unknown keys in n (recursively) against the yaml tags of
// struct type t, so schema.FieldSpec gets the same strictness as the rest.
func (l *loader) checkKeys(path string, n *yaml.Node, t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	n = deref(n)
	if t.Kind() != reflect.Struct || n == nil || n.Kind != yaml.MappingNode {
		return
	}
	fields := map[string]reflect.Type{}
	var keys []string
	var collect func(t reflect.Type)
	collect = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" {
				continue
			}
			if strings.Contains(","+opts+",", ",inline,") && f.Type.Kind() == reflect.Struct {
				collect(f.Type)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fields[name] = f.Type
			keys = append(keys, name)
		}
	}
	collect(t)
	m := l.mapping(path, n, keys...)
	for k, v := range m.vals {
		ft := fields[k]
		kp := join(path, k)
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Struct:
			l.checkKeys(kp, v, ft)
		case reflect.Slice:
			if v = deref(v); v != nil && v.Kind == yaml.SequenceNode && l.visit(kp, v, len(v.Content)) {
				for i, item := range v.Content {
					l.lines[index(kp, i)] = pos(item)
					l.checkKeys(index(kp, i), item, ft.Elem())
				}
			}
		}
	}
}
