package doctor

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"sharelock/internal/mountinfo"
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
	if m, ok := mountinfo.Lookup(real); ok {
		fstype := m.Type
		fi.MountPoint, fi.Source = m.Point, m.Source
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
