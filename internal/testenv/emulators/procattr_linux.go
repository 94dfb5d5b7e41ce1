package emulators

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// sysProcAttr puts the child in its own process group (so Stop/Kill reach
// anything it spawns) and has the kernel SIGKILL it when the thread that
// started it dies (in practice: when this process exits, even by SIGKILL).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// ownsPorts reports whether process pid has a listening TCP socket on each
// of ports. A free port picked by listening on :0 can be picked by another
// process too before our child binds it; then our readiness probe is
// answered by someone else's server. It returns true when /proc/net is
// unreadable, false when pid's fd table is (e.g. it has exited).
func ownsPorts(pid int, ports []int) bool {
	listening := map[int]map[string]bool{} // port -> socket inodes
	for _, p := range ports {
		listening[p] = map[string]bool{}
	}
	read := false
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		read = true
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // 0A: TCP_LISTEN
				continue
			}
			i := strings.LastIndexByte(fs[1], ':')
			port, err := strconv.ParseUint(fs[1][i+1:], 16, 16)
			if err != nil {
				continue
			}
			if inodes, ok := listening[int(port)]; ok {
				inodes[fs[9]] = true
			}
		}
	}
	if !read {
		return true // no /proc/net: cannot tell
	}
	fdDir := "/proc/" + strconv.Itoa(pid) + "/fd"
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return false // exited (or not ours to inspect)
	}
	owned := map[int]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fdDir + "/" + fd.Name())
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		inode := strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")
		for p, inodes := range listening {
			if inodes[inode] {
				owned[p] = true
			}
		}
	}
	return len(owned) == len(ports)
}
