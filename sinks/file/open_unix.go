//go:build unix

package file

import (
	"errors"
	"syscall"
)

const (
	openNoFollow = syscall.O_NOFOLLOW
	openNonBlock = syscall.O_NONBLOCK
)

// isSymlinkRefused reports whether an open with O_NOFOLLOW failed because the
// name is a symlink.
func isSymlinkRefused(err error) bool { return errors.Is(err, syscall.ELOOP) }
