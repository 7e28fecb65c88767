package doctor

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/windows"
)

// nlink: the link count is not in a Windows FileInfo.
func nlink(fi fs.FileInfo) (uint64, bool) { return 0, false }

// errName names err's Windows error, or returns its text.
func errName(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case windows.ERROR_ALREADY_EXISTS:
			return "ERROR_ALREADY_EXISTS"
		case windows.ERROR_FILE_EXISTS:
			return "ERROR_FILE_EXISTS"
		case windows.ERROR_ACCESS_DENIED:
			return "ERROR_ACCESS_DENIED"
		case windows.ERROR_SHARING_VIOLATION:
			return "ERROR_SHARING_VIOLATION"
		case windows.ERROR_NOT_SUPPORTED:
			return "ERROR_NOT_SUPPORTED"
		case windows.ERROR_INVALID_FUNCTION:
			return "ERROR_INVALID_FUNCTION"
		}
		return errno.Error()
	}
	return err.Error()
}

func isPermission(err error) bool { return errors.Is(err, fs.ErrPermission) }

func isNoSpace(err error) bool {
	return errors.Is(err, windows.ERROR_DISK_FULL) || errors.Is(err, windows.ERROR_HANDLE_DISK_FULL)
}

// openShared opens name for reading with every share mode, delete
// included, as sharelock opens its files: a failing delete then is the
// file server's doing, not this handle's.
func openShared(name string) (*os.File, error) {
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, err
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(h), name), nil
}
