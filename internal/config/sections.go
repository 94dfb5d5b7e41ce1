// The section decoders: what each part of the config (sources, datasets,
// sinks, dead_letter, consumer, metrics, log) may contain, its defaults and
// its rules, on top of the generic walker in yamlwalk.go.

package config

import (
	"errors"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/postgres"
	"gopkg.in/yaml.v3"
)

var (
	// Connector and dataset names.
	nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,63}$`)
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
	km := l.mapping(join(path, "kinesis"), m.vals["kinesis"], "stream_arn", "role_arn", "external_id", "init_position", "format", "efo")
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
	if km.has("efo") {
		k.EFO = l.efo(join(km.path, "efo"), km.vals["efo"], k.StreamARN)
	}
	return s
}

// efo decodes a source's enhanced fan-out consumer: consumer_name (1 to 128
// of [a-zA-Z0-9_.-], as Kinesis allows) or consumer_arn, which must be a
// consumer of the source's own stream.
func (l *loader) efo(path string, n *yaml.Node, stream StreamARN) *EFO {
	m := l.mapping(path, n, "consumer_name", "consumer_arn")
	e := &EFO{ConsumerName: l.str(m, "consumer_name"), ConsumerARN: l.str(m, "consumer_arn")}
	switch {
	case m.has("consumer_name") && m.has("consumer_arn"):
		l.softErrorf(path, nil, "has both consumer_name and consumer_arn; give the name to have the workers register the consumer, or the ARN of one registered elsewhere")
	case !m.has("consumer_name") && !m.has("consumer_arn"):
		l.softErrorf(path, n, "needs consumer_name: NAME (registered by the first worker) or consumer_arn: ARN (registered elsewhere)")
	case m.has("consumer_name"):
		if !streamNameRE.MatchString(e.ConsumerName) {
			l.errorf(join(path, "consumer_name"), m.vals["consumer_name"], "%q is not a consumer name; use 1 to 128 letters, digits, _, . and -", e.ConsumerName)
		}
	default:
		if err := checkConsumerARN(e.ConsumerARN, stream); err != nil {
			l.errorf(join(path, "consumer_arn"), m.vals["consumer_arn"], "%v", err)
		}
	}
	return e
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

func (l *loader) sink(path string, n *yaml.Node) Sink {
	m := l.mapping(path, n, "name", "file", "postgres")
	s := Sink{Name: l.name(m, "sink")}
	s.File, s.Postgres = l.fileOrPostgres(path, n, m, "a sink writes to exactly one, so split it into two sinks")
	return s
}

// fileOrPostgres decodes the one store of a sink or of the dead-letter
// section: exactly one of file and postgres. bothHint says what to do when
// both are given.
func (l *loader) fileOrPostgres(path string, n *yaml.Node, m *mapNode, bothHint string) (*FileSink, *PostgresSink) {
	switch {
	case m.has("file") && m.has("postgres"):
		l.softErrorf(path, nil, "has both file and postgres; %s", bothHint)
	case !m.has("file") && !m.has("postgres"):
		l.softErrorf(path, n, "needs exactly one of file: {path: ...} or postgres: {dsn: ..., table: ...}")
	case m.has("file"):
		return l.fileSink(join(path, "file"), m.vals["file"]), nil
	default:
		return nil, l.postgresSink(join(path, "postgres"), m.vals["postgres"])
	}
	return nil, nil
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
		if _, err := postgres.ParseTable(p.Table); err != nil {
			l.errorf(join(path, "table"), m.vals["table"], "%v", err)
		}
	}
	return p
}

func (l *loader) deadLetter(path string, n *yaml.Node) DeadLetter {
	m := l.mapping(path, n, "file", "postgres", "unrouted")
	d := DeadLetter{Unrouted: l.boolean(m, "unrouted", false)}
	d.File, d.Postgres = l.fileOrPostgres(path, n, m, "keep exactly one")
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
