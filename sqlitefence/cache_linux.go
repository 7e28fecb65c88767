package sqlitefence

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"sharelock/internal/mountinfo"
)

// onShare caches, per database path, whether it lies on a network or FUSE
// filesystem (from the mount table, a local read).
var onShare sync.Map // path -> bool

// dropPageCache drops this client's cached pages of the database file, so
// that SQLite's next read — the change counter it checks when a
// transaction begins — comes from the file server. A client of a network
// filesystem keeps the pages of an open file (sshfs does until it is
// closed), and SQLite, seeing its old change counter, trusts them: a
// connection that stayed open while another client wrote would read the
// database as it was, the fence row included, and its stale write would
// pass the fence.
//
// It calls posix_fadvise(DONTNEED) on SQLite's own descriptors of the file,
// found in /proc/self/fd: local work, no round trip, and no descriptor of
// ours to open and close (closing any descriptor of a file drops every
// POSIX lock the process holds on it, SQLite's included). Only for files on
// network filesystems (a local page cache is coherent); a path SQLite
// reached through a symlink is not recognised. Best effort.
func dropPageCache(path string) {
	shared, ok := onShare.Load(path)
	if !ok {
		m, found := mountinfo.Lookup(path)
		shared = found && mountinfo.Network(m.Type)
		onShare.Store(path, shared)
	}
	if !shared.(bool) {
		return
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	want := filepath.Clean(path)
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == want {
			// If fd was closed and reused since the readlink, this drops
			// another file's clean cached pages: harmless.
			_ = unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
		}
	}
}
