package folder

import (
	"io/fs"
	"os"
	"syscall"
)

// openDirNoFollow refuses a symbolic link or junction at name (checked with
// Lstat first: Windows has no O_NOFOLLOW for directories in package os).
func openDirNoFollow(name string) (*os.File, error) {
	fi, err := os.Lstat(name)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&(fs.ModeSymlink|fs.ModeIrregular) != 0 {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ELOOP}
	}
	return os.Open(name)
}

// Windows has neither flag in package os; reparse points are refused by the
// Windows issue's share-mode work.
const (
	oNoFollow = 0
	oNonBlock = 0
)
