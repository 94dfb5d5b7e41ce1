package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestStartStopStart(t *testing.T) {
	start := time.Now()
	s := Start(t)
	t.Logf("initdb + start: %v (port %d, dir %s)", time.Since(start), s.Port, s.Dir)
	ctx := context.Background()
	dsn := s.CreateDatabase(t)
	exec := func(sql string) error {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var fsync, sc string
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit')").Scan(&fsync, &sc); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	if fsync != "on" || sc != "on" {
		t.Errorf("fsync=%s synchronous_commit=%s, want on/on", fsync, sc)
	}

	t0 := time.Now()
	s.Stop(t)
	t.Logf("stop: %v", time.Since(t0))
	if err := exec("SELECT 1"); err == nil {
		t.Fatal("query succeeded while the server is stopped")
	}
	t0 = time.Now()
	s.Start(t)
	t.Logf("start again: %v", time.Since(t0))
	if err := exec("INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}

	s.Kill(t)
	t0 = time.Now()
	s.Start(t)
	t.Logf("start after kill (crash recovery): %v", time.Since(t0))
	c, err = pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("after crash recovery: %d rows, %v; want 2 committed rows", n, err)
	}
	_ = pgx.Identifier{}
}
