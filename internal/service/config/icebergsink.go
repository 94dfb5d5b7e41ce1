package config

import (
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/redact"
)

// sinks[i].iceberg.
const (
	keyIceberg        = "iceberg"
	keyCatalog        = "catalog"
	keyWarehouse      = "warehouse"
	keyNamespace      = "namespace"
	keyCommitInterval = "commit_interval"
	keyURI            = "uri"
	keyType           = "type"
)

// Iceberg sink defaults.
const (
	DefaultIcebergCommitInterval = time.Minute
	DefaultIcebergBufferBytes    = 256 << 20
	DefaultIcebergCatalogName    = "default"
	IcebergCatalogSQL            = "sql"
)

// IcebergSink writes a dataset's rows into an Apache Iceberg table: Parquet
// data files in the table's location on S3, committed with each shard's
// position in one atomic catalog swap (exactly once; see sinks/iceberg).
// Rows only: dead letters go to another kind.
type IcebergSink struct {
	Catalog IcebergCatalog
	// Warehouse is s3://bucket[/prefix]: a created table's location is
	// <warehouse>/<namespace levels>/<table>.
	Warehouse string
	// Namespace is dotted (analytics.raw).
	Namespace string
	// Table defaults to the dataset's name.
	Table       string
	CreateTable bool
	// PartitionBy: day(f), hour(f), month(f), year(f), bucket(N, f),
	// identity(f) or f; empty follows the table's own spec.
	PartitionBy    []string
	CommitInterval time.Duration
	BufferBytes    int64
	Compression    string
	ForcePathStyle bool
	RoleARN        *RoleARN
	SSEKMSKeyID    string
}

// IcebergCatalog is where the table's current metadata is named.
type IcebergCatalog struct {
	// Type is sql: the Iceberg SQL (JDBC) catalog in PostgreSQL.
	Type string
	// URI is the PostgreSQL connection string of the catalog's database.
	URI string
	// Name is the catalog_name column: several catalogs share a database.
	Name string
}

var (
	warehouseRE = regexp.MustCompile(`^s3a?://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$`)
	icebergName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	namespaceRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
)

func (l *loader) icebergSink(path string, n *yaml.Node) *IcebergSink {
	m := l.mapping(path, n, keyCatalog, keyWarehouse, keyNamespace, keyTable, keyCreateTable, keyPartitionBy, keyCommitInterval,
		keyBufferBytes, keyCompression, keyForcePathStyle, keyRoleARN, keySSEKMSKeyID)
	s := &IcebergSink{
		CreateTable:    l.boolean(m, keyCreateTable, false),
		CommitInterval: l.durationMin(m, keyCommitInterval, DefaultIcebergCommitInterval, false),
		BufferBytes:    l.integer(m, keyBufferBytes, DefaultIcebergBufferBytes, 1, 1<<62),
		Compression:    "zstd",
		ForcePathStyle: l.boolean(m, keyForcePathStyle, false),
		RoleARN:        l.roleARN(m, keyRoleARN),
		SSEKMSKeyID:    l.str(m, keySSEKMSKeyID),
	}
	if l.required(m, keyCatalog, "give the catalog, e.g. {type: sql, uri: \"${ICEBERG_CATALOG_DSN}\"}") {
		s.Catalog = l.icebergCatalog(join(path, keyCatalog), m.vals[keyCatalog])
	}
	if l.required(m, keyWarehouse, "give the S3 location of the tables, e.g. s3://my-lake/warehouse") {
		s.Warehouse = strings.TrimSuffix(l.str(m, keyWarehouse), "/")
		if !warehouseRE.MatchString(s.Warehouse) {
			l.errorf(join(path, keyWarehouse), m.vals[keyWarehouse], "%q is not an s3://bucket/prefix location", s.Warehouse)
		}
	}
	if l.required(m, keyNamespace, "name the table's namespace, e.g. analytics") {
		s.Namespace = l.str(m, keyNamespace)
		if !namespaceRE.MatchString(s.Namespace) {
			l.errorf(join(path, keyNamespace), m.vals[keyNamespace], "%q is not a namespace: names of letters, digits and '_', joined by '.'", s.Namespace)
		}
	}
	if m.has(keyTable) {
		s.Table = l.str(m, keyTable)
		if !icebergName.MatchString(s.Table) {
			l.errorf(join(path, keyTable), m.vals[keyTable], "%q is not a table name: letters, digits and '_'", s.Table)
		}
	}
	if m.has(keyCompression) {
		v := l.str(m, keyCompression)
		if !contains([]string{"zstd", "snappy", "gzip", "none"}, v) {
			l.errorf(join(path, keyCompression), m.vals[keyCompression], "%q is not a compression of Parquet data files; use zstd, snappy, gzip or none", v)
		} else {
			s.Compression = v
		}
	}
	for i, item := range l.seq(m, keyPartitionBy) {
		p := index(join(path, keyPartitionBy), i)
		if item.Kind != yaml.ScalarNode || item.Value == "" {
			l.errorf(p, item, "expected day(field), hour(field), month(field), year(field), bucket(N, field), identity(field) or a field name")
			continue
		}
		s.PartitionBy = append(s.PartitionBy, item.Value)
	}
	return s
}

func (l *loader) icebergCatalog(path string, n *yaml.Node) IcebergCatalog {
	m := l.mapping(path, n, keyType, keyURI, keyName)
	c := IcebergCatalog{Type: IcebergCatalogSQL, Name: DefaultIcebergCatalogName}
	if m.has(keyType) {
		switch v := l.str(m, keyType); v {
		case IcebergCatalogSQL:
		case "rest", "glue", "hive", "nessie":
			l.errorf(join(path, keyType), m.vals[keyType], "catalog type %q is not built yet; use sql (the Iceberg SQL catalog in PostgreSQL, which Spark, Trino, Flink and pyiceberg read as a JDBC/SQL catalog)", v)
		default:
			l.errorf(join(path, keyType), m.vals[keyType], "%q is not a catalog type; use sql", v)
		}
	}
	if l.required(m, keyURI, "give the catalog database's PostgreSQL connection string, e.g. \"${ICEBERG_CATALOG_DSN}\"") {
		c.URI = l.str(m, keyURI)
	}
	if m.has(keyName) {
		c.Name = l.str(m, keyName)
	}
	return c
}

func icebergSinkSpec(doc string) *spec {
	return object(doc,
		required(keyCatalog, object("Where the table's current metadata is named.",
			key(keyType, str("sql: the Iceberg SQL (JDBC) catalog in PostgreSQL, as Spark's JdbcCatalog, Trino's jdbc catalog and pyiceberg's SqlCatalog read it.").withEnum(IcebergCatalogSQL).withDefault(IcebergCatalogSQL)),
			required(keyURI, str("The catalog database's PostgreSQL connection string, usually \"${ICEBERG_CATALOG_DSN}\"; `config print` masks its password.").masked()),
			key(keyName, str("The catalog's name (the catalog_name column): several catalogs can share one database.").withDefault(DefaultIcebergCatalogName)),
		)),
		required(keyWarehouse, str("s3://bucket[/prefix]: a created table's location is <warehouse>/<namespace levels>/<table>.").withPattern(warehouseRE.String())),
		required(keyNamespace, str("The table's namespace, dotted (analytics.raw).").withPattern(namespaceRE.String())),
		key(keyTable, str("The table.").withPattern(icebergName.String()).computedDefault("the dataset's name")),
		key(keyCreateTable, boolean("Create the namespace and the table from the dataset when missing.", false)),
		key(keyPartitionBy, list("The table's partition spec: day(f), hour(f), month(f), year(f) of a datetime or date field, bucket(N, f), identity(f) or a bare field name. Empty: follow the table's own spec.", str("A partition field."))),
		key(keyCommitInterval, duration("How long rows wait for their commit; the shards' checkpoints wait as long, and each commit is one snapshot (a table's metadata grows by one snapshot per commit per worker until snapshots are expired).", DefaultIcebergCommitInterval)),
		key(keyBufferBytes, integer("The rows this sink holds not yet committed, by their size in memory, in one worker: at half of it a commit starts early, past it the shards wait.", DefaultIcebergBufferBytes, 1, unbounded)),
		key(keyCompression, str("Of the Parquet data files.").withEnum("zstd", "snappy", "gzip", "none").withDefault("zstd")),
		key(keyForcePathStyle, boolean("Address the bucket in the path (http://host/bucket/key), for servers without virtual-hosted buckets (versitygw, MinIO, LocalStack). The endpoint comes from the SDK's standard configuration (AWS_ENDPOINT_URL_S3).", false)),
		key(keyRoleARN, str("An IAM role to assume (STS AssumeRole) for every S3 call of the sink.").computedDefault("the worker's own credentials")),
		key(keySSEKMSKeyID, str("Encrypt every data and metadata file with this KMS key (SSE-KMS).").computedDefault("the bucket's default encryption")),
	)
}

func (p printer) icebergSink(s *IcebergSink) *yaml.Node {
	if s == nil {
		return nil
	}
	uri := s.Catalog.URI
	if p.mask {
		uri = redact.DSN(uri)
	}
	return p.mapping(
		keyCatalog, p.mapping(keyType, p.str(s.Catalog.Type), keyURI, p.str(uri), keyName, p.str(s.Catalog.Name)),
		keyWarehouse, p.str(s.Warehouse),
		keyNamespace, p.str(s.Namespace),
		keyTable, p.optStr(s.Table),
		keyCreateTable, p.bool(s.CreateTable),
		keyPartitionBy, p.strs(s.PartitionBy),
		keyCommitInterval, p.dur(s.CommitInterval),
		keyBufferBytes, p.int(s.BufferBytes),
		keyCompression, p.str(s.Compression),
		keyForcePathStyle, p.bool(s.ForcePathStyle),
		keyRoleARN, p.roleARN(s.RoleARN),
		keySSEKMSKeyID, p.optStr(s.SSEKMSKeyID),
	)
}

// checkIceberg: each table is written by one dataset (two would fight over
// the schema), and partition_by names the dataset's fields.
func (l *loader) checkIceberg(cfg *Config) {
	tables := map[string]string{}
	for i, ds := range cfg.Datasets {
		s := cfg.Sink(ds.Sink)
		if s == nil || s.Iceberg == nil {
			continue
		}
		t := s.Iceberg.TableFor(ds.Name)
		if !icebergName.MatchString(t) {
			l.errorf(join(index(keyDatasets, i), keySink), nil, "dataset %q's name is not an Iceberg table name (letters, digits and '_'): set table in sink %q", ds.Name, s.Name)
		}
		id := s.Iceberg.Catalog.URI + "\x00" + s.Iceberg.Catalog.Name + "\x00" + s.Iceberg.Namespace + "." + t
		if other, ok := tables[id]; ok {
			l.errorf(join(index(keyDatasets, i), keySink), nil, "datasets %q and %q would both write Iceberg table %s.%s: give each its own sink with its own table", other, ds.Name, s.Iceberg.Namespace, t)
		}
		tables[id] = ds.Name
		for _, p := range s.Iceberg.PartitionBy {
			src := p
			if _, arg, ok := strings.Cut(strings.TrimSuffix(p, ")"), "("); ok {
				src = arg
				if _, f, ok := strings.Cut(arg, ","); ok {
					src = f
				}
			}
			src = strings.TrimSpace(src)
			found := false
			for _, f := range ds.Fields {
				found = found || f.Name == src
			}
			if !found {
				l.errorf(join(index(keyDatasets, i), keySink), nil, "sink %q partitions by %q, but %q is not a field of dataset %q", s.Name, p, src, ds.Name)
			}
		}
	}
}

// TableFor is the table a dataset's rows go to.
func (s *IcebergSink) TableFor(dataset string) string {
	if s.Table != "" {
		return s.Table
	}
	return dataset
}
