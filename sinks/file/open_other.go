//go:build !unix

package file

// Without O_NOFOLLOW and O_NONBLOCK, openRegular relies on its Stat check.
const (
	openNoFollow = 0
	openNonBlock = 0
)

func isSymlinkRefused(error) bool { return false }
