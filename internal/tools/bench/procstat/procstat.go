// Package procstat reads what the bench tools measure of a child process
// from /proc, and finds them free loopback addresses for its listeners.
package procstat

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
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
