// Package pgtest runs a throwaway PostgreSQL server for tests: a fresh cluster
// (initdb) in a temporary directory, listening on 127.0.0.1 on a free port,
// with its unix socket in the same directory. It uses the server binaries
// installed on the machine (see BinDir); nothing is downloaded.
//
// The server is durable like a production one (fsync and synchronous_commit
// on), so a test that stops or kills it sees what a real outage leaves behind.
// Stop and Start end and resume an outage on the same port and data directory;
// Kill simulates a crash (recovery runs at the next Start).
//
// initdb and postgres refuse to run as root. When the test process is root
// (CI), they run as the unprivileged "postgres" user if it exists, else
// "nobody", and the temporary directory is handed to that user. The server
// gets a parent-death signal, so it does not outlive the test process even if
// that is killed.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/ports"
)

// BinDirEnv names the environment variable that overrides BinDir.
const BinDirEnv = "KINESIS_INGEST_PG_BIN"

const (
	startTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
	logTail      = 4 << 10
	// superuser is the cluster's bootstrap user; auth is trust on 127.0.0.1
	// and the socket.
	superuser = "postgres"
)

// Server is a running (or stopped) throwaway PostgreSQL cluster.
type Server struct {
	// DSN connects to the "postgres" database as the superuser over TCP,
	// e.g. postgres://postgres@127.0.0.1:54321/postgres?sslmode=disable.
	DSN string
	// Host and Port are where the server listens (127.0.0.1, a free port).
	Host string
	Port int
	// Dir holds the data directory (Dir/data), the socket and the log
	// (Dir/postgres.log). It is removed by Close.
	Dir string

	bin  string
	cred *syscall.Credential
	log  *os.File

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	closed bool
	dbs    atomic.Int64
	res    *ports.Reservation
}

// BinDir returns the directory holding initdb and postgres:
// $KINESIS_INGEST_PG_BIN if set, else the newest /usr/lib/postgresql/*/bin
// (Debian, Ubuntu), else the directory of initdb on PATH; "" if none.
func BinDir() string {
	if d := os.Getenv(BinDirEnv); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return ""
		}
		return d
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

// SkipEnv, set to 1, makes Start skip its test when no PostgreSQL server
// binaries are found, instead of failing it.
const SkipEnv = "KINESIS_INGEST_PG_SKIP"

// Start starts a fresh server for the test and stops and removes it when the
// test ends. Without PostgreSQL binaries it fails the test (a suite that
// silently skipped its PostgreSQL tests would pass without proving anything
// about them), unless SkipEnv=1 asks, explicitly, for a skip.
func Start(t testing.TB) *Server {
	t.Helper()
	if BinDir() == "" {
		msg := "pgtest: no PostgreSQL server binaries (initdb, postgres): install postgresql (make deps), set " + BinDirEnv + " to their directory, or set " + SkipEnv + "=1 to skip the PostgreSQL tests"
		if os.Getenv(SkipEnv) == "1" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	s, err := New(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgtest: server log (tail):\n%s", s.LogTail())
		}
		if err := s.Close(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s
}

// New initialises a cluster in a new temporary directory and starts it. The
// caller must Close it.
func New(ctx context.Context) (_ *Server, err error) {
	bin := BinDir()
	if bin == "" {
		return nil, errors.New("pgtest: no PostgreSQL server binaries (initdb, postgres): install postgresql or set " + BinDirEnv)
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{Host: "127.0.0.1", Dir: dir, bin: bin}
	defer func() {
		if err != nil {
			if s.log != nil {
				err = fmt.Errorf("%w\nserver log (tail):\n%s", err, s.LogTail())
			}
			_ = s.Close()
		}
	}()
	if os.Geteuid() == 0 {
		cred, err := unprivileged()
		if err != nil {
			return nil, err
		}
		s.cred = cred
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("pgtest: hand %s to uid %d: %w", dir, cred.Uid, err)
		}
	}
	s.log, err = os.OpenFile(filepath.Join(dir, "postgres.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}

	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", s.dataDir(), "-U", superuser, "--auth=trust", "--encoding=UTF8", "--no-locale",
		"--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL}
	initdb.Dir = dir
	var out bytes.Buffer
	initdb.Stdout, initdb.Stderr = &out, &out
	if err := initdb.Run(); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out.String())
	}

	// The port is reserved (internal/testenv/ports) for the server's life,
	// restarts included; something outside the tests may still hold it:
	// try a few.
	for attempt := 1; ; attempt++ {
		if s.res != nil {
			s.res.Release()
		}
		res, err := ports.Reserve(1)
		if err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		port := res.Ports[0]
		s.res, s.Port = res, port
		s.DSN = fmt.Sprintf("postgres://%s@%s/postgres?sslmode=disable", superuser, net.JoinHostPort(s.Host, strconv.Itoa(port)))
		err = s.start(ctx)
		if err == nil {
			return s, nil
		}
		if attempt >= 3 || !strings.Contains(s.LogTail(), "could not bind") {
			return nil, err
		}
	}
}

// unprivileged returns the credentials of the user the server runs as when
// the test process is root.
func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, errors.New(`pgtest: running as root, and initdb refuses root: need an unprivileged "postgres" or "nobody" user to run the server as`)
}

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }

// Start starts the server again after Stop or Kill, on the same port and
// data directory, and waits until it accepts connections. It fails the test
// (via t) if it cannot.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.start(ctx); err != nil {
		t.Fatal(err)
	}
}

// Stop shuts the server down the way `pg_ctl stop -m fast` does (SIGINT:
// sessions are disconnected, in-progress transactions roll back, a
// checkpoint is written) and waits for it to exit.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
}

// Kill kills the server with SIGKILL, as a crash or a power cut of the
// database host would (without losing what the OS has already written);
// the next Start runs crash recovery.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	if err := s.stop(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// Running reports whether the server process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Close stops the server if it runs and removes its directory.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.stop(syscall.SIGINT)
	if s.log != nil {
		s.log.Close()
	}
	if s.res != nil {
		s.res.Release()
	}
	if rerr := os.RemoveAll(s.Dir); rerr != nil && err == nil {
		err = fmt.Errorf("pgtest: remove %s: %w", s.Dir, rerr)
	}
	return err
}

// CreateDatabase creates a new, empty database with a unique name and
// returns a DSN for it. Tests sharing a server use one each.
func (s *Server) CreateDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test_%d", s.dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	return s.DatabaseDSN(name)
}

// DatabaseDSN returns the DSN of database name on this server.
func (s *Server) DatabaseDSN(name string) string {
	u := url.URL{Scheme: "postgres", User: url.User(superuser), Host: net.JoinHostPort(s.Host, strconv.Itoa(s.Port)),
		Path: "/" + name, RawQuery: "sslmode=disable"}
	return u.String()
}

// LogTail returns the end of the server's log.
func (s *Server) LogTail() string {
	b, err := os.ReadFile(filepath.Join(s.Dir, "postgres.log"))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > logTail {
		b = b[len(b)-logTail:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return errors.New("pgtest: Start: the server is already running")
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"),
		"-D", s.dataDir(),
		"-p", strconv.Itoa(s.Port),
		"-c", "listen_addresses="+s.Host,
		"-c", "unix_socket_directories="+s.Dir,
		"-c", "fsync=on",
		"-c", "synchronous_commit=on",
		"-c", "full_page_writes=on",
		"-c", "shared_buffers=32MB",
		"-c", "max_connections=60",
		"-c", "max_wal_size=256MB",
		"-c", "logging_collector=off",
		"-c", "log_min_messages=warning",
		"-c", "log_connections=off",
	)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// Own process group, so a ^C in a terminal does not reach it before the
	// test's cleanup; SIGKILL when the test process dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		err := ping(ctx, s.DSN)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("pgtest: postgres exited during startup (%v)\n%s", cmd.ProcessState, s.LogTail())
		case <-ctx.Done():
			_ = s.stop(syscall.SIGKILL)
			return fmt.Errorf("pgtest: postgres did not accept connections on port %d: %v\n%s", s.Port, err, s.LogTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func ping(ctx context.Context, dsn string) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, dsn)
	if err != nil {
		return err
	}
	return conn.Close(cctx)
}

func (s *Server) stop(sig syscall.Signal) error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	var children []int
	if sig == syscall.SIGKILL {
		// The backends too (each is in its own session): they would otherwise
		// linger until they notice the postmaster is gone, holding the shared
		// memory, and the next start would refuse to run.
		children = childrenOf(cmd.Process.Pid)
		_ = cmd.Process.Kill()
		for _, pid := range children {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	} else {
		_ = cmd.Process.Signal(sig)
	}
	select {
	case <-exited:
		waitGone(children)
		return nil
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("pgtest: postgres did not stop within %s of %v; killed it", stopTimeout, sig)
	}
}

// childrenOf lists the processes whose parent is pid (from /proc).
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _ := procStat(child); ppid == pid {
			out = append(out, child)
		}
	}
	return out
}

// procStat returns the parent pid and state letter of pid, or 0, 0.
func procStat(pid int) (ppid int, state byte) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, 0
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0][0]
}

// waitGone waits (up to 10s) until the processes have exited (zombies count
// as exited: they hold no memory any more).
func waitGone(pids []int) {
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			if _, state := procStat(pid); state == 0 || state == 'Z' || state == 'X' {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
