// The spec: every key of the config, its type, default and documentation,
// in one tree that the JSON Schema (JSONSchema, `kinesis-ingest config
// schema`) is generated from. The section decoders in sections.go stay
// hand-written (their error messages are the product), so the spec is tied
// to them by TestSpecMatchesLoader: it loads configs that reach every object
// of the spec while the loader records what it accepts, and fails when a key
// the loader accepts is missing here (or the other way round), when a type,
// default or bound differs, or when an object of the spec is never reached.

package config

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/decompress"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/postgres"
)

// kind is a spec node's type.
type kind int

const (
	kObject kind = iota
	kArray
	kString
	kInteger
	kNumber
	kBoolean
	kDuration // a Go duration string: 500ms, 2s, 1m30s
	kAny      // any YAML value (a field's const)
	kOneOf    // one of alts
)

// spec describes one value of the config.
type spec struct {
	kind kind
	doc  string
	// def is the default as it appears in YAML (and in `config print`):
	// an int64, bool, or string (durations as Go writes them, "30s"); nil
	// when there is none or it is computed (defaultDoc says how).
	def        any
	defaultDoc string
	keys       []keySpec // kObject, in the order `config print` writes them
	// exactlyOne names keys of which exactly one must be set (file or
	// postgres).
	exactlyOne []string
	items      *spec   // kArray
	minItems   int     // kArray
	alts       []*spec // kOneOf
	enum       []string
	pattern    string // kString, RE2 and ECMA-262 alike
	minLen     int
	maxLen     int
	min, max   *int64 // kInteger
	zeroOK     bool   // kDuration: 0 is allowed (switches a window off)
	nullable   bool   // null is a value of its own (metrics.listen: "" or null disables)
	secret     bool   // `config print` masks it
	ref        string // a named definition (recursive dataset fields)
	// reflected: the loader decodes this object with yaml.v3 into a struct
	// (schema.FieldSpec) and checks its keys against the struct's yaml tags,
	// so its scalars have no typed reader to compare with.
	reflected bool
}

// keySpec is one key of an object.
type keySpec struct {
	name     string
	required bool
	*spec
}

func key(name string, s *spec) keySpec      { return keySpec{name: name, spec: s} }
func required(name string, s *spec) keySpec { return keySpec{name: name, required: true, spec: s} }

func object(doc string, keys ...keySpec) *spec { return &spec{kind: kObject, doc: doc, keys: keys} }
func reflectedObject(doc string, keys ...keySpec) *spec {
	s := object(doc, keys...)
	s.reflected = true
	return s
}
func list(doc string, items *spec) *spec    { return &spec{kind: kArray, doc: doc, items: items} }
func str(doc string) *spec                  { return &spec{kind: kString, doc: doc} }
func boolean(doc string, def bool) *spec    { return &spec{kind: kBoolean, doc: doc, def: def} }
func oneOf(doc string, alts ...*spec) *spec { return &spec{kind: kOneOf, doc: doc, alts: alts} }

func integer(doc string, def, lo, hi int64) *spec {
	s := &spec{kind: kInteger, doc: doc, def: def, min: &lo}
	if hi != unbounded {
		s.max = &hi
	}
	return s
}

func duration(doc string, def time.Duration) *spec {
	return &spec{kind: kDuration, doc: doc, def: def.String()}
}

func ptr[T any](v T) *T { return &v }

// unbounded is the upper bound the loader uses for "no maximum".
const unbounded = 1 << 62

func (s *spec) withPattern(p string) *spec     { s.pattern = p; return s }
func (s *spec) withLength(lo, hi int) *spec    { s.minLen, s.maxLen = lo, hi; return s }
func (s *spec) withEnum(v ...string) *spec     { s.enum = v; return s }
func (s *spec) withDefault(v any) *spec        { s.def = v; return s }
func (s *spec) computedDefault(d string) *spec { s.defaultDoc = d; return s }
func (s *spec) masked() *spec                  { s.secret = true; return s }

// envSpec is a source's or dataset's env: one name or a list of names.
func envSpec(what string) *spec {
	name := str("An env name.").withPattern(nameRE.String())
	return oneOf("The deployments (`run --env NAME`) that use this "+what+"; a config that lists envs must be run with one.",
		name, list("Env names.", name)).computedDefault("every deployment")
}

// instantSpec is a datetime on the payload's timestamp field.
func instantSpec(doc string) *spec {
	return oneOf(doc,
		&spec{kind: kString, doc: "An ISO-8601 datetime such as 2024-05-01T10:00:00Z (no offset means UTC)."},
		&spec{kind: kNumber, doc: "Seconds since the epoch."},
	).computedDefault("unbounded")
}

// metadataDoc lists the record metadata a ref may read, with their types.
func metadataDoc() string {
	s := ""
	for i, m := range schema.MetadataNames() {
		if i > 0 {
			s += "; "
		}
		s += m.Name + " ("
		for j, k := range m.Types {
			if j > 0 {
				s += " or "
			}
			s += k.String()
		}
		s += ", " + m.Doc + ")"
	}
	return s
}

// fieldSpec is one field of a dataset (or of a struct field); lists of
// fields refer to it through the "field" definition.
var fieldSpec = sync.OnceValue(func() *spec {
	return reflectedObject("A typed field of the dataset (see the schema package doc for the types and their values).",
		required("name", str("The field's name in the row; the record key read when ref is unset.")),
		required("type", str("A Fennel type: int, float, bool, str, bytes, datetime, date, decimal[p], optional[T], list[T], map[T], struct, embedding[n].")),
		key("ref", str("The path of the value in the record (user.address[0].city, [\"key.with.dots\"].x), or, for a dataset's own field or input, one of the stream record's metadata: "+metadataDoc()+". A payload key starting with $ is written quoted ([\"$odd\"]); in a cdc: debezium dataset other $ names are the envelope's members ($ts_ms, $source.lsn), in a cdc: dynamodb dataset the record's ($eventName, $tableName, $dynamodb.ApproximateCreationDateTime, the event time at either precision).").computedDefault("the field's name")),
		key("const", &spec{kind: kAny, doc: "A constant used for every record instead of reading it (null is a constant too)."}),
		key("expr", str("Computes the field from the dataset's other fields with an expression in the where language, on the row (top-level fields only, without ref or const).")),
		key(keyFields, &spec{kind: kArray, doc: "The fields of a struct type (struct, list[struct], optional[struct], ...).", ref: "field"}),
		key("oneof", list("Restricts an int or str field to these values.", &spec{kind: kAny})),
		key("between", object("Restricts an int or float field to a range, inclusive unless strict; at least one bound.",
			key("min", &spec{kind: kNumber, doc: "The lower bound."}),
			key("max", &spec{kind: kNumber, doc: "The upper bound."}),
			key("strict_min", boolean("The lower bound is excluded.", false)),
			key("strict_max", boolean("The upper bound is excluded.", false)),
		)),
		key("regex", str("Restricts a str field to values this RE2 pattern matches in full.")),
		key("key", boolean("Part of the dataset's key (top-level int, str, bool, date, datetime or decimal, not optional): the dataset holds one current row per key; needs cdc: upsert, debezium or dynamodb.", false)),
	)
})

func fileSinkSpec(doc string) *spec {
	return object(doc,
		required(keyPath, str("The directory the JSON Lines files are written under (relative to the config file's directory); file names carry the worker id, so workers may share it.")),
		key(keyMaxBytes, integer("Rotate a file after this many bytes.", DefaultFileMaxBytes, 1, unbounded)),
		key(keyMode, oneOf("The permission of the files created, in octal (directories get the matching 07x0): they hold raw record payloads; 0640 lets a group read them. It must give the owner read and write.",
			str("Octal, e.g. \"0640\".").withPattern(`^(0o?)?[0-7]{3}$`),
			&spec{kind: kInteger, doc: "Octal digits unquoted, e.g. 0640 (YAML reads them as a number; the loader reads the digits).", min: ptr(int64(600)), max: ptr(int64(777))},
		).withDefault(fmt.Sprintf("%04o", DefaultFileMode))),
	)
}

func postgresSinkSpec(doc string) *spec {
	return object(doc,
		required(keyDSN, str("A PostgreSQL connection string (URL or key=value), usually \"${PG_DSN}\"; `config print` masks its password.").masked()),
		required(keyTable, str("The table, optionally schema-qualified (schema.table).").withPattern(postgres.TablePattern)),
		key(keyCreateTable, boolean("Create the table from the dataset when it is missing.", false)),
		key(keyBatchRows, integer("Rows per transaction at most; larger batches are split.", DefaultBatchRows, 1, 1<<31-1)),
		key(keyBatchBytes, integer("Bytes per transaction at most; larger batches are split.", DefaultBatchBytes, 1, unbounded)),
		key(keyBatchInterval, (&spec{kind: kDuration, doc: "A group-commit window: pays only with many shards writing small batches; 0s switches it off.", def: time.Duration(DefaultBatchInterval).String(), zeroOK: true})),
	)
}

func storeOf(s *spec) *spec {
	s.exactlyOne = sinkKindKeys()
	return s
}

// configSpec is the whole config. The specs are built on first use (config
// schema and the tests): building them costs 0.5 MB and 1 ms at every start.
var configSpec = sync.OnceValue(func() *spec {
	return object("A kinesis-ingest configuration: sources (Kinesis streams), datasets (typed rows), sinks, the dead-letter sink, and the consumer, metrics and log settings.",
		required(keySources, &spec{kind: kArray, minItems: 1, doc: "The Kinesis streams to read.", items: object("One Kinesis stream.",
			required(keyName, str("The source's name, unique across sources and sinks.").withPattern(nameRE.String())),
			required(keyKinesis, object("The stream and how to read it.",
				required(keyStreamARN, str("The stream's ARN: arn:aws:kinesis:<region>:<account>:stream/<name>.").withPattern(`^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:[0-9]{12}:stream/[A-Za-z0-9_.-]+$`)),
				key(keyRoleARN, str("An IAM role to assume (STS AssumeRole) for every Kinesis call of this source.").computedDefault("the worker's own credentials")),
				key(keyExternalID, str("The external id passed to AssumeRole with role_arn; `config print` masks it, since it guards against confused deputies.").withPattern(externalIDRE.String()).withLength(2, 1224).masked()),
				key(keyInitPosition, oneOf("Where shards without a checkpoint start: latest, trim_horizon, or a timestamp (YAML timestamp, seconds since the epoch as an int or float, or an ISO-8601 string). A restarted worker always resumes from its checkpoints.",
					&spec{kind: kString, doc: "latest, trim_horizon (any case) or an ISO-8601 timestamp."},
					&spec{kind: kNumber, doc: "Seconds since the epoch."},
				).withDefault("latest")),
				key(keyFormat, oneOf("How record payloads are encoded.",
					str("JSON records.").withEnum(FormatJSON),
					str("CloudWatch Logs subscription records, messages kept as str: {cloudwatch_logs: {message: str}}.").withEnum(FormatCloudWatchLogs),
					func() *spec {
						s := object("Avro records, or CloudWatch Logs subscription records: exactly one of avro or cloudwatch_logs.",
							key(keyAvro, func() *spec {
								s := object("Where the writer schema comes from: schema_file or registry.",
									key(keySchemaFile, str("The path of an .avsc file (relative to the config file's directory).")),
									key(keyRegistry, func() *spec {
										s := object("A schema registry: a Confluent-compatible one at url (authenticate with username and password, or token, or not at all), or an AWS Glue Schema Registry (glue).",
											key(keyURL, str("A Confluent-compatible registry's http or https URL.")),
											key(keyUsername, str("url only: basic auth user.")),
											key(keyPassword, str("url only: basic auth password, usually \"${REGISTRY_PASSWORD}\"; `config print` masks it.").masked()),
											key(keyToken, str("url only: a bearer token, usually \"${REGISTRY_TOKEN}\"; `config print` masks it.").masked()),
											key(keyCAFile, str("url only: a PEM bundle to trust for https (relative to the config file's directory).")),
											key(keyGlue, object("An AWS Glue Schema Registry, for records framed by Glue's serializers (header version 3, compression none or zlib, the 16-byte schema version id); schemas are fetched with glue:GetSchemaVersion and cached.",
												required(keyRegistryName, str("The registry's name; validate checks it with glue:GetRegistry.").withPattern(glueRegistryNameRE.String())),
												key(keyRegion, str("The registry's region.").withPattern(regionRE.String()).computedDefault("the stream's region")),
												key(keyRoleARN, str("An IAM role to assume (STS AssumeRole) for the Glue calls.").computedDefault("the credentials the source reads its stream with")),
												key(keyExternalID, str("The external id passed to AssumeRole with role_arn; `config print` masks it.").withPattern(externalIDRE.String()).withLength(2, 1224).masked()),
											)),
										)
										s.exactlyOne = []string{keyURL, keyGlue}
										return s
									}()),
									key(keyFraming, str("schema_file only: auto reads records starting with C3 01 and the schema's fingerprint as single-object encoded, others as raw binary Avro.").withEnum(AvroFramingAuto, AvroFramingBinary, AvroFramingSingleObject).withDefault(AvroFramingAuto)),
								)
								s.exactlyOne = []string{keySchemaFile, keyRegistry}
								return s
							}()),
							key(keyCloudWatchLogs, object("CloudWatch Logs subscription records (gzip envelopes of log events): one row per log event; a control message is counted in records_skipped_total, neither row nor dead letter. Fields read $log_group, $log_stream, $owner, $event_id and $event_timestamp.",
								key(keyMessage, str("json: the message's JSON members are the fields (a message that is no JSON is a decode_error dead letter of that event alone); str: the message is the one field, message.").withEnum(CloudWatchLogsJSON, CloudWatchLogsStr).withDefault(CloudWatchLogsStr)),
							)),
						)
						s.exactlyOne = []string{keyAvro, keyCloudWatchLogs}
						return s
					}(),
				).withDefault(FormatJSON)),
				key(keyCompression, str("How records are compressed: none; gzip or zstd (every record); auto (gzip or zstd by each record's first bytes, others passed through as plain).").withEnum(CompressionNone, CompressionGzip, CompressionZstd, CompressionAuto).withDefault(CompressionNone)),
				key(keyMaxDecompressedBytes, (&spec{kind: kInteger, min: ptr(int64(1)), max: ptr(int64(decompress.MaxBound)),
					doc: "With compression or format cloudwatch_logs: the most bytes a record may decompress to; a record over it is a decode_error dead letter naming it, and costs no more than inflating this much."}).computedDefault(fmt.Sprintf("%d (10 MiB, the largest plain Kinesis record) with compression or format cloudwatch_logs", DefaultMaxDecompressedBytes))),
				key(keyEFO, func() *spec {
					s := object("Read through enhanced fan-out (SubscribeToShard) instead of polling GetRecords: exactly one of consumer_name or consumer_arn.",
						key(keyConsumerName, str("A consumer the first worker registers on the stream if missing (never deregistered).").withPattern(streamNameRE.String())),
						key(keyConsumerARN, str("A consumer of this stream registered elsewhere.")),
					)
					s.exactlyOne = []string{keyConsumerName, keyConsumerARN}
					return s
				}()),
			)),
			key(keyEnv, envSpec("source")),
			key(keyBounded, boolean("The source ends: once every shard delivered nothing new for idleness and has nothing left, run drains, prints a summary and exits 0.", false)),
			key(keyIdleness, (&spec{kind: kDuration, doc: "With bounded: how long without a new record means the source is done, e.g. 10m."}).computedDefault("none; required with bounded: true")),
			key(keyMaxRecordAge, (&spec{kind: kDuration, doc: "A record that arrived in Kinesis longer ago than this when it is read is expired (see expired), e.g. 24h: a stale backlog is not ingested as if it were news."}).computedDefault("none: no record expires")),
			key(keyExpired, str("With max_record_age: what becomes of an expired record: dead_letter (an expired dead letter) or skip (neither row nor dead letter, counted in records_expired_total). Either way it is logged at Error.").withEnum(ExpiredDeadLetter, ExpiredSkip).computedDefault("dead_letter, with max_record_age")),
		)}),
		required(keyDatasets, &spec{kind: kArray, minItems: 1, doc: "The datasets: each turns the records of one source (or several) into typed rows for one sink.", items: object("One dataset.",
			required(keyName, str("The dataset's name, unique among datasets.").withPattern(nameRE.String())),
			required(keySource, oneOf("The source it reads, or a list of sources (as Fennel stacks @source decorators on one dataset): the records of every listed source that --env selects feed it. Listed sources must have the same format (the same avro schema_file, or all an avro registry; the same cloudwatch_logs message).",
				str("A source's name."), (&spec{kind: kArray, doc: "Sources' names, each once.", items: str("A source's name."), minItems: 1}))),
			key(keyTimestamp, str("The datetime field holding the row time; a field with ref: $arrival_time makes Kinesis arrival the event time.").computedDefault("the only datetime field")),
			key(keyWhere, str("An expr expression over the dataset's fields (and inputs) deciding which records it takes (fields and inputs with ref: $partition_key, ... read the record's metadata).").computedDefault("every record")),
			key(keyCDC, str("How records change the dataset (Fennel's cdc): append, a new row each (keyless datasets only); upsert, the new version of its key's row; debezium, Debezium change events, and dynamodb, the records of Kinesis Data Streams for DynamoDB, whose typed items fill the fields (keyed datasets only). The newest version of a key wins by the timestamp field.").withEnum(CDCAppend, CDCUpsert, CDCDebezium, CDCDynamoDB).withDefault(CDCAppend)),
			key(keyDisorder, str("Fennel's disorder, in its duration syntax (14d, \"1h 30m\"; units y, w, d, h, m, s): a record whose timestamp is older than the newest one seen in its shard minus this is a late dead letter.").withPattern(`^\s*([0-9]+(\.[0-9]+)?\s*[ywdhms]\s*)+$`).computedDefault("none: no record is late")),
			required(keyFields, &spec{kind: kArray, doc: "The dataset's fields.", ref: "field"}),
			required(keySink, str("The name of the sink it writes to.")),
			key(keySince, instantSpec("Keeps rows whose timestamp field is at or after this datetime (the payload's time, or Kinesis arrival when the timestamp field has ref: $arrival_time); others are counted in records_filtered_total.")),
			key(keyUntil, instantSpec("Keeps rows whose timestamp field is before this datetime.")),
			key(keySample, oneOf("Keeps a deterministic fraction of the rows (the same on every run and worker).",
				&spec{kind: kNumber, doc: "The fraction kept, greater than 0 and at most 1."},
				object("The fraction and the columns hashed.",
					required(keyRate, &spec{kind: kNumber, doc: "The fraction kept, greater than 0 and at most 1."}),
					key(keyUsing, list("The columns hashed to decide; only keys for a keyed dataset. As in Fennel, not a field with const, expr or a ref to a payload path; a field with ref: $partition_key (record metadata) samples by partition key.", str("A field name.")).computedDefault("the keys of a keyed dataset, else every field but the timestamp; either way without fields that have ref, const or expr")),
				),
			).computedDefault("every row")),
			key(keyEnv, envSpec("dataset")),
			key(keyInputs, &spec{kind: kArray, doc: "Fields read from the record (or its metadata: ref: $partition_key, ...) for computed fields (expr) and where, but not written as columns.", ref: "field"}),
		)}),
		required(keySinks, list("Where rows go.", storeOf(object("One sink: exactly one of file, postgres or s3.",
			append([]keySpec{
				required(keyName, str("The sink's name, unique across sources and sinks.").withPattern(nameRE.String())),
				key(keyMaxRetryDuration, (&spec{kind: kDuration, doc: "How long a batch's failing write to this sink is retried (from its first failure) before its rows become sink_failed dead letters and the shard moves on, e.g. 1h. Rows a deferred (s3) sink accepted and fails to upload are its own retry, not bounded by this."}).computedDefault("none: retried until the sink is back, holding the shard")),
			}, storeSpecs(true)...)...,
		)))),
		required(keyDeadLetter, storeOf(object("Where records that cannot become rows go, with their reason: exactly one of file, postgres or s3.",
			append(storeSpecs(false), key(keyUnrouted, boolean("Also dead-letter records no dataset takes, as no_route.", false)))...,
		))),
		key(keyConsumer, object("The shard consumer and its DynamoDB lease table.",
			key(keyApplication, str("The lease table's name (with -<source> appended when there are several sources).").withPattern(dynamoTableRE.String()).computedDefault("the first source's name")),
			key(keyWorkerID, str("This worker's id among the workers sharing the lease table; must be unique per process.").computedDefault("<hostname>-<pid>")),
			key(keyRoleARN, str("An IAM role to assume for the lease table.").computedDefault("the worker's own credentials")),
			key(keyShardSyncInterval, duration("How often a worker runs a lease pass: lists the shards, reads the lease table once, takes its due leases in bulk.", DefaultShardSyncInterval)),
			key(keyLeaseDuration, duration("A crashed worker's shards are taken over after about this plus shard_sync_interval.", DefaultLeaseDuration)),
			key(keyLeaseRefresh, duration("Lease renewal period; under half of lease_duration.", DefaultLeaseRefresh)),
			key(keyCheckpointInterval, &spec{kind: kDuration, doc: "The least time between two checkpoints of a shard: batches made durable meanwhile are checkpointed together at its end (and when the shard is handed over, ends or the worker stops). 0s: every batch at once. A crash re-reads at most this much more.", def: time.Duration(DefaultCheckpointInterval).String(), zeroOK: true}),
			key(keyMaxRecords, integer("Records per GetRecords call (one batch, one checkpoint).", DefaultMaxRecords, 1, 10000)),
			key(keyIdleBetweenReads, duration("The pause after an empty read.", DefaultIdleBetweenReads)),
			key(keyLeaseStealing, boolean("Claim shards from busier workers, so added workers take a fair share.", DefaultLeaseStealing)),
			key(keyBalance, str("How lease passes share the shards among workers: count (the same number each) or throughput (by each shard's measured bytes/s, written with its lease renewals: every worker's load within 20% of the mean where moving one shard can get it there). Set it alike on every worker; needs lease_stealing.").withEnum(BalanceCount, BalanceThroughput).withDefault(BalanceCount)),
			key(keyMaxLeases, integer("Leases per worker at most; 0: no cap.", 0, 0, 1<<31-1)),
			key(keyMaxLeasesPerPass, integer("Leases a worker takes plus claims it places in one lease pass (one pass per shard_sync_interval).", DefaultMaxLeasesPerPass, 1, 10000)),
			key(keyShutdownTimeout, duration("On SIGTERM, how long batches in flight may take to become durable; keep it under the platform's stop grace period.", DefaultShutdownTimeout)),
			key(keyCallTimeout, duration("Each attempt of every AWS call (Kinesis, DynamoDB, STS), answer included; the SDK makes 3 attempts, so a hung read gives its shard up after about 3 times this.", DefaultCallTimeout)),
			key(keyMinReadInterval, &spec{kind: kDuration, doc: "The least time between two GetRecords calls of one shard: a read-rate cap per shard (1s: one read a second; Kinesis allows 5 a second per shard, shared by every consumer of the stream). Polling only. 0s: none but the library's 5 a second.", def: "0s", zeroOK: true}),
			key(keyMaxReadsPerSecond, integer("GetRecords calls per second of the whole worker at most, across all its shards and sources, handed out in turn so that every waiting shard gets its share. Polling only. 0: no cap.", 0, 0, 1<<31-1)),
			key(keyMaxInflightBytes, integer("Record bytes a worker holds across all its shards, from before a GetRecords until the batch is durable; a shard waits to read while it is spent. At least one GetRecords answer (10 MiB).", DefaultMaxInflightBytes, MinInflightBytes, unbounded)),
		)),
		key(keyMetrics, object("The HTTP endpoint for /metrics, /healthz and /readyz, and nothing else.",
			key(keyListen, (&spec{kind: kString, doc: "host:port to listen on; port 0 takes a free port, logged at start (the default, so that several workers run on one host); set a fixed one for a scraper or probes; \"\" or null disables it.", nullable: true}).withDefault(DefaultMetricsListen)),
		)),
		key(keyErrors, object("The errors view (/errors, /errors.html): record data, so on a loopback port of its own.",
			key(keyListen, (&spec{kind: kString, doc: "host:port to serve it on; port 0 takes a free port, logged at start; \"\" or null disables it; never metrics.listen.", nullable: true}).withDefault(DefaultErrorsListen)),
		)),
		key(keyLog, object("Logging.",
			key(keyLevel, str("The lowest level logged.").withEnum("debug", "info", "warn", "error").withDefault("info")),
			key(keyFormat, str("text or json (one object per line).").withEnum("text", "json").withDefault("text")),
		)),
	)
})

// definitions are the named specs a ref names.
var definitions = sync.OnceValue(func() map[string]*spec { return map[string]*spec{"field": fieldSpec()} })

// defaultString is how the default reads in documentation.
func (s *spec) defaultString() string {
	switch v := s.def.(type) {
	case nil:
		return s.defaultDoc
	case string:
		if v == "" {
			return `""`
		}
		return v
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	default:
		return fmt.Sprint(v)
	}
}
