package doctor

import (
	"strings"

	"golang.org/x/sys/unix"
)

// detectFS: statfs f_fstypename (apfs, hfs, smbfs, nfs, afpfs, webdav,
// macfuse, ...), f_mntfromname and f_mntonname.
func detectFS(dir string) FSInfo {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return FSInfo{Type: "unknown"}
	}
	fi := FSInfo{Type: cstr(st.Fstypename[:]), Source: cstr(st.Mntfromname[:]), MountPoint: cstr(st.Mntonname[:])}
	if st.Flags&unix.MNT_LOCAL == 0 {
		fi.Remote = true
	}
	if t := strings.ToLower(fi.Type); (t == "macfuse" || t == "osxfuse") && fi.Source != "" {
		// macFUSE puts the file system's name in the source, e.g. "sshfs@host:".
		if i := strings.IndexAny(fi.Source, "@:"); i > 0 {
			fi.Subtype = fi.Source[:i]
		}
	}
	return fi
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
