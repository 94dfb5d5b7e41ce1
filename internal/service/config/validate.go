package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/kinesis-ingest/kinesis-ingest/cdc"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/schema/where"
)

// compileSchema is schema.Compile with computed fields in the where
// language; tests may replace it.
var compileSchema = func(timestamp string, specs []schema.FieldSpec) (*schema.Schema, error) {
	return schema.CompileWith(timestamp, specs, where.CompileExpr)
}

// schemaPathRE splits "fields[2].type: msg" into path and message.
var schemaPathRE = regexp.MustCompile(`^([A-Za-z_]\w*(?:\[\d+\])*(?:\.[A-Za-z_]\w*(?:\[\d+\])*)*): (?s:(.*))$`)

// validate checks what spans sections: references, uniqueness, derived
// defaults and dataset schemas.
func (l *loader) validate(cfg *Config) {
	if len(cfg.Sources) == 0 && !l.bad[keySources] {
		l.errorf(keySources, nil, "at least one source is required; add sources: [{name: ..., kinesis: {stream_arn: ...}}]")
	}
	if len(cfg.Datasets) == 0 && !l.bad[keyDatasets] {
		l.errorf(keyDatasets, nil, "at least one dataset is required; add datasets: [{name: ..., source: ..., timestamp: ..., fields: [...], sink: ...}]")
	}

	// Connector names (sources and sinks) share one namespace, as in Fennel.
	connectors := map[string]string{} // name -> path of its first use
	sources := map[string]bool{}
	sinks := map[string]bool{}
	claim := func(name, p string, kind map[string]bool) {
		if name == "" {
			return
		}
		if first, ok := connectors[name]; ok {
			l.errorf(join(p, keyName), nil, "%q is already the name of %s; source and sink names must be unique, so rename one", name, first)
			return
		}
		connectors[name], kind[name] = p, true
	}
	for i, s := range cfg.Sources {
		claim(s.Name, index(keySources, i), sources)
	}
	for i, s := range cfg.Sinks {
		claim(s.Name, index(keySinks, i), sinks)
	}

	datasets := map[string]string{}
	usedSources := map[string]bool{}
	usedSinks := map[string]bool{}
	for i, d := range cfg.Datasets {
		p := index(keyDatasets, i)
		if d.Name != "" {
			if first, ok := datasets[d.Name]; ok {
				l.errorf(join(p, keyName), nil, "%q is already the name of %s; dataset names must be unique", d.Name, first)
			} else {
				datasets[d.Name] = p
			}
		}
		var first *Source // the first listed source that exists, whose format the others must share
		for j, name := range d.Sources {
			sp := join(p, keySource)
			if len(d.Sources) > 1 {
				sp = index(sp, j)
			}
			usedSources[name] = true
			src := cfg.Source(name)
			switch {
			case src == nil:
				l.errorf(sp, nil, "%q is not a source%s; use one of: %s", name, isA(name, sinks, "sink"), names(cfg.Sources, func(s Source) string { return s.Name }))
			case d.CDC == CDCDynamoDB && src.Kinesis.Format.Kind != FormatJSON:
				l.errorf(join(p, keyCDC), nil, "dynamodb reads the JSON records of Kinesis Data Streams for DynamoDB, and source %q has format %s; set its format: json", name, src.Kinesis.Format.Kind)
			case first == nil:
				first = src
			default:
				if a, b := formatShape(first.Kinesis.Format), formatShape(src.Kinesis.Format); a != b {
					l.errorf(sp, nil, "source %q has format %s and source %q has format %s: the sources of one dataset must give it records of one shape; give them the same format, or a dataset each", first.Name, a, name, b)
				}
			}
		}
		if d.Sink != "" {
			usedSinks[d.Sink] = true
			if !sinks[d.Sink] {
				l.errorf(join(p, keySink), nil, "%q is not a sink%s; use one of: %s", d.Sink, isA(d.Sink, sources, "source"), names(cfg.Sinks, func(s Sink) string { return s.Name }))
			}
		}
	}
	for i, s := range cfg.Sources {
		if s.Name != "" && !usedSources[s.Name] {
			l.warnf(index(keySources, i), "source %q feeds no dataset, so it is not read; add a dataset with source: %s or remove the source", s.Name, s.Name)
		}
	}
	for i, s := range cfg.Sinks {
		if s.Name != "" && !usedSinks[s.Name] {
			l.warnf(index(keySinks, i), "sink %q receives no dataset; add a dataset with sink: %s or remove the sink", s.Name, s.Name)
		}
	}

	for _, k := range sinkKinds {
		k.lint(l, cfg)
	}

	l.validateConsumer(cfg)

	l.noteLogEventSources(cfg)
	l.checkLogEventRefs(cfg)
	for i := range cfg.Datasets {
		l.compile(index(keyDatasets, i), &cfg.Datasets[i])
		l.compileWhere(index(keyDatasets, i), &cfg.Datasets[i])
		l.compileWindow(index(keyDatasets, i), &cfg.Datasets[i])
	}
}

// compileWindow checks a dataset's sample columns (defaulting them) and
// compiles the timestamp-only schema that since/until need.
func (l *loader) compileWindow(path string, d *Dataset) {
	if d.Schema == nil {
		return
	}
	if !d.Since.IsZero() || !d.Until.IsZero() {
		for _, sp := range d.Fields {
			if sp.Name == d.Timestamp {
				if s, err := compileSchema(d.Timestamp, []schema.FieldSpec{sp}); err == nil {
					d.TimestampOnly = s
				}
			}
		}
	}
	if d.Sample == nil {
		return
	}
	specs := map[string]schema.FieldSpec{}
	for _, sp := range d.Fields[:len(d.Fields)-d.Inputs] {
		specs[sp.Name] = sp
	}
	if len(d.Sample.Using) == 0 {
		for _, c := range d.Schema.Columns() {
			// A keyed dataset samples by key, as Fennel does: every change of a
			// key, its deletes included (which carry only the key), is kept or
			// dropped together. As in Fennel, the default leaves out what is
			// not the record's own member under the field's name (Fennel's
			// preproc columns): a constant hashes alike everywhere, a computed
			// value only repeats what it is computed from, and metadata
			// ($sequence_number, $arrival_time) would tell apart records that
			// are the same.
			if c.Name != d.Timestamp && (!d.Keyed() || c.Key) && sampleRefusal(specs[c.Name], true) == "" {
				d.Sample.Using = append(d.Sample.Using, c.Name)
			}
		}
		if len(d.Sample.Using) == 0 {
			what := "field but its timestamp"
			if d.Keyed() {
				what = "key"
			}
			l.errorf(join(path, keySample), nil, "the dataset has no %s read from the record under its own name to hash (fields with ref, const or expr are left out, as Fennel leaves out preproc columns); add using: [...] naming the fields that identify a record", what)
		}
		return
	}
	cols := map[string]bool{}
	keys := map[string]bool{}
	for _, c := range d.Schema.Columns() {
		cols[c.Name], keys[c.Name] = true, c.Key
	}
	for i, u := range d.Sample.Using {
		p := index(join(path, keySample+"."+keyUsing), i)
		switch {
		case !cols[u]:
			l.errorf(p, nil, "%q is not a field of dataset %q; name fields of the dataset", u, d.Name)
		case d.Keyed() && !keys[u]:
			l.errorf(p, nil, "%q is not a key of the keyed dataset %q: a keyed dataset is sampled by its keys, so that all the changes of a key, deletes included, are kept or dropped together", u, d.Name)
		default:
			if why := sampleRefusal(specs[u], false); why != "" {
				l.errorf(p, nil, "%q %s, and a sample hashes only fields read from the record (Fennel refuses its preproc columns too); name fields read under their own name, or record metadata such as a field with ref: $partition_key", u, why)
			}
		}
	}
}

// sampleRefusal says why field sp may not be hashed by a sample, or "" if it
// may: Fennel refuses sample columns that its preproc sets (ref, a constant,
// eval). A ref to record metadata ($partition_key, ...), which Fennel does
// not have, may be named in using (it is how a stream is sampled by
// partition key) but is no default.
func sampleRefusal(sp schema.FieldSpec, byDefault bool) string {
	switch {
	case sp.HasConst:
		return "is a constant (const)"
	case sp.Expr != "":
		return "is computed (expr)"
	case sp.Ref == "" || sp.Ref == sp.Name:
		return ""
	case schema.IsMetadataRef(sp.Ref):
		if byDefault {
			return "is record metadata"
		}
		return ""
	}
	return fmt.Sprintf("is read through ref: %s", sp.Ref)
}

// checkFilePaths refuses two file sinks writing the same path: they would
// corrupt each other.
func (l *loader) checkFilePaths(cfg *Config) {
	files := map[string]string{}
	checkFile := func(p string, f *FileSink) {
		if f == nil || f.Path == "" {
			return
		}
		clean := filepath.Clean(f.Path)
		if first, ok := files[clean]; ok {
			l.errorf(join(p, keyPath), nil, "%q is also written by %s; give each file sink its own path", f.Path, first)
			return
		}
		files[clean] = p
	}
	for i, s := range cfg.Sinks {
		checkFile(join(index(keySinks, i), keyFile), s.File)
	}
	checkFile("dead_letter.file", cfg.DeadLetter.File)
}

// checkPostgresTables refuses two datasets writing into one PostgreSQL table
// (rows are keyed by their Kinesis record, so a record taken by both would be
// stored once, and the table's columns are one dataset's), and a row table that
// is also the dead-letter table.
func (l *loader) checkPostgresTables(cfg *Config) {
	seen := map[string]string{} // dsn + table -> dataset
	dl := cfg.DeadLetter.Postgres
	for i, ds := range cfg.Datasets {
		s := cfg.Sink(ds.Sink)
		if s == nil || s.Postgres == nil {
			continue
		}
		p := join(index(keyDatasets, i), keySink)
		k := s.Postgres.DSN + "\x00" + strings.ToLower(s.Postgres.Table)
		if other, ok := seen[k]; ok {
			l.errorf(p, nil, "datasets %q and %q both write to table %s: a table holds one dataset (its columns, and rows keyed by Kinesis record); give each dataset a sink with its own table", other, ds.Name, s.Postgres.Table)
			continue
		}
		seen[k] = ds.Name
		if dl != nil && dl.DSN == s.Postgres.DSN && strings.EqualFold(dl.Table, s.Postgres.Table) {
			l.errorf(p, nil, "sink %q writes to table %s, which is also the dead-letter table; use another table", s.Name, s.Postgres.Table)
		}
	}
}

// compileWhere compiles the dataset's where against its fields. When the
// fields themselves do not compile, schema.Compile's problems say so already.
func (l *loader) compileWhere(path string, d *Dataset) {
	if d.Where == "" {
		return
	}
	f, err := where.Compile(d.Where, d.Fields)
	if err == nil {
		d.Filter = f
		return
	}
	if !errors.Is(err, where.ErrFields) {
		l.errorf(join(path, keyWhere), nil, "%v", err)
	}
}

// formatShape says what a format tells of the records' shape, for comparing
// the sources of one dataset: the kind, the Avro schema file (a registry's
// writer schemas come with the records, so the config cannot compare them,
// and the dataset reads its fields by name from whichever arrives) and how
// CloudWatch Logs messages are read. Compression and framing only wrap the
// same payload, so they may differ.
func formatShape(f Format) string {
	switch {
	case f.Kind == FormatAvro && f.Avro != nil && f.Avro.SchemaFile != "":
		return fmt.Sprintf("avro (schema_file %s)", filepath.Clean(f.Avro.SchemaFile))
	case f.Kind == FormatAvro && f.Avro != nil && f.Avro.Registry != nil:
		return "avro (registry)"
	case f.Kind == FormatCloudWatchLogs && f.CloudWatchLogs != nil:
		return fmt.Sprintf("cloudwatch_logs (message: %s)", f.CloudWatchLogs.Message)
	}
	return f.Kind
}

func isA(name string, set map[string]bool, what string) string {
	if set[name] {
		return fmt.Sprintf(" (it is a %s)", what)
	}
	return ""
}

func names[T any](xs []T, name func(T) string) string {
	s := ""
	seen := map[string]bool{}
	for _, x := range xs {
		if n := name(x); n != "" && !seen[n] {
			seen[n] = true
			if s != "" {
				s += ", "
			}
			s += n
		}
	}
	if s == "" {
		return "(none defined)"
	}
	return s
}

func (l *loader) validateConsumer(cfg *Config) {
	c := &cfg.Consumer
	c.TablePerSource = len(cfg.Sources) > 1
	if c.Application == "" && len(cfg.Sources) > 0 && cfg.Sources[0].Name != "" {
		c.Application = cfg.Sources[0].Name
		if !dynamoTableRE.MatchString(c.Application) {
			l.errorf("consumer.application", nil, "%q (defaulted from sources[0].name) is not a valid DynamoDB table name (3 to 255 of a-z, A-Z, 0-9, _ . -); set consumer.application", c.Application)
		}
	} else if c.Application != "" && !dynamoTableRE.MatchString(c.Application) {
		l.errorf("consumer.application", nil, "%q is not a valid DynamoDB table name; use 3 to 255 characters of a-z, A-Z, 0-9, _ . -", c.Application)
	}
	if c.WorkerID == "" {
		h, err := hostname()
		if err != nil || h == "" {
			h = "unknown"
		}
		c.WorkerID = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	if !l.bad["consumer.lease_duration"] && !l.bad["consumer.lease_refresh"] && c.LeaseRefresh >= c.LeaseDuration/2 {
		if _, set := l.lines["consumer.lease_refresh"]; set {
			l.errorf("consumer.lease_refresh", nil, "%s must be less than half of lease_duration (%s) so a lease is renewed at least twice before it expires; lower lease_refresh or raise lease_duration", c.LeaseRefresh, c.LeaseDuration)
		} else {
			l.errorf("consumer.lease_duration", nil, "%s must be more than twice lease_refresh (default %s); raise lease_duration or set a smaller lease_refresh", c.LeaseDuration, c.LeaseRefresh)
		}
	}
}

// checkMetadataRefs refuses a top-level ref that starts with $ but names
// no record metadata ($partiton_key): in a dataset that is not Debezium's,
// whose envelope members are $ts_ms, $source.lsn, ..., it is a typo or a
// payload key, which is written quoted. A DynamoDB record's members are
// known, so a dynamodb dataset's $ refs are checked against them too.
func (l *loader) checkMetadataRefs(path string, d *Dataset) {
	if d.CDC == CDCDebezium {
		return
	}
	known := l.knownMetadata(d)
	envelope, what := map[string]bool{}, "record metadata"
	if d.CDC == CDCDynamoDB {
		for _, m := range cdc.DynamoDBMembers {
			envelope["$"+m] = true
			known = append(known, "$"+m)
		}
		what = "record metadata nor a member of the DynamoDB record"
	}
	for i, sp := range d.Fields {
		if !strings.HasPrefix(sp.Ref, "$") || schema.IsMetadataRef(sp.Ref) {
			continue
		}
		p := path + "." + inputPath(index(keyFields, i), len(d.Fields)-d.Inputs) + ".ref"
		name := sp.Ref
		if j := strings.IndexAny(name, ".["); j > 0 {
			name = name[:j]
		}
		if envelope[name] {
			l.checkDynamoDBChangeRef(p, sp.Ref, name)
			continue
		}
		if schema.IsMetadataRef(name) {
			l.errorf(p, nil, "%q: %s is the stream record's metadata, which has no members; a payload key that starts with $ is written quoted: [%q]%s", sp.Ref, name, name, sp.Ref[len(name):])
			continue
		}
		neither := "no"
		if d.CDC == CDCDynamoDB {
			neither = "neither"
		}
		l.errorf(p, nil, "%q: %s is %s %s (known: %s); a payload key that starts with $ is written quoted: [%q]%s", sp.Ref, name, neither, what, strings.Join(known, ", "), name, sp.Ref[len(name):])
	}
}

// checkDynamoDBChangeRef refuses a ref into $dynamodb that names none of
// its members ($dynamodb.ApproximateCreationDatetime): every record would
// miss it.
func (l *loader) checkDynamoDBChangeRef(p, ref, name string) {
	rest, ok := strings.CutPrefix(ref, "$dynamodb.")
	if name != "$dynamodb" || !ok {
		return
	}
	if j := strings.IndexAny(rest, ".["); j >= 0 {
		rest = rest[:j]
	}
	if !slices.Contains(cdc.DynamoDBChangeMembers, rest) {
		l.errorf(p, nil, "%q: %s is not a member of a DynamoDB record's dynamodb (known: %s)", ref, rest, strings.Join(cdc.DynamoDBChangeMembers, ", "))
	}
}

// compile runs schema.Compile and files its problems under path.
func (l *loader) compile(path string, d *Dataset) {
	l.checkMetadataRefs(path, d)
	s, err := compileSchema(d.Timestamp, d.Fields)
	if err == nil {
		d.Schema, d.Timestamp = s, s.Timestamp()
		l.checkCDC(path, d)
		return
	}
	// Keep every schema problem, except on paths that already failed to decode.
	before := make(map[string]bool, len(l.bad))
	for k := range l.bad {
		before[k] = true
	}
	for _, e := range Problems(err) {
		p, msg := path, e.Error()
		if m := schemaPathRE.FindStringSubmatch(msg); m != nil {
			p, msg = path+"."+inputPath(m[1], len(d.Fields)-d.Inputs), m[2]
		}
		if before[p] || badAncestor(l.broken, p) {
			continue
		}
		l.report(p, nil, msg)
	}
}

// checkCDC applies Fennel's rules binding a dataset to its source: append
// takes keyless datasets only (two rows of one key would both be kept), upsert
// and debezium keyed ones only (without a key there is nothing to replace or
// delete).
func (l *loader) checkCDC(path string, d *Dataset) {
	keys := d.Schema.Keys()
	if d.CDC == CDCAppend {
		_, written := l.lines[join(path, keyCDC)]
		for _, k := range keys {
			how := "cdc: append"
			if !written {
				how = "the default cdc: append"
			}
			l.errorf(fmt.Sprintf("%s.fields[%d].key", path, k), nil, "keys need cdc: upsert, debezium or dynamodb, and the dataset has %s, which takes keyless datasets only; set cdc or drop key: true", how)
		}
		return
	}
	if len(keys) == 0 {
		l.errorf(join(path, keyCDC), nil, "%s needs a keyed dataset: mark the fields that identify a row with key: true", d.CDC)
	}
	envelopeTime := map[string]string{CDCDebezium: "$ts_ms", CDCDynamoDB: "$dynamodb.ApproximateCreationDateTime"}[d.CDC]
	if ts := d.Schema.TimestampIndex(); envelopeTime != "" && ts >= 0 && ts < len(d.Fields) && d.Fields[ts].Expr != "" {
		l.errorf(fmt.Sprintf("%s.fields[%d].expr", path, ts), nil, "the timestamp of a %s dataset cannot be computed: a delete carries only its keys and timestamp; ref the envelope's %s instead", d.CDC, envelopeTime)
	}
	for _, k := range keys {
		if k == d.Schema.TimestampIndex() {
			l.errorf(fmt.Sprintf("%s.fields[%d].key", path, k), nil, "the timestamp field %q cannot be a key: it orders the versions of a key's row", d.Timestamp)
		}
	}
}

// Problems returns the problems of an error from Load (or any tree of errors
// joined with errors.Join) one by one: the leaves of the tree, in order.
func Problems(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	return []error{err}
}

// badAncestor reports whether p or a path containing it is in bad.
func badAncestor(bad map[string]bool, p string) bool {
	for {
		if bad[p] {
			return true
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return false
		}
		p = p[:i]
	}
}

// inputPath turns schema's fields[N]... of an input (N >= fields) into
// inputs[N-fields]...
func inputPath(p string, fields int) string {
	rest, ok := strings.CutPrefix(p, keyFields+"[")
	if !ok {
		return p
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return p
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil || n < fields {
		return p
	}
	return fmt.Sprintf("%s[%d]%s", keyInputs, n-fields, rest[end+1:])
}
