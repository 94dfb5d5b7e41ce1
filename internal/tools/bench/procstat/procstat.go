// Package procstat reads what the bench tools measure of a child process:
// from /proc (memory, CPU time, its children) and from its /metrics; and it
// finds them free loopback addresses for its listeners.
package procstat

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RSS is a running process's resident anonymous memory (heap, stacks) and
// file-backed memory (its binary's and libraries' pages, mapped from the page
// cache), in bytes; 0, 0 once it is gone.
func RSS(pid int) (anon, file int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "RssAnon:":
			anon = kb << 10
		case "RssFile:":
			file = kb << 10
		}
	}
	return anon, file
}

var clockTick = 10 * time.Millisecond // USER_HZ is 100 on Linux

// CPU is a running process's user+system time so far; 0 once it is gone.
func CPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := statFields(b)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * clockTick
}

// statFields are /proc/PID/stat's fields after the command, which is in
// parentheses and may hold spaces: f[0] is the state, f[1] the parent's pid.
func statFields(b []byte) []string {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// Children are the running children of ppid, by pid, with their command
// lines (arguments joined by spaces): the bench tools find the emulators'
// node processes this way, whose pids the emulators package keeps to itself.
func Children(ppid int) map[int]string {
	out := map[int]string{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		f := statFields(b)
		if len(f) < 2 || f[1] != strconv.Itoa(ppid) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		cmd, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
		out[pid] = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
	}
	return out
}

// FreeAddr is a loopback address with a port free at the time of the call,
// for a child's listener.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// scrapeClient bounds a scrape: a child too busy to answer fails the
// measurement instead of hanging it.
var scrapeClient = &http.Client{Timeout: 10 * time.Second}

// Scrape reads a child's /metrics at addr: every sample line by its name
// and labels as written, and the body's size.
func Scrape(addr string) (map[string]float64, int, error) {
	resp, err := scrapeClient.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, err
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, len(b), sc.Err()
}
