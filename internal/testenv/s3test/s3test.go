// Package s3test runs a real S3 server for tests: Versity Gateway
// (versitygw) in posix mode over a temporary directory, listening on
// 127.0.0.1 on a reserved port (internal/testenv/ports). A bucket is a
// directory of Dir and an object a file under it, so a test can also read
// what was written straight from disk (Server.BucketDir).
//
// versitygw honours conditional writes (`If-None-Match: *` answers 412 when
// the key exists), which the lake's effectively-once design depends on; npm
// s3rver does not, so it is no substitute.
//
// The binary is built once by `make test-deps` (go install ...versitygw@v1.8.0)
// into a cache outside the tree (see Binary); nothing is built here, since the
// build takes minutes.
//
// Stop and Start end and resume an outage on the same port and directory, as
// an S3 endpoint that goes away and comes back with its data.
package s3test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/ports"
)

// BinaryEnv names the environment variable that overrides Binary.
const BinaryEnv = "KINESIS_INGEST_VERSITYGW"

// The credentials the server accepts unless StartWith names others; tests
// hand them to the SDK through the usual AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY.
const (
	AccessKey = "s3test-access"
	SecretKey = "s3test-secret-key"
	Region    = "us-east-1"
)

const (
	startTimeout = 30 * time.Second
	stopTimeout  = 15 * time.Second
	logTail      = 4 << 10
)

// Binary returns the versitygw executable: $KINESIS_INGEST_VERSITYGW if set,
// else the one `make test-deps` installs ($HOME/.cache/kinesis-ingest/bin), else
// versitygw on PATH; "" if none.
func Binary() string {
	if p := os.Getenv(BinaryEnv); p != "" {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "kinesis-ingest", "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	return ""
}

// Server is a running (or stopped) versitygw.
type Server struct {
	// Endpoint is the server's URL, http://127.0.0.1:PORT; clients need
	// path-style addressing (no virtual-hosted buckets on a loopback IP).
	Endpoint string
	Port     int
	// Dir holds the buckets (Dir/data/<bucket>) and the server's log.
	Dir string
	// Access and Secret are the credentials it accepts.
	Access, Secret string

	bin     string
	buckets atomic.Int64

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	closed bool
	res    *ports.Reservation
	log    *os.File
}

// Start starts a server over a new temporary directory for the test and
// stops it and removes the directory when the test ends. Without the
// binary it fails the test: run `make test-deps`.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, AccessKey, SecretKey)
}

// StartWith is Start with the credentials the server accepts: a worker
// under test calls Kinesis, DynamoDB and S3 with one set of credentials.
func StartWith(t testing.TB, access, secret string) *Server {
	t.Helper()
	s, err := NewWith(t.Context(), access, secret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("s3test: server log (tail):\n%s", s.LogTail())
		}
		if err := s.Close(); err != nil {
			t.Errorf("s3test: %v", err)
		}
	})
	return s
}

// New starts a server over a new temporary directory. The caller must
// Close it.
func New(ctx context.Context) (*Server, error) { return NewWith(ctx, AccessKey, SecretKey) }

// NewWith is New with the credentials the server accepts.
func NewWith(ctx context.Context, access, secret string) (_ *Server, err error) {
	bin := Binary()
	if bin == "" {
		return nil, errors.New("s3test: no versitygw binary: run `make deps` (it builds github.com/versity/versitygw/cmd/versitygw@v1.8.0 into $HOME/.cache/kinesis-ingest/bin), or set " + BinaryEnv)
	}
	dir, err := os.MkdirTemp("", "s3test-")
	if err != nil {
		return nil, fmt.Errorf("s3test: %w", err)
	}
	s := &Server{Dir: dir, Access: access, Secret: secret, bin: bin}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if err := os.Mkdir(s.dataDir(), 0o700); err != nil {
		return nil, fmt.Errorf("s3test: %w", err)
	}
	if s.log, err = os.OpenFile(filepath.Join(dir, "versitygw.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
		return nil, fmt.Errorf("s3test: %w", err)
	}
	for attempt := 1; ; attempt++ {
		if s.res != nil {
			s.res.Release()
		}
		if s.res, err = ports.Reserve(1); err != nil {
			return nil, fmt.Errorf("s3test: %w", err)
		}
		s.Port = s.res.Ports[0]
		s.Endpoint = "http://127.0.0.1:" + strconv.Itoa(s.Port)
		err = s.start(ctx)
		// Something outside the tests may hold the reserved port: try another.
		if err == nil || attempt >= 3 || !strings.Contains(s.LogTail(), "address already in use") {
			return s, err
		}
	}
}

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }

// BucketDir is the directory holding bucket's objects (an object's key is
// its path below it).
func (s *Server) BucketDir(bucket string) string { return filepath.Join(s.dataDir(), bucket) }

// CreateBucket creates a new, empty bucket with a unique name and returns
// the name. Tests sharing a server use one each.
func (s *Server) CreateBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test-%d", s.buckets.Add(1))
	if _, err := s.Client().CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", name, err)
	}
	return name
}

// Client returns an S3 client of this server, as the test's own reader.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.Access, s.Secret, ""),
	})
}

// Env returns the environment variables that point the AWS SDK at this
// server with its credentials: a worker process gets them appended to its
// environment, a test in this process sets them with t.Setenv.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint,
		"AWS_ACCESS_KEY_ID=" + s.Access,
		"AWS_SECRET_ACCESS_KEY=" + s.Secret,
		"AWS_REGION=" + Region,
	}
}

// Setenv sets Env for the test (t.Setenv: the test may not be parallel).
func (s *Server) Setenv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// Start starts the server again after Stop, on the same port and
// directory, and waits until it answers. It fails the test if it cannot.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.start(ctx); err != nil {
		t.Fatal(err)
	}
}

// Stop kills the server (SIGKILL: an endpoint that vanishes mid-request)
// and waits until it has exited; its port stays reserved for Start.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
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
	err := s.stop()
	if s.log != nil {
		_ = s.log.Close()
	}
	if s.res != nil {
		s.res.Release()
	}
	if rerr := os.RemoveAll(s.Dir); rerr != nil && err == nil {
		err = fmt.Errorf("s3test: remove %s: %w", s.Dir, rerr)
	}
	return err
}

// LogTail returns the end of the server's log.
func (s *Server) LogTail() string {
	b, err := os.ReadFile(filepath.Join(s.Dir, "versitygw.log"))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > logTail {
		b = b[len(b)-logTail:]
	}
	return string(b)
}

func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return errors.New("s3test: Start: the server is already running")
	}
	cmd := exec.Command(s.bin, "--access", s.Access, "--secret", s.Secret, "--region", Region,
		"--port", "127.0.0.1:"+strconv.Itoa(s.Port), "posix", s.dataDir())
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// Own process group (a ^C in a terminal does not reach it before the
	// cleanup); SIGKILL when the test process dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("s3test: start %s: %w", s.bin, err)
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
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		// Any HTTP answer (an anonymous request is refused) means it serves.
		resp, err := client.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("s3test: versitygw exited during startup (%v)\n%s", cmd.ProcessState, s.LogTail())
		case <-ctx.Done():
			_ = s.stop()
			return fmt.Errorf("s3test: versitygw did not answer on port %d: %v\n%s", s.Port, err, s.LogTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) stop() error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-exited:
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("s3test: versitygw (pid %d) did not exit within %v of SIGKILL", cmd.Process.Pid, stopTimeout)
	}
}
