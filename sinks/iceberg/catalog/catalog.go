// Package catalog is the Iceberg SQL catalog on PostgreSQL: the two tables
// that every SQL/JDBC Iceberg catalog shares (Java's JdbcCatalog, pyiceberg's
// SqlCatalog, iceberg-go's catalog/sql), so that Spark, Trino, pyiceberg or
// iceberg-go pointed at the same database and catalog name see the tables the
// sink writes, and the sink sees theirs.
//
// A table is a row of iceberg_tables naming its current metadata JSON. A
// commit is Swap: one UPDATE that moves metadata_location from the location
// the writer read to the one it wrote, only if nobody moved it meanwhile.
// That compare-and-swap is the commit point of the table; everything written
// before it (data files, manifests, metadata JSON) is invisible until it
// succeeds.
//
// # Tables
//
// The columns, types and keys are those of Java's JdbcUtil (V1 schema) and
// pyiceberg's models; iceberg-go's catalog/sql has the same columns with
// unbounded varchar:
//
//	iceberg_tables (
//	  catalog_name               VARCHAR(255) NOT NULL,
//	  table_namespace            VARCHAR(255) NOT NULL,
//	  table_name                 VARCHAR(255) NOT NULL,
//	  metadata_location          VARCHAR(1000),
//	  previous_metadata_location VARCHAR(1000),
//	  iceberg_type               VARCHAR(5),   -- 'TABLE', 'VIEW', or NULL (rows written before views existed)
//	  PRIMARY KEY (catalog_name, table_namespace, table_name))
//	iceberg_namespace_properties (
//	  catalog_name   VARCHAR(255) NOT NULL,
//	  namespace      VARCHAR(255) NOT NULL,
//	  property_key   VARCHAR(255),
//	  property_value VARCHAR(1000),
//	  PRIMARY KEY (catalog_name, namespace, property_key))
//
// Namespaces are stored with their levels joined by '.', as all three do (a
// level holding a '.' is refused: the others would read it as two levels). A
// namespace exists when it has a property row or a table; CreateNamespace
// writes the property exists=true, as pyiceberg and iceberg-go do. A table
// created before the iceberg_type column existed (the "V0" schema that older
// Java and pyiceberg create) works too: the column is then left out of every
// statement, and OpenSQL never alters a table it did not create.
//
// # Failures
//
// ErrConflict, ErrNoSuchTable, ErrTableExists and ErrNoSuchNamespace are
// answers, not failures; IsTransient tells an outage (the server down or
// restarting, a lost connection, a timeout) from everything else. The
// package does not retry: its caller retries transient errors in one place.
// Errors never contain the DSN's password.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/redact"
)

var (
	// ErrNoSuchTable: the catalog has no table of that name (or the row is a
	// view, or has no metadata location).
	ErrNoSuchTable = errors.New("no such table")
	// ErrTableExists: Create found a table (or view) of that name already.
	ErrTableExists = errors.New("table already exists")
	// ErrConflict: Swap found the table's metadata_location moved since the
	// caller read it: another writer committed first. Reload and retry.
	ErrConflict = errors.New("the table's metadata location moved (another writer committed first)")
	// ErrNoSuchNamespace: Create was asked for a table in a namespace that
	// does not exist.
	ErrNoSuchNamespace = errors.New("no such namespace")
	// ErrNoCatalogTables: the database lacks iceberg_tables or
	// iceberg_namespace_properties and SQLConfig.Init is off.
	ErrNoCatalogTables = errors.New("the Iceberg catalog tables are missing")
)

// DefaultName is the catalog_name used when SQLConfig.Name is empty, as
// pyiceberg and iceberg-go name a catalog configured without one.
const DefaultName = "default"

// Sizes of the shared columns (Java's and pyiceberg's DDL); checked before a
// round trip so that an over-long name fails with a clear error.
const (
	maxNameLen = 255
)

const (
	tablesDDL = `CREATE TABLE IF NOT EXISTS iceberg_tables (
  catalog_name VARCHAR(255) NOT NULL,
  table_namespace VARCHAR(255) NOT NULL,
  table_name VARCHAR(255) NOT NULL,
  metadata_location VARCHAR(1000),
  previous_metadata_location VARCHAR(1000),
  iceberg_type VARCHAR(5),
  PRIMARY KEY (catalog_name, table_namespace, table_name))`
	namespacesDDL = `CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
  catalog_name VARCHAR(255) NOT NULL,
  namespace VARCHAR(255) NOT NULL,
  property_key VARCHAR(255),
  property_value VARCHAR(1000),
  PRIMARY KEY (catalog_name, namespace, property_key))`
)

// DDL returns the statements OpenSQL runs when SQLConfig.Init is set, for an
// operator who creates the tables by hand.
func DDL() string { return tablesDDL + ";\n" + namespacesDDL + ";\n" }

// SQLConfig configures OpenSQL.
type SQLConfig struct {
	// DSN is a libpq connection string: a postgres:// URL or key=value
	// pairs. It may hold a password, which never appears in an error.
	DSN string
	// Name is the catalog_name of every row this catalog reads and writes;
	// another engine sees our tables when configured with the same name.
	// Default "default".
	Name string
	// Init creates the two catalog tables when they are missing. Without it,
	// missing tables are an error (ErrNoCatalogTables) that says how to
	// create them.
	Init bool
}

// SQL is a catalog in a PostgreSQL database. It is safe for concurrent use.
type SQL struct {
	pool *pgxpool.Pool
	name string
	// typed is whether iceberg_tables has the iceberg_type column.
	typed  bool
	secret string
}

// Pool bounds: the sink commits one table at a time per worker, so a few
// connections are plenty.
const (
	maxConns              = 4
	defaultConnectTimeout = 10 * time.Second
)

// OpenSQL checks cfg, connects, and checks (with Init: creates) the catalog
// tables. An unreachable server is an error IsTransient accepts: call again.
// Close releases the connections.
func OpenSQL(ctx context.Context, cfg SQLConfig) (*SQL, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	var errs []error
	if cfg.DSN == "" {
		errs = append(errs, errors.New("iceberg catalog: dsn: empty: set the PostgreSQL connection string of the catalog database"))
	}
	if n := utf8.RuneCountInString(cfg.Name); n > maxNameLen {
		errs = append(errs, fmt.Errorf("iceberg catalog: name %q: %d characters, the catalog tables hold at most %d", cfg.Name, n, maxNameLen))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// pgx masks a password in what it echoes only on a best-effort basis.
		return nil, errors.New("iceberg catalog: cannot parse the DSN (not shown: it may hold a password): check its syntax, and percent-encode special characters of a URL's password")
	}
	pc.MaxConns = maxConns
	pc.MinConns = 0
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if pc.ConnConfig.RuntimeParams == nil {
		pc.ConnConfig.RuntimeParams = map[string]string{}
	}
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = "kinesis-ingest"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, scrub(fmt.Errorf("iceberg catalog %q: open the connection pool: %w", cfg.Name, err), pc.ConnConfig.Password)
	}
	c := &SQL{pool: pool, name: cfg.Name, secret: pc.ConnConfig.Password}
	if err := c.prepare(ctx, cfg.Init); err != nil {
		pool.Close()
		return nil, c.fail(err)
	}
	return c, nil
}

// prepare makes sure both tables exist and have the columns we use.
func (c *SQL) prepare(ctx context.Context, create bool) error {
	missing, err := c.missingTables(ctx)
	if err != nil {
		return fmt.Errorf("look up the catalog tables: %w", err)
	}
	if len(missing) > 0 {
		if !create {
			return fmt.Errorf("%w from the database (%s): enable the catalog's init option, or create them with\n%s",
				ErrNoCatalogTables, strings.Join(missing, ", "), DDL())
		}
		if err := c.createTables(ctx); err != nil {
			return err
		}
	}
	return c.checkColumns(ctx)
}

func (c *SQL) missingTables(ctx context.Context) ([]string, error) {
	var tables, props bool
	err := c.pool.QueryRow(ctx, `SELECT to_regclass('iceberg_tables') IS NOT NULL, to_regclass('iceberg_namespace_properties') IS NOT NULL`).
		Scan(&tables, &props)
	if err != nil {
		return nil, err
	}
	var missing []string
	if !tables {
		missing = append(missing, "iceberg_tables")
	}
	if !props {
		missing = append(missing, "iceberg_namespace_properties")
	}
	return missing, nil
}

// createTables runs the DDL in one transaction. Two workers starting at once
// serialise on an advisory lock; another engine creating the tables at the
// same moment (without our lock) can still make CREATE TABLE IF NOT EXISTS
// fail on the catalog's unique indexes, which is fine once the tables exist.
func (c *SQL) createTables(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('kinesis-ingest iceberg catalog tables'))`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, tablesDDL); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, namespacesDDL)
		return err
	})
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42P07") {
		if missing, lerr := c.missingTables(ctx); lerr == nil && len(missing) == 0 {
			return nil
		}
	}
	if errors.As(err, &pe) && pe.Code == "42501" {
		return fmt.Errorf("create the catalog tables: the connecting role may not (%s): grant it CREATE on the schema, or create them with\n%s", pe.Message, DDL())
	}
	return fmt.Errorf("create the catalog tables: %w", err)
}

// checkColumns reports a catalog table lacking a column we read or write,
// and notes whether iceberg_tables has iceberg_type.
func (c *SQL) checkColumns(ctx context.Context) error {
	rows, err := c.pool.Query(ctx, `SELECT c.relname::text, a.attname::text
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE a.attrelid IN (to_regclass('iceberg_tables'), to_regclass('iceberg_namespace_properties'))
  AND a.attnum > 0 AND NOT a.attisdropped`)
	if err != nil {
		return fmt.Errorf("look up the catalog tables' columns: %w", err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var rel, col string
		if err := rows.Scan(&rel, &col); err != nil {
			return fmt.Errorf("look up the catalog tables' columns: %w", err)
		}
		have[rel+"."+col] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("look up the catalog tables' columns: %w", err)
	}
	var missing []string
	for _, col := range []string{
		"iceberg_tables.catalog_name", "iceberg_tables.table_namespace", "iceberg_tables.table_name",
		"iceberg_tables.metadata_location", "iceberg_tables.previous_metadata_location",
		"iceberg_namespace_properties.catalog_name", "iceberg_namespace_properties.namespace",
		"iceberg_namespace_properties.property_key", "iceberg_namespace_properties.property_value",
	} {
		if !have[col] {
			missing = append(missing, col)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the catalog tables lack the columns %s: they are not an Iceberg SQL catalog's; point the catalog at another database or schema (search_path), or compare them with\n%s",
			strings.Join(missing, ", "), DDL())
	}
	c.typed = have["iceberg_tables.iceberg_type"]
	return nil
}

// Ping checks that the database answers.
func (c *SQL) Ping(ctx context.Context) error {
	if err := c.pool.Ping(ctx); err != nil {
		return c.fail(fmt.Errorf("ping: %w", err))
	}
	return nil
}

// Close closes the connections; the SQL must not be used after.
func (c *SQL) Close() { c.pool.Close() }

// existsProperty is the property pyiceberg and iceberg-go write to make a
// namespace without other properties exist.
const existsProperty = "exists"

// CreateNamespace creates the namespace ns (its levels, outermost first) if
// it does not exist; an existing one is left as it is.
func (c *SQL) CreateNamespace(ctx context.Context, ns []string) error {
	key, err := namespaceKey(ns)
	if err != nil {
		return c.fail(fmt.Errorf("create namespace: %w", err))
	}
	_, err = c.pool.Exec(ctx, `INSERT INTO iceberg_namespace_properties (catalog_name, namespace, property_key, property_value)
VALUES ($1, $2, $3, 'true') ON CONFLICT DO NOTHING`, c.name, key, existsProperty)
	if err != nil {
		return c.fail(fmt.Errorf("create namespace %q: %w", key, err))
	}
	return nil
}

// NamespaceExists reports whether ns has a property row or a table.
func (c *SQL) NamespaceExists(ctx context.Context, ns []string) (bool, error) {
	key, err := namespaceKey(ns)
	if err != nil {
		return false, c.fail(fmt.Errorf("look up namespace: %w", err))
	}
	var ok bool
	if err := c.pool.QueryRow(ctx, namespaceExistsSQL, c.name, key).Scan(&ok); err != nil {
		return false, c.fail(fmt.Errorf("look up namespace %q: %w", key, err))
	}
	return ok, nil
}

const namespaceExistsSQL = `SELECT EXISTS (SELECT 1 FROM iceberg_namespace_properties WHERE catalog_name = $1 AND namespace = $2)
    OR EXISTS (SELECT 1 FROM iceberg_tables WHERE catalog_name = $1 AND table_namespace = $2)`

// tableType is the iceberg_type condition of a table's row: 'TABLE', or
// NULL for rows written before the column existed (Java reads them so too).
func (c *SQL) tableType() string {
	if !c.typed {
		return ""
	}
	return ` AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)`
}

// Load returns the location of table's current metadata JSON; ErrNoSuchTable
// if the catalog has no such table.
func (c *SQL) Load(ctx context.Context, ns []string, table string) (string, error) {
	key, err := tableKey(ns, table)
	if err != nil {
		return "", c.fail(fmt.Errorf("load table: %w", err))
	}
	loc, found, err := c.current(ctx, key)
	if err != nil {
		return "", c.fail(fmt.Errorf("load table %s: %w", key, err))
	}
	if !found {
		return "", c.fail(fmt.Errorf("load table %s: %w: create it first", key, ErrNoSuchTable))
	}
	if loc == "" {
		return "", c.fail(fmt.Errorf("load table %s: %w: its row has no metadata_location; repair or drop the row", key, ErrNoSuchTable))
	}
	return loc, nil
}

// current reads the table's metadata_location ("" when NULL).
func (c *SQL) current(ctx context.Context, key ident) (loc string, found bool, err error) {
	var p *string
	err = c.pool.QueryRow(ctx, `SELECT metadata_location FROM iceberg_tables
WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3`+c.tableType(), c.name, key.ns, key.table).Scan(&p)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if p != nil {
		loc = *p
	}
	return loc, true, nil
}

// Create registers table in namespace ns with its first metadata JSON at
// metadataLocation. ErrNoSuchNamespace if ns does not exist (CreateNamespace
// first), ErrTableExists if a table or view of that name does.
func (c *SQL) Create(ctx context.Context, ns []string, table, metadataLocation string) error {
	key, err := tableKey(ns, table)
	if err != nil {
		return c.fail(fmt.Errorf("create table: %w", err))
	}
	if metadataLocation == "" {
		return c.fail(fmt.Errorf("create table %s: empty metadata location", key))
	}
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var ok bool
		if err := tx.QueryRow(ctx, namespaceExistsSQL, c.name, key.ns).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w %q: create it first", ErrNoSuchNamespace, key.ns)
		}
		ins := `INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location)
VALUES ($1, $2, $3, $4, NULL)`
		if c.typed {
			ins = `INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location, iceberg_type)
VALUES ($1, $2, $3, $4, NULL, 'TABLE')`
		}
		_, err := tx.Exec(ctx, ins, c.name, key.ns, key.table, metadataLocation)
		return err
	})
	var pe *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe) && pe.Code == "23505":
		return c.fail(fmt.Errorf("create table %s: %w: load it instead", key, ErrTableExists))
	case errors.As(err, &pe) && pe.Code == "22001":
		return c.fail(fmt.Errorf("create table %s: the metadata location (%d characters) is longer than the catalog's metadata_location column holds: shorten the table's location: %w",
			key, utf8.RuneCountInString(metadataLocation), err))
	}
	return c.fail(fmt.Errorf("create table %s: %w", key, err))
}

// Swap commits table: it moves metadata_location from expected to next (and
// previous_metadata_location to expected), only if it still is expected.
// ErrConflict if another writer moved it first (reload, rebase, retry);
// ErrNoSuchTable if the table is gone. A swap already applied (the row
// already names next, as after a retry of a Swap whose reply was lost) is a
// success: next, a fresh file name per attempt, can only be there because
// this writer put it there.
func (c *SQL) Swap(ctx context.Context, ns []string, table, expected, next string) error {
	key, err := tableKey(ns, table)
	if err != nil {
		return c.fail(fmt.Errorf("commit table: %w", err))
	}
	if expected == "" || next == "" {
		return c.fail(fmt.Errorf("commit table %s: empty metadata location (expected %q, next %q)", key, expected, next))
	}
	tag, err := c.pool.Exec(ctx, `UPDATE iceberg_tables SET metadata_location = $4, previous_metadata_location = $5
WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3 AND metadata_location = $5`+c.tableType(),
		c.name, key.ns, key.table, next, expected)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "22001" {
			return c.fail(fmt.Errorf("commit table %s: the metadata location (%d characters) is longer than the catalog's metadata_location column holds: shorten the table's location: %w",
				key, utf8.RuneCountInString(next), err))
		}
		return c.fail(fmt.Errorf("commit table %s: %w", key, err))
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	loc, found, err := c.current(ctx, key)
	switch {
	case err != nil:
		return c.fail(fmt.Errorf("commit table %s: the swap from %s did not apply, and reading why failed: %w", key, expected, err))
	case !found:
		return c.fail(fmt.Errorf("commit table %s: %w: it was dropped", key, ErrNoSuchTable))
	case loc == next:
		return nil
	}
	return c.fail(fmt.Errorf("commit table %s: %w: expected %s, now %s; reload the table and retry", key, ErrConflict, expected, loc))
}

// ident is a table's key in iceberg_tables.
type ident struct{ ns, table string }

func (k ident) String() string { return k.ns + "." + k.table }

// namespaceKey joins ns's levels with '.', the one encoding every SQL
// catalog reads.
func namespaceKey(ns []string) (string, error) {
	if len(ns) == 0 {
		return "", errors.New("empty namespace: give at least one level")
	}
	for _, level := range ns {
		switch {
		case level == "":
			return "", fmt.Errorf("namespace %q: empty level", ns)
		case strings.Contains(level, "."):
			return "", fmt.Errorf("namespace level %q holds a '.': other catalogs would read it as two levels; rename it", level)
		}
	}
	key := strings.Join(ns, ".")
	if n := utf8.RuneCountInString(key); n > maxNameLen {
		return "", fmt.Errorf("namespace %q: %d characters, the catalog tables hold at most %d", key, n, maxNameLen)
	}
	return key, nil
}

func tableKey(ns []string, table string) (ident, error) {
	key, err := namespaceKey(ns)
	if err != nil {
		return ident{}, err
	}
	switch n := utf8.RuneCountInString(table); {
	case n == 0:
		return ident{}, errors.New("empty table name")
	case n > maxNameLen:
		return ident{}, fmt.Errorf("table name %q: %d characters, the catalog tables hold at most %d", table, n, maxNameLen)
	}
	return ident{ns: key, table: table}, nil
}

// fail prefixes err with the catalog's name and masks the password in it.
func (c *SQL) fail(err error) error {
	return scrub(fmt.Errorf("iceberg catalog %q: %w", c.name, err), c.secret)
}

// scrub masks secret wherever a driver or a server message quoted it,
// keeping err's chain for errors.Is/As.
func scrub(err error, secret string) error {
	if secret == "" {
		return err
	}
	msg := err.Error()
	if clean := redact.Secrets(msg, secret); clean != msg {
		return &scrubbed{msg: clean, err: err}
	}
	return err
}

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// IsTransient reports whether err is an outage worth retrying as is: the
// server unreachable, shutting down, starting or out of connections, a
// connection lost, a timeout, a serialization failure or deadlock. The
// answers (ErrConflict and the others), a refused statement and a cancelled
// context are not.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"),       // insufficient resources (too many connections, disk full)
			strings.HasPrefix(pe.Code, "57P"),      // admin/crash shutdown, cannot connect now (starting up)
			pe.Code == "40001", pe.Code == "40P01", // serialization failure, deadlock
			pe.Code == "55P03", pe.Code == "57014": // lock not available, statement timeout
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) || pgconn.SafeToRetry(err)
}
