package postgres

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// Reader reads back what the sinks wrote to Table: DeadLetters and
// CountDeadLetters read a dead-letter sink's table, Rows a row sink's. The
// tables' layout is this package's alone: the errors view and the tests read
// it through here. Each call opens one connection and closes it before it
// returns; the filters, the order and the limit are applied by the server,
// so a read holds one row at a time whatever the table's size.
type Reader struct {
	DSN   string
	Table string // optionally schema-qualified, as Config.Table takes it
}

// ReadStats says what a read found.
type ReadStats struct {
	Rows int // rows read
	// Skipped are rows that could not be read as asked (a NULL in a column
	// of a table not created by the sink, say).
	Skipped int
}

// Letter is a dead letter read back. Its Data may be only the start of the
// record's data (DeadLetters' head); Size is the length of all of it.
type Letter struct {
	record.DeadLetter
	Size int
}

// LetterQuery selects dead letters, in the WHERE clause of the query. Zero
// fields select every letter and read every error whole.
type LetterQuery struct {
	Reasons []string  // any of these reasons
	Shard   string    // this shard id
	Since   time.Time // arrival time at or after
	Until   time.Time // arrival time before
	// Newest, when > 0, reads only the newest Newest letters (DeadLetters).
	Newest int
	// ErrorChars, when > 0, cuts each error to its first ErrorChars
	// characters (so at least as many bytes, when longer).
	ErrorChars int
}

// letterWhere is the filter of the dead-letter queries, on $1-$4 (args).
const letterWhere = `
WHERE ($1::text[] IS NULL OR ` + dlReason + ` = ANY($1::text[]))
  AND ($2::text = '' OR ` + dlShardID + ` = $2::text)
  AND ($3::timestamptz IS NULL OR ` + dlArrival + ` >= $3::timestamptz)
  AND ($4::timestamptz IS NULL OR ` + dlArrival + ` < $4::timestamptz)`

// args are the parameters of letterWhere.
func (q LetterQuery) args() []any {
	var reasons []string
	if len(q.Reasons) > 0 {
		reasons = q.Reasons
	}
	var since, until *time.Time
	if !q.Since.IsZero() {
		since = &q.Since
	}
	if !q.Until.IsZero() {
		until = &q.Until
	}
	return []any{reasons, q.Shard, since, until}
}

// errorChars is q.ErrorChars as an argument of left(): all when not > 0.
func (q LetterQuery) errorChars() int {
	if q.ErrorChars > 0 {
		return q.ErrorChars
	}
	return math.MaxInt32
}

// DeadLetters calls fn with each dead letter q selects, newest first (by
// arrival time, then shard, then sequence number as a number, then
// subsequence: the errors view's order), its Data cut to its first head
// bytes (all of it when head < 0): only that much of each letter's data
// leaves the server. A row that cannot be read as a letter is counted in
// ReadStats.Skipped. l is valid only during the call; an error from fn stops
// the read and is returned.
func (r Reader) DeadLetters(ctx context.Context, q LetterQuery, head int, fn func(l *Letter) error) (ReadStats, error) {
	var st ReadStats
	if head < 0 {
		head = math.MaxInt32 // bytea holds at most 1 GB
	}
	var limit *int // NULL: no limit
	if q.Newest > 0 {
		limit = &q.Newest
	}
	conn, table, err := r.connect(ctx)
	if err != nil {
		return st, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT `+dlSource+`, `+dlStreamARN+`, `+dlShardID+`, `+dlSequence+`, `+dlSubSequence+`, `+dlPartitionKey+`,
	`+dlArrival+`, `+dlDataset+`, `+dlReason+`, left(`+dlError+`, $5), octet_length(`+dlData+`), substring(`+dlData+` from 1 for $6)
FROM `+table+letterWhere+`
ORDER BY `+dlArrival+` DESC, `+dlShardID+` COLLATE "C" DESC, length(`+dlSequence+`) DESC, `+dlSequence+` COLLATE "C" DESC, `+dlSubSequence+` DESC
LIMIT $7`, append(q.args(), q.errorChars(), head, limit)...)
	if err != nil {
		return st, fmt.Errorf("query dead-letter table %s: %w", r.Table, err)
	}
	defer rows.Close()
	for rows.Next() {
		l := new(Letter)
		var reason string
		if err := rows.Scan(&l.Source, &l.StreamARN, &l.ShardID, &l.SequenceNumber, &l.SubSequence, &l.PartitionKey,
			&l.ArrivalTime, &l.Dataset, &reason, &l.Error, &l.Size, &l.Data); err != nil {
			st.Skipped++
			continue
		}
		st.Rows++
		l.Reason = record.Reason(reason)
		if err := fn(l); err != nil {
			return st, err
		}
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("read dead-letter table %s: %w", r.Table, err)
	}
	return st, nil
}

// LetterCount is how many dead letters share a reason, a dataset and the
// start of their error.
type LetterCount struct {
	Reason  record.Reason
	Dataset string // "" when none
	Error   string // the start of the error (CountDeadLetters' splitBy), or ""
	N       int
}

// CountDeadLetters counts the dead letters q selects (all of them: Newest
// does not apply) by reason and dataset and, for the reasons in splitBy
// only, by the start of their error (q.ErrorChars): a schema_error's error
// starts with its field, while other errors would split the counts by
// offset or value. The server groups the rows; no data is read.
func (r Reader) CountDeadLetters(ctx context.Context, q LetterQuery, splitBy []record.Reason, fn func(c LetterCount) error) error {
	split := make([]string, len(splitBy))
	for i, reason := range splitBy {
		split[i] = string(reason)
	}
	conn, table, err := r.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT `+dlReason+`, `+dlDataset+`,
	CASE WHEN `+dlReason+` = ANY($6::text[]) THEN left(`+dlError+`, $5) ELSE '' END AS err, count(*)
FROM `+table+letterWhere+`
GROUP BY 1, 2, 3`, append(q.args(), q.errorChars(), split)...)
	if err != nil {
		return fmt.Errorf("count dead-letter table %s: %w", r.Table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c LetterCount
		var reason string
		if err := rows.Scan(&reason, &c.Dataset, &c.Error, &c.N); err != nil {
			return fmt.Errorf("count dead-letter table %s: %w", r.Table, err)
		}
		c.Reason = record.Reason(reason)
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("count dead-letter table %s: %w", r.Table, err)
	}
	return nil
}

// Rows calls fn with each row of a row sink's table, in origin order (shard,
// then sequence number as a number, then subsequence): its origin (the
// _source, _shard_id, _sequence_number, _subsequence and _arrival_time
// columns) and its other columns by name, as pgx decodes them (bigint as
// int64, numeric as pgtype.Numeric, jsonb as the decoded JSON, NULL as
// nil, ...). A keyed table's _deleted_at is among the columns. fields is
// valid only during the call; an error from fn stops the read and is
// returned.
func (r Reader) Rows(ctx context.Context, fn func(o record.Origin, fields map[string]any) error) (ReadStats, error) {
	var st ReadStats
	conn, table, err := r.connect(ctx)
	if err != nil {
		return st, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT * FROM `+table+`
ORDER BY `+colShardID+` COLLATE "C", length(`+colSequence+`), `+colSequence+` COLLATE "C", `+colSubSequence)
	if err != nil {
		return st, fmt.Errorf("query table %s: %w", r.Table, err)
	}
	defer rows.Close()
	descs := rows.FieldDescriptions()
	fields := make(map[string]any, len(descs))
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			st.Skipped++
			continue
		}
		var o record.Origin
		ok := true
		clear(fields)
		for i, d := range descs {
			switch v := vals[i]; d.Name {
			case colSource:
				o.Source, _ = v.(string)
			case colShardID:
				o.ShardID, _ = v.(string)
			case colSequence:
				o.SequenceNumber, _ = v.(string)
			case colSubSequence:
				switch n := v.(type) {
				case int32:
					o.SubSequence = int(n)
				case int64:
					o.SubSequence = int(n)
				default:
					ok = false
				}
			case colArrival:
				o.ArrivalTime, ok = v.(time.Time)
			default:
				fields[d.Name] = v
			}
			if !ok {
				break
			}
		}
		if !ok {
			st.Skipped++
			continue
		}
		st.Rows++
		if err := fn(o, fields); err != nil {
			return st, err
		}
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("read table %s: %w", r.Table, err)
	}
	return st, nil
}

// connect opens a connection to read r.Table, quoted in table. Its errors
// never contain the DSN's password.
func (r Reader) connect(ctx context.Context) (conn *pgx.Conn, table string, err error) {
	id, err := ParseTable(r.Table)
	if err != nil {
		return nil, "", fmt.Errorf("postgres reader: table %w", err)
	}
	pc, err := poolConfig(r.DSN, 1)
	if err != nil {
		return nil, "", err
	}
	conn, err = pgx.ConnectConfig(ctx, pc.ConnConfig)
	if err != nil {
		return nil, "", fmt.Errorf("connect to PostgreSQL to read table %s: %w", r.Table, newRedactor(pc).err(err))
	}
	return conn, id.Sanitize(), nil
}
