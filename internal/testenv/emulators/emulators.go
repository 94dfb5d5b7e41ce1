// Package emulators starts real local AWS emulators, as child processes, for
// tests and for the demo command:
//
//   - kinesis-mock (npm "kinesis-local", the Kinesis engine LocalStack uses).
//     One server serves several accounts: a request signed with a 12-digit
//     access key id lives in that account; any other key id falls back to
//     account 000000000000.
//   - dynalite (npm "dynalite"), an in-memory DynamoDB.
//
// Both are pinned in package.json / package-lock.json next to this file and
// installed into node_modules by EnsureInstalled (npm ci). They need Node.js
// 20 or newer (dynalite 4 declares engines.node >= 20) and npm.
//
// Both emulators keep all state in memory: stopping, killing or restarting a
// Server loses every stream, record and table.
//
// Children are started in their own process group and with a parent-death
// signal (Linux), so they do not outlive the Go process that started them,
// even when it is killed.
package emulators

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/ports"
)

// DirEnv overrides the directory holding package.json, package-lock.json and
// node_modules; see Dir.
const DirEnv = "KINESIS_INGEST_EMULATORS_DIR"

const modulePath = "github.com/kinesis-ingest/kinesis-ingest"

const (
	// startTimeout bounds how long Start*/Restart wait for the emulator to
	// answer its first API call (on top of any deadline in ctx).
	startTimeout = 60 * time.Second
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL; see Stop.
	stopGrace = 250 * time.Millisecond
	// minNodeMajor is the oldest Node.js major version supported (dynalite 4).
	minNodeMajor = 20
	// logTailBytes is how much of a log file errors and test failures show.
	logTailBytes = 4 << 10
	// transitionDuration is how long kinesis-mock streams stay in CREATING,
	// DELETING, UPDATING, ... and dynalite tables in CREATING, DELETING,
	// UPDATING. The defaults are 500ms; tests want them fast but still
	// asynchronous, like real AWS.
	transitionDuration = 10 * time.Millisecond
)

// Dir returns the emulators package directory: $KINESIS_INGEST_EMULATORS_DIR
// if set; else the directory of this source file (which works for tests from
// any working directory and for binaries run on the machine that built them);
// else, for binaries built elsewhere or with -trimpath, internal/testenv/emulators of
// the kinesis-ingest checkout containing the working directory or the
// executable. It returns "" if none of those has a package-lock.json.
func Dir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		candidates = append(candidates, filepath.Dir(file))
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, start := range starts {
		if root := findModuleRoot(start); root != "" {
			candidates = append(candidates, filepath.Join(root, "internal", "testenv", "emulators"))
		}
	}
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "package-lock.json")); err == nil {
			return c
		}
	}
	return ""
}

// findModuleRoot walks up from d to the directory whose go.mod declares this
// module, or returns "".
func findModuleRoot(d string) string {
	for {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == modulePath {
					return d
				}
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}

func dir() (string, error) {
	d := Dir()
	if d == "" {
		return "", fmt.Errorf("emulators: cannot find the emulators directory (internal/testenv/emulators with package-lock.json): run from inside the kinesis-ingest checkout or set %s to its internal/testenv/emulators directory", DirEnv)
	}
	if _, err := os.Stat(filepath.Join(d, "package-lock.json")); err != nil {
		return "", fmt.Errorf("emulators: %s has no package-lock.json (%w); run from inside the kinesis-ingest checkout or set %s to its internal/testenv/emulators directory", d, err, DirEnv)
	}
	return d, nil
}

// EnsureInstalled makes sure node_modules in the emulators directory matches
// package-lock.json, running `npm ci --no-audit --no-fund` if any locked
// package is missing or has another version. An inter-process file lock
// (in os.TempDir, keyed by the directory) keeps parallel test binaries from
// installing at the same time. It also checks that Node.js 20+ is on PATH.
//
// The check is cheap (it reads ~30 small package.json files), so StartKinesis
// and StartDynamo call it every time.
func EnsureInstalled(ctx context.Context) error {
	d, err := dir()
	if err != nil {
		return err
	}
	if err := checkNode(ctx); err != nil {
		return err
	}
	// Check under a shared lock so that a concurrent `npm ci` (exclusive
	// lock) in another process is never seen half-done.
	lockPath := filepath.Join(os.TempDir(), "kinesis-ingest-emulators-"+pathKey(d)+".lock")
	unlock, err := lockFile(ctx, lockPath, syscall.LOCK_SH)
	if err != nil {
		return fmt.Errorf("emulators: lock %s: %w", lockPath, err)
	}
	err = checkInstalled(d)
	unlock()
	if err == nil {
		return nil
	}

	unlock, err = lockFile(ctx, lockPath, syscall.LOCK_EX)
	if err != nil {
		return fmt.Errorf("emulators: lock %s for npm ci in %s: %w", lockPath, d, err)
	}
	defer unlock()

	// Another process may have installed while we waited for the lock.
	if checkInstalled(d) == nil {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("emulators: npm not found (%w): install Node.js %d+ (it ships npm), then run `npm ci` in %s", err, minNodeMajor, d)
	}
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = d
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("emulators: `npm ci` in %s failed (it needs the npm registry, or a warm npm cache): %w\n%s\nrun `npm ci` in %s by hand to retry",
			d, err, tail(out.Bytes(), logTailBytes), d)
	}
	if err := checkInstalled(d); err != nil {
		return fmt.Errorf("emulators: node_modules still incomplete after `npm ci` in %s: %w; remove %s and run `npm ci` there", d, err, filepath.Join(d, "node_modules"))
	}
	return nil
}

// checkInstalled reports why node_modules does not match package-lock.json,
// or nil if it does.
func checkInstalled(d string) error {
	raw, err := os.ReadFile(filepath.Join(d, "package-lock.json"))
	if err != nil {
		return err
	}
	var lock struct {
		Packages map[string]struct {
			Version  string `json:"version"`
			Optional bool   `json:"optional"`
			Link     bool   `json:"link"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(raw, &lock); err != nil {
		return fmt.Errorf("parse package-lock.json: %w", err)
	}
	for p, want := range lock.Packages {
		if p == "" || want.Link || !strings.HasPrefix(p, "node_modules/") {
			continue
		}
		pj, err := os.ReadFile(filepath.Join(d, filepath.FromSlash(p), "package.json"))
		if err != nil {
			if want.Optional && errors.Is(err, os.ErrNotExist) {
				continue // optional packages may be skipped on this platform
			}
			return fmt.Errorf("%s: %w", p, err)
		}
		var got struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal(pj, &got); err != nil {
			return fmt.Errorf("%s/package.json: %w", p, err)
		}
		if got.Version != want.Version {
			return fmt.Errorf("%s is %s, package-lock.json wants %s", p, got.Version, want.Version)
		}
	}
	for _, f := range []string{kinesisMain, kinesisCert, dynaliteMain} {
		if _, err := os.Stat(filepath.Join(d, filepath.FromSlash(f))); err != nil {
			return err
		}
	}
	return nil
}

const (
	kinesisPkg   = "node_modules/kinesis-local"
	kinesisMain  = kinesisPkg + "/main.js"
	kinesisCert  = kinesisPkg + "/server.json"
	dynaliteMain = "node_modules/dynalite/cli.js"
)

func checkNode(ctx context.Context) error {
	node, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("emulators: node not found (%w): install Node.js %d+ and put it on PATH", err, minNodeMajor)
	}
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return fmt.Errorf("emulators: `%s --version`: %w; install Node.js %d+", node, err, minNodeMajor)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _, _ := strings.Cut(v, ".")
	if n, err := strconv.Atoi(major); err != nil || n < minNodeMajor {
		return fmt.Errorf("emulators: %s is Node.js %s; install Node.js %d+", node, v, minNodeMajor)
	}
	return nil
}

// lockFile takes a flock (how: LOCK_SH or LOCK_EX) on path, polling so that
// ctx can cancel.
func lockFile(ctx context.Context, path string, how int) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another process's npm ci: %w", context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func pathKey(d string) string {
	if abs, err := filepath.Abs(d); err == nil {
		d = abs
	}
	// FNV-1a: short, stable, no crypto needed.
	h := uint64(14695981039346656037)
	for i := 0; i < len(d); i++ {
		h ^= uint64(d[i])
		h *= 1099511628211
	}
	return strconv.FormatUint(h, 36)
}

// Server is a running (or killed) emulator process. Stop, Kill and LogTail
// may be called from any goroutine.
type Server struct {
	// Name is "kinesis-mock" or "dynalite".
	Name string
	// Endpoint is the plain-HTTP endpoint, http://127.0.0.1:PORT. It stays the
	// same across Kill and Restart.
	Endpoint string
	// TLSEndpoint is kinesis-mock's HTTPS endpoint (self-signed certificate);
	// empty for dynalite.
	TLSEndpoint string
	// LogPath is the file the emulator's stdout and stderr go to (appended to
	// across restarts). StartKinesis and StartDynamo put it in a fresh temp
	// directory that Stop removes; Kinesis and Dynamo put it in t.TempDir.
	LogPath string

	ports []int
	// res holds ports locked for this server across its restarts.
	res    *ports.Reservation
	argv   []string
	env    []string
	dir    string
	probe  func(ctx context.Context, endpoint string) error
	logDir string
	// persistDir, when set, keeps the emulator's state on disk across Restart.
	persistDir string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
	werr error         // cmd.Wait result, valid after done is closed
}

// StartKinesis installs the emulators if needed (EnsureInstalled) and starts
// kinesis-mock on free loopback ports. It returns once the server answers a
// ListStreams call, or fails after about a minute (or when ctx is done). ctx
// bounds only the startup: the process runs until Stop or Kill, or until this
// process exits.
func StartKinesis(ctx context.Context) (*Server, error) {
	return start(ctx, "kinesis-mock", "")
}

// StartDynamo installs the emulators if needed (EnsureInstalled) and starts
// dynalite (in memory) on a free loopback port. It returns once the server
// answers a ListTables call, or fails after about a minute (or when ctx is
// done). ctx bounds only the startup.
func StartDynamo(ctx context.Context) (*Server, error) {
	return start(ctx, "dynalite", "")
}

// Options says where an emulator keeps its files. The zero value is an
// in-memory emulator logging to a temporary directory removed by Stop.
type Options struct {
	// LogDir holds the emulator's log; "" means a temporary directory of
	// its own. A directory given here is the caller's to remove.
	LogDir string
	// PersistDir, when set, keeps the emulator's state on disk across
	// Restart (kinesis-mock saves every 500ms and on a graceful Stop;
	// dynalite keeps its LevelDB there).
	PersistDir string
}

// Start starts the emulator called name ("kinesis-mock" or "dynalite") with
// opts, like StartKinesis and StartDynamo.
func Start(ctx context.Context, name string, opts Options) (*Server, error) {
	if opts.PersistDir != "" {
		return start(ctx, name, opts.LogDir, opts.PersistDir)
	}
	return start(ctx, name, opts.LogDir)
}

// LogTailBytes is how much of a log a failing test should show.
const LogTailBytes = logTailBytes

// StartTimeout is how long Start waits for an emulator to answer.
const StartTimeout = startTimeout

func start(ctx context.Context, name, logDir string, persist ...string) (*Server, error) {
	if err := EnsureInstalled(ctx); err != nil {
		return nil, err
	}
	d, err := dir()
	if err != nil {
		return nil, err
	}
	s := &Server{Name: name}
	if len(persist) > 0 {
		s.persistDir = persist[0]
	}
	if logDir == "" {
		if logDir, err = os.MkdirTemp("", name+"-"); err != nil {
			return nil, fmt.Errorf("emulators: %s log dir: %w", name, err)
		}
		s.logDir = logDir // ours to remove in Stop
	}
	s.LogPath = filepath.Join(logDir, name+".log")

	// A free port found by listening on :0 can be taken by someone else
	// before the child binds it, so retry with fresh ports a few times.
	for attempt := 0; ; attempt++ {
		if err = s.configure(name, d); err == nil {
			err = s.launch(ctx)
		}
		if err == nil {
			return s, nil
		}
		if attempt >= 4 || ctx.Err() != nil || !errors.Is(err, errPortTaken) {
			break
		}
	}
	s.cleanupLogs()
	if s.res != nil {
		s.res.Release()
	}
	return nil, err
}

func (s *Server) configure(name, d string) error {
	switch name {
	case "kinesis-mock":
		ps, err := s.reserve(2)
		if err != nil {
			return err
		}
		plain, tls := ps[0], ps[1]
		s.Endpoint = "http://127.0.0.1:" + strconv.Itoa(plain)
		s.TLSEndpoint = "https://127.0.0.1:" + strconv.Itoa(tls)
		// main.js resolves server.json (its TLS certificate) relative to the
		// working directory, so run it from its package folder.
		s.dir = filepath.Join(d, filepath.FromSlash(kinesisPkg))
		s.argv = []string{"main.js"}
		s.env = kinesisEnv(plain, tls)
		if s.persistDir != "" {
			s.env = append(s.env, "SHOULD_PERSIST_DATA=true", "LOAD_DATA_IF_EXISTS=true",
				"PERSIST_PATH="+s.persistDir, "PERSIST_INTERVAL=500ms")
		}
		s.probe = probeKinesis
	case "dynalite":
		ps, err := s.reserve(1)
		if err != nil {
			return err
		}
		ms := strconv.Itoa(int(transitionDuration / time.Millisecond))
		s.Endpoint = "http://127.0.0.1:" + strconv.Itoa(ps[0])
		s.dir = d
		s.argv = []string{filepath.FromSlash(dynaliteMain), "--host", "127.0.0.1", "--port", strconv.Itoa(ps[0]),
			"--createTableMs", ms, "--deleteTableMs", ms, "--updateTableMs", ms}
		if s.persistDir != "" {
			s.argv = append(s.argv, "--path", s.persistDir)
		}
		s.env = os.Environ()
		s.probe = probeDynamo
	default:
		return fmt.Errorf("emulators: unknown emulator %q", name)
	}
	return nil
}

// kinesisEnv is the environment for kinesis-mock: the parent's, minus
// anything kinesis-mock reads, plus explicit settings.
func kinesisEnv(plain, tls int) []string {
	dur := strconv.Itoa(int(transitionDuration/time.Millisecond)) + "ms"
	set := map[string]string{
		"KINESIS_MOCK_PLAIN_PORT": strconv.Itoa(plain),
		"KINESIS_MOCK_TLS_PORT":   strconv.Itoa(tls),
		// Stream state transitions (CREATING->ACTIVE etc.) default to 500ms.
		"CREATE_STREAM_DURATION":              dur,
		"DELETE_STREAM_DURATION":              dur,
		"REGISTER_STREAM_CONSUMER_DURATION":   dur,
		"DEREGISTER_STREAM_CONSUMER_DURATION": dur,
		"START_STREAM_ENCRYPTION_DURATION":    dur,
		"STOP_STREAM_ENCRYPTION_DURATION":     dur,
		"MERGE_SHARDS_DURATION":               dur,
		"SPLIT_SHARD_DURATION":                dur,
		"UPDATE_SHARD_COUNT_DURATION":         dur,
		"UPDATE_STREAM_MODE_DURATION":         dur,
		// Per-account limits (defaults 50 shards, 10 on-demand streams) are
		// easy to hit when many tests share one server.
		"SHARD_LIMIT":                  "10000",
		"ON_DEMAND_STREAM_COUNT_LIMIT": "1000",
		// Pin the defaults so a developer's AWS_REGION etc. cannot leak in.
		"AWS_ACCOUNT_ID": "000000000000",
		"AWS_REGION":     "us-east-1",
		// Strictly in memory.
		"SHOULD_PERSIST_DATA": "false",
		"LOAD_DATA_IF_EXISTS": "false",
		// INFO: startup lines and one line per handled error; goes to LogPath.
		"LOG_LEVEL": "INFO",
	}
	drop := map[string]bool{"INITIALIZE_STREAMS": true, "PERSIST_PATH": true, "PERSIST_FILE_NAME": true, "PERSIST_INTERVAL": true}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; ok || drop[k] {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// reserve locks n fresh ports for the server (see internal/testenv/ports:
// below the ephemeral range, exclusive among test processes), releasing any
// it held from an earlier attempt.
func (s *Server) reserve(n int) ([]int, error) {
	if s.res != nil {
		s.res.Release()
	}
	res, err := ports.Reserve(n)
	if err != nil {
		return nil, fmt.Errorf("emulators: %w", err)
	}
	s.res, s.ports = res, res.Ports
	return res.Ports, nil
}

// launch starts the process and waits until it answers. On failure the
// process is killed and the error carries the tail of its log.
func (s *Server) launch(ctx context.Context) error {
	node, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("emulators: node not found (%w): install Node.js %d+", err, minNodeMajor)
	}
	if err := os.MkdirAll(filepath.Dir(s.LogPath), 0o755); err != nil {
		return fmt.Errorf("emulators: %s log dir: %w", s.Name, err)
	}
	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("emulators: %s log: %w", s.Name, err)
	}
	fmt.Fprintf(logf, "=== %s starting %s %s at %s\n", time.Now().Format(time.RFC3339Nano), node, strings.Join(s.argv, " "), s.Endpoint)
	// What this launch logs starts here: the file keeps earlier runs'.
	logStart, _ := logf.Seek(0, io.SeekCurrent)
	cmd := exec.Command(node, s.argv...)
	cmd.Dir = s.dir
	cmd.Env = s.env
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	began := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("emulators: start %s: %w; install Node.js %d+", s.Name, err, minNodeMajor)
	}
	logf.Close() // the child has its own copy
	done := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.done, s.werr = cmd, done, nil
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.werr = err
		s.mu.Unlock()
		close(done)
	}()

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		last = s.probe(pctx, s.Endpoint)
		pcancel()
		if last == nil {
			select {
			case <-done: // exited; handled below
			default:
				if ownsPorts(cmd.Process.Pid, s.ports) {
					return nil
				}
			}
			// Someone else's server answered on our port; ours is about
			// to fail with EADDRINUSE.
			last = fmt.Errorf("another process answers on %s", s.Endpoint)
		}
		select {
		case <-done:
			logTail := s.LogTail(logTailBytes)
			if strings.Contains(logTail, "EADDRINUSE") {
				return fmt.Errorf("emulators: %s exited during startup: %w: port %v (%v); log %s:\n%s",
					s.Name, errPortTaken, s.ports, s.waitErr(), s.LogPath, logTail)
			}
			return fmt.Errorf("emulators: %s exited during startup (%v); install Node.js %d+, and run `npm ci` in internal/testenv/emulators if it is broken; log %s:\n%s",
				s.Name, s.waitErr(), minNodeMajor, s.LogPath, logTail)
		case <-ctx.Done():
			_ = s.Kill()
			return fmt.Errorf("emulators: %s did not answer on %s within %s (last error: %v): %w; log %s:\n%s",
				s.Name, s.Endpoint, time.Since(began).Round(time.Millisecond), last, context.Cause(ctx), s.LogPath, s.LogTail(logTailBytes))
		case <-time.After(50 * time.Millisecond):
		}
		// kinesis-mock that cannot bind its TLS port logs EADDRINUSE and
		// keeps running without serving: waiting out startTimeout would only
		// end in a timeout, so give up on these ports now and let start pick
		// fresh ones.
		if bytes.Contains(s.logSince(logStart), []byte("EADDRINUSE")) {
			_ = s.Kill()
			return fmt.Errorf("emulators: %s cannot bind its ports: %w: port %v; log %s:\n%s",
				s.Name, errPortTaken, s.ports, s.LogPath, s.LogTail(logTailBytes))
		}
	}
}

// errPortTaken: another process listens on a port we picked.
var errPortTaken = errors.New("taken by another process")

func (s *Server) waitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.werr
}

func probeClientConfig(endpoint string) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("000000000000", "secret", ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
		HTTPClient:   &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
	}
}

func probeKinesis(ctx context.Context, endpoint string) error {
	limit := int32(1)
	_, err := kinesis.NewFromConfig(probeClientConfig(endpoint)).ListStreams(ctx, &kinesis.ListStreamsInput{Limit: &limit})
	return err
}

func probeDynamo(ctx context.Context, endpoint string) error {
	limit := int32(1)
	_, err := dynamodb.NewFromConfig(probeClientConfig(endpoint)).ListTables(ctx, &dynamodb.ListTablesInput{Limit: &limit})
	return err
}

// Stop sends SIGTERM to the emulator's process group, then SIGKILL if it has
// not exited after a short grace period (250ms), waits for it, and removes
// its log (if StartKinesis/StartDynamo created it). Stopping a stopped or
// killed server is a no-op.
//
// The grace period is short on purpose: nothing is on disk, so SIGKILL loses
// nothing, and kinesis-mock does not exit on SIGTERM while any client holds
// an idle keep-alive connection (it keeps accepting for ~30s and then
// lingers). Without such connections both emulators exit in well under 100ms.
//
// A kinesis-mock with persistence is first frozen at a moment when its state
// file is whole (see freezeBetweenSaves): it rewrites the file every 500 ms in
// place, and a SIGKILL in the middle of a write left a truncated file that the
// next start could not load (NoSuchElementException while reading it).
func (s *Server) Stop() error {
	if s.Name == "kinesis-mock" && s.persistDir != "" {
		s.freezeBetweenSaves()
	}
	err := s.signalAndWait(syscall.SIGTERM, stopGrace)
	s.cleanupLogs()
	if s.res != nil {
		s.res.Release()
	}
	return err
}

// Kill sends SIGKILL to the emulator's process group right away and waits for
// it to exit, for fault-injection tests. The Server can be restarted.
func (s *Server) Kill() error {
	return s.signalAndWait(syscall.SIGKILL, 0)
}

// Restart starts the emulator again on the same port(s) and waits until it
// answers, stopping it first (SIGKILL) if it is still running. The emulators
// keep everything in memory, so all state (streams, records, tables) is lost;
// clients need no reconfiguration since Endpoint does not change.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Kill(); err != nil {
		return err
	}
	return s.launch(ctx)
}

// kinesisStateFile is where kinesis-mock keeps its state under persistDir.
const kinesisStateFile = "kinesis-data.json"

// freezeBetweenSaves stops (SIGSTOP) the emulator's process group at a moment
// when its state file is complete JSON, so that the SIGKILL that follows
// cannot cut a save short. A frozen process writes nothing more, so what the
// check reads is what the next start loads. It gives up after a few seconds
// and leaves the process running.
func (s *Server) freezeBetweenSaves() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	pgid := cmd.Process.Pid
	path := filepath.Join(s.persistDir, kinesisStateFile)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		select {
		case <-done:
			return
		default:
		}
		if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
			return
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) || (err == nil && json.Valid(b)) {
			return // frozen with a whole file (or none yet)
		}
		_ = syscall.Kill(-pgid, syscall.SIGCONT)
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) signalAndWait(sig syscall.Signal, grace time.Duration) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil // already exited and reaped
	default:
	}
	pgid := cmd.Process.Pid // Setpgid: the group id is the leader's pid
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("emulators: signal %s (%v): %w", s.Name, sig, err)
	}
	if sig != syscall.SIGKILL {
		select {
		case <-done:
			return nil
		case <-time.After(grace):
			if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("emulators: kill %s: %w", s.Name, err)
			}
		}
	}
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("emulators: %s (pid %d) did not exit after SIGKILL", s.Name, pgid)
	}
}

func (s *Server) cleanupLogs() {
	if s.logDir != "" {
		_ = os.RemoveAll(s.logDir)
	}
}

// logSince returns the log from offset on (at most 1 MiB).
func (s *Server) logSince(offset int64) []byte {
	f, err := os.Open(s.LogPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return b
}

// LogTail returns up to the last n bytes of the emulator's log.
func (s *Server) LogTail(n int) string {
	f, err := os.Open(s.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > int64(n) {
		_, _ = f.Seek(fi.Size()-int64(n), io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(tail(b, n))
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 && i < len(b)-1 {
			b = b[i+1:]
		}
	}
	return b
}

// Pair is a kinesis-mock and a dynalite started together, for programs (the
// demo, the benchmark) rather than tests.
type Pair struct {
	Kinesis, Dynamo *Server
}

// StartPair installs the emulators if needed and starts both.
func StartPair(ctx context.Context) (*Pair, error) {
	if err := EnsureInstalled(ctx); err != nil {
		return nil, err
	}
	kin, err := StartKinesis(ctx)
	if err != nil {
		return nil, err
	}
	ddb, err := StartDynamo(ctx)
	if err != nil {
		kin.Stop()
		return nil, err
	}
	return &Pair{Kinesis: kin, Dynamo: ddb}, nil
}

// Stop stops both emulators.
func (p *Pair) Stop() error {
	return errors.Join(p.Kinesis.Stop(), p.Dynamo.Stop())
}
