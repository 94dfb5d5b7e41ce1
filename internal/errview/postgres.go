package errview

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/postgres"
)

// PostgresSource reads the dead-letter table of the PostgreSQL dead-letter
// sink (sinks/postgres): columns source, stream_arn, shard_id,
// sequence_number, subsequence, partition_key, arrival_time, dataset (empty when
// none), reason, error and data. The filter goes into the WHERE clause of two
// queries: one counts by reason, dataset and the start of the error
// (GROUP BY, no data read), the other reads the newest q.Limit letters
// (ORDER BY … LIMIT), of each only the start of its data and of its error.
// Neither holds more than q.Limit letters in the worker, whatever the
// table's size.
type PostgresSource struct {
	DSN   string
	Table string // optionally schema-qualified, as the sink's config takes it
}

var _ Source = PostgresSource{}

// ConnectTimeout bounds connecting to PostgreSQL.
const ConnectTimeout = 10 * time.Second

// pgWhere is the filter of both queries, on $1-$4.
const pgWhere = `
WHERE ($1::text[] IS NULL OR reason = ANY($1::text[]))
  AND ($2::text = '' OR shard_id = $2::text)
  AND ($3::timestamptz IS NULL OR arrival_time >= $3::timestamptz)
  AND ($4::timestamptz IS NULL OR arrival_time < $4::timestamptz)`

func (s PostgresSource) Scan(ctx context.Context, q Query, t *Tally) (ScanStats, error) {
	var st ScanStats
	id, err := postgres.ParseTable(s.Table)
	if err != nil {
		return st, fmt.Errorf("dead-letter table %w", err)
	}
	table := id.Sanitize()
	cctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	conn, err := pgx.Connect(cctx, s.DSN)
	cancel()
	if err != nil {
		// pgx's connect errors name host, user and database, never the password.
		return st, fmt.Errorf("connect to PostgreSQL for dead-letter table %s: %w", s.Table, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

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
	args := []any{reasons, q.Shard, since, until}
	st.Files = 1 // one table

	// Only schema errors name a field; the others group by reason alone.
	rows, err := conn.Query(ctx, `SELECT reason, dataset, CASE WHEN reason = 'schema_error' THEN left(error, $5) ELSE '' END AS err, count(*)
FROM `+table+pgWhere+`
GROUP BY 1, 2, 3`, append(args, MaxErrorBytes+1)...)
	if err != nil {
		return st, fmt.Errorf("count dead-letter table %s: %w", s.Table, err)
	}
	for rows.Next() {
		var reason, dataset, msg string
		var n int
		if err := rows.Scan(&reason, &dataset, &msg, &n); err != nil {
			rows.Close()
			return st, fmt.Errorf("count dead-letter table %s: %w", s.Table, err)
		}
		t.Count(record.Reason(reason), dataset, msg, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("count dead-letter table %s: %w", s.Table, err)
	}

	// The view's order (see after): newest arrival, then shard, then
	// sequence number as a number (longer is greater), then subsequence.
	rows, err = conn.Query(ctx, `SELECT source, stream_arn, shard_id, sequence_number, subsequence, partition_key,
	arrival_time, dataset, reason, left(error, $5), octet_length(data), substring(data from 1 for $6)
FROM `+table+pgWhere+`
ORDER BY arrival_time DESC, shard_id COLLATE "C" DESC, length(sequence_number) DESC, sequence_number COLLATE "C" DESC, subsequence DESC
LIMIT $7`, append(args, MaxErrorBytes+1, HeadBytes, q.Limit)...)
	if err != nil {
		return st, fmt.Errorf("query dead-letter table %s: %w", s.Table, err)
	}
	defer rows.Close()
	for rows.Next() {
		l := new(Letter)
		var reason string
		if err := rows.Scan(&l.Source, &l.StreamARN, &l.ShardID, &l.SequenceNumber, &l.SubSequence, &l.PartitionKey,
			&l.ArrivalTime, &l.Dataset, &reason, &l.Error, &l.Size, &l.Head); err != nil {
			st.Skipped++
			continue
		}
		l.Reason = record.Reason(reason)
		t.Offer(l)
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("read dead-letter table %s: %w", s.Table, err)
	}
	return st, nil
}
