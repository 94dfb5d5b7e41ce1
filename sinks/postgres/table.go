package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// valueKind says how a Go value is converted for a column.
type valueKind uint8

const (
	vkInt valueKind = iota + 1
	vkInt4
	vkFloat
	vkBool
	vkText
	vkBytes
	vkTime
	vkDate
	vkDecimal
	vkFloatArray
	vkJSON
)

// Type OIDs (pg_type.oid) the sink creates or accepts.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt4        = 23
	oidText        = 25
	oidJSON        = 114
	oidFloat8      = 701
	oidFloat8Array = 1022
	oidVarchar     = 1043
	oidDate        = 1082
	oidTimestamptz = 1184
	oidNumeric     = 1700
	oidJSONB       = 3802
)

// pgType is the PostgreSQL type of a column, as created and as accepted.
type pgType struct {
	vk     valueKind
	ddl    string   // in CREATE TABLE
	accept []uint32 // type OIDs an existing column may have; the first is created
	scale  int      // numeric: the dataset's scale; an existing column must not round it
}

// pgTypeOf maps a dataset type to its column type: int→bigint,
// float→double precision, bool→boolean, str→text, bytes→bytea,
// datetime→timestamptz, date→date, decimal→numeric,
// embedding→double precision[], list/map/struct→jsonb; optional[T] is T,
// nullable.
func pgTypeOf(t schema.Type) (pgType, error) {
	if t.Kind == schema.KindOptional {
		if t.Elem == nil {
			return pgType{}, errors.New("optional without an element type")
		}
		return pgTypeOf(*t.Elem)
	}
	switch t.Kind {
	case schema.KindInt:
		return pgType{vk: vkInt, ddl: "bigint", accept: []uint32{oidInt8}}, nil
	case schema.KindFloat:
		return pgType{vk: vkFloat, ddl: "double precision", accept: []uint32{oidFloat8}}, nil
	case schema.KindBool:
		return pgType{vk: vkBool, ddl: "boolean", accept: []uint32{oidBool}}, nil
	case schema.KindStr:
		return pgType{vk: vkText, ddl: "text", accept: []uint32{oidText, oidVarchar}}, nil
	case schema.KindBytes:
		return pgType{vk: vkBytes, ddl: "bytea", accept: []uint32{oidBytea}}, nil
	case schema.KindDatetime:
		return pgType{vk: vkTime, ddl: "timestamptz", accept: []uint32{oidTimestamptz}}, nil
	case schema.KindDate:
		return pgType{vk: vkDate, ddl: "date", accept: []uint32{oidDate}}, nil
	case schema.KindDecimal:
		return pgType{vk: vkDecimal, ddl: "numeric", accept: []uint32{oidNumeric}, scale: t.Scale}, nil
	case schema.KindEmbedding:
		return pgType{vk: vkFloatArray, ddl: "double precision[]", accept: []uint32{oidFloat8Array}}, nil
	case schema.KindList, schema.KindMap, schema.KindStruct:
		return pgType{vk: vkJSON, ddl: "jsonb", accept: []uint32{oidJSONB, oidJSON}}, nil
	}
	return pgType{}, fmt.Errorf("type %s cannot be stored in PostgreSQL", t)
}

// column is one column the sink writes.
type column struct {
	name     string
	typ      pgType
	nullable bool
	field    string // the dataset type, for messages ("" for origin columns)
	// nullWhy says why a column of a non-optional field is nullable (a
	// keyed table's tombstones), for messages; "" otherwise.
	nullWhy string
}

// tableSpec is the layout a sink needs.
type tableSpec struct {
	name    pgx.Identifier
	display string // as configured, for messages
	cols    []column
	key     []string // the conflict key
	what    string   // "rows" or "dead letters"
	// keyed: the table holds one row per dataset key (key is the dataset's
	// keys), upserted by version (see upsertSQL), with the timestamp column
	// named timestamp and the tombstone column _deleted_at.
	keyed     bool
	timestamp string
}

// nFields is the number of the dataset's columns, before the origin columns.
func (s *tableSpec) nFields() int {
	n := 0
	for _, c := range s.cols {
		if c.field != "" {
			n++
		}
	}
	return n
}

// ddl is what creates the table: CREATE TABLE and, for a keyed table, its
// view of the live rows.
func (s *tableSpec) ddl() string {
	if s.keyed {
		return s.createSQL() + ";\n" + s.liveViewSQL()
	}
	return s.createSQL()
}

func (s *tableSpec) quoted() string { return s.name.Sanitize() }

func (s *tableSpec) colNames() []string {
	out := make([]string, len(s.cols))
	for i, c := range s.cols {
		out[i] = c.name
	}
	return out
}

func rowSpec(table string, fields []schema.Column, timestamp string) (*tableSpec, error) {
	id, err := parseTable(table)
	if err != nil {
		return nil, err
	}
	s := &tableSpec{name: id, display: table, what: "rows", key: []string{colShardID, colSequence, colSubSequence}}
	if keyed(fields) {
		s.keyed, s.timestamp, s.key = true, timestamp, nil
	}
	for _, f := range fields {
		t, err := pgTypeOf(f.Type)
		if err != nil {
			return nil, fmt.Errorf("postgres sink: field %q: %w", f.Name, err)
		}
		c := column{name: f.Name, typ: t, nullable: f.Type.Nullable(), field: f.Type.String()}
		if s.keyed {
			switch {
			case f.Key:
				s.key = append(s.key, f.Name)
			case f.Name != timestamp && !c.nullable:
				// A delete of a key never seen before leaves a tombstone
				// with nothing but the key and the timestamp.
				c.nullable, c.nullWhy = true, "a tombstone of a key deleted before any of its rows arrived has no value for it"
			}
		}
		s.cols = append(s.cols, c)
	}
	text := pgType{vk: vkText, ddl: "text", accept: []uint32{oidText, oidVarchar}}
	s.cols = append(s.cols,
		column{name: colSource, typ: text},
		column{name: colShardID, typ: text},
		column{name: colSequence, typ: text},
		column{name: colSubSequence, typ: pgType{vk: vkInt4, ddl: "integer", accept: []uint32{oidInt4, oidInt8}}},
		column{name: colArrival, typ: pgType{vk: vkTime, ddl: "timestamptz", accept: []uint32{oidTimestamptz}}},
	)
	if s.keyed {
		s.cols = append(s.cols, column{name: colDeletedAt, typ: pgType{vk: vkTime, ddl: "timestamptz", accept: []uint32{oidTimestamptz}}, nullable: true})
	}
	return s, nil
}

// Dead-letter columns, in the order of the file sink's keys.
const (
	dlSource       = "source"
	dlStreamARN    = "stream_arn"
	dlShardID      = "shard_id"
	dlSequence     = "sequence_number"
	dlSubSequence  = "subsequence"
	dlPartitionKey = "partition_key"
	dlArrival      = "arrival_time"
	dlDataset      = "dataset"
	dlReason       = "reason"
	dlError        = "error"
	dlData         = "data"
)

func deadLetterSpec(table string) (*tableSpec, error) {
	id, err := parseTable(table)
	if err != nil {
		return nil, err
	}
	text := pgType{vk: vkText, ddl: "text", accept: []uint32{oidText, oidVarchar}}
	s := &tableSpec{name: id, display: table, what: "dead letters",
		// A record becomes at most one dead letter per dataset (and one
		// without a dataset); shard ids repeat across streams.
		key: []string{dlStreamARN, dlShardID, dlSequence, dlSubSequence, dlDataset}}
	s.cols = []column{
		{name: dlSource, typ: text},
		{name: dlStreamARN, typ: text},
		{name: dlShardID, typ: text},
		{name: dlSequence, typ: text},
		{name: dlSubSequence, typ: pgType{vk: vkInt4, ddl: "integer", accept: []uint32{oidInt4, oidInt8}}},
		{name: dlPartitionKey, typ: text},
		{name: dlArrival, typ: pgType{vk: vkTime, ddl: "timestamptz", accept: []uint32{oidTimestamptz}}},
		{name: dlDataset, typ: text},
		{name: dlReason, typ: text},
		{name: dlError, typ: text},
		{name: dlData, typ: pgType{vk: vkBytes, ddl: "bytea", accept: []uint32{oidBytea}}},
	}
	return s, nil
}

// createSQL is the CREATE TABLE statement for the spec.
func (s *tableSpec) createSQL() string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS ")
	b.WriteString(s.quoted())
	b.WriteString(" (\n")
	for _, c := range s.cols {
		b.WriteString("  ")
		b.WriteString(pgx.Identifier{c.name}.Sanitize())
		b.WriteString(" ")
		b.WriteString(c.typ.ddl)
		if !c.nullable {
			b.WriteString(" NOT NULL")
		}
		if s.what == "dead letters" && c.name == dlDataset {
			b.WriteString(" DEFAULT ''")
		}
		b.WriteString(",\n")
	}
	b.WriteString("  PRIMARY KEY (")
	b.WriteString(quoteList(s.key))
	b.WriteString(")\n)")
	return b.String()
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// TableError says that an existing table does not fit the sink, or that it
// is missing and the sink may not create it. Problems lists each finding.
type TableError struct {
	Table    string
	Problems []string
	// DDL is a CREATE TABLE statement for a table that fits.
	DDL string
}

func (e *TableError) Error() string {
	return fmt.Sprintf("table %s does not fit: %s", e.Table, strings.Join(e.Problems, "; "))
}

// tableInfo is what check learned about an existing table.
type tableInfo struct {
	exists bool
	// types are the column types of the spec's columns, as format_type
	// prints them (for the stage table).
	types map[string]string
}

type attr struct {
	name    string
	typ     string // format_type, for messages
	oid     uint32
	typmod  int32
	notNull bool
	hasDef  bool
}

// check compares the table with the spec. A missing table is a problem
// unless create is set. It reads the catalog only.
func (s *tableSpec) check(ctx context.Context, q querier, create bool) (tableInfo, error) {
	var oid *uint32
	var kind string
	err := q.QueryRow(ctx, "SELECT c.oid, c.relkind::text FROM pg_class c WHERE c.oid = to_regclass($1)", s.quoted()).Scan(&oid, &kind)
	if errors.Is(err, pgx.ErrNoRows) {
		oid = nil
	} else if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "3F000" { // invalid_schema_name
			if create {
				return tableInfo{}, &TableError{Table: s.display, DDL: s.createSQL(),
					Problems: []string{fmt.Sprintf("schema %q does not exist: create it (CREATE SCHEMA %s) or drop the schema from the table name", s.name[0], pgx.Identifier{s.name[0]}.Sanitize())}}
			}
		}
		return tableInfo{}, fmt.Errorf("look up table %s: %w", s.display, err)
	}
	if oid == nil {
		if create {
			return tableInfo{}, s.checkCreate(ctx, q)
		}
		return tableInfo{}, &TableError{Table: s.display, DDL: s.createSQL(), Problems: []string{
			"it does not exist: set create_table: true, or create it with\n" + s.createSQL()}}
	}
	if kind != "r" && kind != "p" {
		return tableInfo{exists: true}, &TableError{Table: s.display, Problems: []string{fmt.Sprintf("it is not a table (relkind %q): rows go to a plain or partitioned table", kind)}}
	}

	rows, err := q.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid, a.atttypmod, a.attnotnull,
		a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
		FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, *oid)
	if err != nil {
		return tableInfo{}, fmt.Errorf("read the columns of %s: %w", s.display, err)
	}
	attrs := map[string]attr{}
	var order []string
	for rows.Next() {
		var a attr
		if err := rows.Scan(&a.name, &a.typ, &a.oid, &a.typmod, &a.notNull, &a.hasDef); err != nil {
			rows.Close()
			return tableInfo{}, fmt.Errorf("read the columns of %s: %w", s.display, err)
		}
		attrs[a.name] = a
		order = append(order, a.name)
	}
	if err := rows.Err(); err != nil {
		return tableInfo{}, fmt.Errorf("read the columns of %s: %w", s.display, err)
	}

	info := tableInfo{exists: true, types: map[string]string{}}
	for name, a := range attrs {
		info.types[name] = a.typ
	}
	var problems []string
	want := map[string]bool{}
	for _, c := range s.cols {
		want[c.name] = true
		a, ok := attrs[c.name]
		what := "origin column"
		if c.field != "" {
			what = "field of type " + c.field
		}
		if !ok {
			hint := ""
			if alt := caseFold(attrs, c.name); alt != "" {
				hint = fmt.Sprintf(" (there is %q: names are case-sensitive)", alt)
			}
			problems = append(problems, fmt.Sprintf("column %s (%s) is missing%s: ALTER TABLE %s ADD COLUMN %s %s",
				pgx.Identifier{c.name}.Sanitize(), what, hint, s.quoted(), pgx.Identifier{c.name}.Sanitize(), c.typ.ddl))
			continue
		}
		if !slices.Contains(c.typ.accept, a.oid) {
			problems = append(problems, fmt.Sprintf("column %s is %s, want %s (%s)", pgx.Identifier{c.name}.Sanitize(), a.typ, c.typ.ddl, what))
			continue
		}
		if c.typ.vk == vkDecimal && a.typmod >= 4 {
			if scale := int((a.typmod - 4) & 0xffff); scale < c.typ.scale {
				problems = append(problems, fmt.Sprintf("column %s is %s, which would round the field's %d decimal places: want numeric or numeric(p,s) with s >= %d",
					pgx.Identifier{c.name}.Sanitize(), a.typ, c.typ.scale, c.typ.scale))
			}
		}
		if c.nullable && a.notNull {
			why := fmt.Sprintf("the field is %s, which may be null", c.field)
			switch {
			case c.nullWhy != "":
				why = c.nullWhy
			case c.field == "":
				why = "it is NULL while the key is live"
			}
			problems = append(problems, fmt.Sprintf("column %s is NOT NULL but %s: ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL",
				pgx.Identifier{c.name}.Sanitize(), why, s.quoted(), pgx.Identifier{c.name}.Sanitize()))
		}
	}
	for _, name := range order {
		a := attrs[name]
		if !want[name] && a.notNull && !a.hasDef {
			problems = append(problems, fmt.Sprintf("column %s is NOT NULL without a default, and the sink does not write it: give it a default or drop NOT NULL", pgx.Identifier{name}.Sanitize()))
		}
	}

	// ON CONFLICT (key) DO NOTHING needs a unique index on exactly the key.
	var hasKey bool
	err = q.QueryRow(ctx, `SELECT EXISTS (
		SELECT 1 FROM pg_index i
		WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
		  AND i.indnkeyatts = cardinality($2::text[])
		  AND (SELECT array_agg(a.attname::text COLLATE "C" ORDER BY a.attname::text COLLATE "C")
		       FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
		       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		       WHERE k.n <= i.indnkeyatts) = $2::text[])`, *oid, sorted(s.key)).Scan(&hasKey)
	if err != nil {
		return tableInfo{}, fmt.Errorf("read the indexes of %s: %w", s.display, err)
	}
	switch {
	case !hasKey && s.keyed:
		problems = append(problems, fmt.Sprintf("no primary key or unique index on exactly the dataset's keys (%s), which the upsert (ON CONFLICT) needs: ALTER TABLE %s ADD PRIMARY KEY (%s)",
			quoteList(s.key), s.quoted(), quoteList(s.key)))
	case !hasKey:
		problems = append(problems, fmt.Sprintf("no primary key or unique index on exactly (%s), which de-duplicates replayed %s: ALTER TABLE %s ADD PRIMARY KEY (%s)",
			quoteList(s.key), s.what, s.quoted(), quoteList(s.key)))
	}

	var canInsert, canTemp bool
	err = q.QueryRow(ctx, "SELECT has_table_privilege($1::oid, 'INSERT'), has_database_privilege(current_database(), 'TEMP')", *oid).Scan(&canInsert, &canTemp)
	if err != nil {
		return tableInfo{}, fmt.Errorf("read the privileges on %s: %w", s.display, err)
	}
	if !canInsert {
		problems = append(problems, "the connecting role may not INSERT into it: GRANT INSERT ON "+s.quoted()+" TO <role>")
	}
	if s.keyed {
		// ON CONFLICT DO UPDATE reads the stored version and updates the row.
		var canUpdate, canSelect bool
		err = q.QueryRow(ctx, "SELECT has_table_privilege($1::oid, 'UPDATE'), has_table_privilege($1::oid, 'SELECT')", *oid).Scan(&canUpdate, &canSelect)
		if err != nil {
			return tableInfo{}, fmt.Errorf("read the privileges on %s: %w", s.display, err)
		}
		if !canUpdate || !canSelect {
			problems = append(problems, "the connecting role may not SELECT and UPDATE it, which upserting newer versions of a key needs: GRANT SELECT, UPDATE ON "+s.quoted()+" TO <role>")
		}
	}
	if hasKey {
		// ON CONFLICT (key) reads the key of existing rows.
		var canRead bool
		err = q.QueryRow(ctx, "SELECT bool_and(has_column_privilege($1::oid, k, 'SELECT')) FROM unnest($2::text[]) k", *oid, s.key).Scan(&canRead)
		if err != nil {
			return tableInfo{}, fmt.Errorf("read the privileges on %s: %w", s.display, err)
		}
		if !canRead {
			problems = append(problems, fmt.Sprintf("the connecting role may not read the key columns, which skipping replayed %s needs: GRANT SELECT (%s) ON %s TO <role>",
				s.what, quoteList(s.key), s.quoted()))
		}
	}
	if !canTemp {
		problems = append(problems, "the connecting role may not create temporary tables in this database, which batches are copied into: GRANT TEMP ON DATABASE <db> TO <role>")
	}
	if len(problems) > 0 {
		return info, &TableError{Table: s.display, Problems: problems, DDL: s.ddl()}
	}
	return info, nil
}

// stageSQL creates the session's stage table with the table's column types
// (so that COPY already checks lengths, precision and domains).
func (s *tableSpec) stageSQL(info tableInfo) string {
	var b strings.Builder
	b.WriteString("CREATE TEMP TABLE IF NOT EXISTS ")
	b.WriteString(pgx.Identifier{stageTable}.Sanitize())
	b.WriteString(" (")
	for i, c := range s.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgx.Identifier{c.name}.Sanitize())
		b.WriteString(" ")
		if t, ok := info.types[c.name]; ok {
			b.WriteString(t)
		} else {
			b.WriteString(c.typ.ddl)
		}
	}
	b.WriteString(") ON COMMIT DELETE ROWS")
	return b.String()
}

// checkCreate checks that the table can be created: its schema exists and
// the connecting role may create tables in it.
func (s *tableSpec) checkCreate(ctx context.Context, q querier) error {
	var schemaName *string
	if len(s.name) == 2 {
		schemaName = &s.name[0]
	}
	var nsp *string
	var canCreate bool
	err := q.QueryRow(ctx, `SELECT n.nspname, has_schema_privilege(n.oid, 'CREATE') FROM pg_namespace n
		WHERE n.nspname = coalesce($1, current_schema())`, schemaName).Scan(&nsp, &canCreate)
	if errors.Is(err, pgx.ErrNoRows) {
		if schemaName != nil {
			return &TableError{Table: s.display, DDL: s.createSQL(), Problems: []string{fmt.Sprintf(
				"it does not exist and neither does its schema %q: create the schema (CREATE SCHEMA %s) or drop it from the table name",
				*schemaName, pgx.Identifier{*schemaName}.Sanitize())}}
		}
		return &TableError{Table: s.display, DDL: s.createSQL(), Problems: []string{
			"it does not exist, and no schema on the search_path exists to create it in: qualify the table name with a schema"}}
	}
	if err != nil {
		return fmt.Errorf("look up the schema of %s: %w", s.display, err)
	}
	if !canCreate {
		return &TableError{Table: s.display, DDL: s.createSQL(), Problems: []string{fmt.Sprintf(
			"it does not exist and the connecting role may not create tables in schema %q: GRANT CREATE ON SCHEMA %s TO <role>, or create the table with\n%s",
			*nsp, pgx.Identifier{*nsp}.Sanitize(), s.createSQL())}}
	}
	return nil
}

func caseFold(attrs map[string]attr, name string) string {
	for n := range attrs {
		if strings.EqualFold(n, name) {
			return n
		}
	}
	return ""
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// querier is what check needs of a connection or transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ensure creates the table if asked and missing, then checks it. Concurrent
// workers creating the same table serialise on an advisory lock.
func (s *tableSpec) ensure(ctx context.Context, conn *pgx.Conn, create bool) (info tableInfo, created bool, err error) {
	info, err = s.check(ctx, conn, create)
	if err != nil || info.exists || !create {
		return info, false, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return info, false, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "kinesis-ingest create "+s.quoted()); err != nil {
		return info, false, err
	}
	if _, err := tx.Exec(ctx, s.ddl()); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "3F000" {
			return info, false, &TableError{Table: s.display, DDL: s.createSQL(),
				Problems: []string{fmt.Sprintf("schema %q does not exist: create it (CREATE SCHEMA %s) or drop the schema from the table name", s.name[0], pgx.Identifier{s.name[0]}.Sanitize())}}
		}
		if errors.As(err, &pe) && pe.Code == "42501" {
			return info, false, &TableError{Table: s.display, DDL: s.createSQL(),
				Problems: []string{"it does not exist and the connecting role may not create it (" + pe.Message + "): create it with\n" + s.createSQL()}}
		}
		return info, false, fmt.Errorf("create table %s: %w", s.display, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return info, false, fmt.Errorf("create table %s: %w", s.display, err)
	}
	info, err = s.check(ctx, conn, false)
	return info, true, err
}
