//go:build linux

package nfsfuse

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"
)

// NFSv3 procedures (RFC 1813) this client issues itself; go-nfs-client's
// path-based Target methods are not used (they resolve every path from the
// root and create files UNCHECKED).
const (
	procGetattr     = 1
	procSetattr     = 2
	procLookup      = 3
	procReadlink    = 5
	procRead        = 6
	procWrite       = 7
	procCreate      = 8
	procMkdir       = 9
	procSymlink     = 10
	procRemove      = 12
	procRmdir       = 13
	procRename      = 14
	procLink        = 15
	procReaddirplus = 17
	procFsstat      = 18
)

var procNames = map[uint32]string{
	procGetattr: "GETATTR", procSetattr: "SETATTR", procLookup: "LOOKUP", procReadlink: "READLINK",
	procRead: "READ", procWrite: "WRITE", procCreate: "CREATE", procMkdir: "MKDIR", procSymlink: "SYMLINK",
	procRemove: "REMOVE", procRmdir: "RMDIR", procRename: "RENAME", procLink: "LINK",
	procReaddirplus: "READDIRPLUS", procFsstat: "FSSTAT",
}

// createhow3 modes.
const (
	createUnchecked = 0
	createGuarded   = 1
)

// stable_how of WRITE: FILE_SYNC, so that the data and the file's metadata
// are on the server's disk when the reply arrives (no COMMIT needed).
const writeFileSync = 2

// nfs3ErrJukebox is NFS3ERR_JUKEBOX: the server cannot answer now; retry.
const nfs3ErrJukebox = 10008

// DefaultCallTimeout bounds one RPC, retransmissions included.
const DefaultCallTimeout = 30 * time.Second

// Error is a failed NFS call: the procedure, the NFS3 status (0 for a
// transport failure) and the errno it maps to. errors.Is(err, syscall.EEXIST)
// and the like work on it.
type Error struct {
	Proc   string
	Status uint32 // NFS3ERR_*; 0 if the call itself failed
	Errno  syscall.Errno
	Err    error // the transport error, if Status is 0
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("nfs %s: %v", e.Proc, e.Err)
	}
	return fmt.Sprintf("nfs %s: %s (%v)", e.Proc, statusName(e.Status), e.Errno)
}

func (e *Error) Unwrap() error { return e.Errno }

// errnoOf returns the errno of an error from the client (EIO for others).
func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Errno
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return syscall.EIO
}

// statusErrno maps an NFS3 status to the errno a local file system would
// return for the same condition. Several codes share their number with the
// Linux errno; the BSD-numbered ones (NAMETOOLONG, NOTEMPTY, DQUOT, STALE,
// REMOTE) and the NFS-only ones (>= 10001) do not.
func statusErrno(status uint32) syscall.Errno {
	switch status {
	case nfs.NFS3ErrPerm:
		return syscall.EPERM
	case nfs.NFS3ErrNoEnt:
		return syscall.ENOENT
	case nfs.NFS3ErrIO:
		return syscall.EIO
	case nfs.NFS3ErrNXIO:
		return syscall.ENXIO
	case nfs.NFS3ErrAcces:
		return syscall.EACCES
	case nfs.NFS3ErrExist:
		return syscall.EEXIST
	case nfs.NFS3ErrXDev:
		return syscall.EXDEV
	case nfs.NFS3ErrNoDev:
		return syscall.ENODEV
	case nfs.NFS3ErrNotDir:
		return syscall.ENOTDIR
	case nfs.NFS3ErrIsDir:
		return syscall.EISDIR
	case nfs.NFS3ErrInval:
		return syscall.EINVAL
	case nfs.NFS3ErrFBig:
		return syscall.EFBIG
	case nfs.NFS3ErrNoSpc:
		return syscall.ENOSPC
	case nfs.NFS3ErrROFS:
		return syscall.EROFS
	case nfs.NFS3ErrMLink:
		return syscall.EMLINK
	case nfs.NFS3ErrNameTooLong:
		return syscall.ENAMETOOLONG
	case nfs.NFS3ErrNotEmpty:
		return syscall.ENOTEMPTY
	case nfs.NFS3ErrDQuot:
		return syscall.EDQUOT
	case nfs.NFS3ErrStale, nfs.NFS3ErrBadHandle:
		return syscall.ESTALE
	case nfs.NFS3ErrRemote:
		return syscall.EREMOTE
	case nfs.NFS3ErrNotSupp:
		return syscall.EOPNOTSUPP
	case nfs.NFS3ErrBadType:
		return syscall.EINVAL
	case nfs3ErrJukebox:
		return syscall.EAGAIN
	}
	// NOT_SYNC, BAD_COOKIE, TOOSMALL, SERVERFAULT and unknown codes.
	return syscall.EIO
}

func statusName(status uint32) string {
	switch status {
	case nfs3ErrJukebox:
		return "NFS3ERR_JUKEBOX"
	}
	if e, ok := nfs.NFS3Error(status).(*nfs.Error); ok {
		return e.ErrorString
	}
	switch status {
	case nfs.NFS3ErrPerm:
		return "NFS3ERR_PERM"
	case nfs.NFS3ErrExist:
		return "NFS3ERR_EXIST"
	case nfs.NFS3ErrNoEnt:
		return "NFS3ERR_NOENT"
	}
	return fmt.Sprintf("NFS3 status %d", status)
}

// Client is an NFSv3 session with one export: a MOUNT of the export and a
// TCP connection to the NFS program. Its methods are safe for concurrent
// use; each is one RPC (READDIRPLUS may take several).
type Client struct {
	mount  *nfs.Mount
	target *nfs.Target // only its RPC connection and FSINFO are used
	auth   rpc.Auth
	root   []byte
	rtmax  uint32
	wtmax  uint32
	// Timeout bounds each call (DefaultCallTimeout unless changed before
	// use); a call without an answer by then fails with EIO.
	Timeout time.Duration
}

// Dial mounts export (a path on the server) over NFSv3 from server (a host
// name or address whose portmapper, on port 111, names the MOUNT and NFS
// ports) with AUTH_UNIX credentials of this process's user. The connections
// are made in the calling thread's network namespace; go-nfs-client
// reconnects in whatever thread it runs on, so a process that talks to a
// server in another namespace should run in that namespace as a whole.
func Dial(server, export string) (*Client, error) {
	m, err := nfs.DialMount(server, 0)
	if err != nil {
		return nil, fmt.Errorf("nfs: dialing the MOUNT service of %s: %w", server, err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "nfsfuse"
	}
	auth := rpc.NewAuthUnix(host, uint32(os.Geteuid()), uint32(os.Getegid())).Auth()
	t, err := m.Mount(export, auth)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("nfs: mounting %s:%s: %w", server, export, err)
	}
	fsinfo, err := t.FSInfo()
	if err != nil {
		_ = m.Unmount()
		m.Close()
		t.Close()
		return nil, fmt.Errorf("nfs: FSINFO of %s:%s: %w", server, export, err)
	}
	c := &Client{mount: m, target: t, auth: auth, Timeout: DefaultCallTimeout,
		rtmax: clamp(fsinfo.RTMax), wtmax: clamp(fsinfo.WTMax)}
	_, root, err := t.Lookup("/")
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("nfs: the root handle of %s:%s: %w", server, export, err)
	}
	c.root = root
	return c, nil
}

// clamp keeps a transfer size from FSINFO between 4 KiB and 1 MiB.
func clamp(n uint32) uint32 {
	return min(max(n, 4096), 1<<20)
}

// Root returns the file handle of the export's root directory.
func (c *Client) Root() []byte { return c.root }

// Close unmounts the export (MOUNT UMNT, best effort) and closes the
// connections.
func (c *Client) Close() error {
	done := make(chan error, 1)
	go func() { done <- c.mount.Unmount() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		err = errors.New("no answer within 5s")
	}
	c.mount.Close()
	c.target.Close()
	if err != nil {
		return fmt.Errorf("nfs: UMNT: %w", err)
	}
	return nil
}

// request is an RPC call to the NFS program: the header, then the
// procedure's arguments (XDR-encoded in field order).
type request struct {
	rpc.Header
	Args any
}

// call issues one NFS procedure and decodes its result into res (which may
// be nil) when the status is NFS3_OK.
func (c *Client) call(proc uint32, args, res any) error {
	name := procNames[proc]
	hdr := rpc.Header{Rpcvers: 2, Prog: nfs.Nfs3Prog, Vers: nfs.Nfs3Vers, Proc: proc, Cred: c.auth, Verf: rpc.AuthNull}
	type answer struct {
		r   io.ReadSeeker
		err error
	}
	for attempt := 0; ; attempt++ {
		ch := make(chan answer, 1)
		go func() {
			r, err := c.target.Call(&request{Header: hdr, Args: args})
			ch <- answer{r, err}
		}()
		timer := time.NewTimer(c.Timeout)
		var a answer
		select {
		case a = <-ch:
			timer.Stop()
		case <-timer.C:
			// The goroutine is left behind; go-nfs-client gives up on its
			// own after its retransmissions.
			return &Error{Proc: name, Errno: syscall.EIO, Err: fmt.Errorf("no answer within %v", c.Timeout)}
		}
		if a.err != nil {
			return &Error{Proc: name, Errno: syscall.EIO, Err: a.err}
		}
		status, err := xdr.ReadUint32(a.r)
		if err != nil {
			return &Error{Proc: name, Errno: syscall.EIO, Err: fmt.Errorf("decoding the status: %w", err)}
		}
		if status == nfs3ErrJukebox && attempt < 10 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if status != nfs.NFS3Ok {
			return &Error{Proc: name, Status: status, Errno: statusErrno(status)}
		}
		if res != nil {
			var err error
			if d, ok := res.(decoder); ok {
				err = d.decode(a.r)
			} else {
				err = xdr.Read(a.r, res)
			}
			if err != nil {
				return &Error{Proc: name, Errno: syscall.EIO, Err: fmt.Errorf("decoding the result: %w", err)}
			}
		}
		return nil
	}
}

// decoder is a result that decodes itself (one XDR can't describe).
type decoder interface{ decode(io.Reader) error }

// ---- XDR types (RFC 1813) not in go-nfs-client, or differently shaped ----

// sattrGuard is SETATTR's guard: no check.
type sattrGuard struct {
	Check bool         `xdr:"union"`
	Ctime nfs.NFS3Time `xdr:"unioncase=1"`
}

// entryRes is the result of CREATE, MKDIR and SYMLINK.
type entryRes struct {
	FH     nfs.PostOpFH3
	Attr   nfs.PostOpAttr
	DirWcc nfs.WccData
}

// Entry is a name in a directory and what it refers to.
type Entry struct {
	Name string
	FH   []byte
	Attr nfs.Fattr
}

// Getattr returns the attributes of fh.
func (c *Client) Getattr(fh []byte) (*nfs.Fattr, error) {
	var res struct{ Attr nfs.Fattr }
	if err := c.call(procGetattr, &struct{ FH []byte }{fh}, &res); err != nil {
		return nil, err
	}
	return &res.Attr, nil
}

// Setattr changes the attributes of fh that sattr sets and returns the new
// attributes.
func (c *Client) Setattr(fh []byte, sattr nfs.Sattr3) (*nfs.Fattr, error) {
	args := struct {
		FH    []byte
		Attr  nfs.Sattr3
		Guard sattrGuard
	}{fh, sattr, sattrGuard{}}
	var res struct{ Wcc nfs.WccData }
	if err := c.call(procSetattr, &args, &res); err != nil {
		return nil, err
	}
	return c.attrOr(fh, res.Wcc.After)
}

// attrOr returns the post-operation attributes if the server sent them, or
// fetches them.
func (c *Client) attrOr(fh []byte, a nfs.PostOpAttr) (*nfs.Fattr, error) {
	if a.IsSet {
		attr := a.Attr
		return &attr, nil
	}
	return c.Getattr(fh)
}

// Lookup resolves name in the directory dir.
func (c *Client) Lookup(dir []byte, name string) (*Entry, error) {
	var res struct {
		FH      []byte
		Attr    nfs.PostOpAttr
		DirAttr nfs.PostOpAttr
	}
	if err := c.call(procLookup, &nfs.Diropargs3{FH: dir, Filename: name}, &res); err != nil {
		return nil, err
	}
	return c.entry(name, res.FH, res.Attr)
}

func (c *Client) entry(name string, fh []byte, a nfs.PostOpAttr) (*Entry, error) {
	attr, err := c.attrOr(fh, a)
	if err != nil {
		return nil, err
	}
	return &Entry{Name: name, FH: fh, Attr: *attr}, nil
}

// created completes the result of CREATE, MKDIR or SYMLINK: the server may
// omit the new handle (then it is looked up) or its attributes.
func (c *Client) created(dir []byte, name string, res *entryRes) (*Entry, error) {
	if !res.FH.IsSet {
		return c.Lookup(dir, name)
	}
	return c.entry(name, res.FH.FH, res.Attr)
}

// Create creates the regular file name in dir with permission bits mode.
// With exclusive, it fails with EEXIST if name exists (a GUARDED create,
// decided by the server); without, an existing file is opened as it is
// (UNCHECKED), and truncated if truncate is set.
func (c *Client) Create(dir []byte, name string, mode uint32, exclusive, truncate bool) (*Entry, error) {
	how := uint32(createUnchecked)
	if exclusive {
		how = createGuarded
	}
	attr := nfs.Sattr3{Mode: nfs.SetMode{SetIt: true, Mode: mode & 0o7777}}
	if truncate && !exclusive {
		attr.Size = nfs.SetSize{SetIt: true, Size: 0}
	}
	args := struct {
		Where nfs.Diropargs3
		How   uint32
		Attr  nfs.Sattr3
	}{nfs.Diropargs3{FH: dir, Filename: name}, how, attr}
	var res entryRes
	if err := c.call(procCreate, &args, &res); err != nil {
		return nil, err
	}
	return c.created(dir, name, &res)
}

// Mkdir creates the directory name in dir; it fails with EEXIST if name
// exists.
func (c *Client) Mkdir(dir []byte, name string, mode uint32) (*Entry, error) {
	args := struct {
		Where nfs.Diropargs3
		Attr  nfs.Sattr3
	}{nfs.Diropargs3{FH: dir, Filename: name}, nfs.Sattr3{Mode: nfs.SetMode{SetIt: true, Mode: mode & 0o7777}}}
	var res entryRes
	if err := c.call(procMkdir, &args, &res); err != nil {
		return nil, err
	}
	return c.created(dir, name, &res)
}

// Symlink creates the symbolic link name in dir pointing to target.
func (c *Client) Symlink(dir []byte, name, target string) (*Entry, error) {
	args := struct {
		Where  nfs.Diropargs3
		Attr   nfs.Sattr3
		Target string
	}{nfs.Diropargs3{FH: dir, Filename: name}, nfs.Sattr3{}, target}
	var res entryRes
	if err := c.call(procSymlink, &args, &res); err != nil {
		return nil, err
	}
	return c.created(dir, name, &res)
}

// Readlink returns the target of the symbolic link fh.
func (c *Client) Readlink(fh []byte) (string, error) {
	var res struct {
		Attr   nfs.PostOpAttr
		Target string
	}
	if err := c.call(procReadlink, &struct{ FH []byte }{fh}, &res); err != nil {
		return "", err
	}
	return res.Target, nil
}

// Link makes name in dir another name of the file fh.
func (c *Client) Link(fh, dir []byte, name string) (*Entry, error) {
	args := struct {
		FH   []byte
		Link nfs.Diropargs3
	}{fh, nfs.Diropargs3{FH: dir, Filename: name}}
	var res struct {
		Attr nfs.PostOpAttr
		Wcc  nfs.WccData
	}
	if err := c.call(procLink, &args, &res); err != nil {
		return nil, err
	}
	return c.entry(name, fh, res.Attr)
}

// Remove removes the non-directory name from dir.
func (c *Client) Remove(dir []byte, name string) error {
	return c.call(procRemove, &nfs.Diropargs3{FH: dir, Filename: name}, nil)
}

// Rmdir removes the empty directory name from dir.
func (c *Client) Rmdir(dir []byte, name string) error {
	return c.call(procRmdir, &nfs.Diropargs3{FH: dir, Filename: name}, nil)
}

// Rename moves fromDir/from to toDir/to, replacing to if it exists.
func (c *Client) Rename(fromDir []byte, from string, toDir []byte, to string) error {
	args := struct {
		From nfs.Diropargs3
		To   nfs.Diropargs3
	}{nfs.Diropargs3{FH: fromDir, Filename: from}, nfs.Diropargs3{FH: toDir, Filename: to}}
	return c.call(procRename, &args, nil)
}

// Read reads up to n bytes (at most the server's maximum transfer) of fh at
// off. eof reports that the data ends at the end of the file.
func (c *Client) Read(fh []byte, off uint64, n int) (data []byte, eof bool, err error) {
	args := struct {
		FH     []byte
		Offset uint64
		Count  uint32
	}{fh, off, min(uint32(n), c.rtmax)}
	var res struct {
		Attr  nfs.PostOpAttr
		Count uint32
		EOF   bool
		Data  []byte
	}
	if err := c.call(procRead, &args, &res); err != nil {
		return nil, false, err
	}
	return res.Data, res.EOF, nil
}

// Write writes data to fh at off, FILE_SYNC, in as many WRITEs as the
// server's maximum transfer needs. It returns the bytes written and the
// file's attributes after the last write (nil if the server sent none).
func (c *Client) Write(fh []byte, off uint64, data []byte) (int, *nfs.Fattr, error) {
	written := 0
	var after *nfs.Fattr
	for written < len(data) || len(data) == 0 {
		chunk := data[written:min(len(data), written+int(c.wtmax))]
		args := struct {
			FH     []byte
			Offset uint64
			Count  uint32
			Stable uint32
			Data   []byte
		}{fh, off + uint64(written), uint32(len(chunk)), writeFileSync, chunk}
		var res struct {
			Wcc       nfs.WccData
			Count     uint32
			Committed uint32
			Verf      uint64
		}
		if err := c.call(procWrite, &args, &res); err != nil {
			return written, nil, err
		}
		if res.Wcc.After.IsSet {
			a := res.Wcc.After.Attr
			after = &a
		}
		if len(data) == 0 {
			break
		}
		if res.Count == 0 {
			return written, after, &Error{Proc: "WRITE", Errno: syscall.EIO, Err: errors.New("the server wrote 0 bytes")}
		}
		if res.Committed != writeFileSync {
			return written, after, &Error{Proc: "WRITE", Errno: syscall.EIO,
				Err: fmt.Errorf("asked for a FILE_SYNC write, the server committed it as %d", res.Committed)}
		}
		written += int(min(res.Count, uint32(len(chunk))))
	}
	return written, after, nil
}

// ReadDir lists the directory dir with READDIRPLUS (without "." and "..").
// Entries whose handle or attributes the server left out have a nil FH or a
// zero Attr.
func (c *Client) ReadDir(dir []byte) ([]Entry, error) {
	type args struct {
		FH         []byte
		Cookie     uint64
		CookieVerf uint64
		DirCount   uint32
		MaxCount   uint32
	}
	a := args{FH: dir, DirCount: 16 << 10, MaxCount: min(64<<10, c.rtmax)}
	var out []Entry
	for round := 0; ; round++ {
		if round > 100000 {
			return nil, &Error{Proc: "READDIRPLUS", Errno: syscall.EIO, Err: errors.New("the listing does not end")}
		}
		var res readdirplusRes
		if err := c.call(procReaddirplus, &a, &res); err != nil {
			return nil, err
		}
		for _, e := range res.entries {
			a.Cookie = e.Cookie
			if e.FileName == "." || e.FileName == ".." {
				continue
			}
			ent := Entry{Name: e.FileName}
			if e.Handle.IsSet {
				ent.FH = e.Handle.FH
			}
			if e.Attr.IsSet {
				ent.Attr = e.Attr.Attr
			}
			out = append(out, ent)
		}
		if res.eof {
			return out, nil
		}
		if len(res.entries) == 0 {
			return nil, &Error{Proc: "READDIRPLUS", Errno: syscall.EIO, Err: errors.New("no entries and no end of the listing")}
		}
		a.CookieVerf = res.verf
	}
}

// readdirplusRes decodes a READDIRPLUS3resok: the entries are an XDR
// optional-data list (a "follows" flag before each).
type readdirplusRes struct {
	entries []nfs.EntryPlus
	verf    uint64
	eof     bool
}

func (r *readdirplusRes) decode(rd io.Reader) error {
	var head struct {
		DirAttr nfs.PostOpAttr
		Verf    uint64
	}
	if err := xdr.Read(rd, &head); err != nil {
		return err
	}
	r.verf = head.Verf
	for {
		var item struct {
			Follows bool          `xdr:"union"`
			Entry   nfs.EntryPlus `xdr:"unioncase=1"`
		}
		if err := xdr.Read(rd, &item); err != nil {
			return err
		}
		if !item.Follows {
			break
		}
		r.entries = append(r.entries, item.Entry)
	}
	return xdr.Read(rd, &r.eof)
}

// Fsstat is the result of FSSTAT: the total, free and available bytes and
// files of the file system holding a handle.
type Fsstat struct {
	Attr                   nfs.PostOpAttr
	Tbytes, Fbytes, Abytes uint64
	Tfiles, Ffiles, Afiles uint64
	Invarsec               uint32
}

// Statfs returns the file system statistics of the export.
func (c *Client) Statfs(fh []byte) (*Fsstat, error) {
	var res Fsstat
	if err := c.call(procFsstat, &struct{ FH []byte }{fh}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
