package doctor

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// magics names statfs f_type values (linux/magic.h); built on first use
// (see fsKinds).
var magics = sync.OnceValue(func() map[int64]string {
	return map[int64]string{
		unix.EXT4_SUPER_MAGIC: "ext4", unix.TMPFS_MAGIC: "tmpfs", unix.NFS_SUPER_MAGIC: "nfs",
		unix.CIFS_SUPER_MAGIC: "cifs", unix.SMB2_SUPER_MAGIC: "smb3", unix.SMB_SUPER_MAGIC: "smbfs",
		unix.FUSE_SUPER_MAGIC: "fuse", unix.BTRFS_SUPER_MAGIC: "btrfs", unix.XFS_SUPER_MAGIC: "xfs",
		unix.OVERLAYFS_SUPER_MAGIC: "overlay", unix.V9FS_MAGIC: "9p", unix.CEPH_SUPER_MAGIC: "ceph",
		unix.AFS_SUPER_MAGIC: "afs", unix.MSDOS_SUPER_MAGIC: "vfat", unix.EXFAT_SUPER_MAGIC: "exfat",
		0x5346544e: "ntfs", unix.F2FS_SUPER_MAGIC: "f2fs", unix.RAMFS_MAGIC: "ramfs",
		unix.ZONEFS_MAGIC: "zonefs", 0x2fc12fc1: "zfs", 0x01161970: "gfs2", 0x7461636f: "ocfs2",
		0x0bd00bd0: "lustre", 0x65735543: "fusectl", 0xca451a4e: "bcachefs",
	}
})

// detectFS: statfs f_type, refined by the mount of dir in
// /proc/self/mountinfo (which names FUSE subtypes and the source).
func detectFS(dir string) FSInfo {
	var fi FSInfo
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil {
		magic := int64(st.Type)
		fi.Magic = fmt.Sprintf("0x%x", uint32(magic))
		fi.Type = magics()[magic]
		if fi.Type == "" {
			fi.Type = "unknown (" + fi.Magic + ")"
		}
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		real = dir
	}
	if mp, fstype, source, ok := mountOf(real); ok {
		fi.MountPoint, fi.Source = mp, source
		if fstype != "" {
			fi.Type = fstype
		}
		if sub, ok := strings.CutPrefix(fstype, "fuse."); ok {
			fi.Subtype = sub
		} else if sub, ok := strings.CutPrefix(fstype, "fuseblk."); ok {
			fi.Subtype = sub
		}
	}
	return fi
}

// mountOf finds the mount holding path (the longest mount point that is a
// prefix of it; the last such, as later mounts hide earlier ones).
func mountOf(path string) (mountPoint, fstype, source string, ok bool) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 {
			continue
		}
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+2 >= len(fields) {
			continue
		}
		mp := unescape(fields[4])
		if !within(path, mp) || len(mp) < len(mountPoint) {
			continue
		}
		mountPoint, fstype, source, ok = mp, fields[sep+1], unescape(fields[sep+2]), true
	}
	return mountPoint, fstype, source, ok
}

func within(path, mp string) bool {
	if mp == "/" {
		return true
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
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
