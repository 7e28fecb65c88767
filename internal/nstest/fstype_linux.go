package nstest

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// FSType names the type of the filesystem holding dir, from statfs(2)
// (for example "ext4", "tmpfs", "nfs"), or the magic number in hex when
// it is not one we know.
func FSType(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	// Type is 32 bits wide on some architectures: compare the low 32 bits.
	switch uint32(st.Type) {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4 (ext2/3/4)"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	case unix.NFS_SUPER_MAGIC:
		return "nfs"
	case unix.SMB_SUPER_MAGIC:
		return "smb"
	case unix.SMB2_SUPER_MAGIC:
		return "smb2"
	case unix.CIFS_SUPER_MAGIC:
		return "cifs"
	case unix.FUSE_SUPER_MAGIC:
		return "fuse"
	case unix.V9FS_MAGIC:
		return "9p"
	}
	return fmt.Sprintf("statfs type %#x", uint32(st.Type))
}
