// Package faultfs mounts a backing directory through FUSE so that tests and
// benchmarks can see and disturb every filesystem call a program makes on it,
// the way a network share would: count the calls (round trips), slow them
// down, fail them with an errno, stall them, and hide new entries for a while.
//
//	fsys := faultfs.Mount(t, backing) // mounted at fsys.Dir(), unmounted in t.Cleanup
//	fsys.FailOps(syscall.ENOSPC, faultfs.OpCreate)
//	fsys.Hang(faultfs.OpWrite)   // writes block until Unhang
//	fsys.DelayVisibility(500 * time.Millisecond)
//	fmt.Println(fsys.Counts())   // map[getattr:3 lookup:7 ...]
//
// Mounting needs Linux, root and /dev/fuse (the mount is made with mount(2)
// directly; no fusermount). Where they are missing Mount skips the test with
// the reason, except when the environment variable CI is "true": then it
// fails it, so that CI never silently skips. On other operating systems the
// package compiles, and Mount always skips.
//
// # What a call is
//
// One call is one request the kernel sends to the file system, counted by
// the Op it belongs to (see the Op constants). The mount disables the
// kernel's entry, attribute and negative-lookup caches (timeouts 0), READDIRPLUS,
// extended attributes and FUSE passthrough, so that every path resolution,
// stat, read and write reaches faultfs and the counts reflect the round trips
// a network client without caches would make. Requests that need no answer
// (FORGET) and the mount's own INIT/DESTROY are not counted.
//
// # Faults
//
// Every knob is safe for concurrent use and may be changed while the file
// system is in use. A call first counts itself, then blocks while its Op is
// hung (Hang), then sleeps its latency (SetLatency), then fails with the
// injected errno (FailOps) without performing the operation on the backing
// directory, and otherwise is forwarded to the backing directory.
//
// DelayVisibility(d) models a client that learns of other clients' new
// entries late: an entry of the backing directory whose birth time (statx
// btime; where the backing file system records none, the moment faultfs first
// saw the entry; either is only as precise as the kernel's coarse clock, a
// few milliseconds) is less than d ago is reported as absent to this mount:
// LOOKUP answers ENOENT and directory listings (READDIR) omit it. Entries
// created through this mount (mkdir, create, mknod, symlink, link, and the
// target of a rename) are visible through it at once, as a client sees its own
// changes. Only visibility is delayed: a mkdir or exclusive create of a
// hidden name still fails with EEXIST, as the file server would answer, and
// an entry that is already known to the kernel (an open file) keeps working.
package faultfs

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Op is a kind of filesystem call (a FUSE request).
type Op int

// The calls faultfs tells apart.
const (
	// OpLookup resolves one path component (LOOKUP).
	OpLookup Op = iota
	// OpGetattr reads attributes: stat, lstat, fstat (GETATTR, STATX, and
	// access checks, which the kernel answers from GETATTR).
	OpGetattr
	// OpSetattr changes attributes: chmod, chown, truncate, utimes (SETATTR).
	OpSetattr
	// OpMkdir creates a directory (MKDIR).
	OpMkdir
	// OpMknod creates a special file (MKNOD).
	OpMknod
	// OpCreate creates and opens a file (CREATE, TMPFILE).
	OpCreate
	// OpOpen opens an existing file (OPEN).
	OpOpen
	// OpRead reads file data (READ).
	OpRead
	// OpWrite writes file data (WRITE).
	OpWrite
	// OpFlush is sent at every close of a file descriptor (FLUSH).
	OpFlush
	// OpFsync syncs a file or directory (FSYNC, FSYNCDIR).
	OpFsync
	// OpRelease is sent when the last descriptor of an open file is closed
	// (RELEASE). The kernel does not wait for it.
	OpRelease
	// OpUnlink removes a file (UNLINK).
	OpUnlink
	// OpRmdir removes a directory (RMDIR).
	OpRmdir
	// OpReaddir opens a directory for listing (OPENDIR). It is counted once
	// per listing, not once per READDIR batch.
	OpReaddir
	// OpReleasedir closes a directory listing (RELEASEDIR).
	OpReleasedir
	// OpRename renames an entry (RENAME).
	OpRename
	// OpSymlink creates a symbolic link (SYMLINK).
	OpSymlink
	// OpLink creates a hard link (LINK).
	OpLink
	// OpReadlink reads a symbolic link (READLINK).
	OpReadlink
	// OpStatfs reads file system statistics (STATFS).
	OpStatfs
	// OpLock gets or sets a POSIX or flock lock (GETLK, SETLK, SETLKW).
	OpLock
	// OpOther is everything else: LSEEK (SEEK_DATA/SEEK_HOLE), FALLOCATE,
	// IOCTL, COPY_FILE_RANGE.
	OpOther

	numOps
)

var opNames = [numOps]string{
	OpLookup: "lookup", OpGetattr: "getattr", OpSetattr: "setattr", OpMkdir: "mkdir",
	OpMknod: "mknod", OpCreate: "create", OpOpen: "open", OpRead: "read", OpWrite: "write",
	OpFlush: "flush", OpFsync: "fsync", OpRelease: "release", OpUnlink: "unlink",
	OpRmdir: "rmdir", OpReaddir: "readdir", OpReleasedir: "releasedir", OpRename: "rename",
	OpSymlink: "symlink", OpLink: "link", OpReadlink: "readlink", OpStatfs: "statfs",
	OpLock: "lock", OpOther: "other",
}

// String returns the op's name ("lookup", "write", ...).
func (o Op) String() string {
	if o >= 0 && o < numOps {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Ops returns every Op, in order.
func Ops() []Op {
	ops := make([]Op, numOps)
	for i := range ops {
		ops[i] = Op(i)
	}
	return ops
}

// FormatCounts renders counts as "lookup=3 getattr=2 ... total=9", in Op
// order, leaving out zeros.
func FormatCounts(c map[Op]int64) string {
	var b strings.Builder
	var total int64
	keys := make([]Op, 0, len(c))
	for op := range c {
		keys = append(keys, op)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, op := range keys {
		if c[op] == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s=%d ", op, c[op])
		total += c[op]
	}
	fmt.Fprintf(&b, "total=%d", total)
	return b.String()
}

// Total returns the sum of counts.
func Total(c map[Op]int64) int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// FS is a mounted fault-injecting file system. Its methods are safe for
// concurrent use.
type FS struct {
	dir, backing string

	counts [numOps]atomic.Int64
	hung   atomic.Int64 // calls blocked in Hang right now

	mu      sync.Mutex
	latency [numOps]time.Duration
	fail    [numOps]syscall.Errno
	hang    [numOps]bool
	release chan struct{} // closed by Unhang: hung calls proceed
	delay   time.Duration
	closed  bool // unmounting: no more faults

	// Delayed visibility bookkeeping (see the package comment).
	own       map[entryID]struct{}  // entries created through the mount
	firstSeen map[entryID]time.Time // birth times for back ends without btime

	unmountOnce sync.Once
	unmountErr  error
	unmount     func() error // set by Mount
}

// entryID identifies a backing entry across renames. btime (when the
// backing file system records it) tells apart a later entry that reuses
// the inode number.
type entryID struct {
	dev, ino uint64
	btime    int64
}

func newFS(dir, backing string) *FS {
	return &FS{
		dir: dir, backing: backing,
		release:   make(chan struct{}),
		own:       map[entryID]struct{}{},
		firstSeen: map[entryID]time.Time{},
	}
}

// Dir returns the mount point: use paths under it to go through faultfs.
func (f *FS) Dir() string { return f.dir }

// Backing returns the backing directory (the "file server's" view: calls made
// there directly bypass faultfs, like another machine would).
func (f *FS) Backing() string { return f.backing }

// SetLatency makes every call of op take at least d longer (d <= 0: none).
func (f *FS) SetLatency(op Op, d time.Duration) {
	if op < 0 || op >= numOps {
		return
	}
	f.mu.Lock()
	f.latency[op] = max(d, 0)
	f.mu.Unlock()
}

// FailOps makes every call of the given ops fail with errno (for example
// syscall.EIO, syscall.ENOSPC, syscall.EROFS) without performing it. With no
// ops it applies to every Op. errno 0 removes the failure for those ops.
func (f *FS) FailOps(errno syscall.Errno, ops ...Op) {
	f.mu.Lock()
	for _, op := range opsOrAll(ops) {
		f.fail[op] = errno
	}
	f.mu.Unlock()
}

// Hang makes calls of the given ops block until Unhang (or until the file
// system is unmounted), like requests to a file server that stopped
// answering. With no ops every call hangs (a full network stall). Calls of
// other ops go on normally.
func (f *FS) Hang(ops ...Op) {
	f.mu.Lock()
	for _, op := range opsOrAll(ops) {
		f.hang[op] = true
	}
	f.mu.Unlock()
}

// Unhang ends every Hang: blocked calls proceed, new calls no longer block.
func (f *FS) Unhang() {
	f.mu.Lock()
	f.unhangLocked()
	f.mu.Unlock()
}

func (f *FS) unhangLocked() {
	f.hang = [numOps]bool{}
	close(f.release)
	f.release = make(chan struct{})
}

// Hung returns how many calls are blocked by Hang right now.
func (f *FS) Hung() int { return int(f.hung.Load()) }

// DelayVisibility hides entries that the backing directory gained less than
// d ago from this mount (see the package comment for the exact rule).
// d <= 0 turns it off.
func (f *FS) DelayVisibility(d time.Duration) {
	f.mu.Lock()
	f.delay = max(d, 0)
	f.mu.Unlock()
}

// Clear removes every injected fault: failures, latencies, hangs (blocked
// calls proceed) and delayed visibility. Counts are kept.
func (f *FS) Clear() {
	f.mu.Lock()
	f.fail = [numOps]syscall.Errno{}
	f.latency = [numOps]time.Duration{}
	f.delay = 0
	f.unhangLocked()
	f.mu.Unlock()
}

// Counts returns how many calls of each op the file system received since it
// was mounted or since the last ResetCounts. Ops never called are absent.
func (f *FS) Counts() map[Op]int64 {
	c := map[Op]int64{}
	for op := range numOps {
		if n := f.counts[op].Load(); n != 0 {
			c[op] = n
		}
	}
	return c
}

// ResetCounts sets every count to zero.
func (f *FS) ResetCounts() {
	for op := range numOps {
		f.counts[op].Store(0)
	}
}

// Unmount unmounts the file system now (Mount's cleanup does it otherwise).
// Hung calls are released first. It is idempotent.
func (f *FS) Unmount() error {
	f.unmountOnce.Do(func() {
		f.mu.Lock()
		f.closed = true
		f.fail = [numOps]syscall.Errno{}
		f.latency = [numOps]time.Duration{}
		f.delay = 0
		f.unhangLocked()
		f.mu.Unlock()
		if f.unmount != nil {
			f.unmountErr = f.unmount()
		}
	})
	return f.unmountErr
}

// enter is called at the start of every call: it counts it and applies the
// faults, returning the errno to fail it with (0: go on).
func (f *FS) enter(op Op) syscall.Errno {
	f.counts[op].Add(1)
	f.mu.Lock()
	if f.hang[op] && !f.closed {
		wait := f.release
		f.mu.Unlock()
		f.hung.Add(1)
		<-wait
		f.hung.Add(-1)
		f.mu.Lock()
	}
	lat, errno := f.latency[op], f.fail[op]
	f.mu.Unlock()
	if lat > 0 {
		time.Sleep(lat)
	}
	return errno
}

func (f *FS) visibilityDelay() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.delay
}

// markOwn records that an entry was created through the mount.
func (f *FS) markOwn(id entryID) {
	f.mu.Lock()
	f.own[id] = struct{}{}
	f.mu.Unlock()
}

// hiddenID applies the delayed-visibility rule to an entry whose birth time
// is btime (zero: unknown).
func (f *FS) hiddenID(id entryID, btime time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.delay <= 0 {
		return false
	}
	if _, ok := f.own[id]; ok {
		return false
	}
	if btime.IsZero() {
		t, ok := f.firstSeen[id]
		if !ok {
			t = time.Now()
			f.firstSeen[id] = t
		}
		btime = t
	}
	return time.Since(btime) < f.delay
}

func opsOrAll(ops []Op) []Op {
	if len(ops) == 0 {
		return Ops()
	}
	out := ops[:0:0]
	for _, op := range ops {
		if op >= 0 && op < numOps {
			out = append(out, op)
		}
	}
	return out
}
