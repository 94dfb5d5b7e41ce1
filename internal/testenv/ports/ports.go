// Package ports reserves loopback ports for servers that tests (and the demo)
// start and restart on a port they chose: the emulators and PostgreSQL.
//
// A port found by listening on :0 comes from the kernel's ephemeral range, so
// between closing that listener and the server binding it, and again while a
// server is down for a restart, any process may get it: the kernel hands it
// to the next outgoing connection or :0 listener, and another test picks it
// the same way. Both happened in parallel integration runs (a restarted
// dynalite found its port taken). So a reserved port is taken below the
// ephemeral range, where the kernel never assigns one by itself, and is
// locked (flock on a file per port) for as long as its Reservation lives, so
// that other test processes using this package skip it. A lock dies with its
// process, so a killed test leaves nothing reserved.
package ports

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Reservation holds ports until Release.
type Reservation struct {
	Ports []int
	mu    sync.Mutex
	files []*os.File
}

// Release unlocks the ports. Safe to call twice.
func (r *Reservation) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.files {
		_ = f.Close() // closing drops the flock
	}
	r.files = nil
}

// rangeBelowEphemeral is where ports are drawn from: [low, high).
func rangeBelowEphemeral() (low, high int) {
	high = 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				high = v
			}
		}
	}
	low = 15000
	if high-low < 2000 {
		// An unusual ephemeral range: fall back to a band above it.
		return 61000, 65000
	}
	return low, high
}

// Reserve finds n free loopback ports, locks them and returns them.
func Reserve(n int) (*Reservation, error) {
	dir := filepath.Join(os.TempDir(), "kinesis-ingest-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("ports: lock directory %s: %w", dir, err)
	}
	low, high := rangeBelowEphemeral()
	r := &Reservation{}
	for tries := 0; len(r.Ports) < n; tries++ {
		if tries > 2000 {
			r.Release()
			return nil, errors.New("ports: no free loopback port found below the ephemeral range after 2000 tries")
		}
		p := low + rand.IntN(high-low)
		f, ok := lock(filepath.Join(dir, strconv.Itoa(p)+".lock"))
		if !ok {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			_ = f.Close() // in use by something else
			continue
		}
		_ = l.Close()
		r.Ports = append(r.Ports, p)
		r.files = append(r.files, f)
	}
	return r, nil
}

// lock takes an exclusive, non-blocking flock on path.
func lock(path string) (*os.File, bool) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, false
	}
	return f, true
}
