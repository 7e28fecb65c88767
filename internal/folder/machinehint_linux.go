package folder

import (
	"path/filepath"

	"sharelock/internal/mountinfo"
)

// machineHintsSupported: Linux's CLOCK_BOOTTIME (the store's monotonic
// clock) is one clock for every process of a boot.
const machineHintsSupported = true

// onShare reports whether dir lies on a network or FUSE filesystem,
// judged from this process's mount table (a local read, where statfs on
// the share would be a round trip to its server). The path is taken as
// written (made absolute, not resolved: resolving symlinks would cost
// lookups on the share); a symlink that leads from a local folder onto a
// share only makes the answer "local" — no hints, no harm.
func onShare(dir string) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	m, ok := mountinfo.Lookup(abs)
	return ok && mountinfo.Network(m.Type)
}
