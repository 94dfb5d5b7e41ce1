package pgtest

import (
	"context"
	"os"
	"os/exec"
	"strings"
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

// Without server binaries a test that needs PostgreSQL fails (it does not
// skip), unless KINESIS_INGEST_PG_SKIP=1 asks for the skip. Run in a child
// process of this test binary, with the binary lookup pointed at an empty
// directory and PATH emptied.
func TestStartFailsWithoutBinaries(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		Start(t)
		return
	}
	for _, c := range []struct {
		skip     string
		wantCode bool // a non-zero exit
		want     string
	}{
		{"", true, "--- FAIL: TestStartFailsWithoutBinaries"},
		{"1", false, "--- SKIP: TestStartFailsWithoutBinaries"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStartFailsWithoutBinaries$", "-test.v")
		cmd.Env = append(os.Environ(), "PGTEST_CHILD=1", BinDirEnv+"="+t.TempDir(), "PATH="+t.TempDir(), SkipEnv+"="+c.skip, "CI=")
		out, err := cmd.CombinedOutput()
		if (err != nil) != c.wantCode || !strings.Contains(string(out), c.want) {
			t.Errorf("%s=%q: exit error %v, want non-zero %v and %q in:\n%s", SkipEnv, c.skip, err, c.wantCode, c.want, out)
		}
	}
}
