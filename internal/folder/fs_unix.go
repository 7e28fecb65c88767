//go:build unix

package folder

import (
	"os"
	"syscall"
)

// The OS calls behind OSFS; fs_windows.go has the Windows versions (share
// modes and retries of transient sharing conflicts).

// openFile is the one place owner and audit files are opened.
func openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}

func mkdir(name string) error                { return os.Mkdir(name, 0o777) }
func lstat(name string) (os.FileInfo, error) { return os.Lstat(name) }
func removeFile(name string) error           { return syscall.Unlink(name) }
func removeDir(name string) error            { return syscall.Rmdir(name) }

func openDirNoFollow(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_DIRECTORY, 0)
}

// Flags for opening owner files: never follow a planted symbolic link, never
// block opening a planted FIFO (no effect on regular files).
const (
	oNoFollow = syscall.O_NOFOLLOW
	oNonBlock = syscall.O_NONBLOCK
)
