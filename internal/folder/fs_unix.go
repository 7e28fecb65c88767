//go:build unix

package folder

import (
	"os"
	"syscall"
)

func openDirNoFollow(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_DIRECTORY, 0)
}
