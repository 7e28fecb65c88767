package doctor

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
)

var driveTypes = map[uint32]string{
	windows.DRIVE_UNKNOWN: "unknown", windows.DRIVE_NO_ROOT_DIR: "no root", windows.DRIVE_REMOVABLE: "removable",
	windows.DRIVE_FIXED: "fixed", windows.DRIVE_REMOTE: "remote", windows.DRIVE_CDROM: "cdrom", windows.DRIVE_RAMDISK: "ramdisk",
}

// detectFS: the volume of dir (GetVolumePathNameW), its drive type
// (GetDriveTypeW: DRIVE_REMOTE for a mapped drive or UNC path) and its
// filesystem name (GetVolumeInformationW: "NTFS", "ReFS", "FAT32", ...;
// for a share, the name the server reports).
func detectFS(dir string) FSInfo {
	fi := FSInfo{Type: "unknown"}
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return fi
	}
	var vol [windows.MAX_PATH + 1]uint16
	root := filepath.VolumeName(dir) + `\`
	if err := windows.GetVolumePathName(p, &vol[0], uint32(len(vol))); err == nil {
		root = windows.UTF16ToString(vol[:])
	}
	fi.MountPoint = root
	rp, err := windows.UTF16PtrFromString(root)
	if err != nil {
		return fi
	}
	dt := windows.GetDriveType(rp)
	fi.DriveType = driveTypes[dt]
	var name [windows.MAX_PATH + 1]uint16
	if err := windows.GetVolumeInformation(rp, nil, 0, nil, nil, nil, &name[0], uint32(len(name))); err == nil {
		fi.Type = windows.UTF16ToString(name[:])
	}
	if dt == windows.DRIVE_REMOTE || strings.HasPrefix(root, `\\`) {
		fi.Kind, fi.Remote = "network", true
		fi.Source = strings.TrimSuffix(root, `\`)
	}
	return fi
}
