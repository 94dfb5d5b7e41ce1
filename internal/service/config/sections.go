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

	"github.com/kinesis-ingest/kinesis-ingest/decoders/decompress"
	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/redact"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/postgres"
	"gopkg.in/yaml.v3"
)

var (
	// Connector and dataset names.
	nameRE = sized(`^[A-Za-z_][A-Za-z0-9_-]{0,63}$`, `^[A-Za-z_][A-Za-z0-9_-]*$`, 1, 64)
	// DynamoDB table names.
	dynamoTableRE = sized(`^[a-zA-Z0-9_.-]{3,255}$`, `^[a-zA-Z0-9_.-]+$`, 3, 255)
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
			ShardSyncInterval:  DefaultShardSyncInterval,
			LeaseDuration:      DefaultLeaseDuration,
			LeaseRefresh:       DefaultLeaseRefresh,
			CheckpointInterval: DefaultCheckpointInterval,
			MaxRecords:         DefaultMaxRecords,
			IdleBetweenReads:   DefaultIdleBetweenReads,
			LeaseStealing:      DefaultLeaseStealing,
			Balance:            BalanceCount,
			ShutdownTimeout:    DefaultShutdownTimeout,
			CallTimeout:        DefaultCallTimeout,
			MaxInflightBytes:   DefaultMaxInflightBytes,
			MaxLeasesPerPass:   DefaultMaxLeasesPerPass,
		},
		Metrics: Metrics{Listen: DefaultMetricsListen},
		Errors:  Errors{Listen: DefaultErrorsListen},
		Log:     Log{Level: "info", Format: "text"},
	}
	top := l.mapping("", n, keySources, keyDatasets, keySinks, keyDeadLetter, keyConsumer, keyMetrics, keyErrors, keyLog)
	for i, sn := range l.seq(top, keySources) {
		cfg.Sources = append(cfg.Sources, l.source(index(keySources, i), sn))
	}
	for i, dn := range l.seq(top, keyDatasets) {
		cfg.Datasets = append(cfg.Datasets, l.dataset(index(keyDatasets, i), dn))
	}
	for i, sn := range l.seq(top, keySinks) {
		cfg.Sinks = append(cfg.Sinks, l.sink(index(keySinks, i), sn))
	}
	if top.has(keyDeadLetter) {
		cfg.DeadLetter = l.deadLetter(keyDeadLetter, top.vals[keyDeadLetter])
	} else {
		l.errorf(keyDeadLetter, top.keys[keyDeadLetter], "required; add dead_letter: {file: {path: ...}}, dead_letter: {postgres: {dsn: ..., table: ...}} or dead_letter: {s3: {bucket: ...}} to keep records that cannot be ingested")
	}
	l.consumer(&cfg.Consumer, l.mapping(keyConsumer, top.vals[keyConsumer], keyMinReadInterval, keyMaxReadsPerSecond,
		keyApplication, keyWorkerID, keyRoleARN, keyShardSyncInterval, keyLeaseDuration, keyLeaseRefresh,
		keyMaxRecords, keyIdleBetweenReads, keyLeaseStealing, keyMaxLeases, keyMaxLeasesPerPass, keyShutdownTimeout, keyCallTimeout,
		keyMaxInflightBytes, keyCheckpointInterval, keyBalance))
	mm := l.mapping(keyMetrics, top.vals[keyMetrics], keyListen)
	if _, ok := mm.vals[keyListen]; ok {
		cfg.Metrics.Listen = l.str(mm, keyListen)
		if cfg.Metrics.Listen != "" {
			l.checkListen(join(keyMetrics, keyListen), mm.vals[keyListen], cfg.Metrics.Listen)
		}
	}
	em := l.mapping(keyErrors, top.vals[keyErrors], keyListen)
	if _, ok := em.vals[keyListen]; ok {
		cfg.Errors.Listen = l.str(em, keyListen)
		if cfg.Errors.Listen != "" {
			l.checkListen(join(keyErrors, keyListen), em.vals[keyListen], cfg.Errors.Listen)
		}
	}
	if cfg.Errors.Listen != "" && cfg.Errors.Listen == cfg.Metrics.Listen && !strings.HasSuffix(cfg.Errors.Listen, ":0") {
		// One port would serve record data to whoever may scrape metrics.
		l.errorf(join(keyErrors, keyListen), em.vals[keyListen], "%q is metrics.listen too; the errors view shows record data, so give it its own (loopback) port, or \"\" to turn it off", cfg.Errors.Listen)
	}
	lm := l.mapping(keyLog, top.vals[keyLog], keyLevel, keyFormat)
	if lm.has(keyLevel) {
		cfg.Log.Level = l.str(lm, keyLevel)
		if !slices.Contains([]string{"debug", "info", "warn", "error"}, cfg.Log.Level) {
			l.errorf(join(keyLog, keyLevel), lm.vals[keyLevel], "%q is not a log level; use debug, info, warn or error", cfg.Log.Level)
		}
	}
	if lm.has(keyFormat) {
		cfg.Log.Format = l.str(lm, keyFormat)
		if cfg.Log.Format != "text" && cfg.Log.Format != "json" {
			l.errorf(join(keyLog, keyFormat), lm.vals[keyFormat], "%q is not a log format; use text or json", cfg.Log.Format)
		}
	}
	return cfg
}

func (l *loader) checkListen(path string, n *yaml.Node, s string) {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		l.errorf(path, n, "%q is not host:port; write e.g. 127.0.0.1:9108 or :9108, or \"\" to disable it", s)
		return
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		l.errorf(path, n, "%q has an invalid port %q; use a number from 0 to 65535", s, port)
	}
}

func (l *loader) source(path string, n *yaml.Node) Source {
	m := l.mapping(path, n, keyName, keyKinesis, keyEnv, keyBounded, keyIdleness, keyMaxRecordAge, keyExpired)
	s := Source{Name: l.name(m, "source"), Env: l.envList(m, keyEnv)}
	l.expiry(&s, m)
	s.Bounded = l.boolean(m, keyBounded, false)
	if m.has(keyIdleness) {
		s.Idleness = l.durationMin(m, keyIdleness, 10*time.Minute, false)
	}
	switch {
	case s.Bounded && !m.has(keyIdleness):
		l.errorf(join(path, keyBounded), m.vals[keyBounded], "bounded needs idleness: say how long without a new record means the source is done, e.g. idleness: 10m")
	case !s.Bounded && m.has(keyIdleness) && !l.bad[join(path, keyIdleness)]:
		l.errorf(join(path, keyIdleness), m.vals[keyIdleness], "idleness applies to a bounded source only; add bounded: true or remove idleness")
	}
	if !m.has(keyKinesis) {
		l.errorf(join(path, keyKinesis), m.keys[keyKinesis], "required; add kinesis: {stream_arn: arn:aws:kinesis:<region>:<account>:stream/<name>}")
		return s
	}
	km := l.mapping(join(path, keyKinesis), m.vals[keyKinesis], keyStreamARN, keyRoleARN, keyExternalID, keyInitPosition, keyFormat, keyCompression, keyMaxDecompressedBytes, keyEFO)
	k := &s.Kinesis
	if l.required(km, keyStreamARN, "give the ARN of the stream, "+streamARNForm) {
		arn, err := ParseStreamARN(l.str(km, keyStreamARN))
		if err != nil {
			l.errorf(join(km.path, keyStreamARN), km.vals[keyStreamARN], "%v", err)
		}
		k.StreamARN = arn
	}
	k.RoleARN = l.roleARN(km, keyRoleARN)
	k.ExternalID = l.externalID(km)
	if km.has(keyInitPosition) {
		p := join(km.path, keyInitPosition)
		pos, err := parseInitPosition(deref(km.vals[keyInitPosition]))
		if err != nil {
			l.errorf(p, km.vals[keyInitPosition], "%v", err)
		}
		k.InitPosition = pos
		if pos.Kind == AtTimestamp && pos.Relative == 0 {
			t, nw := pos.Timestamp, now()
			switch {
			case t.After(nw):
				l.warnf(p, "%s is in the future; shards without a checkpoint will skip every record that arrives before then", pos)
			case t.Before(nw.Add(-365 * 24 * time.Hour)):
				l.warnf(p, "%s is more than 365 days ago, beyond the longest Kinesis retention; reading starts at the oldest retained record, as with trim_horizon", pos)
			}
		}
	}
	k.Format = l.format(join(km.path, keyFormat), km.vals[keyFormat])
	if a := k.Format.Avro; a != nil && a.Registry != nil && a.Registry.Glue != nil && a.Registry.Glue.Region == "" {
		a.Registry.Glue.Region = k.StreamARN.Region
	}
	l.compression(km, k)
	if km.has(keyEFO) {
		k.EFO = l.efo(join(km.path, keyEFO), km.vals[keyEFO], k.StreamARN)
	}
	return s
}

// compression reads a source's compression and, with one, the bound on a
// record's decompressed size.
func (l *loader) compression(km *mapNode, k *Kinesis) {
	k.Compression = CompressionNone
	if km.has(keyCompression) {
		switch v := l.str(km, keyCompression); v {
		case CompressionNone, CompressionGzip, CompressionZstd, CompressionAuto:
			k.Compression = v
		default:
			l.errorf(join(km.path, keyCompression), km.vals[keyCompression], "%q is not a compression; use none, gzip, zstd or auto (gzip or zstd, each record by its first bytes, plain records passed through)", v)
			return
		}
	}
	if k.Format.Kind == FormatCloudWatchLogs {
		l.cloudWatchLogsCompression(km, k)
		return
	}
	if k.Compression != CompressionNone {
		k.MaxDecompressedBytes = l.integer(km, keyMaxDecompressedBytes, DefaultMaxDecompressedBytes, 1, decompress.MaxBound)
	} else if km.has(keyMaxDecompressedBytes) {
		l.errorf(join(km.path, keyMaxDecompressedBytes), km.vals[keyMaxDecompressedBytes], "applies to compressed records only; add compression: gzip, zstd or auto, or remove it")
	}
}

// efo decodes a source's enhanced fan-out consumer: consumer_name (1 to 128
// of [a-zA-Z0-9_.-], as Kinesis allows) or consumer_arn, which must be a
// consumer of the source's own stream.
func (l *loader) efo(path string, n *yaml.Node, stream StreamARN) *EFO {
	m := l.mapping(path, n, keyConsumerName, keyConsumerARN)
	e := &EFO{ConsumerName: l.str(m, keyConsumerName), ConsumerARN: l.str(m, keyConsumerARN)}
	switch {
	case m.has(keyConsumerName) && m.has(keyConsumerARN):
		l.softErrorf(path, nil, "has both consumer_name and consumer_arn; give the name to have the workers register the consumer, or the ARN of one registered elsewhere")
	case !m.has(keyConsumerName) && !m.has(keyConsumerARN):
		l.softErrorf(path, n, "needs consumer_name: NAME (registered by the first worker) or consumer_arn: ARN (registered elsewhere)")
	case m.has(keyConsumerName):
		if !streamNameRE.MatchString(e.ConsumerName) {
			l.errorf(join(path, keyConsumerName), m.vals[keyConsumerName], "%q is not a consumer name; use 1 to 128 letters, digits, _, . and -", e.ConsumerName)
		}
	default:
		if err := checkConsumerARN(e.ConsumerARN, stream); err != nil {
			l.errorf(join(path, keyConsumerARN), m.vals[keyConsumerARN], "%v", err)
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
		case FormatCloudWatchLogs:
			return Format{Kind: FormatCloudWatchLogs, CloudWatchLogs: &CloudWatchLogs{Message: CloudWatchLogsStr}}
		case FormatAvro:
			l.errorf(path, n, "avro needs a schema; write format: {avro: {schema_file: <file.avsc>}} or format: {avro: {registry: {url: ...}}}")
		default:
			l.errorf(path, n, "%q is not a format; use json, {avro: {schema_file: ...}}, {avro: {registry: {...}}} or cloudwatch_logs", n.Value)
		}
		return Format{Kind: FormatJSON}
	}
	m := l.mapping(path, n, keyAvro, keyCloudWatchLogs)
	if _, ok := m.vals[keyCloudWatchLogs]; ok { // null too: the defaults
		return l.cloudWatchLogs(m)
	}
	if !m.has(keyAvro) {
		if len(m.vals) == 0 && !l.bad[path] {
			l.errorf(path, n, "empty format; use json or {avro: {...}}")
		}
		return Format{Kind: FormatJSON}
	}
	am := l.mapping(join(path, keyAvro), m.vals[keyAvro], keySchemaFile, keyRegistry, keyFraming)
	f := Format{Kind: FormatAvro, Avro: &Avro{}}
	switch {
	case am.has(keySchemaFile) && am.has(keyRegistry):
		l.softErrorf(am.path, nil, "has both schema_file and registry; keep one")
	case !am.has(keySchemaFile) && !am.has(keyRegistry):
		l.softErrorf(am.path, m.vals[keyAvro], "needs schema_file or registry; write {schema_file: <file.avsc>} or {registry: {url: ...}}")
	case am.has(keySchemaFile):
		f.Avro.SchemaFile, f.Avro.Framing = l.filePath(l.str(am, keySchemaFile)), AvroFramingAuto
		l.checkSchemaFile(join(am.path, keySchemaFile), am.vals[keySchemaFile], f.Avro.SchemaFile)
	default:
		f.Avro.Registry = l.registry(join(am.path, keyRegistry), am.vals[keyRegistry])
	}
	if am.has(keyFraming) {
		fp := join(am.path, keyFraming)
		switch v := l.str(am, keyFraming); {
		case am.has(keyRegistry):
			l.errorf(fp, am.vals[keyFraming], "applies to schema_file only: a registry's records say their framing in their first byte")
		case v == AvroFramingAuto || v == AvroFramingBinary || v == AvroFramingSingleObject:
			f.Avro.Framing = v
		default:
			l.errorf(fp, am.vals[keyFraming], "%q is not a framing; use auto (single-object encoded when the record starts with C3 01 and the schema's fingerprint, else raw binary), binary or single_object", v)
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

// externalID decodes m's external_id, which goes with its role_arn.
func (l *loader) externalID(m *mapNode) string {
	id := l.str(m, keyExternalID)
	if id != "" {
		p := join(m.path, keyExternalID)
		switch {
		case len(id) < 2 || len(id) > 1224 || !externalIDRE.MatchString(id):
			l.errorf(p, m.vals[keyExternalID], "must be 2 to 1224 characters of letters, digits and +=,.@:/_-")
		case !m.has(keyRoleARN):
			l.errorf(p, m.vals[keyExternalID], "is only used when assuming a role; set role_arn too or remove external_id")
		}
	}
	return id
}

func (l *loader) registry(path string, n *yaml.Node) *Registry {
	m := l.mapping(path, n, keyURL, keyUsername, keyPassword, keyToken, keyCAFile, keyGlue)
	r := &Registry{
		URL:      l.str(m, keyURL),
		Username: l.str(m, keyUsername),
		Password: l.str(m, keyPassword),
		Token:    l.str(m, keyToken),
		CAFile:   l.filePath(l.str(m, keyCAFile)),
	}
	if m.has(keyGlue) {
		if m.has(keyURL) {
			l.softErrorf(path, nil, "has both url and glue; keep url for a Confluent-compatible registry or glue for an AWS Glue Schema Registry")
			return r
		}
		for _, k := range []string{keyUsername, keyPassword, keyToken, keyCAFile} {
			if m.has(k) {
				l.errorf(join(path, k), m.keys[k], "applies to a registry url only; an AWS Glue Schema Registry is called with AWS credentials (glue.role_arn, or the source's)")
			}
		}
		r.Glue = l.glueRegistry(join(path, keyGlue), m.vals[keyGlue])
		return r
	}
	if l.required(m, keyURL, "give the schema registry's URL, e.g. https://registry.example.com, or glue: {registry_name: NAME} for an AWS Glue Schema Registry") {
		u, err := url.Parse(r.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// Redacted: a URL that does not parse may well hold a password.
			l.errorf(join(path, keyURL), m.vals[keyURL], "%q is not an http or https URL; write e.g. https://registry.example.com (percent-encode special characters in a password)", redact.URL(r.URL))
		}
	}
	switch {
	case r.Token != "" && (r.Username != "" || r.Password != ""):
		l.errorf(join(path, keyToken), m.vals[keyToken], "cannot be used with username/password; keep one way to authenticate")
	case r.Username != "" && r.Password == "":
		l.errorf(join(path, keyPassword), m.keys[keyPassword], "required with username")
	case r.Password != "" && r.Username == "":
		l.errorf(join(path, keyUsername), m.keys[keyUsername], "required with password")
	}
	if r.CAFile != "" {
		if _, err := os.Stat(r.CAFile); err != nil {
			l.errorf(join(path, keyCAFile), m.vals[keyCAFile], "cannot read CA file %q: %v; check the path", r.CAFile, unwrapPathErr(err))
		}
	}
	return r
}

// glueRegistryNameRE is what Glue accepts as a registry name.
var glueRegistryNameRE = regexp.MustCompile(`^[a-zA-Z0-9\-_$#.]{1,255}$`)

func (l *loader) glueRegistry(path string, n *yaml.Node) *GlueRegistry {
	m := l.mapping(path, n, keyRegistryName, keyRegion, keyRoleARN, keyExternalID)
	g := &GlueRegistry{RegistryName: l.str(m, keyRegistryName), Region: l.str(m, keyRegion), RoleARN: l.roleARN(m, keyRoleARN), ExternalID: l.externalID(m)}
	if l.required(m, keyRegistryName, "name the AWS Glue schema registry, e.g. registry_name: default-registry") && !glueRegistryNameRE.MatchString(g.RegistryName) {
		l.errorf(join(path, keyRegistryName), m.vals[keyRegistryName], "%q is not a Glue registry name; use 1 to 255 letters, digits and -_$#.", g.RegistryName)
	}
	if m.has(keyRegion) && !regionRE.MatchString(g.Region) {
		l.errorf(join(path, keyRegion), m.vals[keyRegion], "%q is not an AWS region; write e.g. us-east-1, or leave it out for the stream's region", g.Region)
	}
	return g
}

func (l *loader) dataset(path string, n *yaml.Node) Dataset {
	m := l.mapping(path, n, keyName, keySource, keyTimestamp, keyWhere, keyCDC, keyDisorder, keyFields, keySink, keySince, keyUntil, keySample, keyEnv, keyInputs)
	d := Dataset{Name: l.name(m, "dataset"), CDC: CDCAppend}
	d.Since = l.instant(m, keySince)
	d.Until = l.instant(m, keyUntil)
	if !d.Since.IsZero() && !d.Until.IsZero() && !d.Since.Before(d.Until) {
		l.errorf(join(path, keyUntil), m.vals[keyUntil], "%s is not after since (%s): the window [since, until) would take no record; swap them or widen the window",
			d.Until.Format(time.RFC3339Nano), d.Since.Format(time.RFC3339Nano))
	}
	d.Sample = l.sample(join(path, keySample), m.vals[keySample])
	d.Env = l.envList(m, keyEnv)
	if l.required(m, keySource, "name the source this dataset reads (or list them: [orders_prod, orders_staging])") {
		d.Sources = l.sourceList(m)
	}
	d.Timestamp = l.str(m, keyTimestamp) // optional when exactly one field is a datetime
	d.Where = l.str(m, keyWhere)
	if m.has(keyCDC) {
		switch v := l.str(m, keyCDC); v {
		case CDCAppend, CDCUpsert, CDCDebezium, CDCDynamoDB:
			d.CDC = v
		default:
			l.errorf(join(path, keyCDC), m.vals[keyCDC], "%q is not a cdc mode; use append (keyless datasets), upsert, debezium or dynamodb (keyed datasets)", v)
		}
	}
	if n := l.scalar(m, keyDisorder, "a duration"); n != nil {
		dur, err := ParseFennelDuration(n.Value)
		if err != nil {
			l.errorf(join(path, keyDisorder), n, "%v", err)
		}
		d.Disorder = dur
	}
	if l.required(m, keySink, "name the sink this dataset writes to") {
		d.Sink = l.str(m, keySink)
	}
	if !m.has(keyFields) {
		l.errorf(join(path, keyFields), m.keys[keyFields], "required; list the dataset's fields, e.g. - {name: id, type: int}")
	}
	ftype := reflect.TypeFor[schema.FieldSpec]()
	for i, fn := range l.seq(m, keyFields) {
		fp := index(join(path, keyFields), i)
		l.checkKeys(fp, fn, ftype)
		if !l.expanded(fp, fn) { // Decode follows the aliases too
			break
		}
		var fs schema.FieldSpec
		if err := fn.Decode(&fs); err != nil {
			l.errorf(fp, fn, "%s", yamlErrText(err))
		}
		d.Fields = append(d.Fields, fs)
	}
	// Inputs are read like fields, for computed fields and where, and are
	// no columns: they go after the fields, flagged.
	for i, fn := range l.seq(m, keyInputs) {
		fp := index(join(path, keyInputs), i)
		l.checkKeys(fp, fn, ftype)
		var fs schema.FieldSpec
		if err := fn.Decode(&fs); err != nil {
			l.errorf(fp, fn, "%s", yamlErrText(err))
		}
		fs.Input = true
		d.Fields = append(d.Fields, fs)
		d.Inputs++
	}
	return d
}

func (l *loader) sink(path string, n *yaml.Node) Sink {
	m := l.mapping(path, n, sinkKindKeys(keyName, keyMaxRetryDuration)...)
	s := Sink{Name: l.name(m, "sink")}
	if m.has(keyMaxRetryDuration) {
		s.MaxRetryDuration = l.durationMin(m, keyMaxRetryDuration, time.Minute, false)
	}
	s.Store = l.store(path, n, m, true, "a sink writes to exactly one, so split it into two sinks")
	return s
}

func (l *loader) fileSink(path string, n *yaml.Node) *FileSink {
	m := l.mapping(path, n, keyPath, keyMaxBytes, keyMode)
	f := &FileSink{MaxBytes: l.integer(m, keyMaxBytes, DefaultFileMaxBytes, 1, 1<<62), Mode: DefaultFileMode}
	if l.required(m, keyPath, "give the file path to write to") {
		f.Path = l.filePath(l.str(m, keyPath))
	}
	if m.has(keyMode) {
		// Octal as chmod takes it; yaml.v3 reads an unquoted 0640 as the
		// decimal 640, so the raw text is parsed, not the int.
		s := l.str(m, keyMode)
		v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0"), 8, 32)
		if err != nil || v > 0o777 || v&0o600 != 0o600 {
			l.errorf(join(m.path, keyMode), m.vals[keyMode], "%q is not a file mode with read and write for the owner; write it in octal, e.g. 0600 (the default) or 0640 for group read", s)
		} else {
			f.Mode = os.FileMode(v)
		}
	}
	return f
}

func (l *loader) postgresSink(path string, n *yaml.Node) *PostgresSink {
	m := l.mapping(path, n, keyDSN, keyTable, keyCreateTable, keyBatchRows, keyBatchBytes, keyBatchInterval)
	p := &PostgresSink{
		CreateTable:   l.boolean(m, keyCreateTable, false),
		BatchRows:     int(l.integer(m, keyBatchRows, DefaultBatchRows, 1, 1<<31-1)),
		BatchBytes:    l.integer(m, keyBatchBytes, DefaultBatchBytes, 1, 1<<62),
		BatchInterval: l.durationMin(m, keyBatchInterval, DefaultBatchInterval, true),
	}
	if l.required(m, keyDSN, "give a PostgreSQL connection string, e.g. \"${PG_DSN}\"") {
		p.DSN = l.str(m, keyDSN)
		if strings.HasPrefix(p.DSN, "postgres://") || strings.HasPrefix(p.DSN, "postgresql://") {
			if _, err := url.Parse(p.DSN); err != nil {
				// Do not echo the DSN: it may hold a password.
				l.errorf(join(path, keyDSN), m.vals[keyDSN], "is not a valid postgres:// URL; check for unescaped characters in the password")
			}
		}
	}
	if l.required(m, keyTable, "name the table to write to") {
		p.Table = l.str(m, keyTable)
		if _, err := postgres.ParseTable(p.Table); err != nil {
			l.errorf(join(path, keyTable), m.vals[keyTable], "%v", err)
		}
	}
	return p
}

func (l *loader) deadLetter(path string, n *yaml.Node) DeadLetter {
	m := l.mapping(path, n, append([]string{keyUnrouted}, letterKinds()...)...)
	d := DeadLetter{Unrouted: l.boolean(m, keyUnrouted, false)}
	d.Store = l.store(path, n, m, false, "keep exactly one")
	return d
}

func (l *loader) consumer(c *Consumer, m *mapNode) {
	c.Application = l.str(m, keyApplication)
	c.WorkerID = l.str(m, keyWorkerID)
	c.RoleARN = l.roleARN(m, keyRoleARN)
	c.ShardSyncInterval = l.duration(m, keyShardSyncInterval, c.ShardSyncInterval)
	c.LeaseDuration = l.duration(m, keyLeaseDuration, c.LeaseDuration)
	c.LeaseRefresh = l.duration(m, keyLeaseRefresh, c.LeaseRefresh)
	c.CheckpointInterval = l.durationMin(m, keyCheckpointInterval, c.CheckpointInterval, true)
	c.MaxRecords = int(l.integer(m, keyMaxRecords, int64(c.MaxRecords), 1, 10000))
	c.IdleBetweenReads = l.duration(m, keyIdleBetweenReads, c.IdleBetweenReads)
	c.LeaseStealing = l.boolean(m, keyLeaseStealing, c.LeaseStealing)
	if m.has(keyBalance) {
		switch v := l.str(m, keyBalance); v {
		case BalanceCount, BalanceThroughput:
			c.Balance = v
		default:
			l.errorf(join(m.path, keyBalance), m.vals[keyBalance], "%q is not a balance; use count (the same number of shards per worker) or throughput (by measured bytes/s)", v)
		}
	}
	if c.Balance == BalanceThroughput && !c.LeaseStealing && !l.bad[join(m.path, keyLeaseStealing)] {
		l.errorf(join(m.path, keyBalance), m.vals[keyBalance], "throughput moves shards between workers by steal claims, which lease_stealing: false turns off; set lease_stealing: true or balance: count")
	}
	c.MaxLeases = int(l.integer(m, keyMaxLeases, 0, 0, 1<<31-1))
	c.MaxLeasesPerPass = int(l.integer(m, keyMaxLeasesPerPass, DefaultMaxLeasesPerPass, 1, 10000))
	c.ShutdownTimeout = l.duration(m, keyShutdownTimeout, c.ShutdownTimeout)
	c.CallTimeout = l.duration(m, keyCallTimeout, c.CallTimeout)
	c.MaxInflightBytes = l.integer(m, keyMaxInflightBytes, c.MaxInflightBytes, MinInflightBytes, 1<<62)
	c.MinReadInterval = l.durationMin(m, keyMinReadInterval, c.MinReadInterval, true)
	c.MaxReadsPerSecond = int(l.integer(m, keyMaxReadsPerSecond, 0, 0, 1<<31-1))
}

// expiry reads a source's max_record_age and what becomes of a record older
// than it (expired: dead_letter or skip), which needs max_record_age.
func (l *loader) expiry(s *Source, m *mapNode) {
	if m.has(keyMaxRecordAge) {
		s.MaxRecordAge = l.durationMin(m, keyMaxRecordAge, 24*time.Hour, false)
		s.Expired = ExpiredDeadLetter
	}
	if !m.has(keyExpired) {
		return
	}
	p := join(m.path, keyExpired)
	switch v := l.str(m, keyExpired); {
	case v != ExpiredDeadLetter && v != ExpiredSkip:
		l.errorf(p, m.vals[keyExpired], "%q is not what becomes of an expired record; use dead_letter (an expired dead letter, the default) or skip (counted in records_expired_total only)", v)
	case !m.has(keyMaxRecordAge):
		l.errorf(p, m.vals[keyExpired], "applies with max_record_age only; add max_record_age (e.g. 24h) or remove expired")
	default:
		s.Expired = v
	}
}

const instantForms = `a YAML timestamp, seconds since the epoch as an int or float, or an ISO-8601 string like "2024-05-01T10:00:00Z"`

// instant reads an optional datetime (since, until) in any timestamp form of
// init_position; zero when absent.
func (l *loader) instant(m *mapNode, key string) time.Time {
	if !m.has(key) {
		return time.Time{}
	}
	n := m.vals[key]
	pos, err := parseInitPosition(deref(n))
	switch {
	case err != nil:
		msg, _, _ := strings.Cut(strings.Replace(err.Error(), "valid init_position", "datetime", 1), "; want ")
		l.errorf(join(m.path, key), n, "%s; want %s", msg, instantForms)
	case pos.Kind != AtTimestamp || pos.Relative != 0:
		l.errorf(join(m.path, key), n, "%q is not a datetime; %s is compared with the dataset's timestamp field, so give a datetime such as 2024-05-01T10:00:00Z", deref(n).Value, key)
	default:
		return pos.Timestamp
	}
	return time.Time{}
}

// sample reads `sample: 0.1` or `sample: {rate: 0.1, using: [user_id]}`.
func (l *loader) sample(path string, n *yaml.Node) *Sample {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	s := &Sample{}
	rateNode := n
	if n.Kind == yaml.MappingNode {
		m := l.mapping(path, n, keyRate, keyUsing)
		if !l.required(m, keyRate, "give the fraction of records to keep, e.g. rate: 0.1") {
			return nil
		}
		rateNode = deref(m.vals[keyRate])
		path = join(path, keyRate)
		if m.has(keyUsing) {
			for i, un := range l.seq(m, keyUsing) {
				un = deref(un)
				if un.Kind != yaml.ScalarNode || un.Value == "" {
					l.errorf(index(join(m.path, keyUsing), i), un, "want a field name")
					continue
				}
				s.Using = append(s.Using, un.Value)
			}
			if len(s.Using) == 0 && !l.bad[join(m.path, keyUsing)] {
				l.errorf(join(m.path, keyUsing), m.vals[keyUsing], "is empty; list the fields to hash, or omit using for the default")
			}
		}
	}
	r, err := strconv.ParseFloat(rateNode.Value, 64)
	if rateNode.Kind != yaml.ScalarNode || (rateNode.ShortTag() != "!!float" && rateNode.ShortTag() != "!!int") || err != nil {
		l.errorf(path, rateNode, "%q is not a rate; want a number greater than 0 and at most 1, e.g. 0.1", rateNode.Value)
		return nil
	}
	if !(r > 0 && r <= 1) {
		l.errorf(path, rateNode, "%v is out of range; want a rate greater than 0 and at most 1 (1 keeps every record)", r)
		return nil
	}
	s.Rate = r
	return s
}

// envList reads an optional `env: [prod, staging]` (or a single name).
// sourceList reads a dataset's source: one name, or a list of names (Fennel's
// stacked @source decorators), each listed once.
func (l *loader) sourceList(m *mapNode) []string {
	n := deref(m.vals[keySource])
	if n.Kind != yaml.SequenceNode {
		if v := l.str(m, keySource); v != "" {
			return []string{v}
		}
		return nil
	}
	p := join(m.path, keySource)
	var out []string
	items := l.seq(m, keySource)
	for i, sn := range items {
		switch {
		case sn.Kind != yaml.ScalarNode:
			l.errorf(index(p, i), sn, "expected a source's name, got a %s", kindName(sn))
		case sn.Value == "":
			l.errorf(index(p, i), sn, "is empty; name a source")
		case slices.Contains(out, sn.Value):
			l.errorf(index(p, i), sn, "%q is listed twice; list each source once", sn.Value)
		default:
			out = append(out, sn.Value)
		}
	}
	if len(items) == 0 && !l.bad[p] && !badAncestor(l.broken, p) {
		l.errorf(p, n, "is empty; name the source this dataset reads, or list several: [orders_prod, orders_staging]")
	}
	return out
}

func (l *loader) envList(m *mapNode, key string) []string {
	if !m.has(key) {
		return nil
	}
	n := deref(m.vals[key])
	p := join(m.path, key)
	if n.Kind == yaml.ScalarNode {
		if !nameRE.MatchString(n.Value) {
			l.errorf(p, n, "%q is not an env name; use letters, digits, _ and -", n.Value)
			return nil
		}
		return []string{n.Value}
	}
	var out []string
	for i, en := range l.seq(m, key) {
		en = deref(en)
		if en.Kind != yaml.ScalarNode || !nameRE.MatchString(en.Value) {
			l.errorf(index(p, i), en, "%q is not an env name; use letters, digits, _ and -", en.Value)
			continue
		}
		out = append(out, en.Value)
	}
	if len(out) == 0 && !l.bad[p] && !badAncestor(l.broken, p) {
		l.errorf(p, n, "is empty; list the envs (e.g. [prod, staging]) or omit env to use this everywhere")
	}
	return out
}
