package config

// The YAML keys of the configuration, one const block per section, in the
// order the README documents them. The section decoders (sections.go) and the
// whole-config checks (validate.go) name keys only through these, so a key
// has one spelling and renaming one is one edit.

// Top level.
const (
	keySources    = "sources"
	keyDatasets   = "datasets"
	keySinks      = "sinks"
	keyDeadLetter = "dead_letter"
	keyConsumer   = "consumer"
	keyMetrics    = "metrics"
	keyErrors     = "errors"
	keyLog        = "log"
)

// Shared by sources, datasets and sinks.
const keyName = "name"

// sources[i], sources[i].kinesis and its format.
const (
	keyKinesis      = "kinesis"
	keyStreamARN    = "stream_arn"
	keyRoleARN      = "role_arn"
	keyExternalID   = "external_id"
	keyInitPosition = "init_position"
	keyFormat       = "format"
	keyAvro         = "avro"
	keySchemaFile   = "schema_file"
	keyRegistry     = "registry"
	keyFraming      = "framing"
	keyEFO          = "efo"
	// keyCompression (compression) is shared with the s3 sinks.
	keyMaxDecompressedBytes = "max_decompressed_bytes"
)

// sources[i].kinesis.efo.
const (
	keyConsumerName = "consumer_name"
	keyConsumerARN  = "consumer_arn"
)

// sources[i].kinesis.format.avro.registry.
const (
	keyURL      = "url"
	keyUsername = "username"
	keyPassword = "password"
	keyToken    = "token"
	keyCAFile   = "ca_file"
	keyGlue     = "glue"
)

// sources[i].kinesis.format.avro.registry.glue (role_arn and external_id as
// the source's).
const (
	keyRegistryName = "registry_name"
	keyRegion       = "region"
)

// datasets[i].
const (
	keySource    = "source"
	keyTimestamp = "timestamp"
	keyWhere     = "where"
	keyCDC       = "cdc"
	keyDisorder  = "disorder"
	keyFields    = "fields"
	keySink      = "sink"
	keySince     = "since"
	keyUntil     = "until"
	keySample    = "sample"
	keyInputs    = "inputs"
)

// datasets[i].sample as a mapping.
const (
	keyRate  = "rate"
	keyUsing = "using"
)

// sources[i]: a bounded source ends once idle.
const (
	keyBounded  = "bounded"
	keyIdleness = "idleness"
)

// sources[i]: records older than max_record_age are expired (issue 31's
// limits); sinks[i]: a sink's retry budget.
const (
	keyMaxRecordAge     = "max_record_age"
	keyExpired          = "expired"
	keyMaxRetryDuration = "max_retry_duration"
)

// Values of sources[i].expired.
const (
	ExpiredDeadLetter = "dead_letter"
	ExpiredSkip       = "skip"
)

// Shared by sources and datasets: the deployments that use them.
const keyEnv = "env"

// sinks[i] and dead_letter: exactly one of file and postgres (and s3 for
// sinks[i], see s3sink.go).
const (
	keyFile     = "file"
	keyPostgres = "postgres"
	keyUnrouted = "unrouted" // dead_letter only

	keyPath     = "path" // file
	keyMaxBytes = "max_bytes"
	keyMode     = "mode"

	keyDSN           = "dsn" // postgres
	keyTable         = "table"
	keyCreateTable   = "create_table"
	keyBatchRows     = "batch_rows"
	keyBatchBytes    = "batch_bytes"
	keyBatchInterval = "batch_interval"
)

// consumer.
const (
	keyApplication        = "application"
	keyWorkerID           = "worker_id"
	keyShardSyncInterval  = "shard_sync_interval"
	keyLeaseDuration      = "lease_duration"
	keyLeaseRefresh       = "lease_refresh"
	keyCheckpointInterval = "checkpoint_interval"
	keyMaxRecords         = "max_records"
	keyIdleBetweenReads   = "idle_between_reads"
	keyLeaseStealing      = "lease_stealing"
	keyBalance            = "balance"
	keyMaxLeases          = "max_leases"
	keyMaxLeasesPerPass   = "max_leases_per_pass"
	keyShutdownTimeout    = "shutdown_timeout"
	keyCallTimeout        = "call_timeout"
	keyMaxInflightBytes   = "max_inflight_bytes"
	keyMinReadInterval    = "min_read_interval"
	keyMaxReadsPerSecond  = "max_reads_per_second"
)

// metrics and log.
const (
	keyListen = "listen"
	keyLevel  = "level"
)
