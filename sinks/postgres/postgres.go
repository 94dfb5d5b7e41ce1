// Package postgres implements sinks.RowSink and sinks.DeadLetterSink as
// PostgreSQL tables, with github.com/jackc/pgx/v5.
//
// # Tables
//
// A row table has the dataset's fields as columns, in declaration order,
// then _source, _shard_id, _sequence_number, _subsequence and _arrival_time,
// with the primary key (_shard_id, _sequence_number, _subsequence). With
// Config.CreateTable the sink creates it when missing; column types follow
// the dataset: int→bigint, float→double precision, bool→boolean, str→text,
// bytes→bytea, datetime→timestamptz, date→date, decimal→numeric,
// embedding→double precision[], list/map/struct→jsonb; optional[T] makes the
// column nullable, any other field is NOT NULL. An existing table is never
// altered: Check (also run by the constructors) reports every column that is
// missing or has a type that would not hold the field, a NOT NULL column the
// sink would leave empty, a missing key, and missing privileges. Accepted
// besides the exact types: varchar for text, json for jsonb, integer or
// bigint for _subsequence, numeric of any precision whose scale does not
// round the field.
//
// The dead-letter table holds the file sink's fields: source, stream_arn,
// shard_id, sequence_number, subsequence, partition_key, arrival_time,
// dataset (” when none), reason, error and data (bytea, the raw record),
// keyed by (stream_arn, shard_id, sequence_number, subsequence, dataset).
// Reader reads both kinds of table back (the errors view and the tests read
// them through it, not with SQL of their own).
//
// # Effectively once
//
// Every transaction COPYs its rows into a temporary table of the session
// (created per connection, emptied at commit) and moves them with INSERT …
// SELECT … ON CONFLICT (key) DO NOTHING: a row read again after a crash or a
// lease move is skipped, counted (Config.OnDuplicates) and logged. A Write
// returns nil only after its transactions committed; the session runs with
// synchronous_commit at least "on", so acknowledged rows survive a crash of
// the server.
//
// # Batching
//
// Write splits a batch larger than BatchRows or BatchBytes into several
// transactions, committed in order; it returns after the last. Smaller
// Writes queue and are committed by the next free connection (at most
// MaxConns transactions at once), several in one transaction when they wait
// together (group commit: under load, many shards share a commit); a
// BatchInterval makes a transaction that is not full wait that long for more
// Writes. Rows of one Write stay in order and one shard's Writes (which the
// caller issues one after the other) commit in order.
//
// # Failures
//
// A value PostgreSQL refuses (SQLSTATE class 22 or 23, or 54000: out of
// range, NUL in text, a CHECK or NOT NULL constraint, ...) is found by
// bisecting the failed transaction inside savepoints; the other rows are
// committed and Write returns a *sinks.RejectedError with the refused rows'
// indexes and the server's reason. Values that cannot be sent at all (a NUL
// in text, NaN in JSON, a Go type that does not fit the column) are refused
// before any round trip. Everything else (server down, connection lost,
// timeout, a table changed under the sink) is returned as a plain, transient
// error and the Write can be retried as is; the pool reconnects by itself.
// Dead letters are never refused: text that PostgreSQL cannot store (NUL,
// invalid UTF-8) is replaced with U+FFFD.
//
// Errors and logs never contain the DSN's password.
//
// The sink needs session state (temporary tables), so it does not work
// through a pooler in transaction-pooling mode (PgBouncer pool_mode =
// transaction); session pooling works.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
)

// RowSink writes rows into a typed table. It is safe for concurrent use.
type RowSink struct {
	e       *engine
	fields  map[string]int // column index by field name
	tsIndex int            // the timestamp's column, for a keyed table's tombstones
}

// DeadLetterSink writes dead letters into a table. It is safe for concurrent
// use.
type DeadLetterSink struct{ e *engine }

var (
	_ sinks.RowSink        = (*RowSink)(nil)
	_ sinks.DeadLetterSink = (*DeadLetterSink)(nil)
)

// NewRowSink checks cfg, connects, creates the table if it is missing and
// cfg.CreateTable is set, and checks that the table fits (a *TableError if
// not). If the server cannot be reached, it still returns a sink, which does
// all that at the first Write (failing, transiently, until it can). ctx
// bounds the start only. log nil means slog.Default().
func NewRowSink(ctx context.Context, cfg Config, log *slog.Logger) (*RowSink, error) {
	cfg, err := cfg.normalize(true)
	if err != nil {
		return nil, err
	}
	spec, err := rowSpec(cfg.Table, cfg.Columns, cfg.Timestamp)
	if err != nil {
		return nil, err
	}
	e, err := newEngine(ctx, cfg, spec, log)
	if err != nil {
		return nil, err
	}
	s := &RowSink{e: e, fields: make(map[string]int, len(cfg.Columns)), tsIndex: -1}
	for i, c := range cfg.Columns {
		s.fields[c.Name] = i
		if c.Name == cfg.Timestamp {
			s.tsIndex = i
		}
	}
	return s, nil
}

// NewDeadLetterSink is NewRowSink for dead letters; cfg.Columns must be nil.
func NewDeadLetterSink(ctx context.Context, cfg Config, log *slog.Logger) (*DeadLetterSink, error) {
	cfg, err := cfg.normalize(false)
	if err != nil {
		return nil, err
	}
	spec, err := deadLetterSpec(cfg.Table)
	if err != nil {
		return nil, err
	}
	e, err := newEngine(ctx, cfg, spec, log)
	if err != nil {
		return nil, err
	}
	return &DeadLetterSink{e: e}, nil
}

// Check connects and checks, without changing anything, that cfg's table
// fits a RowSink (cfg.Columns set) or a DeadLetterSink (cfg.Columns nil): it
// exists, or is missing and cfg.CreateTable is set; every column is there
// with a type that holds its field; there is a unique key on the origin key;
// the connecting role may insert and create temporary tables. A table that
// does not fit is a *TableError listing every problem and how to fix it;
// other errors are about reaching the server.
func Check(ctx context.Context, cfg Config) error {
	rows := len(cfg.Columns) > 0
	cfg, err := cfg.normalize(rows)
	if err != nil {
		return err
	}
	var spec *tableSpec
	if rows {
		spec, err = rowSpec(cfg.Table, cfg.Columns, cfg.Timestamp)
	} else {
		spec, err = deadLetterSpec(cfg.Table)
	}
	if err != nil {
		return err
	}
	pcfg, err := poolConfig(cfg.DSN, 1)
	if err != nil {
		return err
	}
	red := newRedactor(pcfg)
	conn, err := pgx.ConnectConfig(ctx, pcfg.ConnConfig)
	if err != nil {
		return red.err(fmt.Errorf("postgres sink: connect: %w", err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := spec.check(ctx, conn, cfg.CreateTable); err != nil {
		return red.err(fmt.Errorf("postgres sink: %w", err))
	}
	return nil
}

// CreateTableSQL returns the CREATE TABLE statement the sink would run for
// cfg (a row table if cfg.Columns is set, else the dead-letter table).
func CreateTableSQL(cfg Config) (string, error) {
	var spec *tableSpec
	var err error
	if len(cfg.Columns) > 0 {
		if err := checkColumns(cfg.Columns); err != nil {
			return "", err
		}
		spec, err = rowSpec(cfg.Table, cfg.Columns, cfg.Timestamp)
	} else {
		spec, err = deadLetterSpec(cfg.Table)
	}
	if err != nil {
		return "", err
	}
	return spec.ddl(), nil
}

func originKey(o *record.Origin) string {
	return o.ShardID + "/" + o.SequenceNumber + "/" + strconv.Itoa(o.SubSequence)
}

// Write inserts rows and returns once they are committed. Rows already in
// the table (same shard, sequence number and sub-sequence) are skipped.
// Fields are matched to columns by name; a column without a field is NULL.
func (s *RowSink) Write(ctx context.Context, rows []record.Row) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(rows) == 0 {
		if s.e.isClosing() {
			return errClosed
		}
		return nil
	}
	cols := s.e.spec.cols
	nf := s.e.spec.nFields()
	prep := make([]prepared, 0, len(rows))
	idx := make([]int, 0, len(rows))
	var refused []rowErr
	for i := range rows {
		r := &rows[i]
		p, err := s.prepare(r, cols, nf)
		if err != nil {
			refused = append(refused, rowErr{idx: i, key: originKey(&r.Origin), err: err})
			continue
		}
		prep = append(prep, p)
		idx = append(idx, i)
	}
	if len(prep) > 0 {
		bad, err := s.e.write(ctx, prep, idx)
		if err != nil {
			return err
		}
		refused = append(refused, bad...)
	} else if s.e.isClosing() {
		return errClosed
	}
	return rejected(refused, "row")
}

func (s *RowSink) prepare(r *record.Row, cols []column, nf int) (prepared, error) {
	vals := make([]any, len(cols))
	var size int64
	inOrder := len(r.Fields) == nf
	for j := 0; inOrder && j < nf; j++ {
		inOrder = r.Fields[j].Name == cols[j].name
	}
	var seen []bool
	if !inOrder {
		seen = make([]bool, nf)
	}
	for j, f := range r.Fields {
		ci := j
		if !inOrder {
			var ok bool
			if ci, ok = s.fields[f.Name]; !ok {
				return prepared{}, fmt.Errorf("field %q has no column in table %s", f.Name, s.e.spec.display)
			}
			if seen[ci] {
				return prepared{}, fmt.Errorf("field %q appears twice", f.Name)
			}
			seen[ci] = true
		}
		v, n, err := toPG(cols[ci].typ.vk, f.Value)
		if err != nil {
			return prepared{}, fmt.Errorf("field %q: %w", f.Name, err)
		}
		vals[ci] = v
		size += int64(n)
	}
	o := &r.Origin
	origin := []any{o.Source, o.ShardID, o.SequenceNumber, o.SubSequence, o.ArrivalTime}
	if s.e.spec.keyed {
		var deletedAt any
		if r.Delete {
			deletedAt = vals[s.tsIndex]
		}
		origin = append(origin, deletedAt)
	} else if r.Delete {
		return prepared{}, fmt.Errorf("a delete of a keyless dataset: table %s has no keys to delete", s.e.spec.display)
	}
	for j, v := range origin {
		c := &cols[nf+j]
		if v == nil {
			continue // the tombstone of a live key
		}
		pv, n, err := toPG(c.typ.vk, v)
		if err != nil {
			return prepared{}, fmt.Errorf("%s: %w", c.name, err)
		}
		vals[nf+j] = pv
		size += int64(n)
	}
	return prepared{vals: vals, size: size, key: originKey(o)}, nil
}

// Close commits what is queued, waits for Writes in flight and closes the
// connections. Write after Close returns an error; Close again returns nil.
func (s *RowSink) Close() error { return s.e.close() }

// Ping reports whether the server answers, for readiness probes. The password
// never appears in its error.
func (s *RowSink) Ping(ctx context.Context) error { return s.e.ping(ctx) }

// Write inserts dead letters and returns once they are committed. Letters
// already in the table are skipped. It never returns a *sinks.RejectedError.
func (s *DeadLetterSink) Write(ctx context.Context, letters []record.DeadLetter) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(letters) == 0 {
		if s.e.isClosing() {
			return errClosed
		}
		return nil
	}
	prep := make([]prepared, len(letters))
	idx := make([]int, len(letters))
	for i := range letters {
		d := &letters[i]
		data := d.Data
		if data == nil {
			data = []byte{}
		}
		sub := d.SubSequence
		vals := []any{
			sanitizeText(d.Source), sanitizeText(d.StreamARN), sanitizeText(d.ShardID), sanitizeText(d.SequenceNumber),
			int32(sub), sanitizeText(d.PartitionKey), d.ArrivalTime, sanitizeText(d.Dataset),
			sanitizeText(string(d.Reason)), sanitizeText(d.Error), data,
		}
		var size int64 = 64
		for _, v := range vals {
			switch v := v.(type) {
			case string:
				size += int64(len(v))
			case []byte:
				size += int64(len(v))
			}
		}
		prep[i] = prepared{vals: vals, size: size, key: originKey(&d.Origin)}
		idx[i] = i
	}
	bad, err := s.e.write(ctx, prep, idx)
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		// The table refused a dead letter (a constraint added to it): the
		// caller has nowhere else to put it, so this is an outage to fix.
		return fmt.Errorf("postgres sink: dead-letter table %s refused %d dead letters (fix the table; the Write is retried): %w", s.e.spec.display, len(bad), bad[0].err)
	}
	return nil
}

// Close commits what is queued, waits for Writes in flight and closes the
// connections.
func (s *DeadLetterSink) Close() error { return s.e.close() }

// Ping reports whether the server answers, for readiness probes.
func (s *DeadLetterSink) Ping(ctx context.Context) error { return s.e.ping(ctx) }

// rejected builds the RejectedError for refused rows: their indexes, and
// the reason (each row's, keyed by its origin, when they differ).
func rejected(refused []rowErr, what string) error {
	if len(refused) == 0 {
		return nil
	}
	slices.SortFunc(refused, func(a, b rowErr) int { return a.idx - b.idx })
	idx := make([]int, len(refused))
	distinct := map[string]bool{}
	for i, r := range refused {
		idx[i] = r.idx
		distinct[r.err.Error()] = true
	}
	var err error
	if len(distinct) == 1 {
		err = fmt.Errorf("postgres sink: %w", refused[0].err)
	} else {
		const show = 10
		var b strings.Builder
		fmt.Fprintf(&b, "postgres sink: %d %ss refused: ", len(refused), what)
		for i, r := range refused {
			if i > 0 {
				b.WriteString("; ")
			}
			if i == show {
				fmt.Fprintf(&b, "and %d more", len(refused)-show)
				break
			}
			fmt.Fprintf(&b, "%s %s: %v", what, r.key, r.err)
		}
		err = errors.New(b.String())
	}
	return &sinks.RejectedError{Index: idx, Err: err}
}
