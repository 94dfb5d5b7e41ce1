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
// none), reason, error and data. The filter goes into the query's WHERE
// clause; every selected letter, its data included, is then read, so a view
// of a large table is best narrowed with since/until.
type PostgresSource struct {
	DSN   string
	Table string // optionally schema-qualified, as the sink's config takes it
}

var _ Source = PostgresSource{}

// ConnectTimeout bounds connecting to PostgreSQL.
const ConnectTimeout = 10 * time.Second

func (s PostgresSource) Scan(ctx context.Context, f Filter, fn func(*record.DeadLetter) error) (ScanStats, error) {
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
	if len(f.Reasons) > 0 {
		reasons = f.Reasons
	}
	var since, until *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	if !f.Until.IsZero() {
		until = &f.Until
	}
	rows, err := conn.Query(ctx, `SELECT source, stream_arn, shard_id, sequence_number, subsequence, partition_key,
	arrival_time, dataset, reason, error, data
FROM `+table+`
WHERE ($1::text[] IS NULL OR reason = ANY($1::text[]))
  AND ($2::text = '' OR shard_id = $2::text)
  AND ($3::timestamptz IS NULL OR arrival_time >= $3::timestamptz)
  AND ($4::timestamptz IS NULL OR arrival_time < $4::timestamptz)`, reasons, f.Shard, since, until)
	if err != nil {
		return st, fmt.Errorf("query dead-letter table %s: %w", s.Table, err)
	}
	defer rows.Close()
	st.Files = 1 // one table
	for rows.Next() {
		d := new(record.DeadLetter)
		var reason string
		if err := rows.Scan(&d.Source, &d.StreamARN, &d.ShardID, &d.SequenceNumber, &d.SubSequence, &d.PartitionKey,
			&d.ArrivalTime, &d.Dataset, &reason, &d.Error, &d.Data); err != nil {
			st.Skipped++
			continue
		}
		d.Reason = record.Reason(reason)
		if err := fn(d); err != nil {
			return st, err
		}
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("read dead-letter table %s: %w", s.Table, err)
	}
	return st, nil
}
