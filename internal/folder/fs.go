package folder

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// FS is the small set of filesystem calls the protocol makes. Every call is
// one request to the file server on a network share; the protocol counts on
// only these semantics:
//   - Mkdir is atomic: of two clients creating the same name, one gets an
//     error (EEXIST, or EPERM/EACCES on some FUSE/SFTP clients, which the
//     protocol re-checks with Lstat).
//   - ReadFile opens and reads the whole file (fresh content: open+read is
//     not served from an attribute cache the way stat is).
//   - CreateExcl creates a new file exclusively and writes data. It is NOT
//     relied on for mutual exclusion (not atomic on some SMB clients).
//   - Overwrite opens an existing file without creating it and writes data at
//     offset 0. Callers keep the length constant so no truncate is needed.
//
// Names are slash-separated paths relative to nothing: the store passes full
// paths built with filepath.Join.
type FS interface {
	Mkdir(name string) error
	ReadFile(name string) ([]byte, error)
	CreateExcl(name string, data []byte) error
	Overwrite(name string, data []byte) error
	Append(name string, data []byte) error
	ReadDirNames(name string) ([]string, error)
	Lstat(name string) (fs.FileInfo, error)
	Remove(name string) error // a file
	Rmdir(name string) error  // an empty directory
}

// OSFS is FS on the operating system's filesystem (local disk or a mounted share).
type OSFS struct{}

func (OSFS) Mkdir(name string) error { return mkdir(name) }

// ReadFile reads a regular file without following a symbolic link at the
// last component and without blocking on a FIFO planted there.
func (OSFS) ReadFile(name string) ([]byte, error) { return readFile(name) }

func (OSFS) CreateExcl(name string, data []byte) error {
	f, err := openFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	return writeClose(f, data, false)
}

func (OSFS) Overwrite(name string, data []byte) error {
	f, err := openFile(name, os.O_WRONLY|oNoFollow|oNonBlock, 0)
	if err != nil {
		return err
	}
	return writeClose(f, data, false)
}

func (OSFS) Append(name string, data []byte) error {
	// O_RDWR, not O_WRONLY: smbnetfs hangs for 4 s and fails an
	// O_WRONLY|O_APPEND open.
	f, err := openFile(name, os.O_RDWR|os.O_CREATE|os.O_APPEND|oNoFollow|oNonBlock, 0o666)
	if err != nil {
		return err
	}
	return writeClose(f, data, true)
}

// writeClose writes data in one call (at offset 0 unless appending) and
// closes f, reporting the first error. Close errors matter: NFS and SMB
// report write-back failures (EIO, ENOSPC, EDQUOT) at close.
func writeClose(f *os.File, data []byte, appending bool) error {
	var n int
	var err error
	if appending {
		n, err = f.Write(data)
	} else {
		n, err = f.WriteAt(data, 0)
	}
	if err == nil && n < len(data) {
		err = io.ErrShortWrite
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadDirNames lists a directory without following a symbolic link at its
// last component (ELOOP or ENOTDIR instead).
func (OSFS) ReadDirNames(name string) ([]string, error) {
	f, err := openDirNoFollow(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func (OSFS) Lstat(name string) (fs.FileInfo, error) { return lstat(name) }

func (OSFS) Remove(name string) error { return removeFile(filepath.FromSlash(name)) }

func (OSFS) Rmdir(name string) error { return removeDir(filepath.FromSlash(name)) }

func readFile(name string) ([]byte, error) {
	f, err := openFile(name, os.O_RDONLY|oNoFollow|oNonBlock, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, errNotRegular
	}
	b := make([]byte, 0, 1024)
	for {
		if len(b) == cap(b) {
			if len(b) >= maxOwnerSize {
				return nil, errTooBig
			}
			b = append(b, 0)[:len(b)]
		}
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				return b, nil
			}
			return nil, err
		}
	}
}
