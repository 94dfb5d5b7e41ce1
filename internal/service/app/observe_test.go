package app

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/metrics"
)

// testApp is an App with a loaded config and its metrics, enough to serve
// the observability and errors muxes.
func testApp(t *testing.T) *App {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("KI_DIR", dir)
	cfg, err := config.Parse([]byte(`
sources:
  - name: orders
    kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}
datasets:
  - name: orders
    source: orders
    fields: [{name: id, type: int}, {name: ts, type: datetime}]
    sink: out
sinks:
  - name: out
    file: {path: "${KI_DIR}/rows"}
dead_letter:
  file: {path: "${KI_DIR}/dl"}
consumer: {worker_id: w1}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.DeadLetter.File.Path, 0o700); err != nil {
		t.Fatal(err)
	}
	return &App{cfg: cfg, log: slog.New(slog.DiscardHandler), metrics: metrics.New(prometheus.NewRegistry())}
}

// TestPortsServeWhatTheyShould: the metrics port (reachable by whoever
// scrapes) serves metrics and health checks but no record data; the errors
// port serves the errors view, only to a Host that is an IP address or
// localhost (a DNS-rebound name is refused).
func TestPortsServeWhatTheyShould(t *testing.T) {
	a := testApp(t)
	metricsSrv := httptest.NewServer(a.observabilityMux())
	defer metricsSrv.Close()
	errorsSrv := httptest.NewServer(a.errorsMux())
	defer errorsSrv.Close()
	tests := []struct {
		name, base, path, host string
		code                   int
	}{
		{"metrics", metricsSrv.URL, "/metrics", "", 200},
		{"healthz", metricsSrv.URL, "/healthz", "", 200},
		{"readyz answers", metricsSrv.URL, "/readyz", "", 503},
		{"no errors view on the metrics port", metricsSrv.URL, "/errors", "", 404},
		{"no errors page on the metrics port", metricsSrv.URL, "/errors.html", "", 404},
		{"errors view by IP", errorsSrv.URL, "/errors", "", 200},
		{"errors page by IP", errorsSrv.URL, "/errors.html", "", 200},
		{"errors view as localhost", errorsSrv.URL, "/errors", "localhost:9109", 200},
		{"errors view by IPv6", errorsSrv.URL, "/errors", "[::1]:9109", 200},
		{"DNS rebinding refused", errorsSrv.URL, "/errors", "evil.example:9109", 403},
		{"DNS rebinding without port refused", errorsSrv.URL, "/errors.html", "evil.example", 403},
		{"localhost lookalike refused", errorsSrv.URL, "/errors", "localhost.evil.example", 403},
		{"no metrics on the errors port", errorsSrv.URL, "/metrics", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", tt.base+tt.path, nil)
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Errorf("%s (Host %q): %d, want %d: %s", tt.path, tt.host, resp.StatusCode, tt.code, body)
			}
		})
	}
}

// TestServerLimits: a client cannot hold the observability server's
// connections or memory: huge headers are refused, and a connection that
// idles, or trickles its request body, is closed by the server.
func TestServerLimits(t *testing.T) {
	saved := serverLimits
	t.Cleanup(func() { serverLimits = saved })
	// Short read and idle limits so the test does not wait a minute; the
	// header limit is the shipped one.
	serverLimits.Read, serverLimits.Idle = 300*time.Millisecond, 300*time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}))
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	addr := ln.Addr().String()

	// closedByServer reads until the server closes conn; the deadline is far
	// beyond the limits, only there so a broken server fails the test
	// instead of hanging it.
	closedByServer := func(t *testing.T, conn net.Conn, r *bufio.Reader) {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err := io.Copy(io.Discard, r)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the server kept the connection open")
		}
	}

	t.Run("huge header refused", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("64 KiB header: %d, want 431", resp.StatusCode)
		}
	})
	t.Run("idle connection closed", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, _ = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		r := bufio.NewReader(conn)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		closedByServer(t, conn, r) // keep-alive, then nothing: idle
	})
	t.Run("trickled body cut off", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, _ = io.WriteString(conn, "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\nx")
		closedByServer(t, conn, bufio.NewReader(conn))
	})
}
