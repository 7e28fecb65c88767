package folder

// The OS calls behind OSFS on Windows.
//
// Windows differs from Unix in two ways that matter to the protocol:
//
//   - An open handle can forbid what other clients do with the file: its
//     share mode says whether others may read, write or delete it while it
//     is open. Package os opens files with FILE_SHARE_READ|FILE_SHARE_WRITE
//     only, so a client that merely reads an owner file would make the
//     garbage collector of another client fail to delete it. Every handle
//     opened here therefore shares read, write AND delete
//     (FILE_SHARE_DELETE), directories included, and is not inherited by
//     child processes (a `sharelock run` child never holds our handles).
//   - Another program's handle (an older client, a virus scanner, a backup
//     tool, the SMB server itself) may still be in the way for a moment:
//     ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION, or ERROR_ACCESS_DENIED
//     from STATUS_DELETE_PENDING (a file deleted while someone still has it
//     open stays visible, "delete pending", until the last handle closes).
//     These are contention, not failures: every call here retries them for
//     up to about 0.4 s (retryDelays) and only then returns the error, which
//     callers already treat as "try again later" (heartbeats: the loss
//     limit decides; garbage collection: the next pass). A persistent
//     delete-pending state is reported as ERROR_DELETE_PENDING.
//
// Symbolic links and junctions (reparse points) at the last component are
// never followed: files and directories are opened with
// FILE_FLAG_OPEN_REPARSE_POINT and refused (ELOOP) if they are one.

import (
	"errors"
	"io/fs"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/windows"
)

// Flags for opening owner files: Windows has neither; reparse points are
// refused by openFile itself, and there are no FIFOs on a file share.
const (
	oNoFollow = 0
	oNonBlock = 0
)

// shareAll lets other handles read, write, delete and rename the file while
// we have it open.
const shareAll = windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE | windows.FILE_SHARE_DELETE

// retryDelays are the pauses between attempts of a call that failed with a
// transient sharing conflict: 8 attempts within about 0.4 s. Every protocol
// call is bounded on the caller's side as well (Options.OpTimeout).
var retryDelays = []time.Duration{
	1 * time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
}

var procRtlGetLastNtStatus = windows.NewLazySystemDLL("ntdll.dll").NewProc("RtlGetLastNtStatus")

// lastNtStatus returns the NTSTATUS of the last failed system call of the
// calling OS thread, or 0 if it cannot be read.
func lastNtStatus() windows.NTStatus {
	if procRtlGetLastNtStatus.Find() != nil {
		return 0
	}
	r, _, _ := procRtlGetLastNtStatus.Call()
	return windows.NTStatus(r)
}

// sysCall runs one Windows call f on a locked OS thread and classifies its
// error: ERROR_ACCESS_DENIED caused by STATUS_DELETE_PENDING (which only the
// thread's last NTSTATUS tells apart from a real permission problem) is
// returned as ERROR_DELETE_PENDING (inside an *os.PathError if f returned
// one).
func sysCall(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := f()
	pe, _ := err.(*os.PathError)
	if pe != nil && pe.Err == windows.ERROR_ACCESS_DENIED || err == windows.ERROR_ACCESS_DENIED {
		if lastNtStatus() == windows.STATUS_DELETE_PENDING {
			if pe != nil {
				return &os.PathError{Op: pe.Op, Path: pe.Path, Err: windows.ERROR_DELETE_PENDING}
			}
			return windows.ERROR_DELETE_PENDING
		}
	}
	return err
}

// isTransient reports a Windows error that means another handle is in the
// way for a moment (see the file comment).
func isTransient(err error) bool {
	return errors.Is(err, windows.ERROR_SHARING_VIOLATION) ||
		errors.Is(err, windows.ERROR_LOCK_VIOLATION) ||
		errors.Is(err, windows.ERROR_DELETE_PENDING)
}

// withRetry runs op until it succeeds, fails with an error that is not
// transient, or retryDelays are used up; it returns op's last result.
// Every attempt is a full call: nothing is left half done between them.
func withRetry[T any](op func() (T, error)) (T, error) {
	v, err := op()
	for _, d := range retryDelays {
		if err == nil || !isTransient(err) {
			break
		}
		time.Sleep(d)
		v, err = op()
	}
	return v, err
}

// openFile opens name like os.OpenFile (O_RDONLY, O_WRONLY, O_RDWR,
// O_CREATE, O_EXCL and O_APPEND are honoured; perm is ignored: Windows
// files get the folder's inherited ACL) but with share mode shareAll, a
// non-inheritable handle, and a reparse point at name refused with ELOOP.
// A directory at name fails with EISDIR, as on Unix.
func openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	var access uint32
	switch flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR) {
	case os.O_RDONLY:
		access = windows.GENERIC_READ
	case os.O_WRONLY:
		access = windows.GENERIC_WRITE
	case os.O_RDWR:
		access = windows.GENERIC_READ | windows.GENERIC_WRITE
	}
	if flag&os.O_APPEND != 0 {
		// Every write right but FILE_WRITE_DATA: writes then always go to
		// the end of the file, as with O_APPEND (the same as package os).
		access &^= windows.GENERIC_WRITE
		access |= windows.FILE_APPEND_DATA | windows.FILE_WRITE_ATTRIBUTES | windows.FILE_WRITE_EA |
			windows.STANDARD_RIGHTS_WRITE | windows.SYNCHRONIZE
	}
	var disposition uint32
	switch {
	case flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		disposition = windows.CREATE_NEW
	case flag&os.O_CREATE != 0:
		disposition = windows.OPEN_ALWAYS
	default:
		disposition = windows.OPEN_EXISTING
	}
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	h, err := withRetry(func() (windows.Handle, error) {
		var h windows.Handle
		err := sysCall(func() error {
			var err error
			h, err = windows.CreateFile(p, access, shareAll, nil, disposition,
				windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
			return err
		})
		return h, err
	})
	if err != nil {
		if err == windows.ERROR_ACCESS_DENIED {
			if a, aerr := windows.GetFileAttributes(p); aerr == nil && a&windows.FILE_ATTRIBUTE_DIRECTORY != 0 {
				err = syscall.EISDIR
			}
		}
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		windows.CloseHandle(h)
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	if info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		windows.CloseHandle(h)
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ELOOP}
	}
	return os.NewFile(uintptr(h), name), nil
}

// openDirNoFollow opens directory name for listing with share mode
// shareAll, refusing a reparse point (symbolic link, junction) at name with
// ELOOP and anything else than a directory with ENOTDIR.
func openDirNoFollow(name string) (*os.File, error) {
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	h, err := withRetry(func() (windows.Handle, error) {
		var h windows.Handle
		err := sysCall(func() error {
			var err error
			h, err = windows.CreateFile(p, windows.FILE_LIST_DIRECTORY|windows.FILE_READ_ATTRIBUTES|windows.SYNCHRONIZE,
				shareAll, nil, windows.OPEN_EXISTING,
				windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
			return err
		})
		return h, err
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		windows.CloseHandle(h)
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	switch {
	case info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0:
		err = syscall.ELOOP
	case info.FileAttributes&windows.FILE_ATTRIBUTE_DIRECTORY == 0:
		err = syscall.ENOTDIR
	}
	if err != nil {
		windows.CloseHandle(h)
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(h), name), nil
}

// mkdir creates directory name (CreateDirectory). A name whose previous
// directory is still delete pending is retried.
func mkdir(name string) error {
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return &os.PathError{Op: "mkdir", Path: name, Err: err}
	}
	_, err = withRetry(func() (struct{}, error) {
		return struct{}{}, sysCall(func() error { return windows.CreateDirectory(p, nil) })
	})
	if err != nil {
		return &os.PathError{Op: "mkdir", Path: name, Err: err}
	}
	return nil
}

// lstat is os.Lstat, retried while a sharing conflict or a pending delete
// is in the way.
func lstat(name string) (fs.FileInfo, error) {
	return withRetry(func() (fs.FileInfo, error) {
		var fi fs.FileInfo
		err := sysCall(func() error {
			var err error
			fi, err = os.Lstat(name)
			return err
		})
		return fi, err
	})
}

// removeFile deletes file name (DeleteFile). It fails with
// ERROR_SHARING_VIOLATION, after the retries, while another program has the
// file open without FILE_SHARE_DELETE; garbage collection then tries again
// on its next pass. A file deleted while others still have it open stays
// delete pending (and its directory not empty) until they close it, except
// on file systems with POSIX delete semantics.
func removeFile(name string) error {
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	_, err = withRetry(func() (struct{}, error) {
		return struct{}{}, sysCall(func() error { return windows.DeleteFile(p) })
	})
	if err != nil {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

// removeDir removes the empty directory name (RemoveDirectory). Besides the
// transient conflicts it retries ERROR_DIR_NOT_EMPTY, which it gets while
// the owner file just deleted is still delete pending; a directory that
// stays non-empty fails with that error.
func removeDir(name string) error {
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return &os.PathError{Op: "rmdir", Path: name, Err: err}
	}
	_, err = withRetry(func() (struct{}, error) {
		err := sysCall(func() error { return windows.RemoveDirectory(p) })
		if err == windows.ERROR_DIR_NOT_EMPTY {
			// Retried as a transient conflict, reported as itself.
			return struct{}{}, errDirNotEmptyPending
		}
		return struct{}{}, err
	})
	if err == errDirNotEmptyPending {
		err = windows.ERROR_DIR_NOT_EMPTY
	}
	if err != nil {
		return &os.PathError{Op: "rmdir", Path: name, Err: err}
	}
	return nil
}

// errDirNotEmptyPending marks ERROR_DIR_NOT_EMPTY inside removeDir's retry
// loop; it wraps ERROR_DELETE_PENDING so that isTransient retries it.
var errDirNotEmptyPending = &dirNotEmptyError{}

type dirNotEmptyError struct{}

func (*dirNotEmptyError) Error() string { return "directory not empty (delete pending?)" }
func (*dirNotEmptyError) Unwrap() error { return windows.ERROR_DELETE_PENDING }
