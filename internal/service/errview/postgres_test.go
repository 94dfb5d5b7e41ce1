package errview

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/pgtest"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/postgres"
)

// TestPostgresSource reads back what the PostgreSQL dead-letter sink wrote,
// with the filters applied in the query.
func TestPostgresSource(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.CreateDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA ops"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	sink, err := postgres.NewDeadLetterSink(ctx, postgres.Config{DSN: dsn, Table: "ops.Dead_Letters", CreateTable: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("dead-letter sink: %v", err)
	}
	letters := []record.DeadLetter{
		letter(0, "shardId-000000000000", record.ReasonDecode, "", "invalid JSON at byte 12: unexpected EOF", []byte(`{"id":1,`)),
		letter(1, "shardId-000000000000", record.ReasonSchema, "orders", "amount: missing", []byte(`{"id":2}`)),
		letter(2, "shardId-000000000001", record.ReasonSchema, "orders", `items[2].price: want float, got null`, []byte(`{"id":3}`)),
		letter(3, "shardId-000000000001", record.ReasonSchema, "orders", `amount: want float, got string "x"`, []byte("\xff\x00binary")),
	}
	if err := sink.Write(ctx, letters); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	src := PostgresSource{Reader: postgres.Reader{DSN: dsn, Table: "ops.Dead_Letters"}}

	s, err := Summarize(ctx, src, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total != 4 || len(s.Latest) != 4 || s.Latest[0].PartitionKey != "k-d" || s.Latest[0].Preview.Encoding != "hex" {
		t.Fatalf("view of the table: %+v", s)
	}
	if got := s.ByField; len(got) != 2 || got[0] != (FieldCount{Dataset: "orders", Field: "amount", Count: 2}) {
		t.Errorf("by field %+v", got)
	}
	if !s.Latest[0].ArrivalTime.Equal(t0.Add(3 * time.Minute)) {
		t.Errorf("arrival time %v, want %v", s.Latest[0].ArrivalTime, t0.Add(3*time.Minute))
	}

	// The filters are in the queries: count what the table returns.
	q := Query{Filter: Filter{Reasons: []string{"schema_error"}, Shard: "shardId-000000000001", Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, Limit: 20}
	tally := newTally(q)
	if _, err := src.Scan(ctx, q, tally); err != nil {
		t.Fatal(err)
	}
	if tally.total != 1 || tally.latest.Len() != 1 {
		t.Errorf("the queries counted %d and returned %d letters for %+v, want 1 and 1", tally.total, tally.latest.Len(), q)
	}
	// The newest come from ORDER BY ... LIMIT, the counts from all rows.
	s, err = Summarize(ctx, src, Query{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total != 4 || len(s.Latest) != 2 || s.Latest[0].PartitionKey != "k-d" || s.Latest[1].PartitionKey != "k-c" {
		t.Errorf("limit 2: total %d, latest %+v", s.Total, s.Latest)
	}

	_, err = Summarize(ctx, PostgresSource{Reader: postgres.Reader{DSN: dsn, Table: "missing_table"}}, Query{})
	if err == nil || !strings.Contains(err.Error(), "missing_table") {
		t.Errorf("missing table: %v", err)
	}
}
