package postgres

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// keyed reports whether the dataset has keys: its table holds one row per key.
func keyed(cols []schema.Column) bool {
	for _, c := range cols {
		if c.Key {
			return true
		}
	}
	return false
}

// checkKeyed checks what a keyed table needs of the config: a timestamp
// column that orders versions, and room for the live view's name.
func checkKeyed(c Config) []error {
	var errs []error
	var ts *schema.Column
	for i := range c.Columns {
		if c.Columns[i].Name == c.Timestamp {
			ts = &c.Columns[i]
		}
	}
	switch {
	case c.Timestamp == "":
		errs = append(errs, errors.New("postgres sink: Config.Timestamp is empty: a keyed table orders a key's versions by the dataset's timestamp"))
	case ts == nil:
		errs = append(errs, fmt.Errorf("postgres sink: Config.Timestamp %q is not one of Config.Columns", c.Timestamp))
	case ts.Type.Kind != schema.KindDatetime:
		errs = append(errs, fmt.Errorf("postgres sink: timestamp column %q is %s, want datetime", c.Timestamp, ts.Type))
	case ts.Key:
		errs = append(errs, fmt.Errorf("postgres sink: timestamp column %q cannot be a key", c.Timestamp))
	}
	if id, err := parseTable(c.Table); err == nil && len(id[len(id)-1])+len(liveSuffix) > maxIdentLen {
		errs = append(errs, fmt.Errorf("postgres sink: table name %q is too long for its view of live rows (%s%s, at most %d bytes): shorten it", id[len(id)-1], id[len(id)-1], liveSuffix, maxIdentLen))
	}
	return errs
}

// liveName is the name of a keyed table's view of its live rows: the table's
// name with _live appended, in the same schema.
func (s *tableSpec) liveName() pgx.Identifier {
	id := append(pgx.Identifier{}, s.name...)
	id[len(id)-1] += liveSuffix
	return id
}

// liveViewSQL creates the view of the live rows: every column but the
// tombstone, of the keys not deleted.
func (s *tableSpec) liveViewSQL() string {
	var cols []string
	for _, c := range s.cols {
		if c.name != colDeletedAt {
			cols = append(cols, c.name)
		}
	}
	return fmt.Sprintf("CREATE OR REPLACE VIEW %s AS SELECT %s FROM %s WHERE %s IS NULL",
		s.liveName().Sanitize(), quoteList(cols), s.quoted(), pgx.Identifier{colDeletedAt}.Sanitize())
}

// version is the order of a key's versions, as a row constructor over the
// columns of rel (a table alias, or EXCLUDED): the dataset timestamp, then
// the arrival time, then the shard and the sequence number in it (compared
// as numbers: Kinesis sequence numbers are decimal strings of any length),
// then the sub-sequence of a KPL aggregate. No two records share one.
func (s *tableSpec) version(rel string) string {
	q := func(c string) string { return rel + "." + pgx.Identifier{c}.Sanitize() }
	return fmt.Sprintf("(%s, %s, %s, %s::numeric, %s)", q(s.timestamp), q(colArrival), q(colShardID), q(colSequence), q(colSubSequence))
}

// upsertSQL moves the stage table into a keyed table: the newest change of
// each key in the batch (DISTINCT ON, newest first) is inserted, or replaces
// the key's row if it is newer by version; a delete keeps the row's last
// values and sets the tombstone. It returns how many changes upserted and
// how many deleted; the rest changed nothing.
//
// Only rows newer than the stored version are written, so the table is the
// newest change per key whatever order changes arrive in, and a replay
// (equal version) changes nothing. Concurrent transactions on one key (two
// workers during a lease move) serialise on the row's lock, and PostgreSQL
// re-evaluates the guard against the version that committed first.
func (s *tableSpec) upsertSQL() string {
	cols := s.colNames()
	qcols := quoteList(cols)
	keys := quoteList(s.key)
	deleted := pgx.Identifier{colDeletedAt}.Sanitize()
	var set []string
	for _, c := range s.cols {
		if slicesContains(s.key, c.name) {
			continue
		}
		q := pgx.Identifier{c.name}.Sanitize()
		if c.field != "" && c.name != s.timestamp {
			// A tombstone keeps the values of the row it deleted.
			set = append(set, fmt.Sprintf("%s = CASE WHEN EXCLUDED.%s IS NULL THEN EXCLUDED.%s ELSE t.%s END", q, deleted, q, q))
			continue
		}
		set = append(set, fmt.Sprintf("%s = EXCLUDED.%s", q, q))
	}
	var order []string
	for _, k := range s.key {
		order = append(order, pgx.Identifier{k}.Sanitize())
	}
	b := func(c string) string { return pgx.Identifier{c}.Sanitize() }
	order = append(order, b(s.timestamp)+" DESC", b(colArrival)+" DESC", b(colShardID)+" DESC", b(colSequence)+"::numeric DESC", b(colSubSequence)+" DESC")
	return fmt.Sprintf(`WITH batch AS (DELETE FROM pg_temp.%s RETURNING %s),
newest AS (SELECT DISTINCT ON (%s) %s FROM batch ORDER BY %s),
changed AS (INSERT INTO %s AS t (%s) SELECT %s FROM newest ORDER BY %s
  ON CONFLICT (%s) DO UPDATE SET %s
  WHERE %s > %s
  RETURNING t.%s IS NOT NULL AS deleted)
SELECT count(*) FILTER (WHERE NOT deleted), count(*) FILTER (WHERE deleted) FROM changed`,
		pgx.Identifier{stageTable}.Sanitize(), qcols,
		keys, qcols, strings.Join(order, ", "),
		s.quoted(), qcols, qcols, keys,
		keys, strings.Join(set, ", "),
		s.version("EXCLUDED"), s.version("t"),
		deleted)
}

func slicesContains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
