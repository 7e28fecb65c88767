//go:build unix

package folder

import (
	"os"
	"syscall"
)

func openDirNoFollow(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_DIRECTORY, 0)
}

// Flags for opening owner files: never follow a planted symbolic link, never
// block opening a planted FIFO (no effect on regular files).
const (
	oNoFollow = syscall.O_NOFOLLOW
	oNonBlock = syscall.O_NONBLOCK
)
