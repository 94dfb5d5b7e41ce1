//go:build unix && !linux

package emulators

import "syscall"

// sysProcAttr puts the child in its own process group. There is no
// parent-death signal outside Linux: a child may outlive a parent that is
// killed with SIGKILL.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// ownsPorts cannot check outside Linux; see procattr_linux.go.
func ownsPorts(pid int, ports []int) bool { return true }
