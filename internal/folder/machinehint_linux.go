package folder

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"sharelock/internal/mountinfo"
)

// machineHintsSupported: Linux's CLOCK_BOOTTIME (the store's monotonic
// clock) is one clock for every process of a boot and time namespace.
const machineHintsSupported = true

// machineClock reports whether the store's monotonic clock reads
// CLOCK_BOOTTIME here (where it cannot, internal/clock falls back to a
// clock of the process's own, useless to other processes).
func machineClock() bool {
	var ts unix.Timespec
	return unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) == nil
}

// shareKey reports whether dir lies on a network or FUSE filesystem, judged
// from this process's mount table (a local read, where statfs on the share
// would be a round trip to its server), and if so returns what identifies
// the folder dir names besides its path: the mount (ID, device, source,
// root, type), this process's mount namespace (containers that share a
// cache folder may mount different shares at one path) and its time
// namespace (CLOCK_BOOTTIME is offset per time namespace). The path is
// taken as written (made absolute, not resolved: resolving symlinks would
// cost lookups on the share): a lock folder reached through a symlink from
// a local folder onto a share counts as local — no machine hints, and its
// waiters also watch with inotify, which there sees only this client's
// changes (they poll all the same).
func shareKey(dir string) (key string, share bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	m, ok := mountinfo.Lookup(abs)
	if !ok || !mountinfo.Network(m.Type) {
		return "", false
	}
	mnt, _ := os.Readlink("/proc/self/ns/mnt")
	tns, _ := os.Readlink("/proc/self/ns/time") // none before Linux 5.6
	return strings.Join([]string{m.ID, m.Dev, m.Source, m.Root, m.Point, m.Type, mnt, tns}, "\x00"), true
}

// openHint opens a hint file for reading only if it is a regular file (not
// followed through a symlink) owned by this process's effective user:
// hints from anyone else are not trusted.
func openHint(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != os.Geteuid() {
		f.Close()
		return nil, os.ErrPermission
	}
	return f, nil
}
