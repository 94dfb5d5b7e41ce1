package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

func TestValidateReportsEveryMistake(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := `
sources:
  - name: orders
    kinesis:
      stream_arn: arn:aws:kinesis:us-east-1:000000000000:orders
      init_position: yesterday
      format: json
datasets:
  - name: orders
    source: order
    timestamp: ts
    fields:
      - {name: id, type: integer}
      - {name: ts, type: datetime}
    sink: orders_file
sinks:
  - name: orders_file
    file: {path: out}
dead_letter:
  file: {path: errors}
consumer:
  lease_duration: -5s
`
	path := filepath.Join(dir, "bad.yaml")
	os.WriteFile(path, []byte(bad), 0o644)
	out, err := exec.Command(binary, "validate", "--config", path).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("validate of a bad config: %v, want exit code 2\n%s", err, out)
	}
	for _, want := range []string{
		"FAIL  config " + path + " [invalid_arn]: 5 problem(s)",
		"sources[0].kinesis.stream_arn:",
		"arn:aws:kinesis:us-east-1:000000000000:orders", // quoted
		"sources[0].kinesis.init_position:",
		`"yesterday"`,
		"datasets[0].source:",
		"datasets[0].fields[0].type:",
		"consumer.lease_duration:",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
}

// TestValidateChecks runs every check against the emulators, then makes each
// of them fail in turn: a stream that does not exist, an unwritable sink
// directory; and run refuses to start on a failed check.
func TestValidateChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)

	t.Run("all pass", func(t *testing.T) {
		e.t = t
		r := e.validate(e.config("trim_horizon"))
		if r.code != 0 {
			t.Fatalf("validate of a good config against a live stream: exit %d\n%s", r.code, r.out)
		}
		wantLines(t, r, map[string][]string{
			"ok    config":                               {"1 sources"},
			"ok    source orders: credentials":           {"EnvConfigCredentials"},
			"ok    source orders: stream exists":         {e.arn, "ACTIVE", "2 open shards", "retention 24h"},
			"ok    source orders: shards listable":       {"2 shards"},
			"ok    source orders: shards readable":       {"GetShardIterator on shardId-"},
			"ok    lease table orders-ingest: reachable": {"created"},
			"ok    sink orders_file: writable":           {e.rowsDir()},
			"ok    dead_letter: writable":                {e.lettersDir()},
			"all 8 checks passed":                        nil,
		})
		// The lease table now exists, with nothing in it; no probe file is left.
		if _, err := testaws.Dynamo(e.ddb.Endpoint).DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(e.table)}); err != nil {
			t.Errorf("lease table after validate: %v", err)
		}
		if cps := e.checkpoints(); len(cps) != 0 {
			t.Errorf("validate wrote leases: %v", cps)
		}
		for _, d := range []string{e.rowsDir(), e.lettersDir()} {
			if ents, _ := os.ReadDir(d); len(ents) != 0 {
				t.Errorf("%s holds %v after validate, want it empty", d, ents)
			}
		}
		// Again: now the table exists.
		r = e.validate(e.config("trim_horizon"))
		wantLines(t, r, map[string][]string{"ok    lease table orders-ingest: reachable": {"exists"}})
	})

	t.Run("timestamp before retention warns", func(t *testing.T) {
		e.t = t
		old := time.Now().Add(-48 * time.Hour).UTC().Format(time.RFC3339)
		r := e.validate(e.config(`"` + old + `"`))
		if r.code != 0 {
			t.Fatalf("exit %d, want 0: a timestamp before the retention is only a warning\n%s", r.code, r.out)
		}
		wantLines(t, r, map[string][]string{
			"warn  sources[0].kinesis.init_position:": {"before the retention of stream orders", "24h", "trim_horizon"},
		})
		future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
		r = e.validate(e.config(`"` + future + `"`))
		if r.code != 0 {
			t.Fatalf("exit %d, want 0: a timestamp in the future is only a warning\n%s", r.code, r.out)
		}
		wantLines(t, r, map[string][]string{"warn  sources[0].kinesis.init_position:": {"in the future"}})
	})

	t.Run("stream does not exist", func(t *testing.T) {
		e.t = t
		missing := strings.Replace(e.arn, "stream/orders", "stream/no-such-stream", 1)
		r := e.validate(e.writeConfig(testConfig{ARN: missing}))
		if r.code != 1 {
			t.Fatalf("exit %d, want 1\n%s", r.code, r.out)
		}
		wantLines(t, r, map[string][]string{
			"FAIL  source orders: stream exists [not_found]": {"stream not found", "no-such-stream", "fix: check stream_arn"},
			"skip  source orders: shards listable":           {"needs source orders: stream exists"},
			"skip  source orders: shards readable":           {"needs"},
			"ok    lease table orders-ingest: reachable":     nil,
			"ok    sink orders_file: writable":               nil,
			"1 of 8 checks failed":                           nil,
		})
	})

	t.Run("unwritable sink directory", func(t *testing.T) {
		e.t = t
		dir := t.TempDir()
		file := filepath.Join(dir, "a-file")
		os.WriteFile(file, []byte("x"), 0o644)
		r := e.validate(e.writeConfig(testConfig{Dir: dir, RowsDir: filepath.Join(file, "rows")}))
		if r.code != 1 {
			t.Fatalf("exit %d, want 1\n%s", r.code, r.out)
		}
		wantLines(t, r, map[string][]string{
			"FAIL  sink orders_file: writable [not_writable]": {"not a directory", "a-file", "fix:"},
			"ok    dead_letter: writable":                     nil,
		})
		// A directory without write permission. Root ignores permission
		// bits, so as root validate runs as nobody, from a directory nobody
		// can read.
		bin, env := binary, e.awsEnv()
		var cred *syscall.Credential
		if os.Geteuid() == 0 {
			dir = nobodyDir(t)
			bin = filepath.Join(dir, "kinesis-ingest")
			copyFile(t, binary, bin, 0o755)
			os.Mkdir(filepath.Join(dir, "dead-letters"), 0o755)
			os.Chmod(filepath.Join(dir, "dead-letters"), 0o777) // not subject to the umask
			env = e.awsEnv("HOME="+dir, "AWS_CONFIG_FILE="+filepath.Join(dir, "aws-config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "aws-credentials"))
			cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		}
		ro := filepath.Join(dir, "read-only")
		os.Mkdir(ro, 0o555)
		cmd := exec.Command(bin, "validate", "--config", e.writeConfig(testConfig{Dir: dir, RowsDir: ro}))
		cmd.Env, cmd.SysProcAttr = env, &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		t.Logf("validate with a read-only sink directory: %v\n%s", err, out)
		r = result{out: string(out)}
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("exit %v, want 1", err)
		}
		wantLines(t, r, map[string][]string{
			"FAIL  sink orders_file: writable [access_denied]": {"permission denied", ro, "fix: give the worker's user write permission"},
			"ok    dead_letter: writable":                      nil,
		})
	})

	t.Run("run refuses to start", func(t *testing.T) {
		e.t = t
		dir := t.TempDir()
		missing := strings.Replace(e.arn, "stream/orders", "stream/no-such-stream", 1)
		r := runCmd(t, e.awsEnv(), "run", "--config", e.writeConfig(testConfig{ARN: missing, Dir: dir}))
		if r.code != 1 {
			t.Fatalf("run with a missing stream: exit %d, want 1\n%s", r.code, r.out)
		}
		wantLines(t, r, map[string][]string{"FAIL  source orders: stream exists [not_found]": {"no-such-stream"}})
		if !strings.Contains(r.out, "refusing to start") || strings.Contains(r.out, "consumer started") {
			t.Errorf("run did not refuse to start:\n%s", r.out)
		}
	})
}

// nobodyDir is a temporary directory user nobody can enter.
func nobodyDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kinesis-ingest-nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// TestValidateUnreachableEndpoint points Kinesis and DynamoDB at a closed port:
// validate must fail those checks as unreachable, quickly.
func TestValidateUnreachableEndpoint(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	e := &env{t: t, dir: t.TempDir(), arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders", table: "orders-ingest"}
	r := runCmd(t, e.awsEnv("AWS_ENDPOINT_URL_KINESIS="+closed, "AWS_ENDPOINT_URL_DYNAMODB="+closed), "validate", "--config", e.config("latest"))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.out)
	}
	wantLines(t, r, map[string][]string{
		"FAIL  source orders: stream exists [unreachable]":         {"connection refused", "fix: the kinesis endpoint did not answer", "AWS_ENDPOINT_URL_KINESIS"},
		"skip  source orders: shards listable":                     nil,
		"FAIL  lease table orders-ingest: reachable [unreachable]": {"AWS_ENDPOINT_URL_DYNAMODB"},
		"ok    sink orders_file: writable":                         nil,
	})
	if r.took > 20*time.Second {
		t.Errorf("validate took %s against a closed port, want it to give up quickly", r.took)
	}
}

// TestValidateRefusesAMovedLeaseTable: the lease table of a one-source config
// is consumer.application, of a several-source one application-<source>. A
// config that changed between the two must not start over from init_position
// in a new, empty table while the checkpoints are in the old one.
func TestValidateRefusesAMovedLeaseTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	old, err := leases.New(leases.Config{Client: testaws.Dynamo(e.ddb.Endpoint), Table: "moved-app-orders", WorkerID: "earlier", LeaseDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.EnsureTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := e.validate(e.writeConfig(testConfig{Table: "moved-app"}))
	if r.code != 1 {
		t.Fatalf("validate exit %d, want 1\n%s", r.code, r.out)
	}
	wantLines(t, r, map[string][]string{
		"FAIL  lease table moved-app: reachable [invalid_config]": {"moved-app-orders", "does not exist"},
	})
	if _, err := testaws.Dynamo(e.ddb.Endpoint).DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String("moved-app")}); err == nil {
		t.Errorf("validate created the new lease table although the checkpoints are in the old one")
	}
}

// TestValidateCDCRules runs validate on the config package's cdc.bad.yaml:
// every rule binding keys to a cdc mode is reported by the command, with its
// YAML path, and the config is refused (exit 2).
func TestValidateCDCRules(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "internal", "service", "config", "testdata", "cdc.bad.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "validate", "--config", path).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("validate of cdc.bad.yaml: %v, want exit code 2\n%s", err, out)
	}
	var n int
	for _, line := range strings.Split(string(data), "\n") {
		want, ok := strings.CutPrefix(line, "# want: ")
		if !ok {
			continue
		}
		n++
		if !strings.Contains(string(out), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	if n < 10 {
		t.Fatalf("cdc.bad.yaml has %d want lines, expected one per rule", n)
	}
}
