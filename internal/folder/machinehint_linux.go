package folder

import (
	"os"
	"path/filepath"
	"strings"
)

// machineHintsSupported: Linux's CLOCK_BOOTTIME (the store's monotonic
// clock) is one clock for every process of a boot.
const machineHintsSupported = true

// onShare reports whether dir lies on a network or FUSE filesystem,
// judged from this process's mount table (/proc/self/mountinfo): a local
// read, where statfs on the share would be a round trip to its server.
// The path is taken as written (made absolute, not resolved: resolving
// symlinks would cost lookups on the share); a symlink that leads from a
// local folder onto a share only makes the answer "local" — no hints, no
// harm.
func onShare(dir string) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	return networkFSType(mountType(string(b), abs))
}

// mountType returns the filesystem type of the mount that holds the
// absolute path abs, given the text of a mountinfo file ("" if none).
func mountType(mountinfo, abs string) string {
	best, bestType := -1, ""
	for _, line := range strings.Split(mountinfo, "\n") {
		// "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw"
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f := strings.Fields(pre)
		t := strings.Fields(post)
		if len(f) < 5 || len(t) < 1 {
			continue
		}
		mp := unescapeMount(f[4])
		if !within(abs, mp) || len(mp) < best {
			continue
		}
		best, bestType = len(mp), t[0]
	}
	return bestType
}

// within reports whether path is mp or below it.
func within(path, mp string) bool {
	if mp == "/" {
		return true
	}
	return path == mp || strings.HasPrefix(path, mp+"/")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// networkFSType reports whether a mountinfo filesystem type is a network
// filesystem or a FUSE client (sshfs, smbnetfs, ...).
func networkFSType(t string) bool {
	switch t {
	case "nfs", "nfs4", "cifs", "smb3", "smbfs", "afs", "ceph", "9p", "fuse", "fuseblk":
		return true
	}
	return strings.HasPrefix(t, "fuse.")
}
