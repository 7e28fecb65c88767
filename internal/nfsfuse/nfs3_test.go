//go:build linux

package nfsfuse

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/willscott/go-nfs-client/nfs"
)

func TestStatusErrno(t *testing.T) {
	for status, want := range map[uint32]syscall.Errno{
		nfs.NFS3ErrPerm: syscall.EPERM, nfs.NFS3ErrNoEnt: syscall.ENOENT, nfs.NFS3ErrIO: syscall.EIO,
		nfs.NFS3ErrAcces: syscall.EACCES, nfs.NFS3ErrExist: syscall.EEXIST, nfs.NFS3ErrXDev: syscall.EXDEV,
		nfs.NFS3ErrNotDir: syscall.ENOTDIR, nfs.NFS3ErrIsDir: syscall.EISDIR, nfs.NFS3ErrInval: syscall.EINVAL,
		nfs.NFS3ErrNoSpc: syscall.ENOSPC, nfs.NFS3ErrROFS: syscall.EROFS, nfs.NFS3ErrNameTooLong: syscall.ENAMETOOLONG,
		nfs.NFS3ErrNotEmpty: syscall.ENOTEMPTY, nfs.NFS3ErrDQuot: syscall.EDQUOT, nfs.NFS3ErrStale: syscall.ESTALE,
		nfs.NFS3ErrBadHandle: syscall.ESTALE, nfs.NFS3ErrNotSupp: syscall.EOPNOTSUPP,
		nfs.NFS3ErrServerFault: syscall.EIO, nfs3ErrJukebox: syscall.EAGAIN, 12345: syscall.EIO,
	} {
		if got := statusErrno(status); got != want {
			t.Errorf("statusErrno(%s) = %v, want %v", statusName(status), got, want)
		}
	}
}

func TestErrorWrapsErrno(t *testing.T) {
	err := fmt.Errorf("creating x: %w", &Error{Proc: "CREATE", Status: nfs.NFS3ErrExist, Errno: syscall.EEXIST})
	if !errors.Is(err, syscall.EEXIST) {
		t.Errorf("%v does not match EEXIST", err)
	}
	if got := errnoOf(err); got != syscall.EEXIST {
		t.Errorf("errnoOf(%v) = %v, want EEXIST", err, got)
	}
	if got := errnoOf(errors.New("connection reset")); got != syscall.EIO {
		t.Errorf("errnoOf(a transport error) = %v, want EIO", got)
	}
	if want := "nfs CREATE: NFS3ERR_EXIST (file exists)"; err.(interface{ Unwrap() error }).Unwrap().Error() != want {
		t.Errorf("message %q, want %q", errors.Unwrap(err).Error(), want)
	}
}
