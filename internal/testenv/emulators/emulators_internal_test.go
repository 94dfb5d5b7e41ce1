//go:build linux

package emulators

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/ports"
)

func TestOwnsPorts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mine := l.Addr().(*net.TCPAddr).Port
	if !ownsPorts(os.Getpid(), []int{mine}) {
		t.Errorf("ownsPorts(self, %d) = false", mine)
	}
	res, err := ports.Reserve(1)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	free := res.Ports
	if ownsPorts(os.Getpid(), []int{mine, free[0]}) {
		t.Errorf("ownsPorts(self, %d, %d) = true; %d is not listening", mine, free[0], free[0])
	}
}

// A server whose port is taken by another emulator must not mistake that
// emulator's answers for its own readiness.
func TestPortTakenByAnotherServer(t *testing.T) {
	t.Parallel()
	other, err := Start(t.Context(), "kinesis-mock", Options{LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Stop() })
	d, err := dir()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Name: "kinesis-mock", LogPath: filepath.Join(t.TempDir(), "kinesis-mock.log")}
	if err := s.configure("kinesis-mock", d); err != nil {
		t.Fatal(err)
	}
	s.ports, s.Endpoint, s.env = other.ports, other.Endpoint, kinesisEnv(other.ports[0], other.ports[1])
	err = s.launch(t.Context())
	defer s.Kill()
	if err == nil || !strings.Contains(err.Error(), "taken by another process") {
		t.Fatalf("launch on a taken port: err = %v, want 'taken by another process'", err)
	}
}

// kinesis-mock whose TLS port is taken logs EADDRINUSE but keeps running
// without serving: launch must see it and report the port as taken (so start
// retries on fresh ports), not wait out startTimeout.
func TestTLSPortTaken(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	d, err := dir()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Name: "kinesis-mock", LogPath: filepath.Join(t.TempDir(), "kinesis-mock.log")}
	if err := s.configure("kinesis-mock", d); err != nil {
		t.Fatal(err)
	}
	tls := taken.Addr().(*net.TCPAddr).Port
	s.ports[1], s.TLSEndpoint = tls, "https://127.0.0.1:"+strconv.Itoa(tls)
	s.env = kinesisEnv(s.ports[0], tls)
	began := time.Now()
	err = s.launch(t.Context())
	defer s.Kill()
	if err == nil || !errors.Is(err, errPortTaken) {
		t.Fatalf("launch with its TLS port taken: err = %v, want errPortTaken", err)
	}
	if waited := time.Since(began); waited >= startTimeout {
		t.Errorf("launch gave up after %s, the whole startTimeout", waited)
	}
}
