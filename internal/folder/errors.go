package folder

import (
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"

	"sharelock/internal/core"
)

// errStalled reports a filesystem call that did not return within the
// operation timeout (a stalled share). The call may still complete later.
var errStalled = errors.New("the share did not answer in time (network stall?)")

func isExist(err error) bool    { return errors.Is(err, fs.ErrExist) }
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// isPerm reports EPERM/EACCES. SFTP clients report a lost exclusive-create or
// mkdir race as EPERM, so the protocol re-checks with Lstat before treating
// it as a permission problem.
func isPerm(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)
}

// isStale reports ESTALE (NFS: the file handle is gone; re-resolve the path).
func isStale(err error) bool { return errors.Is(err, syscall.ESTALE) }

// pathErr wraps err with the path and a fix a user can apply.
func pathErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var pe *core.PathError
	if errors.As(err, &pe) {
		return err
	}
	return &core.PathError{Op: op, Path: path, Err: err, Fix: fixFor(path, err)}
}

func fixFor(path string, err error) string {
	dir := filepath.Dir(path)
	if fix := fixForOS(dir, err); fix != "" {
		return fix
	}
	switch {
	case errors.Is(err, errStalled):
		return "check the network connection to the file server; sharelock gave up waiting"
	case errors.Is(err, syscall.EROFS):
		return "the share is mounted read-only; sharelock needs write access to " + dir
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "the share is full (or over quota); free some space on it"
	case isPerm(err):
		return "give this user permission to create and write files in " + dir
	case errors.Is(err, syscall.ENOTDIR):
		return "a path component is not a folder; check the path"
	case errors.Is(err, syscall.ELOOP):
		return "a symbolic link was planted there; sharelock never follows links in its lock folder: remove or rename it"
	case isNotExist(err):
		return "check that the folder " + dir + " exists and is reachable"
	case errors.Is(err, syscall.EIO):
		return "the file server reported an I/O error; check the share and the network, then retry"
	case errors.Is(err, syscall.ENOLCK), errors.Is(err, syscall.EBADF), isStale(err):
		return "the network share lost track of an open file (NFS); retry, and check the mount"
	}
	return ""
}
