//go:build linux

package nfsfuse

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/willscott/go-nfs-client/nfs"
)

// Mount serves the export c is connected to at the directory mnt (mounted
// with mount(2), so it needs root) until the returned server is unmounted.
// name labels the mount in /proc/mounts (its source is "nfsfuse:"+name).
// Kernel caches are off: entry, negative-entry and attribute timeouts are
// 0, and every open file uses direct I/O, so every lookup, stat, read and
// write reaches the NFS server.
func Mount(c *Client, mnt, name string) (*fuse.Server, error) {
	root := &node{c: c, fh: c.Root()}
	zero := time.Duration(0)
	opts := &fs.Options{
		MountOptions: fuse.MountOptions{
			DirectMountStrict:  true, // mount(2) as root; no fusermount
			FsName:             "nfsfuse:" + name,
			Name:               "nfsfuse",
			DisableReadDirPlus: true, // a listing must not look up every entry
			DisableXAttrs:      true, // NFSv3 has none
			MaxWrite:           1 << 20,
		},
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
	}
	srv, err := fs.Mount(mnt, root, opts)
	if err != nil {
		return nil, fmt.Errorf("nfsfuse: mounting at %s: %w", mnt, err)
	}
	return srv, nil
}

// node is a file, directory or symbolic link: its NFS file handle.
type node struct {
	fs.Inode
	c  *Client
	fh []byte
}

var (
	_ fs.NodeLookuper   = (*node)(nil)
	_ fs.NodeGetattrer  = (*node)(nil)
	_ fs.NodeSetattrer  = (*node)(nil)
	_ fs.NodeAccesser   = (*node)(nil)
	_ fs.NodeOpener     = (*node)(nil)
	_ fs.NodeCreater    = (*node)(nil)
	_ fs.NodeMkdirer    = (*node)(nil)
	_ fs.NodeSymlinker  = (*node)(nil)
	_ fs.NodeReadlinker = (*node)(nil)
	_ fs.NodeLinker     = (*node)(nil)
	_ fs.NodeUnlinker   = (*node)(nil)
	_ fs.NodeRmdirer    = (*node)(nil)
	_ fs.NodeRenamer    = (*node)(nil)
	_ fs.NodeReaddirer  = (*node)(nil)
	_ fs.NodeStatfser   = (*node)(nil)
)

// fileType returns the S_IFMT bits of an NFS file type.
func fileType(t uint32) uint32 {
	switch t {
	case nfs.NF3Reg:
		return syscall.S_IFREG
	case nfs.NF3Dir:
		return syscall.S_IFDIR
	case nfs.NF3Blk:
		return syscall.S_IFBLK
	case nfs.NF3Chr:
		return syscall.S_IFCHR
	case nfs.NF3Lnk:
		return syscall.S_IFLNK
	case nfs.NF3Sock:
		return syscall.S_IFSOCK
	case nfs.NF3FIFO:
		return syscall.S_IFIFO
	}
	return syscall.S_IFREG
}

// stableAttr identifies a node to go-fuse: the server's file ID as inode
// number and a hash of the file handle as generation, so that a file ID the
// server reuses for a new file (a new handle) makes a new node instead of
// reviving the old one with its stale handle.
func stableAttr(fh []byte, a *nfs.Fattr) fs.StableAttr {
	h := fnv.New64a()
	h.Write(fh)
	return fs.StableAttr{Mode: fileType(a.Type), Ino: a.Fileid, Gen: h.Sum64()}
}

// fillAttr converts NFS attributes to FUSE attributes.
func fillAttr(a *nfs.Fattr, out *fuse.Attr) {
	out.Ino = a.Fileid
	out.Mode = fileType(a.Type) | a.FileMode&0o7777
	out.Nlink = a.Nlink
	out.Owner = fuse.Owner{Uid: a.UID, Gid: a.GID}
	out.Size = a.Filesize
	out.Blocks = (a.Used + 511) / 512
	out.Blksize = 4096
	if t := fileType(a.Type); t == syscall.S_IFBLK || t == syscall.S_IFCHR {
		out.Rdev = uint32(a.SpecData[0]<<8 | a.SpecData[1]&0xff)
	}
	out.Atime, out.Atimensec = uint64(a.Atime.Seconds), a.Atime.Nseconds
	out.Mtime, out.Mtimensec = uint64(a.Mtime.Seconds), a.Mtime.Nseconds
	out.Ctime, out.Ctimensec = uint64(a.Ctime.Seconds), a.Ctime.Nseconds
}

// child makes (or finds) the node of a directory entry and fills out.
func (n *node) child(ctx context.Context, e *Entry, out *fuse.EntryOut) *fs.Inode {
	fillAttr(&e.Attr, &out.Attr)
	return n.NewInode(ctx, &node{c: n.c, fh: e.FH}, stableAttr(e.FH, &e.Attr))
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	e, err := n.c.Lookup(n.fh, name)
	if err != nil {
		return nil, errnoOf(err)
	}
	return n.child(ctx, e, out), 0
}

// handleOf returns the file handle of an open file, else of the node (an
// open file keeps the handle it was opened with).
func (n *node) handleOf(f fs.FileHandle) []byte {
	if h, ok := f.(*file); ok {
		return h.fh
	}
	return n.fh
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a, err := n.c.Getattr(n.handleOf(f))
	if err != nil {
		return errnoOf(err)
	}
	fillAttr(a, &out.Attr)
	return 0
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	var s nfs.Sattr3
	if m, ok := in.GetMode(); ok {
		s.Mode = nfs.SetMode{SetIt: true, Mode: m & 0o7777}
	}
	if uid, ok := in.GetUID(); ok {
		s.UID = nfs.SetUID{SetIt: true, UID: uid}
	}
	if gid, ok := in.GetGID(); ok {
		s.GID = nfs.SetUID{SetIt: true, UID: gid}
	}
	if size, ok := in.GetSize(); ok {
		s.Size = nfs.SetSize{SetIt: true, Size: size}
	}
	s.Atime = setTime(in.GetATime())
	s.Mtime = setTime(in.GetMTime())
	if in.Valid&fuse.FATTR_ATIME_NOW != 0 {
		s.Atime = nfs.SetTime{SetIt: nfs.SetToServerTime}
	}
	if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
		s.Mtime = nfs.SetTime{SetIt: nfs.SetToServerTime}
	}
	a, err := n.c.Setattr(n.handleOf(f), s)
	if err != nil {
		return errnoOf(err)
	}
	fillAttr(a, &out.Attr)
	return 0
}

func setTime(t time.Time, ok bool) nfs.SetTime {
	if !ok {
		return nfs.SetTime{}
	}
	return nfs.SetTime{SetIt: nfs.SetToClientTime,
		Time: nfs.NFS3Time{Seconds: uint32(t.Unix()), Nseconds: uint32(t.Nanosecond())}}
}

// Access grants everything: the server checks permissions on every call.
func (n *node) Access(ctx context.Context, mask uint32) syscall.Errno { return 0 }

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	f := &file{c: n.c, fh: n.fh, append: flags&syscall.O_APPEND != 0}
	if flags&syscall.O_TRUNC != 0 && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		if _, err := n.c.Setattr(n.fh, nfs.Sattr3{Size: nfs.SetSize{SetIt: true}}); err != nil {
			return nil, 0, errnoOf(err)
		}
	}
	return f, fuse.FOPEN_DIRECT_IO, 0
}

// Create creates a regular file: with O_EXCL a GUARDED CREATE (EEXIST from
// the server if the name exists), else UNCHECKED (opens an existing file).
func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	excl := flags&syscall.O_EXCL != 0
	trunc := flags&syscall.O_TRUNC != 0 && flags&syscall.O_ACCMODE != syscall.O_RDONLY
	e, err := n.c.Create(n.fh, name, mode, excl, trunc)
	if err != nil {
		return nil, nil, 0, errnoOf(err)
	}
	ch := n.child(ctx, e, out)
	return ch, &file{c: n.c, fh: e.FH, append: flags&syscall.O_APPEND != 0}, fuse.FOPEN_DIRECT_IO, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	e, err := n.c.Mkdir(n.fh, name, mode)
	if err != nil {
		return nil, errnoOf(err)
	}
	return n.child(ctx, e, out), 0
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	e, err := n.c.Symlink(n.fh, name, target)
	if err != nil {
		return nil, errnoOf(err)
	}
	return n.child(ctx, e, out), 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	t, err := n.c.Readlink(n.fh)
	if err != nil {
		return nil, errnoOf(err)
	}
	return []byte(t), 0
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	e, err := n.c.Link(t.fh, n.fh, name)
	if err != nil {
		return nil, errnoOf(err)
	}
	return n.child(ctx, e, out), 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return errnoOf(n.c.Remove(n.fh, name))
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return errnoOf(n.c.Rmdir(n.fh, name))
}

// Rename replaces an existing target, as rename(2) does. NFSv3 cannot
// refuse to replace or exchange atomically, so RENAME_NOREPLACE and
// RENAME_EXCHANGE fail with EINVAL.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if flags != 0 {
		return syscall.EINVAL
	}
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	return errnoOf(n.c.Rename(n.fh, name, np.fh, newName))
}

func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	entries, err := n.c.ReadDir(n.fh)
	if err != nil {
		return nil, errnoOf(err)
	}
	list := make([]fuse.DirEntry, 0, len(entries))
	for _, e := range entries {
		de := fuse.DirEntry{Name: e.Name, Ino: e.Attr.Fileid}
		if e.Attr.Type != 0 {
			de.Mode = fileType(e.Attr.Type)
		}
		list = append(list, de)
	}
	return fs.NewListDirStream(list), 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	st, err := n.c.Statfs(n.fh)
	if err != nil {
		return errnoOf(err)
	}
	const bsize = 4096
	out.Bsize, out.Frsize, out.NameLen = bsize, bsize, 255
	out.Blocks, out.Bfree, out.Bavail = st.Tbytes/bsize, st.Fbytes/bsize, st.Abytes/bsize
	out.Files, out.Ffree = st.Tfiles, st.Ffiles
	return 0
}

// file is an open file: NFSv3 has no open state, so it only remembers the
// handle it was opened with and whether it appends.
type file struct {
	c      *Client
	fh     []byte
	append bool
	mu     sync.Mutex // serializes appends of this open file
}

var (
	_ fs.FileReader    = (*file)(nil)
	_ fs.FileWriter    = (*file)(nil)
	_ fs.FileFlusher   = (*file)(nil)
	_ fs.FileFsyncer   = (*file)(nil)
	_ fs.FileGetattrer = (*file)(nil)
)

func (f *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	var got []byte
	for len(got) < len(dest) {
		data, eof, err := f.c.Read(f.fh, uint64(off)+uint64(len(got)), len(dest)-len(got))
		if err != nil {
			if len(got) > 0 {
				break
			}
			return nil, errnoOf(err)
		}
		got = append(got, data...)
		if eof || len(data) == 0 {
			break
		}
	}
	return fuse.ReadResultData(got), 0
}

// Write writes at off, or, for a file opened with O_APPEND, at the end of
// the file as the server has it now (the kernel's idea of the size may be
// stale: another client may have appended). Two clients appending at the
// same moment can still overwrite each other; NFSv3 has no atomic append.
func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if f.append {
		f.mu.Lock()
		defer f.mu.Unlock()
		a, err := f.c.Getattr(f.fh)
		if err != nil {
			return 0, errnoOf(err)
		}
		off = int64(a.Filesize)
	}
	n, _, err := f.c.Write(f.fh, uint64(off), data)
	if err != nil && n == 0 {
		return 0, errnoOf(err)
	}
	return uint32(n), 0
}

// Flush has nothing to do: every write was FILE_SYNC.
func (f *file) Flush(ctx context.Context) syscall.Errno { return 0 }

// Fsync has nothing to do: every write was FILE_SYNC.
func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno { return 0 }

func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	a, err := f.c.Getattr(f.fh)
	if err != nil {
		return errnoOf(err)
	}
	fillAttr(a, &out.Attr)
	return 0
}
