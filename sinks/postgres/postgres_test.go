package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/pgtest"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/sinktest"
)

// One throwaway server for the package's tests; each test gets its own
// database. Tests that stop the server do not run in parallel.
var (
	srvOnce sync.Once
	srv     *pgtest.Server
	srvErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if srv != nil {
		if err := srv.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	// A sink, pool or writer goroutine still running after every test closed
	// its sink is a leak a worker would pay for at each reconnect.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func server(t testing.TB) *pgtest.Server {
	t.Helper()
	if pgtest.BinDir() == "" {
		pgtest.Start(t) // skips, or fails under CI
	}
	srvOnce.Do(func() { srv, srvErr = pgtest.New(context.Background()) })
	if srvErr != nil {
		t.Fatal(srvErr)
	}
	if !srv.Running() {
		srv.Start(t)
	}
	return srv
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func typ(s string) schema.Type {
	t, err := schema.ParseType(s)
	if err != nil {
		panic(err)
	}
	return t
}

// conformanceColumns covers the fields of every row the suite writes: its
// plain rows (id, shard, payload, at) and its round-trip rows. All but id are
// optional, since the round-trip rows include one of nulls and one with only
// two fields.
func conformanceColumns() []schema.Column {
	cols := []schema.Column{{Name: "id", Type: typ("int")}}
	for _, c := range []struct{ name, typ string }{
		{"shard", "str"}, {"payload", "str"}, {"at", "datetime"},
		{"flag", "bool"}, {"flag_off", "bool"}, {"count", "int"}, {"max_int", "int"}, {"min_int", "int"},
		{"ratio", "float"}, {"whole_float", "float"}, {"negative_float", "float"}, {"tiny_float", "float"},
		{"huge_float", "float"}, {"exp_float", "float"},
		{"name", "str"}, {"escapes", "str"}, {"unicode", "str"}, {"empty_string", "str"},
		{"bytes", "bytes"}, {"empty_bytes", "bytes"},
		{"ts", "datetime"}, {"ts_whole_second", "datetime"}, {"ts_other_zone", "datetime"},
		{"day", "date"}, {"early_day", "date"},
		{"amount", "decimal[2]"}, {"big_amount", "decimal[9]"},
		{"embedding", "embedding[5]"}, {"empty_embedding", "embedding[1]"},
		{"list", "list[str]"}, {"empty_list", "list[int]"}, {"map", "map[str]"}, {"empty_map", "map[int]"},
		{"address", "struct"}, {"nothing", "str"}, {"empty_struct", "struct"},
	} {
		cols = append(cols, schema.Column{Name: c.name, Type: typ("optional[" + c.typ + "]")})
	}
	return cols
}

// shapes remembers the field names of every row written through a
// recorder, so that Read can return rows of the same shape: a table has one
// fixed set of columns, while the suite writes rows with different fields.
// The values always come from the table.
type shapes struct {
	mu sync.Mutex
	m  map[string][]string
}

func (s *shapes) record(rows []record.Row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		names := make([]string, len(r.Fields))
		for i, f := range r.Fields {
			names[i] = f.Name
		}
		s.m[originKey(&r.Origin)] = names
	}
}

func (s *shapes) of(key string) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.m[key]
	return n, ok
}

type recorder struct {
	*RowSink
	shapes *shapes
}

func (r recorder) Write(ctx context.Context, rows []record.Row) error {
	r.shapes.record(rows)
	return r.RowSink.Write(ctx, rows)
}

// readRows returns the rows of table in commit order, with the recorded
// shape. Key order would hide, from the conformance suite's OrderPerShard, a
// sink that commits a shard's batches out of order. xmin is the inserting
// transaction's ID, assigned in order; one shard's writes are one
// transaction after the other, so their xmin order is their commit order.
// Rows of one transaction commit together: they are ordered by key (ctid is
// not insertion order once concurrent inserts share the heap's pages).
func readRows(t testing.TB, conn *pgx.Conn, table string, cols []schema.Column, sh *shapes) []record.Row {
	t.Helper()
	sel := ""
	for _, c := range cols {
		name := pgx.Identifier{c.Name}.Sanitize()
		base := c.Type
		if base.Kind == schema.KindOptional {
			base = *base.Elem
		}
		switch base.Kind {
		case schema.KindDecimal, schema.KindList, schema.KindMap, schema.KindStruct:
			name += "::text"
		}
		sel += name + ", "
	}
	q := "SELECT " + sel + "_source, _shard_id, _sequence_number, _subsequence, _arrival_time FROM " + pgx.Identifier{table}.Sanitize() +
		" ORDER BY xmin::text::bigint, _shard_id, length(_sequence_number), _sequence_number, _subsequence"
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	defer rows.Close()
	var out []record.Row
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		n := len(cols)
		var r record.Row
		r.Origin.Source = vals[n].(string)
		r.Origin.ShardID = vals[n+1].(string)
		r.Origin.SequenceNumber = vals[n+2].(string)
		r.Origin.SubSequence = int(vals[n+3].(int32))
		r.Origin.ArrivalTime = vals[n+4].(time.Time)
		byName := map[string]any{}
		for i, c := range cols {
			v := vals[i]
			base := c.Type
			if base.Kind == schema.KindOptional {
				base = *base.Elem
			}
			if s, ok := v.(string); ok && (base.Kind == schema.KindList || base.Kind == schema.KindMap || base.Kind == schema.KindStruct) {
				dec := json.NewDecoder(bytes.NewReader([]byte(s)))
				dec.UseNumber()
				var x any
				if err := dec.Decode(&x); err != nil {
					t.Fatalf("column %s: bad JSON %q: %v", c.Name, s, err)
				}
				v = x
			}
			if a, ok := v.([]any); ok && base.Kind == schema.KindEmbedding {
				v = a
			}
			byName[c.Name] = v
		}
		names, ok := sh.of(originKey(&r.Origin))
		if !ok {
			for _, c := range cols {
				if byName[c.Name] != nil {
					names = append(names, c.Name)
				}
			}
		}
		for _, name := range names {
			r.Fields = append(r.Fields, record.Field{Name: name, Value: byName[name]})
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return out
}

func readLetters(t testing.TB, conn *pgx.Conn, table string) []record.DeadLetter {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT source, stream_arn, shard_id, sequence_number, subsequence, partition_key, arrival_time, dataset, reason, error, data FROM "+
		pgx.Identifier{table}.Sanitize()+" ORDER BY xmin::text::bigint, shard_id, length(sequence_number), sequence_number, subsequence, dataset") // commit order, as readRows
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	defer rows.Close()
	var out []record.DeadLetter
	for rows.Next() {
		var d record.DeadLetter
		var sub int32
		var reason string
		if err := rows.Scan(&d.Source, &d.StreamARN, &d.ShardID, &d.SequenceNumber, &sub, &d.PartitionKey, &d.ArrivalTime, &d.Dataset, &reason, &d.Error, &d.Data); err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		d.SubSequence, d.Reason = int(sub), record.Reason(reason)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return out
}

var tableSeq atomic.Int64

func TestConformanceRows(t *testing.T) {
	s := server(t)
	dsn := s.CreateDatabase(t)
	var conn *pgx.Conn
	reader := func(t *testing.T) *pgx.Conn {
		if conn == nil || conn.IsClosed() || conn.Ping(context.Background()) != nil {
			conn = connect(t, dsn)
		}
		return conn
	}
	cols := conformanceColumns()
	type store struct {
		table  string
		shapes *shapes
	}
	var mu sync.Mutex
	stores := map[*testing.T]*store{}
	open := func(t *testing.T, st *store) sinks.RowSink {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rs, err := NewRowSink(ctx, Config{DSN: dsn, Table: st.table, Columns: cols, CreateTable: true}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		return recorder{RowSink: rs, shapes: st.shapes}
	}
	get := func(t *testing.T) *store {
		mu.Lock()
		defer mu.Unlock()
		st, ok := stores[t]
		if !ok {
			t.Fatal("no storage: New was not called in this test")
		}
		return st
	}
	sinktest.RunRowSink(t, sinktest.RowHarness{
		New: func(t *testing.T) sinks.RowSink {
			st := &store{table: fmt.Sprintf("rows_%d", tableSeq.Add(1)), shapes: &shapes{m: map[string][]string{}}}
			mu.Lock()
			stores[t] = st
			mu.Unlock()
			return open(t, st)
		},
		Reopen: func(t *testing.T) sinks.RowSink { return open(t, get(t)) },
		Read: func(t *testing.T) []record.Row {
			st := get(t)
			return readRows(t, reader(t), st.table, cols, st.shapes)
		},
		Dedupes: true,
		Break:   func(t *testing.T) { s.Stop(t) },
		Heal:    func(t *testing.T) { s.Start(t) },
	})
}

func TestConformanceDeadLetters(t *testing.T) {
	s := server(t)
	dsn := s.CreateDatabase(t)
	var conn *pgx.Conn
	reader := func(t *testing.T) *pgx.Conn {
		if conn == nil || conn.IsClosed() || conn.Ping(context.Background()) != nil {
			conn = connect(t, dsn)
		}
		return conn
	}
	var mu sync.Mutex
	tables := map[*testing.T]string{}
	open := func(t *testing.T, table string) sinks.DeadLetterSink {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		d, err := NewDeadLetterSink(ctx, Config{DSN: dsn, Table: table, CreateTable: true}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	get := func(t *testing.T) string {
		mu.Lock()
		defer mu.Unlock()
		return tables[t]
	}
	sinktest.RunDeadLetterSink(t, sinktest.DeadLetterHarness{
		New: func(t *testing.T) sinks.DeadLetterSink {
			table := fmt.Sprintf("dead_letters_%d", tableSeq.Add(1))
			mu.Lock()
			tables[t] = table
			mu.Unlock()
			return open(t, table)
		},
		Reopen:  func(t *testing.T) sinks.DeadLetterSink { return open(t, get(t)) },
		Read:    func(t *testing.T) []record.DeadLetter { return readLetters(t, reader(t), get(t)) },
		Dedupes: true,
		Break:   func(t *testing.T) { s.Stop(t) },
		Heal:    func(t *testing.T) { s.Start(t) },
	})
}
