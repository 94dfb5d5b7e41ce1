package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
)

var orderColumns = []schema.Column{
	{Name: "id", Type: typ("int")},
	{Name: "amount", Type: typ("float")},
	{Name: "ts", Type: typ("datetime")},
	{Name: "note", Type: typ("optional[str]")},
}

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func orderRow(shard string, seq int) record.Row {
	return record.Row{
		Dataset: "orders",
		Origin: record.Origin{Source: "orders", ShardID: shard, SequenceNumber: fmt.Sprintf("4959%020d", seq),
			ArrivalTime: t0.Add(time.Duration(seq) * time.Millisecond)},
		Fields: []record.Field{
			{Name: "id", Value: int64(seq)},
			{Name: "amount", Value: float64(seq) + 0.25},
			{Name: "ts", Value: t0.Add(time.Duration(seq) * time.Second)},
			{Name: "note", Value: nil},
		},
	}
}

func orderRows(shard string, from, n int) []record.Row {
	out := make([]record.Row, n)
	for i := range out {
		out[i] = orderRow(shard, from+i)
	}
	return out
}

func newRowSink(t *testing.T, cfg Config) *RowSink {
	t.Helper()
	if cfg.Columns == nil {
		cfg.Columns = orderColumns
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := NewRowSink(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func count(t *testing.T, conn *pgx.Conn, sql string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestCreateTableTypes(t *testing.T) {
	dsn := server(t).CreateDatabase(t)
	conn := connect(t, dsn)
	cols := []schema.Column{
		{Name: "i", Type: typ("int")}, {Name: "f", Type: typ("float")}, {Name: "b", Type: typ("bool")},
		{Name: "s", Type: typ("str")}, {Name: "by", Type: typ("bytes")}, {Name: "dt", Type: typ("datetime")},
		{Name: "d", Type: typ("date")}, {Name: "dec", Type: typ("decimal[2]")}, {Name: "e", Type: typ("embedding[3]")},
		{Name: "l", Type: typ("list[int]")}, {Name: "m", Type: typ("map[str]")}, {Name: "st", Type: typ("struct")},
		{Name: "o", Type: typ("optional[int]")}, {Name: "CamelCase", Type: typ("optional[list[str]]")},
	}
	if _, err := conn.Exec(context.Background(), "CREATE SCHEMA wh"); err != nil {
		t.Fatal(err)
	}
	newRowSink(t, Config{DSN: dsn, Table: "WH.Orders", Columns: cols, CreateTable: true})

	rows, err := conn.Query(context.Background(), `SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
		FROM pg_attribute a WHERE a.attrelid = 'wh.orders'::regclass AND a.attnum > 0 ORDER BY a.attnum`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var name, ty string
		var notNull bool
		if err := rows.Scan(&name, &ty, &notNull); err != nil {
			t.Fatal(err)
		}
		if !notNull {
			ty += " NULL"
		}
		got = append(got, name+" "+ty)
	}
	want := []string{
		"i bigint", "f double precision", "b boolean", "s text", "by bytea", "dt timestamp with time zone",
		"d date", "dec numeric", "e double precision[]", "l jsonb", "m jsonb", "st jsonb", "o bigint NULL",
		"CamelCase jsonb NULL",
		"_source text", "_shard_id text", "_sequence_number text", "_subsequence integer", "_arrival_time timestamp with time zone",
	}
	if !slices.Equal(got, want) {
		t.Errorf("columns:\n got %q\nwant %q", got, want)
	}
	var pk string
	if err := conn.QueryRow(context.Background(), `SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'wh.orders'::regclass AND contype = 'p'`).Scan(&pk); err != nil {
		t.Fatal(err)
	}
	if pk != "PRIMARY KEY (_shard_id, _sequence_number, _subsequence)" {
		t.Errorf("primary key: %s", pk)
	}
	// A second sink (another worker) finds the table and accepts it.
	newRowSink(t, Config{DSN: dsn, Table: "wh.orders", Columns: cols, CreateTable: true})
}

func TestExistingTableMustFit(t *testing.T) {
	dsn := server(t).CreateDatabase(t)
	conn := connect(t, dsn)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE TABLE orders (
		id integer NOT NULL,
		amount double precision,
		ts timestamp without time zone,
		note text NOT NULL,
		extra text NOT NULL,
		_source text, _shard_id text, _sequence_number text, _subsequence int, _arrival_time timestamptz)`); err != nil {
		t.Fatal(err)
	}
	cfg := Config{DSN: dsn, Table: "orders", Columns: orderColumns}
	err := Check(ctx, cfg)
	var te *TableError
	if !errors.As(err, &te) {
		t.Fatalf("Check = %v, want a *TableError", err)
	}
	t.Logf("Check: %v", err)
	for _, want := range []string{
		`column "id" is integer, want bigint`,
		`column "ts" is timestamp without time zone, want timestamptz`,
		`column "note" is NOT NULL but the field is optional[str]`,
		`column "extra" is NOT NULL without a default`,
		`no primary key or unique index on exactly ("_shard_id", "_sequence_number", "_subsequence")`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check error lacks %q", want)
		}
	}
	if len(te.Problems) != 5 {
		t.Errorf("%d problems, want 5: %q", len(te.Problems), te.Problems)
	}
	// The constructor refuses it too, with or without create_table.
	cfg.CreateTable = true
	if _, err := NewRowSink(ctx, cfg, testLogger(t)); !errors.As(err, &te) {
		t.Errorf("NewRowSink = %v, want a *TableError", err)
	}

	// A missing column, named in another case.
	if _, err := conn.Exec(ctx, `CREATE TABLE o2 ("ID" bigint, amount double precision, ts timestamptz, note varchar(20),
		_source text, _shard_id text, _sequence_number text, _subsequence bigint, _arrival_time timestamptz,
		PRIMARY KEY (_subsequence, _sequence_number, _shard_id))`); err != nil {
		t.Fatal(err)
	}
	err = Check(ctx, Config{DSN: dsn, Table: "o2", Columns: orderColumns})
	if err == nil || !strings.Contains(err.Error(), `column "id" (field of type int) is missing (there is "ID": names are case-sensitive)`) {
		t.Errorf("Check = %v", err)
	}
	if _, err := conn.Exec(ctx, `ALTER TABLE o2 RENAME "ID" TO id`); err != nil {
		t.Fatal(err)
	}
	if err := Check(ctx, Config{DSN: dsn, Table: "o2", Columns: orderColumns}); err != nil {
		t.Errorf("a fitting table (varchar, bigint _subsequence, key in another order): %v", err)
	}

	// Missing table without create_table: an error with the DDL to run.
	err = Check(ctx, Config{DSN: dsn, Table: "nope", Columns: orderColumns})
	if !errors.As(err, &te) || !strings.Contains(err.Error(), `CREATE TABLE IF NOT EXISTS "nope"`) {
		t.Errorf("Check of a missing table = %v", err)
	}
	if err := Check(ctx, Config{DSN: dsn, Table: "nope", Columns: orderColumns, CreateTable: true}); err != nil {
		t.Errorf("Check of a missing table with create_table: %v", err)
	}
	if err := Check(ctx, Config{DSN: dsn, Table: "nosuchschema.t", Columns: orderColumns, CreateTable: true}); err == nil {
		t.Error("Check of a table in a missing schema passed")
	} else {
		t.Logf("missing schema: %v", err)
	}
	// Decimal scale.
	if _, err := conn.Exec(ctx, `CREATE TABLE d (amount numeric(10,1), _source text, _shard_id text, _sequence_number text, _subsequence int, _arrival_time timestamptz,
		PRIMARY KEY (_shard_id, _sequence_number, _subsequence))`); err != nil {
		t.Fatal(err)
	}
	err = Check(ctx, Config{DSN: dsn, Table: "d", Columns: []schema.Column{{Name: "amount", Type: typ("decimal[2]")}}})
	if err == nil || !strings.Contains(err.Error(), "would round") {
		t.Errorf("Check of numeric(10,1) for decimal[2] = %v", err)
	}
}

func TestRefusedRowsAreIsolated(t *testing.T) {
	dsn := server(t).CreateDatabase(t)
	conn := connect(t, dsn)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE TABLE orders (id bigint NOT NULL CHECK (id <> 13), amount double precision NOT NULL, ts timestamptz NOT NULL,
		note varchar(5), _source text NOT NULL, _shard_id text NOT NULL, _sequence_number text NOT NULL, _subsequence int NOT NULL,
		_arrival_time timestamptz NOT NULL, PRIMARY KEY (_shard_id, _sequence_number, _subsequence))`); err != nil {
		t.Fatal(err)
	}
	s := newRowSink(t, Config{DSN: dsn, Table: "orders", BatchRows: 40})
	rows := orderRows("shardId-000000000000", 0, 100)
	rows[13].Fields[0].Value = int64(13)                                                         // CHECK, on the server (was 13 anyway)
	rows[50].Fields[3].Value = "too long for varchar(5)"                                         // 22001 on the server
	rows[77].Fields[3].Value = "nul\x00byte"                                                     // refused before sending
	rows[78].Fields[1].Value = "not a float"                                                     // wrong Go type
	rows[99].Fields = append(rows[99].Fields[:3:3], record.Field{Name: "nope", Value: int64(1)}) // unknown field
	err := s.Write(ctx, rows)
	rej, ok := sinks.IsRejected(err)
	if !ok {
		t.Fatalf("Write = %v, want a RejectedError", err)
	}
	if want := []int{13, 50, 77, 78, 99}; !slices.Equal(rej.Index, want) {
		t.Errorf("rejected %v, want %v", rej.Index, want)
	}
	t.Logf("RejectedError: %v", rej)
	for _, want := range []string{"check constraint", "value too long", "NUL", "double precision", `"nope"`} {
		if !strings.Contains(rej.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if n := count(t, conn, "SELECT count(*) FROM orders"); n != 95 {
		t.Errorf("%d rows stored, want 95", n)
	}
	// A retry of the same batch stores nothing new and refuses the same rows.
	err = s.Write(ctx, rows)
	if rej2, ok := sinks.IsRejected(err); !ok || !slices.Equal(rej2.Index, rej.Index) {
		t.Errorf("retry: %v", err)
	}
	if n := count(t, conn, "SELECT count(*) FROM orders"); n != 95 {
		t.Errorf("%d rows stored after the retry, want 95", n)
	}
}

// TestDeferredConstraintIsRefusedNotRetried: a DEFERRABLE INITIALLY DEFERRED
// unique constraint would fail only at COMMIT, where no row can be blamed; the
// sink checks constraints immediately, so the offending row is refused and
// the rest committed, instead of the batch failing forever.
func TestDeferredConstraintIsRefusedNotRetried(t *testing.T) {
	dsn := server(t).CreateDatabase(t)
	conn := connect(t, dsn)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE TABLE orders (id bigint NOT NULL UNIQUE DEFERRABLE INITIALLY DEFERRED, amount double precision NOT NULL,
		ts timestamptz NOT NULL, note text, _source text NOT NULL, _shard_id text NOT NULL, _sequence_number text NOT NULL,
		_subsequence int NOT NULL, _arrival_time timestamptz NOT NULL, PRIMARY KEY (_shard_id, _sequence_number, _subsequence))`); err != nil {
		t.Fatal(err)
	}
	s := newRowSink(t, Config{DSN: dsn, Table: "orders"})
	rows := orderRows("shardId-000000000000", 0, 10)
	rows[7].Fields[0].Value = int64(2) // the id of rows[2]
	err := s.Write(ctx, rows)
	rej, ok := sinks.IsRejected(err)
	if !ok || !slices.Equal(rej.Index, []int{7}) {
		t.Fatalf("Write = %v, want row 7 refused", err)
	}
	if n := count(t, conn, "SELECT count(*) FROM orders"); n != 9 {
		t.Errorf("%d rows stored, want 9", n)
	}
}

func TestDuplicatesAreCountedAndBatchesSplit(t *testing.T) {
	dsn := server(t).CreateDatabase(t)
	conn := connect(t, dsn)
	var dups atomic.Int64
	s := newRowSink(t, Config{DSN: dsn, Table: "orders", CreateTable: true, BatchRows: 10,
		OnDuplicates: func(n int) { dups.Add(int64(n)) }})
	ctx := context.Background()
	rows := orderRows("shardId-000000000001", 0, 95)
	if err := s.Write(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if n := count(t, conn, "SELECT count(DISTINCT xmin::text) FROM orders"); n != 10 {
		t.Errorf("95 rows with batch_rows 10 took %d transactions, want 10", n)
	}
	if dups.Load() != 0 {
		t.Errorf("%d duplicates counted on a first write", dups.Load())
	}
	// A replay overlapping the stored rows.
	if err := s.Write(ctx, orderRows("shardId-000000000001", 50, 100)); err != nil {
		t.Fatal(err)
	}
	if got := dups.Load(); got != 45 {
		t.Errorf("%d duplicates counted, want 45", got)
	}
	if n := count(t, conn, "SELECT count(*) FROM orders"); n != 150 {
		t.Errorf("%d rows, want 150", n)
	}

	// Bytes split too: rows of about 86 bytes (as the sink counts them), 400
	// bytes per transaction.
	s2 := newRowSink(t, Config{DSN: dsn, Table: "orders2", CreateTable: true, BatchBytes: 400})
	if err := s2.Write(ctx, orderRows("shardId-000000000001", 0, 100)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, conn, "SELECT count(DISTINCT xmin::text) FROM orders2"); n < 20 || n > 35 {
		t.Errorf("100 rows with batch_bytes 400 took %d transactions", n)
	}
}

func TestGroupCommit(t *testing.T) {
	dsn := server(t).CreateDatabase(t)
	conn := connect(t, dsn)
	// Four shards write 5 rows each at the same time: with a window, one
	// transaction takes them all.
	s := newRowSink(t, Config{DSN: dsn, Table: "orders", CreateTable: true, BatchInterval: 300 * time.Millisecond})
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 4 {
		wg.Go(func() {
			if err := s.Write(context.Background(), orderRows(fmt.Sprintf("shardId-%012d", i), 0, 5)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if n := count(t, conn, "SELECT count(DISTINCT xmin::text) FROM orders"); n != 1 {
		t.Errorf("4 concurrent Writes within the window took %d transactions, want 1", n)
	}
	if took < 250*time.Millisecond || took > 3*time.Second {
		t.Errorf("Writes took %v with a 300ms window", took)
	}
	// A full group does not wait for the window.
	s2 := newRowSink(t, Config{DSN: dsn, Table: "orders2", CreateTable: true, BatchRows: 10, BatchInterval: 10 * time.Second})
	start = time.Now()
	if err := s2.Write(context.Background(), orderRows("shardId-000000000000", 0, 10)); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a full batch waited %v for the window", took)
	}
}

func TestStartWhileServerDown(t *testing.T) {
	srv := server(t)
	dsn := srv.CreateDatabase(t)
	srv.Stop(t)
	t.Cleanup(func() {
		if !srv.Running() {
			srv.Start(t)
		}
	})
	s := newRowSink(t, Config{DSN: dsn, Table: "orders", CreateTable: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	err := s.Write(ctx, orderRows("shardId-000000000000", 0, 10))
	cancel()
	if err == nil {
		t.Fatal("Write with the server down returned nil")
	}
	if _, ok := sinks.IsRejected(err); ok {
		t.Fatalf("Write with the server down rejected rows: %v", err)
	}
	srv.Start(t)
	if err := s.Write(context.Background(), orderRows("shardId-000000000000", 0, 10)); err != nil {
		t.Fatalf("Write after the server came up: %v", err)
	}
	if n := count(t, connect(t, dsn), "SELECT count(*) FROM orders"); n != 10 {
		t.Errorf("%d rows, want 10", n)
	}
}

func TestPasswordNeverInErrors(t *testing.T) {
	const pw = "s3cr3t-pw-must-not-leak"
	srv := server(t)
	for _, dsn := range []string{
		fmt.Sprintf("postgres://postgres:%s@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", pw),
		fmt.Sprintf("host=127.0.0.1 port=1 user=postgres password=%s dbname=db sslmode=disable connect_timeout=2", pw),
		fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/nosuchdb?sslmode=disable", pw, srv.Port),
		fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%%zz/db", pw),
		fmt.Sprintf("host=127.0.0.1 port=%d password='%s' dbname=", srv.Port, pw),
	} {
		err := Check(context.Background(), Config{DSN: dsn, Table: "t", Columns: orderColumns})
		if err == nil {
			t.Errorf("Check passed for a bad DSN")
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error shows the password: %v", err)
		}
		var logs bytes.Buffer
		rs, err := NewRowSink(context.Background(), Config{DSN: dsn, Table: "t", Columns: orderColumns}, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil && strings.Contains(err.Error(), pw) {
			t.Errorf("error shows the password: %v", err)
		}
		if rs != nil { // the server is unreachable: the sink starts anyway
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			werr := rs.Write(ctx, orderRows("s", 0, 1))
			cancel()
			if werr == nil || strings.Contains(werr.Error(), pw) {
				t.Errorf("Write: %v", werr)
			}
			rs.Close()
		}
		if strings.Contains(logs.String(), pw) {
			t.Errorf("logs show the password: %s", logs.String())
		}
		t.Logf("%v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Table: "t", Columns: orderColumns}, "DSN is empty"},
		{Config{DSN: "x", Table: "a.b.c", Columns: orderColumns}, "not a table name"},
		{Config{DSN: "x", Table: "t"}, "Columns is empty"},
		{Config{DSN: "x", Table: "t", Columns: []schema.Column{{Name: "_shard_id", Type: typ("str")}}}, "taken by an origin column"},
		{Config{DSN: "x", Table: "t", Columns: []schema.Column{{Name: strings.Repeat("x", 64), Type: typ("str")}}}, "at most 63 bytes"},
		{Config{DSN: "x", Table: "t", Columns: []schema.Column{{Name: "a", Type: typ("str")}, {Name: "a", Type: typ("int")}}}, "appears twice"},
		{Config{DSN: "x", Table: "t", Columns: orderColumns, BatchRows: -1}, "BatchRows"},
	} {
		_, err := NewRowSink(context.Background(), tc.cfg, testLogger(t))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestValuesRoundTripExactly(t *testing.T) {
	dsn := server(t).CreateDatabase(t)
	conn := connect(t, dsn)
	cols := []schema.Column{{Name: "d", Type: typ("decimal[2]")}, {Name: "dt", Type: typ("date")}, {Name: "e", Type: typ("optional[embedding[2]]")}}
	s := newRowSink(t, Config{DSN: dsn, Table: "v", Columns: cols, CreateTable: true})
	row := func(seq int, d string, dt record.Date, e []float64) record.Row {
		return record.Row{Origin: record.Origin{ShardID: "s", SequenceNumber: fmt.Sprint(seq)},
			Fields: []record.Field{{Name: "d", Value: record.Decimal(d)}, {Name: "dt", Value: dt}, {Name: "e", Value: e}}}
	}
	rows := []record.Row{
		row(1, "-12.50", record.Date{Year: 2024, Month: 2, Day: 29}, []float64{1, 2}),
		row(2, "0.00", record.Date{Year: 1, Month: 1, Day: 1}, nil),
		row(3, "12345678901234567890123456789012345.10", record.Date{Year: 9999, Month: 12, Day: 31}, []float64{}),
		row(4, "1e5", record.Date{Year: 2024, Month: 2, Day: 29}, nil),  // not a canonical decimal
		row(5, "1.00", record.Date{Year: 2023, Month: 2, Day: 29}, nil), // no such day
	}
	err := s.Write(context.Background(), rows)
	if rej, ok := sinks.IsRejected(err); !ok || !slices.Equal(rej.Index, []int{3, 4}) {
		t.Fatalf("Write = %v, want rows 3 and 4 rejected", err)
	}
	got, err := conn.Query(context.Background(), "SELECT d::text, dt::text, coalesce(e::text, 'NULL') FROM v ORDER BY _sequence_number")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for got.Next() {
		var a, b, c string
		if err := got.Scan(&a, &b, &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, a+" "+b+" "+c)
	}
	want := []string{"-12.50 2024-02-29 {1,2}", "0.00 0001-01-01 NULL", "12345678901234567890123456789012345.10 9999-12-31 {}"}
	if !slices.Equal(out, want) {
		t.Errorf("got %q\nwant %q", out, want)
	}
}

func TestLeastPrivilegedRole(t *testing.T) {
	srv := server(t)
	dsn := srv.CreateDatabase(t)
	conn := connect(t, dsn)
	ctx := context.Background()
	owner := newRowSink(t, Config{DSN: dsn, Table: "orders", CreateTable: true})
	owner.Close()
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	role := "writer_" + db
	for _, sql := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"GRANT INSERT ON orders TO " + role,
		"REVOKE TEMP ON DATABASE " + db + " FROM PUBLIC",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	wdsn := strings.Replace(dsn, "postgres@", role+"@", 1)
	err := Check(ctx, Config{DSN: wdsn, Table: "orders", Columns: orderColumns})
	if err == nil || !strings.Contains(err.Error(), "may not create temporary tables") || !strings.Contains(err.Error(), "may not read the key columns") {
		t.Fatalf("Check without TEMP and SELECT on the key = %v", err)
	}
	t.Logf("Check: %v", err)
	for _, sql := range []string{
		"GRANT TEMP ON DATABASE " + db + " TO " + role,
		// ON CONFLICT (key) reads the key columns of existing rows; nothing
		// else of the table needs reading.
		"GRANT SELECT (_shard_id, _sequence_number, _subsequence) ON orders TO " + role,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if err := Check(ctx, Config{DSN: wdsn, Table: "orders", Columns: orderColumns}); err != nil {
		t.Fatalf("Check with INSERT and TEMP: %v", err)
	}
	s := newRowSink(t, Config{DSN: wdsn, Table: "orders"})
	rows := orderRows("shardId-000000000000", 0, 20)
	for range 2 {
		if err := s.Write(ctx, rows); err != nil {
			t.Fatalf("Write as a role with INSERT only: %v", err)
		}
	}
	if n := count(t, conn, "SELECT count(*) FROM orders"); n != 20 {
		t.Errorf("%d rows, want 20", n)
	}
}

func TestAbandonedWritesAndCloseDuringWindow(t *testing.T) {
	dsn := server(t).CreateDatabase(t)
	conn := connect(t, dsn)
	s := newRowSink(t, Config{DSN: dsn, Table: "orders", CreateTable: true, BatchInterval: 2 * time.Second})
	// A Write whose caller gives up while its group waits for more.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	start := time.Now()
	err := s.Write(ctx, orderRows("shardId-000000000000", 0, 5))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("Write = %v after %v, want DeadlineExceeded after ~100ms", err, time.Since(start))
	}
	// Close ends the window at once and commits what waits.
	done := make(chan error, 1)
	go func() { done <- s.Write(context.Background(), orderRows("shardId-000000000001", 0, 5)) }()
	time.Sleep(200 * time.Millisecond)
	start = time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Write waiting in the window when Close was called: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v", took)
	}
	if n := count(t, conn, "SELECT count(*) FROM orders WHERE _shard_id = 'shardId-000000000001'"); n != 5 {
		t.Errorf("%d rows of the Write pending at Close, want 5", n)
	}
	if n := count(t, conn, "SELECT count(*) FROM orders WHERE _shard_id = 'shardId-000000000000'"); n != 0 {
		t.Logf("note: the abandoned Write's rows were stored anyway (%d): allowed", n)
	}
}
