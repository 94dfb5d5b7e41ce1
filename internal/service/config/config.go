// Package config loads and validates the kinesis-ingest YAML configuration.
//
// A configuration is one YAML file, validated whole at load time. Load and
// Parse first apply defaults, then run one validation that reports every
// problem at once: the returned error is an errors.Join of *Error values, one
// per line, each prefixed with the YAML path of the offending value, e.g.
//
//	sources[0].kinesis.stream_arn: not a Kinesis stream ARN: "arn:aws:kinesis:us-east-1": too few parts; ...
//
// Unknown keys are errors. ${VAR} in any scalar value is replaced by the
// environment variable VAR (an unset variable is an error; $${ is a literal
// ${). Source semantics follow Fennel's Kinesis source: connector (source and
// sink) names are unique, init_position takes latest, trim_horizon or a
// timestamp in any of the forms Fennel accepts.
//
// # Defaults
//
//   - sources[].kinesis.init_position: latest (Fennel has no default; starting
//     at the newest record is the only choice that never replays history by
//     surprise)
//   - sources[].kinesis.format: json (Fennel's "most common value")
//   - sources[].kinesis.compression: none; max_decompressed_bytes (with a
//     compression or format cloudwatch_logs only): 10 MiB,
//     decompress.DefaultMaxBytes
//   - sources[].kinesis.format.cloudwatch_logs.message: str
//   - sinks[].file.max_bytes: 64 MiB
//   - sinks[].file.mode and dead_letter.file.mode: 0600 (directories 0700)
//   - postgres batch_rows 500, batch_bytes 1 MiB, batch_interval 0 (no wait: writes queued while a transaction runs share the next one; a window of a few ms pays only with many shards writing small batches), create_table false
//   - datasets[].cdc: append (keyless datasets, as Fennel's default);
//     datasets[].disorder: none (no record is late)
//   - datasets[].since, until: unbounded; sample: none (sample.using: the keys
//     of a keyed dataset, else every field but the timestamp); env: none (used in every deployment)
//   - sources[].bounded: false (bounded needs idleness, and idleness bounded)
//   - sources[].max_record_age: none (no record expires); expired: dead_letter
//     (with max_record_age only); sinks[].max_retry_duration: none (a sink
//     outage is retried until it ends)
//   - consumer.min_read_interval: 0s, consumer.max_reads_per_second: 0 (no
//     read-rate cap but the library's 5 GetRecords a second per shard)
//   - dead_letter.unrouted: false
//   - consumer: see the Default* constants; application defaults to the first
//     source's name, worker_id to "<hostname>-<pid>"
//   - metrics.listen, errors.listen: 127.0.0.1:0 (a free loopback port, logged
//     at start) when the key is absent; "" (or null) disables
//   - log.level: info, log.format: text
//
// # The spec, the JSON Schema and config print
//
// spec.go describes every key (type, default, bounds, pattern, doc, whether
// it is secret) in one tree, configSpec. JSONSchema generates the editors'
// JSON Schema from it (committed as kinesis-ingest.schema.json at the
// repository root, printed by `kinesis-ingest config schema`), and Print
// renders a loaded Config as its effective YAML, masking the keys the spec
// marks secret. The section decoders (sections.go) stay hand-written; while
// TestSpecMatchesLoader runs they record every mapping's keys and every typed
// scalar's default and bounds, and the test fails where loader and spec
// disagree. To add a key:
//
//  1. read it in sections.go with the typed readers (l.str, l.integer,
//     l.boolean, l.duration, l.durationMin), which take its default and
//     bounds, and add it to the mapping's allowed keys;
//  2. add it to configSpec in spec.go at the same place, with the same
//     default and bounds, a doc line, and .masked() if it holds a secret;
//  3. add it to Print (print.go), in the spec's order;
//  4. if it opens a new mapping or an exactly-one branch, make a config in
//     specCoverage (spec_test.go) reach it; then regenerate the schema with
//     go test ./internal/service/config -run TestSchemaFileIsCurrent -update.
//
// TestPrintRoundTrip (the printed config loads back to the same Config),
// TestPrintShowsSpecDefaults and TestPrintMasksSecrets catch a step 3 that
// was forgotten; a bad file in testdata whose problem the schema cannot see
// (a check across keys or sections) says so in its header with
// `# schema: valid: <why>`.
//
// Load resolves relative file paths (sink and dead-letter paths, Avro
// schema_file and ca_file) against the directory of the configuration file,
// as Prometheus does; Parse leaves them relative to the working directory.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/decompress"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/schema/where"
	"gopkg.in/yaml.v3"
)

// Defaults for the consumer section. They aim at production: a crashed
// worker's shards are taken over after about LeaseDuration+ShardSyncInterval
// (15s), new shards after a reshard are found within ShardSyncInterval, and
// reads use 2 of the 5 GetRecords calls per second a shard allows.
const (
	DefaultShardSyncInterval = 5 * time.Second
	DefaultLeaseDuration     = 10 * time.Second
	DefaultLeaseRefresh      = 2 * time.Second
	// DefaultCheckpointInterval: busy shards cost one checkpoint write per
	// 5 s instead of one per batch (3.7 a second measured): 720 instead of
	// 4,215 write units/s projected at 1,000 busy shards × 100 workers
	// (BenchmarkCoordinationBusy), for at most 5 s more to re-read after a
	// crash.
	DefaultCheckpointInterval = 5 * time.Second
	DefaultMaxLeasesPerPass   = 50
	// DefaultMaxRecords: 1,000 records per GetRecords, not the API's 10,000.
	// Measured end to end (README "Performance"): the same records/s or more
	// (a shard takes at most 1,000 records/s, and 5 reads/s of 1,000 catch up
	// a backlog at 5× that), a third less peak RSS (smaller batches in
	// memory at once) and a little less CPU.
	DefaultMaxRecords       = 1000
	DefaultIdleBetweenReads = 500 * time.Millisecond
	// DefaultShutdownTimeout bounds how long a stopping worker waits for the
	// batches in flight to become durable (a sink outage) before it abandons
	// them unchecked: a stop never hangs, and nothing is lost.
	DefaultShutdownTimeout = 30 * time.Second
	DefaultLeaseStealing   = true // so added workers take a fair share
	// The values of consumer.balance.
	BalanceCount      = "count"
	BalanceThroughput = "throughput"
	// DefaultCallTimeout is a third of KCL-Java's 30 s Kinesis request
	// timeout: with the SDK's 3 attempts a hung read gives its shard up in
	// about 30 s, and one GetRecords (at most 10 MiB) takes well under a
	// second in a region.
	DefaultCallTimeout = 10 * time.Second
	// DefaultMaxInflightBytes fits a 1 GiB container: measured, the worker's
	// resident memory is a base of about 35-50 MiB plus about 3.5 times the
	// record bytes in flight (the answer's JSON and base64, the record, the
	// row, and the garbage collector's headroom), so 192 MiB peaks near
	// 750 MiB and leaves room for the sinks' buffers (see README, Scaling).
	DefaultMaxInflightBytes = 192 << 20
	// MinInflightBytes is the most one GetRecords call returns (10 MiB), so
	// that every read fits the budget.
	MinInflightBytes = 10 << 20
	// DefaultMetricsListen is a free loopback port, chosen at start and
	// logged ("serving metrics addr=..."): any number of workers run on one
	// host with one config, as the README's scaling examples do. A scraper
	// or a probe needs a known port, so a deployment sets one (Kubernetes
	// and compose: 0.0.0.0:9108), which then binds exactly or fails.
	DefaultMetricsListen = "127.0.0.1:0"
	// DefaultErrorsListen is a free loopback port too: the errors view shows
	// record data (previews, partition keys), which whoever may scrape
	// metrics should not read.
	DefaultErrorsListen = "127.0.0.1:0"
	DefaultFileMaxBytes = 64 << 20
	// DefaultFileMode: files of the file sinks hold raw record payloads.
	DefaultFileMode      os.FileMode = 0o600
	DefaultBatchRows                 = 500
	DefaultBatchBytes                = 1 << 20
	DefaultBatchInterval             = 0
)

// Format kinds.
const (
	FormatJSON = "json"
	FormatAvro = "avro"
)

// Compressions of a source's records (decompress's codecs).
const (
	CompressionNone = string(decompress.None)
	CompressionGzip = string(decompress.Gzip)
	CompressionZstd = string(decompress.Zstd)
	CompressionAuto = string(decompress.Auto)
)

// DefaultMaxDecompressedBytes is the bound on a compressed record's
// decompressed size: 10 MiB, the largest plain record Kinesis takes (see
// decompress.DefaultMaxBytes).
const DefaultMaxDecompressedBytes = decompress.DefaultMaxBytes

// Config is a loaded, validated configuration.
type Config struct {
	Sources    []Source
	Datasets   []Dataset
	Sinks      []Sink
	DeadLetter DeadLetter
	Consumer   Consumer
	Metrics    Metrics
	Errors     Errors
	Log        Log

	// Warnings are problems that do not stop loading, each prefixed with a
	// YAML path, e.g. an init_position in the future or a source that feeds
	// no dataset. Callers should log them.
	Warnings []string
}

// Source is one Kinesis stream to read (sources[]).
type Source struct {
	// Name identifies the source; unique across sources and sinks.
	Name    string
	Kinesis Kinesis
	// Env (env) lists the deployments that read this source; empty is all.
	Env []string
	// Bounded (bounded) makes the source end: once every shard of it
	// delivered nothing new for Idleness (idleness) and has nothing left to
	// read. Both are set or neither, as in Fennel.
	Bounded  bool
	Idleness time.Duration
	// MaxRecordAge (max_record_age), when positive, expires a record that
	// arrived in Kinesis longer ago than this when it is read: Expired
	// (expired) says whether it becomes an expired dead letter
	// (ExpiredDeadLetter, the default) or is skipped and only counted
	// (ExpiredSkip). Zero (the default): no record expires.
	MaxRecordAge time.Duration
	Expired      string
}

// Kinesis holds a source's stream parameters (sources[].kinesis).
type Kinesis struct {
	StreamARN StreamARN // stream_arn, required
	// RoleARN (role_arn) is assumed to read the stream; nil uses the default
	// AWS credential chain.
	RoleARN *RoleARN
	// ExternalID (external_id) is passed to AssumeRole; requires RoleARN.
	ExternalID string
	// InitPosition (init_position) is where shards without a checkpoint start.
	InitPosition InitPosition
	Format       Format // format, default json
	// Compression (compression) is how records are compressed: none (the
	// default), gzip, zstd or auto (each record by its magic number).
	Compression string
	// MaxDecompressedBytes (max_decompressed_bytes) bounds a record's
	// decompressed size when Compression is not none; 0 otherwise.
	MaxDecompressedBytes int64
	// EFO (efo), when set, reads the stream through enhanced fan-out
	// (SubscribeToShard) instead of polling GetRecords.
	EFO *EFO
}

// EFO names the enhanced fan-out consumer of a source; exactly one field is
// set.
type EFO struct {
	// ConsumerName (consumer_name) is registered on the stream by the first
	// worker that finds it missing, and never deregistered.
	ConsumerName string
	// ConsumerARN (consumer_arn) is a consumer registered elsewhere, of this
	// source's stream.
	ConsumerARN string
}

// Format is the encoding of record payloads: `json`, `{avro: {schema_file: f}}`,
// `{avro: {registry: {...}}}` or `cloudwatch_logs` (`{cloudwatch_logs:
// {message: json|str}}`).
type Format struct {
	Kind string // FormatJSON, FormatAvro or FormatCloudWatchLogs
	Avro *Avro  // set when Kind is FormatAvro
	// CloudWatchLogs is set when Kind is FormatCloudWatchLogs.
	CloudWatchLogs *CloudWatchLogs
}

// Avro says where the Avro writer schema comes from; exactly one field is set.
type Avro struct {
	SchemaFile string    // schema_file: path of an .avsc file
	Registry   *Registry // registry: a Confluent-compatible schema registry
	// Framing (framing, schema_file only) is how records are framed: auto
	// (default), binary (raw binary Avro) or single_object.
	Framing string
}

// Avro framings of records decoded with a schema file.
const (
	AvroFramingAuto         = "auto"
	AvroFramingBinary       = "binary"
	AvroFramingSingleObject = "single_object"
)

// Registry is a schema registry connection (format.avro.registry): a
// Confluent-compatible one at URL, or an AWS Glue Schema Registry (Glue); one
// of the two is set. Authenticate with Username and Password, or with Token,
// or not at all.
type Registry struct {
	URL      string // http or https
	Username string
	Password string
	Token    string
	CAFile   string // ca_file: PEM bundle to trust for https
	// Glue (glue) is an AWS Glue Schema Registry, for records framed by
	// Glue's serializers.
	Glue *GlueRegistry
}

// GlueRegistry is an AWS Glue Schema Registry (format.avro.registry.glue).
type GlueRegistry struct {
	RegistryName string // registry_name
	// Region (region) is the registry's; Load sets the source stream's
	// when the YAML has none.
	Region string
	// RoleARN (role_arn) is assumed for the Glue calls, with ExternalID
	// (external_id); nil uses the credentials the source reads its stream
	// with (its own role_arn and external_id, if set).
	RoleARN    *RoleARN
	ExternalID string
}

// Dataset turns one source's records into typed rows for one sink (datasets[]).
type Dataset struct {
	Name string // unique among datasets
	// Sources (source: one name or a list) names the Sources whose records
	// feed the dataset, as Fennel stacks @source decorators on one dataset:
	// every listed source that is active (after SelectEnv) feeds it. Never
	// empty after Load.
	Sources []string
	// Timestamp names the datetime field holding the row time; when the YAML
	// omits it, the only datetime field is used.
	Timestamp string
	// Where is an optional filter expression (see package where), as written.
	Where string
	// CDC (cdc) is how records change the dataset: CDCAppend (the default,
	// keyless datasets only), CDCUpsert, CDCDebezium or CDCDynamoDB (keyed
	// datasets only).
	CDC string
	// Disorder (disorder, Fennel's duration syntax such as 14d or "1h 30m")
	// is how far behind the newest timestamp seen in its shard a record may
	// be; an older one is a late dead letter. 0 (the default) takes any.
	Disorder time.Duration
	Fields   []schema.FieldSpec
	// Inputs is how many of Fields, at its end, are the dataset's inputs
	// (inputs: read for computed fields and where, not columns).
	Inputs int
	Sink   string // name of a Sink
	// Schema is Fields compiled by schema.Compile (never nil after Load).
	Schema *schema.Schema
	// Filter is Where compiled by where.Compile against Fields; nil (which
	// takes every record) when Where is empty.
	Filter *where.Filter
	// Since and Until (since, until) bound the dataset's timestamp field:
	// a row is kept when Since <= timestamp < Until; zero is unbounded. Unlike
	// init_position (the Kinesis arrival time, where reading starts), they
	// are on the payload's own time, and a record outside is counted in
	// records_filtered_total, neither a row nor a dead letter.
	Since, Until time.Time
	// Sample (sample) keeps a deterministic fraction of the rows; nil keeps
	// every row.
	Sample *Sample
	// Env (env) lists the deployments that use this dataset; empty is all.
	Env []string
	// TimestampOnly converts the timestamp field alone (set when Since or
	// Until is), to tell a record outside the window that does not fit the
	// dataset from one inside it.
	TimestampOnly *schema.Schema
}

// Sample keeps the rows whose hash of the Using columns falls under Rate, so
// the same records are kept on every run and by every worker.
type Sample struct {
	Rate float64 // in (0, 1]
	// Using names the columns hashed; after Load it is never empty. The
	// default, as Fennel's, is the keys of a keyed dataset, else every field
	// but the timestamp, either way leaving out fields with ref, const or
	// expr. Named or not, a field with const, expr or a ref to a payload
	// path is never hashed (a ref to record metadata may be named).
	Using []string
}

// Change-data-capture modes of a dataset (datasets[].cdc), as Fennel names
// them.
const (
	// CDCAppend: every record is a new row (keyless datasets only).
	CDCAppend = "append"
	// CDCUpsert: every record is the new version of its key's row; the row
	// with the newest timestamp wins (keyed datasets only).
	CDCUpsert = "upsert"
	// CDCDebezium: records are Debezium change events (creates, updates,
	// deletes) of a keyed dataset.
	CDCDebezium = "debezium"
	// CDCDynamoDB: records are the change records of Kinesis Data Streams
	// for DynamoDB (INSERT, MODIFY, REMOVE) of a keyed dataset.
	CDCDynamoDB = "dynamodb"
)

// Reads reports whether source feeds the dataset.
func (d *Dataset) Reads(source string) bool { return slices.Contains(d.Sources, source) }

// Keyed reports whether the dataset holds one current row per key.
func (d *Dataset) Keyed() bool {
	return d.CDC == CDCUpsert || d.CDC == CDCDebezium || d.CDC == CDCDynamoDB
}

// Sink is a named destination for rows (sinks[]); its Store has exactly one
// kind set.
type Sink struct {
	Name string // unique across sources and sinks
	// MaxRetryDuration (max_retry_duration), when positive, bounds how long
	// a batch's failing write to this sink is retried: then its rows become
	// sink_failed dead letters and the shard moves on. Zero (the default):
	// retried until the sink is back, holding the shard.
	MaxRetryDuration time.Duration
	Store
}

// FileSink writes rows to files under Path.
type FileSink struct {
	Path     string
	MaxBytes int64 // max_bytes: rotate after this many bytes, default 64 MiB
	// Mode (mode, octal) is the permission of the files created, default
	// 0600 (directories 0700): they hold raw record payloads. 0640 lets a
	// group read them.
	Mode os.FileMode
}

// PostgresSink writes rows to a PostgreSQL table.
type PostgresSink struct {
	DSN           string        // dsn, a URL or key=value connection string
	Table         string        // table, optionally schema-qualified
	CreateTable   bool          // create_table if missing, default false
	BatchRows     int           // batch_rows, default 500
	BatchBytes    int64         // batch_bytes, default 1 MiB
	BatchInterval time.Duration // batch_interval, default 0: no group-commit window
}

// DeadLetter receives records that could not be decoded or converted; its
// Store has exactly one kind set.
type DeadLetter struct {
	Store
	// Unrouted also sends records that no dataset accepted (for example,
	// filtered out by every where clause) to the dead letter.
	Unrouted bool
}

// Consumer configures the shard consumer and its DynamoDB lease table.
type Consumer struct {
	// Application names the lease table; defaults to the first source's name.
	Application string
	// TablePerSource is set when the config has several sources: each then
	// has its table, Application-<source>. It is decided on the whole file,
	// so selecting an env (SelectEnv) never moves a source's checkpoints.
	TablePerSource bool
	// WorkerID identifies this process among workers; default hostname-pid.
	WorkerID string
	// RoleARN is assumed to access the lease table; nil uses the default chain.
	RoleARN           *RoleARN
	ShardSyncInterval time.Duration // shard_sync_interval, default 5s
	LeaseDuration     time.Duration // lease_duration, default 10s
	LeaseRefresh      time.Duration // lease_refresh, default 2s; < LeaseDuration/2
	// CheckpointInterval (checkpoint_interval) is the least time between
	// two checkpoints of a shard; 0 checkpoints every batch.
	CheckpointInterval time.Duration
	MaxRecords         int           // max_records per GetRecords, 1..10000, default 1000
	IdleBetweenReads   time.Duration // idle_between_reads, default 500ms
	LeaseStealing      bool          // lease_stealing, default true
	// Balance (balance) is how lease passes share the shards: BalanceCount
	// (the default) or BalanceThroughput (by measured bytes/s; needs
	// lease_stealing).
	Balance          string
	MaxLeases        int // max_leases per worker, 0 = unlimited (default)
	MaxLeasesPerPass int // max_leases_per_pass, default 50
	// ShutdownTimeout (shutdown_timeout) bounds the drain on SIGTERM; batches
	// not durable by then are abandoned without a checkpoint and read again
	// by the next owner. Default 30s.
	ShutdownTimeout time.Duration
	// CallTimeout (call_timeout) bounds each attempt of every AWS call the
	// worker makes (Kinesis, DynamoDB, STS), from sending the request to the
	// last byte of the answer. The KCL calls Kinesis without a deadline, and
	// its lease renewal runs apart from its reads: without this bound a read
	// that never returns would keep its shard leased and unread forever.
	// Default 10s.
	CallTimeout time.Duration
	// MaxInflightBytes (max_inflight_bytes) bounds the record bytes a worker
	// holds across all its shards, from the GetRecords answer until the
	// batch is durable: a shard waits before reading while it is spent. At
	// least MinInflightBytes (one GetRecords answer may be that big).
	MaxInflightBytes int64
	// MinReadInterval (min_read_interval) is the least time between two
	// GetRecords calls of one shard: a read-rate cap per shard, for a shard
	// whose 5 reads a second other consumers share. 0 (the default): none
	// but the library's 5 a second.
	MinReadInterval time.Duration
	// MaxReadsPerSecond (max_reads_per_second) caps the GetRecords calls of
	// the whole worker, across its shards and sources, handed out in turn
	// so that every shard waiting gets its share. 0 (the default): none.
	MaxReadsPerSecond int
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is the host:port to serve /metrics on; "" disables it.
	Listen string
}

// Errors configures the listener of the errors view (/errors, /errors.html).
type Errors struct {
	// Listen is the host:port to serve the errors view on; "" disables it.
	// It must differ from Metrics.Listen.
	Listen string
}

// Log configures logging.
type Log struct {
	Level  string // debug, info (default), warn or error
	Format string // text (default) or json
}

// SlogLevel returns Level as a slog.Level.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Source returns the source with the given name, or nil.
func (c *Config) Source(name string) *Source {
	for i := range c.Sources {
		if c.Sources[i].Name == name {
			return &c.Sources[i]
		}
	}
	return nil
}

// Sink returns the sink with the given name, or nil.
func (c *Config) Sink(name string) *Sink {
	for i := range c.Sinks {
		if c.Sinks[i].Name == name {
			return &c.Sinks[i]
		}
	}
	return nil
}

// Error is one configuration problem. Load and Parse return all of them
// joined with errors.Join, in document order.
type Error struct {
	Path string // YAML path such as sources[0].kinesis.stream_arn
	Msg  string
	Line int // 1-based line in the file, 0 if unknown
	col  int
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Load reads and parses the configuration file at path. Relative paths
// inside it are resolved against the file's directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return parse(data, filepath.Dir(path))
}

// Parse parses and validates a configuration held in memory.
func Parse(data []byte) (*Config, error) {
	return parse(data, "")
}

func parse(data []byte, dir string) (*Config, error) {
	return parseWith(newLoader(dir), data)
}

func parseWith(l *loader, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("config is not valid YAML: %w", err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, errors.New("config is empty; it needs at least sources, datasets, sinks and dead_letter")
	}
	l.expandEnv("", &root)
	cfg := l.decode(root.Content[0])
	if !l.exhausted {
		l.validate(cfg)
	}
	if err := l.err(); err != nil {
		return nil, err
	}
	cfg.Warnings = l.warnings
	return cfg, nil
}
