package validate

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/pgtest"
)

func postgresTestConfig(t *testing.T, dsn, extraDataset, deadLetter string) *config.Config {
	t.Helper()
	y := fmt.Sprintf(`
sources:
  - name: orders
    kinesis:
      stream_arn: arn:aws:kinesis:us-east-1:000000000000:stream/orders
      init_position: trim_horizon
datasets:
  - name: orders
    source: orders
    fields:
      - {name: id, type: int}
      - {name: ts, type: datetime}
    sink: warehouse
%s
sinks:
  - name: warehouse
    postgres: {dsn: %q, table: orders, create_table: true}
  - name: strict
    postgres: {dsn: %q, table: strict_orders}
dead_letter:
  %s
`, extraDataset, dsn, dsn, deadLetter)
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestPostgresChecks(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.CreateDatabase(t)
	// orders will be created (create_table), strict_orders exists but does
	// not fit, the dead-letter table will be created.
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), "CREATE TABLE strict_orders (id int)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	cfg := postgresTestConfig(t, dsn, `
  - name: strict
    source: orders
    fields:
      - {name: id, type: int}
      - {name: ts, type: datetime}
    sink: strict`, fmt.Sprintf("postgres: {dsn: %q, table: dead_letters}", dsn))
	checks := tableChecks(context.Background(), cfg)
	var lines []string
	for _, c := range checks {
		lines = append(lines, c.String())
	}
	t.Logf("\n%s", strings.Join(lines, "\n"))
	if len(checks) != 3 {
		t.Fatalf("%d checks, want 3 (two datasets, the dead letters)", len(checks))
	}
	if !checks[0].OK || !checks[2].OK {
		t.Errorf("orders (to be created) and the dead-letter table should pass")
	}
	if checks[1].OK || checks[1].Class != ClassNotWritable || !strings.Contains(checks[1].Err.Error(), `column "id" is integer, want bigint`) {
		t.Errorf("strict_orders: %s", checks[1])
	}

	// Unreachable server.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Sprintf("postgres://u:secret-pw@%s/db?sslmode=disable", l.Addr())
	l.Close()
	cfg = postgresTestConfig(t, closed, "", "file: {path: /tmp/dl}")
	checks = tableChecks(context.Background(), cfg)
	if len(checks) != 1 || checks[0].OK || checks[0].Class != ClassUnreachable {
		t.Fatalf("unreachable: %v", checks)
	}
	if strings.Contains(checks[0].String(), "secret-pw") {
		t.Errorf("the check shows the password: %s", checks[0])
	}
}

// tableChecks are the checks of the PostgreSQL tables among cfg's sink
// checks.
func tableChecks(ctx context.Context, cfg *config.Config) []Check {
	var out []Check
	for _, c := range sinkChecks(ctx, cfg) {
		if strings.Contains(c.Name, ": table ") {
			out = append(out, c)
		}
	}
	return out
}
