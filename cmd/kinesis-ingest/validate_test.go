package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateReportsEveryMistake(t *testing.T) {
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
		"sources[0].kinesis.stream_arn:",
		"sources[0].kinesis.init_position:",
		"datasets[0].source:",
		"datasets[0].fields[0].type:",
		"consumer.lease_duration:",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
}

func TestValidateChecksTheStream(t *testing.T) {
	e := newEnv(t, 1)
	env := append(os.Environ(),
		"WORKER_ID=validator",
		"AWS_ENDPOINT_URL_KINESIS="+e.kin.Endpoint,
		"AWS_ENDPOINT_URL_DYNAMODB="+e.ddb.Endpoint,
		"AWS_ACCESS_KEY_ID=000000000000", "AWS_SECRET_ACCESS_KEY=x", "AWS_REGION=us-east-1",
	)
	cmd := exec.Command(binary, "validate", "--config", e.config("latest"))
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("validate of a good config against a live stream: %v\n%s", err, out)
	}

	e.arn = strings.Replace(e.arn, "stream/orders", "stream/no-such-stream", 1)
	cmd = exec.Command(binary, "validate", "--config", e.config("latest"))
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "stream not found") || !strings.Contains(string(out), "no-such-stream") {
		t.Fatalf("validate with a missing stream: err %v, want a 'stream not found' error naming it:\n%s", err, out)
	}
}
