package postgres

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/redact"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// Defaults for the zero values of Config.
const (
	DefaultBatchRows  = 500
	DefaultBatchBytes = 1 << 20
	DefaultMaxConns   = 4
	DefaultTimeout    = 2 * time.Minute
	// defaultConnectTimeout applies when the DSN sets no connect_timeout.
	defaultConnectTimeout = 10 * time.Second
)

// Config configures a row sink or a dead-letter sink.
type Config struct {
	// DSN is a libpq connection string: a postgres:// URL or key=value
	// pairs. It may hold a password: the sink never logs it or puts it in an
	// error.
	DSN string
	// Table is the table to write to, [schema.]name, read the way PostgreSQL
	// reads an unquoted name: letters, digits, _ and $, folded to lower case
	// (Orders and orders are the same table). Without a schema, the DSN's
	// search_path decides (usually public).
	Table string
	// Columns are the dataset's fields (schema.Schema.Columns()) and become
	// the table's columns, in this order, before the origin columns. A
	// RowSink needs them; a DeadLetterSink must leave them nil.
	Columns []schema.Column
	// Timestamp names the dataset's timestamp column. A keyed dataset (a
	// Column with Key set) needs it: it orders the versions of a key's row
	// (see the package doc, Keyed datasets).
	Timestamp string
	// CreateTable creates the table when it does not exist. An existing table
	// is never altered: it is checked and must fit (see Check).
	CreateTable bool

	// BatchRows and BatchBytes bound one transaction: a Write larger than
	// either is split into several transactions, committed one after the
	// other (Write returns after the last); Writes smaller than both may be
	// committed together (see BatchInterval). BatchBytes counts the encoded
	// size of the values. Defaults 500 rows and 1 MiB.
	BatchRows  int
	BatchBytes int64
	// BatchInterval is a group-commit window. 0 (the default here) commits
	// at once whatever is queued when a connection is free: under load,
	// concurrent Writes (several shards) share a transaction; when idle, a
	// Write waits for nothing. A positive interval lets a transaction that
	// is not full wait up to that long (from its first Write's arrival) for
	// more Writes to join it, trading latency for fewer, larger
	// transactions; it only helps with many shards writing small batches.
	BatchInterval time.Duration
	// MaxConns is the number of connections, and so of transactions in
	// flight at once. Default 4.
	MaxConns int
	// Timeout bounds one transaction (a lock wait, a hung server): when it
	// passes, the Writes in it fail (transient) and are retried by the
	// caller. Default 2 minutes.
	Timeout time.Duration

	// OnDuplicates, if set, is called after a commit in which rows that were
	// already in the table (a replay after a crash or a lease move) were
	// skipped, with their number. It must not block. A keyed table calls
	// OnChanges instead.
	OnDuplicates func(n int)
	// OnChanges, if set, is called after every commit into a keyed table with
	// how many changes became their key's row (upserted), deleted their key
	// (deleted), or changed nothing because the key's row was as new or newer
	// (older: replays, disorder, several changes of a key in one batch). It
	// must not block.
	OnChanges func(upserted, deleted, older int)
}

// Origin columns every row table has, after the dataset's columns.
const (
	colSource      = "_source"
	colShardID     = "_shard_id"
	colSequence    = "_sequence_number"
	colSubSequence = "_subsequence"
	colArrival     = "_arrival_time"
	// colDeletedAt is a keyed table's tombstone: the timestamp of the delete
	// that removed the key, NULL while the key is live.
	colDeletedAt = "_deleted_at"
	// liveSuffix names a keyed table's view of its live rows.
	liveSuffix = "_live"
)

// maxIdentLen is PostgreSQL's identifier limit (NAMEDATALEN-1 bytes); longer
// names are silently truncated by the server.
const maxIdentLen = 63

// tableRE is the table names we take: unquoted identifiers of at most
// maxIdentLen bytes, optionally schema-qualified. Unquoted, because the sink's
// DDL does not quote them either, so every reader folds them the same way.
// Compiled on first use: the bounded repetitions make a large program (120 KB
// and 0.4 ms at every process start, also for configs without PostgreSQL).
var tableRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(TablePattern) })

// TablePattern is tableRE's pattern, for the config's JSON Schema.
const TablePattern = `^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$`

// ParseTable is the one table-name rule: the configuration, the sinks and the
// errors view all take a PostgreSQL table name through it. It turns
// "Schema.Table" into the identifier PostgreSQL reads for it unquoted (folded
// to lower case), or says why s is not a table name.
func ParseTable(s string) (pgx.Identifier, error) {
	if !tableRE().MatchString(s) {
		return nil, fmt.Errorf("%q is not a table name: use letters, digits, _ and $, optionally schema-qualified (schema.table)", s)
	}
	return pgx.Identifier(strings.Split(strings.ToLower(s), ".")), nil
}

// parseTable is ParseTable for Config.Table.
func parseTable(s string) (pgx.Identifier, error) {
	id, err := ParseTable(s)
	if err != nil {
		return nil, fmt.Errorf("postgres sink: Config.Table %w", err)
	}
	return id, nil
}

// normalize checks cfg and fills in defaults. rows says whether it is for a
// RowSink.
func (c Config) normalize(rows bool) (Config, error) {
	var errs []error
	if c.DSN == "" {
		errs = append(errs, errors.New("postgres sink: Config.DSN is empty: give a PostgreSQL connection string"))
	}
	if _, err := parseTable(c.Table); err != nil {
		errs = append(errs, err)
	}
	if rows {
		if len(c.Columns) == 0 {
			errs = append(errs, errors.New("postgres sink: Config.Columns is empty: a row table needs the dataset's columns"))
		}
		if err := checkColumns(c.Columns); err != nil {
			errs = append(errs, err)
		}
		if keyed(c.Columns) {
			errs = append(errs, checkKeyed(c)...)
		}
	} else if len(c.Columns) > 0 {
		errs = append(errs, errors.New("postgres sink: Config.Columns must be empty for a dead-letter sink: its columns are fixed"))
	}
	switch {
	case c.BatchRows < 0:
		errs = append(errs, fmt.Errorf("postgres sink: Config.BatchRows is %d: must be positive", c.BatchRows))
	case c.BatchRows == 0:
		c.BatchRows = DefaultBatchRows
	}
	switch {
	case c.BatchBytes < 0:
		errs = append(errs, fmt.Errorf("postgres sink: Config.BatchBytes is %d: must be positive", c.BatchBytes))
	case c.BatchBytes == 0:
		c.BatchBytes = DefaultBatchBytes
	}
	if c.BatchInterval < 0 {
		errs = append(errs, fmt.Errorf("postgres sink: Config.BatchInterval is %v: must not be negative", c.BatchInterval))
	}
	switch {
	case c.MaxConns < 0:
		errs = append(errs, fmt.Errorf("postgres sink: Config.MaxConns is %d: must be positive", c.MaxConns))
	case c.MaxConns == 0:
		c.MaxConns = DefaultMaxConns
	}
	switch {
	case c.Timeout < 0:
		errs = append(errs, fmt.Errorf("postgres sink: Config.Timeout is %v: must be positive", c.Timeout))
	case c.Timeout == 0:
		c.Timeout = DefaultTimeout
	}
	return c, errors.Join(errs...)
}

// checkColumns rejects column names PostgreSQL would truncate or that clash
// with each other or with the origin columns, and types the sink cannot store.
func checkColumns(cols []schema.Column) error {
	var errs []error
	seen := map[string]bool{colSource: true, colShardID: true, colSequence: true, colSubSequence: true, colArrival: true, colDeletedAt: keyed(cols)}
	for i, c := range cols {
		switch {
		case c.Name == "":
			errs = append(errs, fmt.Errorf("postgres sink: column %d has no name", i))
		case len(c.Name) > maxIdentLen:
			errs = append(errs, fmt.Errorf("postgres sink: field %q: a PostgreSQL column name has at most %d bytes; rename the field", c.Name, maxIdentLen))
		case strings.IndexByte(c.Name, 0) >= 0:
			errs = append(errs, fmt.Errorf("postgres sink: field %q: a column name cannot hold a NUL byte", c.Name))
		case seen[c.Name]:
			if strings.HasPrefix(c.Name, "_") && isOriginColumn(c.Name) {
				errs = append(errs, fmt.Errorf("postgres sink: field %q: the name is taken by an origin column; rename the field", c.Name))
			} else {
				errs = append(errs, fmt.Errorf("postgres sink: field %q appears twice", c.Name))
			}
		}
		seen[c.Name] = true
		if _, err := pgTypeOf(c.Type); err != nil {
			errs = append(errs, fmt.Errorf("postgres sink: field %q: %w", c.Name, err))
		}
	}
	return errors.Join(errs...)
}

func isOriginColumn(name string) bool {
	switch name {
	case colSource, colShardID, colSequence, colSubSequence, colArrival, colDeletedAt:
		return true
	}
	return false
}

// poolConfig parses the DSN. Its errors never contain the DSN: pgx redacts
// passwords only on a best-effort basis.
func poolConfig(dsn string, maxConns int) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		hint := "check its syntax"
		if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
			if _, uerr := url.Parse(dsn); uerr != nil {
				hint = "it is not a valid URL: percent-encode special characters in the password"
			}
		}
		return nil, fmt.Errorf("postgres sink: cannot parse the DSN (not shown: it may hold a password): %s", hint)
	}
	pc.MaxConns = int32(maxConns)
	pc.MinConns = 0
	pc.MaxConnIdleTime = 5 * time.Minute
	pc.HealthCheckPeriod = 30 * time.Second
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if pc.ConnConfig.RuntimeParams == nil {
		pc.ConnConfig.RuntimeParams = map[string]string{}
	}
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = "kinesis-ingest"
	}
	// Timestamps are sent and read as instants; the session time zone only
	// matters for text output, which the sink does not use.
	return pc, nil
}

// redactor scrubs a password out of error messages, in case a driver or
// server message quotes it.
type redactor struct{ secrets []string }

func newRedactor(pc *pgxpool.Config) redactor {
	var r redactor
	if pc != nil && pc.ConnConfig.Password != "" {
		r.secrets = append(r.secrets, pc.ConnConfig.Password)
	}
	return r
}

func (r redactor) err(err error) error {
	if err == nil || len(r.secrets) == 0 {
		return err
	}
	msg := err.Error()
	clean := redact.Secrets(msg, r.secrets...)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
