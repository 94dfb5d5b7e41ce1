package app

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
)

// TestNewListenerTaken: a listen address in use (two workers on one host
// with the default errors.listen) is an error from New naming the key, and
// what New built is closed, not a nil-pointer panic.
func TestNewListenerTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	t.Setenv("KI_DIR", dir)
	t.Setenv("KI_TAKEN", taken.Addr().String())
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	cfg, err := config.Parse([]byte(`
sources:
  - name: orders
    kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}
datasets:
  - {name: orders, source: orders, sink: out, fields: [{name: ts, type: datetime}]}
sinks:
  - {name: out, file: {path: "${KI_DIR}/rows"}}
dead_letter:
  file: {path: "${KI_DIR}/letters"}
metrics: {listen: ""}
errors: {listen: "${KI_TAKEN}"}
`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		a.close()
		t.Fatal("New with errors.listen in use: no error")
	}
	if !strings.Contains(err.Error(), "errors.listen") {
		t.Errorf("error %q does not name errors.listen", err)
	}
}
