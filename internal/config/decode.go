package config

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"gopkg.in/yaml.v3"
)

var (
	// Connector and dataset names.
	nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,63}$`)
	// PostgreSQL identifiers we accept unquoted: [schema.]table.
	tableRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$`)
	// DynamoDB table names.
	dynamoTableRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)
	// The "line N: " yaml.v3 puts before type errors; the path says where.
	yamlLineRE = regexp.MustCompile(`^line \d+: `)
	// STS external IDs.
	externalIDRE = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
)

// now and hostname are replaced in tests.
var (
	now      = time.Now
	hostname = os.Hostname
)

// loader collects every problem found while decoding and validating.
type loader struct {
	dir      string
	errs     []*Error
	bad      map[string]bool   // paths that already have an error
	broken   map[string]bool   // paths whose value could not be decoded
	lines    map[string][2]int // path -> line and column, for ordering errors
	warnings []string
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

// report records a problem at path unconditionally.
func (l *loader) report(path string, n *yaml.Node, msg string) {
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
	errs := make([]error, len(l.errs))
	for i, e := range l.errs {
		errs[i] = e
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
	n = deref(n)
	if isNull(n) {
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
	if !l.required(m, "name", "give the "+what+" a name") {
		return ""
	}
	v := l.str(m, "name")
	if v != "" && !nameRE.MatchString(v) {
		l.errorf(join(m.path, "name"), m.vals["name"], "%q is not a valid name; use 1 to 64 letters, digits, _ or -, starting with a letter or _", v)
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

// decode turns the document into a Config, starting from the defaults.
func (l *loader) decode(n *yaml.Node) *Config {
	cfg := &Config{
		Consumer: Consumer{
			ShardSyncInterval: DefaultShardSyncInterval,
			LeaseDuration:     DefaultLeaseDuration,
			LeaseRefresh:      DefaultLeaseRefresh,
			MaxRecords:        DefaultMaxRecords,
			IdleBetweenReads:  DefaultIdleBetweenReads,
			LeaseStealing:     DefaultLeaseStealing,
			ShutdownTimeout:   DefaultShutdownTimeout,
		},
		Metrics: Metrics{Listen: DefaultMetricsListen},
		Log:     Log{Level: "info", Format: "text"},
	}
	top := l.mapping("", n, "sources", "datasets", "sinks", "dead_letter", "consumer", "metrics", "log")
	for i, sn := range l.seq(top, "sources") {
		cfg.Sources = append(cfg.Sources, l.source(index("sources", i), sn))
	}
	for i, dn := range l.seq(top, "datasets") {
		cfg.Datasets = append(cfg.Datasets, l.dataset(index("datasets", i), dn))
	}
	for i, sn := range l.seq(top, "sinks") {
		cfg.Sinks = append(cfg.Sinks, l.sink(index("sinks", i), sn))
	}
	if top.has("dead_letter") {
		cfg.DeadLetter = l.deadLetter("dead_letter", top.vals["dead_letter"])
	} else {
		l.errorf("dead_letter", top.keys["dead_letter"], "required; add dead_letter: {file: {path: ...}} or dead_letter: {postgres: {dsn: ..., table: ...}} to keep records that cannot be ingested")
	}
	l.consumer(&cfg.Consumer, l.mapping("consumer", top.vals["consumer"],
		"application", "worker_id", "role_arn", "shard_sync_interval", "lease_duration", "lease_refresh",
		"max_records", "idle_between_reads", "lease_stealing", "max_leases", "shutdown_timeout"))
	mm := l.mapping("metrics", top.vals["metrics"], "listen")
	if _, ok := mm.vals["listen"]; ok {
		cfg.Metrics.Listen = l.str(mm, "listen")
		if cfg.Metrics.Listen != "" {
			l.checkListen("metrics.listen", mm.vals["listen"], cfg.Metrics.Listen)
		}
	}
	lm := l.mapping("log", top.vals["log"], "level", "format")
	if lm.has("level") {
		cfg.Log.Level = l.str(lm, "level")
		if !slices.Contains([]string{"debug", "info", "warn", "error"}, cfg.Log.Level) {
			l.errorf("log.level", lm.vals["level"], "%q is not a log level; use debug, info, warn or error", cfg.Log.Level)
		}
	}
	if lm.has("format") {
		cfg.Log.Format = l.str(lm, "format")
		if cfg.Log.Format != "text" && cfg.Log.Format != "json" {
			l.errorf("log.format", lm.vals["format"], "%q is not a log format; use text or json", cfg.Log.Format)
		}
	}
	return cfg
}

func (l *loader) checkListen(path string, n *yaml.Node, s string) {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		l.errorf(path, n, "%q is not host:port; write e.g. 127.0.0.1:9108 or :9108, or \"\" to disable metrics", s)
		return
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		l.errorf(path, n, "%q has an invalid port %q; use a number from 0 to 65535", s, port)
	}
}

func (l *loader) source(path string, n *yaml.Node) Source {
	m := l.mapping(path, n, "name", "kinesis")
	s := Source{Name: l.name(m, "source")}
	if !m.has("kinesis") {
		l.errorf(join(path, "kinesis"), m.keys["kinesis"], "required; add kinesis: {stream_arn: arn:aws:kinesis:<region>:<account>:stream/<name>}")
		return s
	}
	km := l.mapping(join(path, "kinesis"), m.vals["kinesis"], "stream_arn", "role_arn", "external_id", "init_position", "format")
	k := &s.Kinesis
	if l.required(km, "stream_arn", "give the ARN of the stream, "+streamARNForm) {
		arn, err := ParseStreamARN(l.str(km, "stream_arn"))
		if err != nil {
			l.errorf(join(km.path, "stream_arn"), km.vals["stream_arn"], "%v", err)
		}
		k.StreamARN = arn
	}
	k.RoleARN = l.roleARN(km, "role_arn")
	k.ExternalID = l.str(km, "external_id")
	if k.ExternalID != "" {
		p := join(km.path, "external_id")
		switch {
		case len(k.ExternalID) < 2 || len(k.ExternalID) > 1224 || !externalIDRE.MatchString(k.ExternalID):
			l.errorf(p, km.vals["external_id"], "must be 2 to 1224 characters of letters, digits and +=,.@:/_-")
		case !km.has("role_arn"):
			l.errorf(p, km.vals["external_id"], "is only used when assuming a role; set role_arn too or remove external_id")
		}
	}
	if km.has("init_position") {
		p := join(km.path, "init_position")
		pos, err := parseInitPosition(deref(km.vals["init_position"]))
		if err != nil {
			l.errorf(p, km.vals["init_position"], "%v", err)
		}
		k.InitPosition = pos
		if pos.Kind == AtTimestamp {
			t, nw := pos.Timestamp, now()
			switch {
			case t.After(nw):
				l.warnf(p, "%s is in the future; shards without a checkpoint will skip every record that arrives before then", pos)
			case t.Before(nw.Add(-365 * 24 * time.Hour)):
				l.warnf(p, "%s is more than 365 days ago, beyond the longest Kinesis retention; reading starts at the oldest retained record, as with trim_horizon", pos)
			}
		}
	}
	k.Format = l.format(join(km.path, "format"), km.vals["format"])
	return s
}

func (l *loader) format(path string, n *yaml.Node) Format {
	n = deref(n)
	if isNull(n) {
		return Format{Kind: FormatJSON}
	}
	if n.Kind == yaml.ScalarNode {
		switch strings.ToLower(n.Value) {
		case FormatJSON:
			return Format{Kind: FormatJSON}
		case FormatAvro:
			l.errorf(path, n, "avro needs a schema; write format: {avro: {schema_file: <file.avsc>}} or format: {avro: {registry: {url: ...}}}")
		default:
			l.errorf(path, n, "%q is not a format; use json, {avro: {schema_file: ...}} or {avro: {registry: {...}}}", n.Value)
		}
		return Format{Kind: FormatJSON}
	}
	m := l.mapping(path, n, "avro")
	if !m.has("avro") {
		if len(m.vals) == 0 && !l.bad[path] {
			l.errorf(path, n, "empty format; use json or {avro: {...}}")
		}
		return Format{Kind: FormatJSON}
	}
	am := l.mapping(join(path, "avro"), m.vals["avro"], "schema_file", "registry", "framing")
	f := Format{Kind: FormatAvro, Avro: &Avro{}}
	switch {
	case am.has("schema_file") && am.has("registry"):
		l.softErrorf(am.path, nil, "has both schema_file and registry; keep one")
	case !am.has("schema_file") && !am.has("registry"):
		l.softErrorf(am.path, m.vals["avro"], "needs schema_file or registry; write {schema_file: <file.avsc>} or {registry: {url: ...}}")
	case am.has("schema_file"):
		f.Avro.SchemaFile = l.filePath(l.str(am, "schema_file"))
		l.checkSchemaFile(join(am.path, "schema_file"), am.vals["schema_file"], f.Avro.SchemaFile)
	default:
		f.Avro.Registry = l.registry(join(am.path, "registry"), am.vals["registry"])
	}
	if am.has("framing") {
		fp := join(am.path, "framing")
		switch v := l.str(am, "framing"); {
		case am.has("registry"):
			l.errorf(fp, am.vals["framing"], "applies to schema_file only: a registry's records say their framing in their first byte")
		case v == AvroFramingAuto || v == AvroFramingBinary || v == AvroFramingSingleObject:
			f.Avro.Framing = v
		default:
			l.errorf(fp, am.vals["framing"], "%q is not a framing; use auto (single-object encoded when the record starts with C3 01 and the schema's fingerprint, else raw binary), binary or single_object", v)
		}
	}
	return f
}

func (l *loader) checkSchemaFile(path string, n *yaml.Node, file string) {
	if file == "" {
		l.errorf(path, n, "is empty; give the path of an Avro schema (.avsc) file")
		return
	}
	data, err := os.ReadFile(file)
	if err != nil {
		l.errorf(path, n, "cannot read Avro schema %q: %v; check the path (relative paths are relative to the config file)", file, unwrapPathErr(err))
		return
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil || v == nil {
		l.errorf(path, n, "Avro schema %q is not valid JSON; an .avsc file holds a JSON schema", file)
	}
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (l *loader) registry(path string, n *yaml.Node) *Registry {
	m := l.mapping(path, n, "url", "username", "password", "token", "ca_file")
	r := &Registry{
		URL:      l.str(m, "url"),
		Username: l.str(m, "username"),
		Password: l.str(m, "password"),
		Token:    l.str(m, "token"),
		CAFile:   l.filePath(l.str(m, "ca_file")),
	}
	if l.required(m, "url", "give the schema registry's URL, e.g. https://registry.example.com") {
		u, err := url.Parse(r.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			l.errorf(join(path, "url"), m.vals["url"], "%q is not an http or https URL; write e.g. https://registry.example.com", r.URL)
		}
	}
	switch {
	case r.Token != "" && (r.Username != "" || r.Password != ""):
		l.errorf(join(path, "token"), m.vals["token"], "cannot be used with username/password; keep one way to authenticate")
	case r.Username != "" && r.Password == "":
		l.errorf(join(path, "password"), m.keys["password"], "required with username")
	case r.Password != "" && r.Username == "":
		l.errorf(join(path, "username"), m.keys["username"], "required with password")
	}
	if r.CAFile != "" {
		if _, err := os.Stat(r.CAFile); err != nil {
			l.errorf(join(path, "ca_file"), m.vals["ca_file"], "cannot read CA file %q: %v; check the path", r.CAFile, unwrapPathErr(err))
		}
	}
	return r
}

func (l *loader) dataset(path string, n *yaml.Node) Dataset {
	m := l.mapping(path, n, "name", "source", "timestamp", "where", "fields", "sink")
	d := Dataset{Name: l.name(m, "dataset")}
	if l.required(m, "source", "name the source this dataset reads") {
		d.Source = l.str(m, "source")
	}
	d.Timestamp = l.str(m, "timestamp") // optional when exactly one field is a datetime
	d.Where = l.str(m, "where")
	if l.required(m, "sink", "name the sink this dataset writes to") {
		d.Sink = l.str(m, "sink")
	}
	if !m.has("fields") {
		l.errorf(join(path, "fields"), m.keys["fields"], "required; list the dataset's fields, e.g. - {name: id, type: int}")
	}
	ftype := reflect.TypeFor[schema.FieldSpec]()
	for i, fn := range l.seq(m, "fields") {
		fp := index(join(path, "fields"), i)
		l.checkKeys(fp, fn, ftype)
		var fs schema.FieldSpec
		if err := fn.Decode(&fs); err != nil {
			l.errorf(fp, fn, "%s", yamlErrText(err))
		}
		d.Fields = append(d.Fields, fs)
	}
	return d
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
			if v = deref(v); v != nil && v.Kind == yaml.SequenceNode {
				for i, item := range v.Content {
					l.lines[index(kp, i)] = pos(item)
					l.checkKeys(index(kp, i), item, ft.Elem())
				}
			}
		}
	}
}

func (l *loader) sink(path string, n *yaml.Node) Sink {
	m := l.mapping(path, n, "name", "file", "postgres")
	s := Sink{Name: l.name(m, "sink")}
	switch {
	case m.has("file") && m.has("postgres"):
		l.softErrorf(path, nil, "has both file and postgres; a sink writes to exactly one, so split it into two sinks")
	case !m.has("file") && !m.has("postgres"):
		l.softErrorf(path, n, "needs exactly one of file: {path: ...} or postgres: {dsn: ..., table: ...}")
	case m.has("file"):
		s.File = l.fileSink(join(path, "file"), m.vals["file"])
	default:
		s.Postgres = l.postgresSink(join(path, "postgres"), m.vals["postgres"])
	}
	return s
}

func (l *loader) fileSink(path string, n *yaml.Node) *FileSink {
	m := l.mapping(path, n, "path", "max_bytes")
	f := &FileSink{MaxBytes: l.integer(m, "max_bytes", DefaultFileMaxBytes, 1, 1<<62)}
	if l.required(m, "path", "give the file path to write to") {
		f.Path = l.filePath(l.str(m, "path"))
	}
	return f
}

func (l *loader) postgresSink(path string, n *yaml.Node) *PostgresSink {
	m := l.mapping(path, n, "dsn", "table", "create_table", "batch_rows", "batch_bytes", "batch_interval")
	p := &PostgresSink{
		CreateTable:   l.boolean(m, "create_table", false),
		BatchRows:     int(l.integer(m, "batch_rows", DefaultBatchRows, 1, 1<<31-1)),
		BatchBytes:    l.integer(m, "batch_bytes", DefaultBatchBytes, 1, 1<<62),
		BatchInterval: l.durationMin(m, "batch_interval", DefaultBatchInterval, true),
	}
	if l.required(m, "dsn", "give a PostgreSQL connection string, e.g. \"${PG_DSN}\"") {
		p.DSN = l.str(m, "dsn")
		if strings.HasPrefix(p.DSN, "postgres://") || strings.HasPrefix(p.DSN, "postgresql://") {
			if _, err := url.Parse(p.DSN); err != nil {
				// Do not echo the DSN: it may hold a password.
				l.errorf(join(path, "dsn"), m.vals["dsn"], "is not a valid postgres:// URL; check for unescaped characters in the password")
			}
		}
	}
	if l.required(m, "table", "name the table to write to") {
		p.Table = l.str(m, "table")
		if !tableRE.MatchString(p.Table) {
			l.errorf(join(path, "table"), m.vals["table"], "%q is not a table name; use letters, digits, _ and $, optionally schema-qualified (schema.table)", p.Table)
		}
	}
	return p
}

func (l *loader) deadLetter(path string, n *yaml.Node) DeadLetter {
	m := l.mapping(path, n, "file", "postgres", "unrouted")
	d := DeadLetter{Unrouted: l.boolean(m, "unrouted", false)}
	switch {
	case m.has("file") && m.has("postgres"):
		l.softErrorf(path, nil, "has both file and postgres; keep exactly one")
	case !m.has("file") && !m.has("postgres"):
		l.softErrorf(path, n, "needs exactly one of file: {path: ...} or postgres: {dsn: ..., table: ...}")
	case m.has("file"):
		d.File = l.fileSink(join(path, "file"), m.vals["file"])
	default:
		d.Postgres = l.postgresSink(join(path, "postgres"), m.vals["postgres"])
	}
	return d
}

func (l *loader) consumer(c *Consumer, m *mapNode) {
	c.Application = l.str(m, "application")
	c.WorkerID = l.str(m, "worker_id")
	c.RoleARN = l.roleARN(m, "role_arn")
	c.ShardSyncInterval = l.duration(m, "shard_sync_interval", c.ShardSyncInterval)
	c.LeaseDuration = l.duration(m, "lease_duration", c.LeaseDuration)
	c.LeaseRefresh = l.duration(m, "lease_refresh", c.LeaseRefresh)
	c.MaxRecords = int(l.integer(m, "max_records", int64(c.MaxRecords), 1, 10000))
	c.IdleBetweenReads = l.duration(m, "idle_between_reads", c.IdleBetweenReads)
	c.LeaseStealing = l.boolean(m, "lease_stealing", c.LeaseStealing)
	c.MaxLeases = int(l.integer(m, "max_leases", 0, 0, 1<<31-1))
	c.ShutdownTimeout = l.duration(m, "shutdown_timeout", c.ShutdownTimeout)
}
