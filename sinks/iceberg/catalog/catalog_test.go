package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/goleak"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/pgtest"
)

// One throwaway server for the package's tests, a database each; the outage
// test starts its own server, since it stops it.
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
	// A pool goroutine left after Close would be paid at every reopen.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// database returns the DSN of a fresh, empty database.
func database(t *testing.T) string {
	t.Helper()
	if pgtest.BinDir() == "" {
		pgtest.Start(t) // skips, or fails under CI
	}
	srvOnce.Do(func() { srv, srvErr = pgtest.New(context.Background()) })
	if srvErr != nil {
		t.Fatal(srvErr)
	}
	return srv.CreateDatabase(t)
}

func open(t *testing.T, cfg SQLConfig) *SQL {
	t.Helper()
	c, err := OpenSQL(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// exec runs SQL as another engine (or an operator) would.
func exec(t *testing.T, dsn string, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// row reads a table's row the way Java's JdbcCatalog does (SELECT * by key).
func row(t *testing.T, dsn, catalog, ns, table string) (loc, prev, typ *string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(t.Context(), `SELECT metadata_location, previous_metadata_location, iceberg_type FROM iceberg_tables
WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3`, catalog, ns, table).Scan(&loc, &prev, &typ)
	if err != nil {
		t.Fatal(err)
	}
	return loc, prev, typ
}

func deref(p *string) string {
	if p == nil {
		return "<NULL>"
	}
	return *p
}

var ns = []string{"lake", "events"}

// newTable creates table in ns (and ns) at its first metadata location.
func newTable(t *testing.T, c *SQL, table, loc string) {
	t.Helper()
	if err := c.CreateNamespace(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(t.Context(), ns, table, loc); err != nil {
		t.Fatal(err)
	}
}

func TestCreateLoadSwap(t *testing.T) {
	dsn := database(t)
	c := open(t, SQLConfig{DSN: dsn, Init: true})
	ctx := t.Context()
	if err := c.CreateNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	const v1, v2, v3 = "s3://b/t/metadata/00000-a.metadata.json", "s3://b/t/metadata/00001-b.metadata.json", "s3://b/t/metadata/00002-c.metadata.json"
	if err := c.Create(ctx, ns, "clicks", v1); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Load(ctx, ns, "clicks"); err != nil || got != v1 {
		t.Fatalf("Load after Create = %q, %v; want %q", got, err, v1)
	}
	if err := c.Swap(ctx, ns, "clicks", v1, v2); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Load(ctx, ns, "clicks"); err != nil || got != v2 {
		t.Fatalf("Load after Swap = %q, %v; want %q", got, err, v2)
	}
	// What Spark or pyiceberg read: the dot-joined namespace, the previous
	// location, the type.
	loc, prev, typ := row(t, dsn, DefaultName, "lake.events", "clicks")
	if deref(loc) != v2 || deref(prev) != v1 || deref(typ) != "TABLE" {
		t.Fatalf("row = (%s, %s, %s), want (%s, %s, TABLE)", deref(loc), deref(prev), deref(typ), v2, v1)
	}

	// A writer that read v1 and lost the race must not overwrite v2.
	err := c.Swap(ctx, ns, "clicks", v1, v3)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("stale Swap = %v, want ErrConflict", err)
	}
	if IsTransient(err) {
		t.Errorf("a conflict is an answer, not an outage: IsTransient(%v) = true", err)
	}
	if !strings.Contains(err.Error(), v2) || !strings.Contains(err.Error(), "lake.events.clicks") {
		t.Errorf("conflict error %q should name the table and its current location", err)
	}
	if got, _ := c.Load(ctx, ns, "clicks"); got != v2 {
		t.Fatalf("after a refused Swap the table is at %q, want %q", got, v2)
	}
}

func TestAnswers(t *testing.T) {
	dsn := database(t)
	c := open(t, SQLConfig{DSN: dsn, Init: true})
	ctx := t.Context()
	newTable(t, c, "t", "s3://b/v1.json")
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"create an existing table", func() error { return c.Create(ctx, ns, "t", "s3://b/other.json") }, ErrTableExists},
		{"create in a missing namespace", func() error { return c.Create(ctx, []string{"nope"}, "t", "s3://b/v1.json") }, ErrNoSuchNamespace},
		{"load a missing table", func() error { _, err := c.Load(ctx, ns, "missing"); return err }, ErrNoSuchTable},
		{"load from a missing namespace", func() error { _, err := c.Load(ctx, []string{"nope"}, "t"); return err }, ErrNoSuchTable},
		{"swap a missing table", func() error { return c.Swap(ctx, ns, "missing", "s3://b/v1.json", "s3://b/v2.json") }, ErrNoSuchTable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if IsTransient(err) {
				t.Errorf("IsTransient(%v) = true", err)
			}
			if !strings.Contains(err.Error(), `iceberg catalog "default"`) {
				t.Errorf("error %q does not name the catalog", err)
			}
		})
	}
	if got, _ := c.Load(ctx, ns, "t"); got != "s3://b/v1.json" {
		t.Fatalf("a refused Create changed the table: now at %q", got)
	}
}

// A Swap whose reply was lost is retried by the sink with the same locations:
// the retry must report success, not a conflict with itself.
func TestSwapRetriedAfterItApplied(t *testing.T) {
	c := open(t, SQLConfig{DSN: database(t), Init: true})
	ctx := t.Context()
	newTable(t, c, "t", "s3://b/v1.json")
	if err := c.Swap(ctx, ns, "t", "s3://b/v1.json", "s3://b/v2.json"); err != nil {
		t.Fatal(err)
	}
	if err := c.Swap(ctx, ns, "t", "s3://b/v1.json", "s3://b/v2.json"); err != nil {
		t.Fatalf("the same Swap again = %v, want nil (it is already applied)", err)
	}
	if err := c.Swap(ctx, ns, "t", "s3://b/v1.json", "s3://b/v3.json"); !errors.Is(err, ErrConflict) {
		t.Fatalf("another Swap from v1 = %v, want ErrConflict", err)
	}
}

func TestConcurrentSwapsOneWins(t *testing.T) {
	dsn := database(t)
	const writers, rounds = 6, 10
	cats := make([]*SQL, writers) // one pool each, as separate workers have
	for i := range cats {
		cats[i] = open(t, SQLConfig{DSN: dsn, Init: true})
	}
	ctx := t.Context()
	if err := cats[0].CreateNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	cur := "s3://b/r0.json"
	if err := cats[0].Create(ctx, ns, "t", cur); err != nil {
		t.Fatal(err)
	}
	for r := 1; r <= rounds; r++ {
		errs := make([]error, writers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, c := range cats {
			wg.Go(func() {
				<-start
				errs[i] = c.Swap(ctx, ns, "t", cur, fmt.Sprintf("s3://b/r%d-w%d.json", r, i))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both committed from %s", r, winner, i, cur)
			case err == nil:
				winner = i
			case !errors.Is(err, ErrConflict):
				t.Fatalf("round %d: writer %d: %v, want nil or ErrConflict", r, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer committed: %v", r, errs)
		}
		want := fmt.Sprintf("s3://b/r%d-w%d.json", r, winner)
		got, err := cats[0].Load(ctx, ns, "t")
		if err != nil || got != want {
			t.Fatalf("round %d: table at %q, %v; want the winner's %q", r, got, err, want)
		}
		cur = want
	}
}

func TestNamespaces(t *testing.T) {
	dsn := database(t)
	c := open(t, SQLConfig{DSN: dsn, Init: true})
	ctx := t.Context()
	for range 2 {
		if err := c.CreateNamespace(ctx, ns); err != nil {
			t.Fatalf("CreateNamespace (idempotent): %v", err)
		}
	}
	// pyiceberg's marker row, once.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	var v string
	if err := conn.QueryRow(ctx, `SELECT count(*), min(property_value) FROM iceberg_namespace_properties
WHERE catalog_name = 'default' AND namespace = 'lake.events' AND property_key = 'exists'`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != 1 || v != "true" {
		t.Fatalf("namespace marker rows: %d with value %q, want one exists=true", n, v)
	}

	// A namespace another engine made exist by a table only (Java's
	// JdbcCatalog creates no property row without properties).
	exec(t, dsn, `INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location) VALUES ('default', 'java_ns', 't', 's3://b/m.json')`)

	tests := []struct {
		name string
		ns   []string
		want bool
	}{
		{"created", ns, true},
		{"with a table only", []string{"java_ns"}, true},
		{"a prefix of one is not one", []string{"lake"}, false},
		{"unknown", []string{"other"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.NamespaceExists(ctx, tt.ns)
			if err != nil || got != tt.want {
				t.Fatalf("NamespaceExists(%q) = %v, %v; want %v", tt.ns, got, err, tt.want)
			}
		})
	}

	// The same name in another catalog is another namespace.
	other := open(t, SQLConfig{DSN: dsn, Name: "other"})
	if ok, err := other.NamespaceExists(ctx, ns); err != nil || ok {
		t.Fatalf("catalog \"other\" sees %q: %v, %v", ns, ok, err)
	}
}

func TestInvalidNames(t *testing.T) {
	c := open(t, SQLConfig{DSN: database(t), Init: true})
	ctx := t.Context()
	long := strings.Repeat("x", 256)
	tests := []struct {
		name        string
		ns          []string
		table       string
		errContains string
	}{
		{"no namespace", nil, "t", "empty namespace"},
		{"empty level", []string{"a", ""}, "t", "empty level"},
		{"dotted level", []string{"a.b"}, "t", `"a.b" holds a '.'`},
		{"namespace too long", []string{long}, "t", "at most 255"},
		{"empty table", ns, "", "empty table name"},
		{"table too long", ns, long, "at most 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := []error{c.Create(ctx, tt.ns, tt.table, "s3://b/m.json")}
			_, err := c.Load(ctx, tt.ns, tt.table)
			errs = append(errs, err, c.Swap(ctx, tt.ns, tt.table, "s3://b/a.json", "s3://b/b.json"))
			if tt.table != "" && len(tt.table) < 256 {
				_, err := c.NamespaceExists(ctx, tt.ns)
				errs = append(errs, err, c.CreateNamespace(ctx, tt.ns))
			}
			for i, err := range errs {
				if err == nil || !strings.Contains(err.Error(), tt.errContains) {
					t.Errorf("call %d: %v, want an error containing %q", i, err, tt.errContains)
				}
			}
		})
	}
}

func TestInit(t *testing.T) {
	t.Run("missing tables without init", func(t *testing.T) {
		dsn := database(t)
		_, err := OpenSQL(t.Context(), SQLConfig{DSN: dsn})
		if !errors.Is(err, ErrNoCatalogTables) {
			t.Fatalf("OpenSQL = %v, want ErrNoCatalogTables", err)
		}
		for _, want := range []string{"iceberg_tables", "iceberg_namespace_properties", "init", "CREATE TABLE IF NOT EXISTS"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		// The DDL it prints is what an operator runs; then it opens.
		exec(t, dsn, DDL())
		open(t, SQLConfig{DSN: dsn})
	})
	t.Run("twice, and the tables are kept", func(t *testing.T) {
		dsn := database(t)
		c := open(t, SQLConfig{DSN: dsn, Init: true})
		if err := c.CreateNamespace(t.Context(), ns); err != nil {
			t.Fatal(err)
		}
		c2 := open(t, SQLConfig{DSN: dsn, Init: true})
		if ok, err := c2.NamespaceExists(t.Context(), ns); err != nil || !ok {
			t.Fatalf("after a second Init the namespace is gone: %v, %v", ok, err)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		dsn := database(t)
		const n = 4
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				c, err := OpenSQL(t.Context(), SQLConfig{DSN: dsn, Init: true})
				if err == nil {
					c.Close()
				}
				errs[i] = err
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a table of another shape", func(t *testing.T) {
		dsn := database(t)
		exec(t, dsn, `CREATE TABLE iceberg_tables (id int)`)
		_, err := OpenSQL(t.Context(), SQLConfig{DSN: dsn, Init: true})
		if err == nil || !strings.Contains(err.Error(), "iceberg_tables.metadata_location") {
			t.Fatalf("OpenSQL over a foreign iceberg_tables = %v, want the missing columns named", err)
		}
	})
}

// Other engines' rows: tables created by an older JdbcCatalog or pyiceberg
// have no iceberg_type column (or NULL in it), and views share the table.
func TestOtherEnginesRows(t *testing.T) {
	t.Run("V0 schema without iceberg_type", func(t *testing.T) {
		dsn := database(t)
		// The V0 tables as Java's JdbcUtil and pyiceberg create them.
		exec(t, dsn, `CREATE TABLE iceberg_tables (catalog_name VARCHAR(255) NOT NULL, table_namespace VARCHAR(255) NOT NULL,
  table_name VARCHAR(255) NOT NULL, metadata_location VARCHAR(1000), previous_metadata_location VARCHAR(1000),
  PRIMARY KEY (catalog_name, table_namespace, table_name));
CREATE TABLE iceberg_namespace_properties (catalog_name VARCHAR(255) NOT NULL, namespace VARCHAR(255) NOT NULL,
  property_key VARCHAR(255) NOT NULL, property_value VARCHAR(1000) NOT NULL, PRIMARY KEY (catalog_name, namespace, property_key))`)
		c := open(t, SQLConfig{DSN: dsn, Name: "spark", Init: true})
		ctx := t.Context()
		newTable(t, c, "t", "s3://b/v1.json")
		if err := c.Swap(ctx, ns, "t", "s3://b/v1.json", "s3://b/v2.json"); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Load(ctx, ns, "t"); err != nil || got != "s3://b/v2.json" {
			t.Fatalf("Load = %q, %v", got, err)
		}
	})
	t.Run("V1 rows with NULL type, and views", func(t *testing.T) {
		dsn := database(t)
		c := open(t, SQLConfig{DSN: dsn, Init: true})
		exec(t, dsn, `INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, iceberg_type) VALUES
  ('default', 'lake.events', 'legacy', 's3://b/legacy.json', NULL),
  ('default', 'lake.events', 'a_view', 's3://b/view.json', 'VIEW')`)
		ctx := t.Context()
		if got, err := c.Load(ctx, ns, "legacy"); err != nil || got != "s3://b/legacy.json" {
			t.Fatalf("Load of a NULL-typed table = %q, %v", got, err)
		}
		if err := c.Swap(ctx, ns, "legacy", "s3://b/legacy.json", "s3://b/legacy2.json"); err != nil {
			t.Fatalf("Swap of a NULL-typed table: %v", err)
		}
		if _, err := c.Load(ctx, ns, "a_view"); !errors.Is(err, ErrNoSuchTable) {
			t.Fatalf("Load of a view = %v, want ErrNoSuchTable", err)
		}
		if err := c.Swap(ctx, ns, "a_view", "s3://b/view.json", "s3://b/v2.json"); !errors.Is(err, ErrNoSuchTable) {
			t.Fatalf("Swap of a view = %v, want ErrNoSuchTable", err)
		}
		if err := c.Create(ctx, ns, "a_view", "s3://b/v2.json"); !errors.Is(err, ErrTableExists) {
			t.Fatalf("Create over a view = %v, want ErrTableExists", err)
		}
		if loc, _, _ := row(t, dsn, "default", "lake.events", "a_view"); deref(loc) != "s3://b/view.json" {
			t.Fatalf("the view's row changed: %s", deref(loc))
		}
	})
}

func TestOutageIsTransient(t *testing.T) {
	s := pgtest.Start(t)
	dsn := s.CreateDatabase(t)
	c := open(t, SQLConfig{DSN: dsn, Init: true})
	ctx := t.Context()
	newTable(t, c, "t", "s3://b/v1.json")

	s.Stop(t)
	calls := []struct {
		name string
		do   func(context.Context) error
	}{
		{"Load", func(ctx context.Context) error { _, err := c.Load(ctx, ns, "t"); return err }},
		{"Swap", func(ctx context.Context) error { return c.Swap(ctx, ns, "t", "s3://b/v1.json", "s3://b/v2.json") }},
		{"Create", func(ctx context.Context) error { return c.Create(ctx, ns, "u", "s3://b/u.json") }},
		{"CreateNamespace", func(ctx context.Context) error { return c.CreateNamespace(ctx, []string{"x"}) }},
		{"NamespaceExists", func(ctx context.Context) error { _, err := c.NamespaceExists(ctx, ns); return err }},
		{"Ping", c.Ping},
		{"OpenSQL", func(ctx context.Context) error {
			c, err := OpenSQL(ctx, SQLConfig{DSN: dsn})
			if err == nil {
				c.Close()
			}
			return err
		}},
	}
	for _, call := range calls {
		err := call.do(ctx)
		if err == nil {
			t.Fatalf("%s with the server stopped succeeded", call.name)
		}
		if !IsTransient(err) {
			t.Errorf("%s with the server stopped: IsTransient(%v) = false", call.name, err)
		}
		for _, answer := range []error{ErrConflict, ErrNoSuchTable, ErrTableExists, ErrNoSuchNamespace} {
			if errors.Is(err, answer) {
				t.Errorf("%s with the server stopped = %v, an answer, not an outage", call.name, err)
			}
		}
	}

	// The same catalog works again once the server is back; nothing committed.
	s.Start(t)
	got, err := c.Load(ctx, ns, "t")
	if err != nil || got != "s3://b/v1.json" {
		t.Fatalf("Load after the restart = %q, %v; want the table at v1", got, err)
	}
	if err := c.Swap(ctx, ns, "t", "s3://b/v1.json", "s3://b/v2.json"); err != nil {
		t.Fatalf("Swap after the restart: %v", err)
	}
}

func TestPasswordNeverInErrors(t *testing.T) {
	const pw = "s3cr3t-Pa55"
	tests := []struct {
		name string
		dsn  string
	}{
		{"nothing listening", "postgres://app:" + pw + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"},
		{"key=value", "host=127.0.0.1 port=1 user=app password=" + pw + " dbname=db sslmode=disable connect_timeout=2"},
		{"unparsable URL", "postgres://app:" + pw + "/x@127.0.0.1:bad/db"},
		{"unparsable key=value", "host=127.0.0.1 password='" + pw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenSQL(t.Context(), SQLConfig{DSN: tt.dsn})
			if err == nil {
				t.Fatal("OpenSQL succeeded")
			}
			if strings.Contains(err.Error(), pw) {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name        string
		cfg         SQLConfig
		errContains []string
	}{
		{"no DSN", SQLConfig{}, []string{"dsn: empty"}},
		{"every problem at once", SQLConfig{Name: strings.Repeat("n", 256)}, []string{"dsn: empty", "at most 255"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenSQL(t.Context(), tt.cfg)
			for _, want := range tt.errContains {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("OpenSQL = %v, want an error containing %q", err, want)
				}
			}
		})
	}
}

func TestIsTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"conflict", fmt.Errorf("x: %w", ErrConflict), false},
		{"no such table", ErrNoSuchTable, false},
		{"cancelled", fmt.Errorf("x: %w", context.Canceled), false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, true},
		{"undefined table", &pgconn.PgError{Code: "42P01"}, false},
		{"permission denied", &pgconn.PgError{Code: "42501"}, false},
		{"value too long", &pgconn.PgError{Code: "22001"}, false},
		{"other", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsTransient(tt.err); got != tt.want {
				t.Fatalf("IsTransient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// A context cut short mid-outage ends the call promptly (the sink's retry
// loop bounds each attempt).
func TestContextBoundsACall(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	// 192.0.2.0/24 (TEST-NET-1) is never routed: the connect hangs until the
	// context ends.
	_, err := OpenSQL(ctx, SQLConfig{DSN: "postgres://u@192.0.2.1:5432/db?sslmode=disable"})
	if err == nil || !IsTransient(err) {
		t.Fatalf("OpenSQL to an unroutable address = %v, want a transient error", err)
	}
}
