//go:build linux

// Package mountinfo finds the mount that holds a path, from the process's
// mount table (/proc/self/mountinfo): its mount point, filesystem type
// (with FUSE subtypes, "fuse.sshfs") and source. Reading it is local work,
// where statfs on a network share would be a round trip to its server.
package mountinfo

import (
	"os"
	"strings"
)

// Mount is one line of a mountinfo file.
type Mount struct {
	ID     string // the mount ID (unique among current mounts; reused after unmount)
	Dev    string // MAJOR:MINOR of the filesystem
	Root   string // the folder of the filesystem mounted here, unescaped
	Point  string // the mount point, unescaped
	Type   string // the filesystem type: "ext4", "nfs4", "fuse.sshfs", ...
	Source string // the mount source, unescaped: "/dev/sda1", "srv:/export", ...
}

// Lookup returns the mount that holds path, an absolute path taken as
// written (symlinks are not resolved: that is the caller's choice, as it
// costs lookups). ok is false if the table cannot be read or has no mount
// above path.
func Lookup(path string) (m Mount, ok bool) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return Mount{}, false
	}
	return Of(string(b), path)
}

// Of returns the mount holding path in the text of a mountinfo file: the
// longest mount point that is path or one of its parents, the last such on
// ties (a later mount hides an earlier one at the same point).
func Of(mountinfo, path string) (m Mount, ok bool) {
	for _, line := range strings.Split(mountinfo, "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		pre, post, found := strings.Cut(line, " - ")
		if !found {
			continue
		}
		f, t := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(t) < 2 {
			continue
		}
		mp := unescape(f[4])
		if !within(path, mp) || (ok && len(mp) < len(m.Point)) {
			continue
		}
		m, ok = Mount{ID: f[0], Dev: f[2], Root: unescape(f[3]), Point: mp, Type: t[0], Source: unescape(t[1])}, true
	}
	return m, ok
}

// Network reports whether a filesystem type is a network filesystem or a
// FUSE client (sshfs, smbnetfs, ...): one whose calls go to a server.
func Network(fstype string) bool {
	switch fstype {
	case "nfs", "nfs4", "cifs", "smb3", "smbfs", "afs", "ceph", "9p", "fuse", "fuseblk":
		return true
	}
	return strings.HasPrefix(fstype, "fuse.") || strings.HasPrefix(fstype, "fuseblk.")
}

// within reports whether path is mp or below it.
func within(path, mp string) bool {
	if mp == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == mp || strings.HasPrefix(path, mp+"/")
}

// unescape undoes mountinfo's octal escapes (\040 for a space, ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && octal(s[i+1]) && octal(s[i+2]) && octal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func octal(c byte) bool { return c >= '0' && c <= '7' }
