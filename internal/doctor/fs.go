package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Filesystem types by kind, as the OSes name them (lower case; FUSE types
// appear as "fuse.SUBTYPE" on Linux). Built on first use, not at package
// init: every start of the sharelock binary (a `sharelock run` too) would
// pay for maps that only doctor reads.
var fsKinds = sync.OnceValue(func() fsKindTables {
	return fsKindTables{
		networkTypes: map[string]bool{
			"nfs": true, "nfs4": true, "cifs": true, "smb3": true, "smbfs": true, "smb": true, "ncpfs": true,
			"9p": true, "v9fs": true, "afs": true, "ceph": true, "glusterfs": true, "lustre": true, "gfs2": true,
			"ocfs2": true, "afpfs": true, "webdav": true, "davfs": true, "beegfs": true, "gpfs": true,
		},
		localTypes: map[string]bool{
			"ext2": true, "ext3": true, "ext4": true, "xfs": true, "btrfs": true, "tmpfs": true, "zfs": true,
			"f2fs": true, "vfat": true, "msdos": true, "exfat": true, "ntfs": true, "ntfs3": true, "reiserfs": true,
			"jfs": true, "overlay": true, "hfs": true, "hfsplus": true, "apfs": true, "fat32": true, "fat": true,
			"refs": true, "ramfs": true, "bcachefs": true, "nilfs2": true, "udf": true, "fuseblk": true,
		},
		localFUSE: map[string]bool{"ntfs-3g": true, "ntfs": true, "bindfs": true, "lxcfs": true, "exfat": true, "encfs": true, "gocryptfs": true},
		objectFUSE: map[string]bool{"s3fs": true, "goofys": true, "gcsfuse": true, "blobfuse": true, "blobfuse2": true,
			"mountpoint-s3": true, "geesefs": true, "s3backer": true},
		cloudFUSE: map[string]string{"google-drive-ocamlfuse": "Google Drive", "onedriver": "OneDrive", "dropbox": "Dropbox"},
	}
})

// fsKindTables are the filesystem types by kind (see fsKinds).
type fsKindTables struct {
	networkTypes map[string]bool
	localTypes   map[string]bool
	// FUSE subtypes that are local (not a network client).
	localFUSE map[string]bool
	// FUSE subtypes that mount object storage (no atomic mkdir across clients).
	objectFUSE map[string]bool
	// FUSE subtypes of cloud-sync clients.
	cloudFUSE map[string]string
}

// classify sets Kind and Remote from Type and Subtype, unless the
// OS-specific detector already did.
func classify(fi *FSInfo) {
	k := fsKinds()
	t := strings.ToLower(fi.Type)
	sub := strings.ToLower(fi.Subtype)
	if sub == "" {
		if s, ok := strings.CutPrefix(t, "fuse."); ok {
			sub = s
			fi.Subtype = s
		}
	}
	switch {
	case fi.Kind != "":
	case sub != "" && k.objectFUSE[sub]:
		fi.Kind, fi.Remote = "object-storage", true
	case sub != "" && k.localFUSE[sub]:
		fi.Kind = "local"
	case t == "fuse" || strings.HasPrefix(t, "fuse.") || sub != "" || t == "macfuse" || t == "osxfuse":
		fi.Kind, fi.Remote = "fuse", true
	case k.networkTypes[t]:
		fi.Kind, fi.Remote = "network", true
	case k.localTypes[t]:
		fi.Kind = "local"
	default:
		fi.Kind = "unknown"
	}
	if name, ok := k.cloudFUSE[sub]; ok && fi.Cloud == "" {
		fi.Cloud, fi.CloudEvidence = name, "filesystem "+fi.Type
	}
}

// cloudNames maps a path component (lower case; a prefix ending in a
// space, "-" or "(" matches the start of a component) to the service.
var cloudNames = []struct {
	component string
	prefix    bool
	service   string
}{
	{"dropbox", false, "Dropbox"},
	{"dropbox (", true, "Dropbox"},
	{"dropbox-", true, "Dropbox"}, // macOS ~/Library/CloudStorage/Dropbox-Team
	{"onedrive", false, "OneDrive"},
	{"onedrive - ", true, "OneDrive"},
	{"onedrive-", true, "OneDrive"},
	{"google drive", false, "Google Drive"},
	{"googledrive", false, "Google Drive"},
	{"googledrive-", true, "Google Drive"},
	{"my drive", false, "Google Drive"},
	{"icloud drive", false, "iCloud Drive"},
	{"iclouddrive", false, "iCloud Drive"},
	{"com~apple~clouddocs", false, "iCloud Drive"},
	{"mobile documents", false, "iCloud Drive"},
	{"nextcloud", false, "Nextcloud"},
	{"owncloud", false, "ownCloud"},
	{"box", false, "Box"},
	{"box sync", false, "Box"},
	{"box-box", false, "Box"},
	{"pcloud drive", false, "pCloud"},
	{"megasync", false, "MEGA"},
	{"mega", false, "MEGA"},
	{"sync.com", false, "Sync.com"},
}

// cloudMarkers are files or folders a sync client keeps at (or near) the
// root of what it syncs. A name with a * is a filepath.Match pattern.
var cloudMarkers = []struct {
	name    string
	dir     bool // a folder, not a regular file
	service string
}{
	{".dropbox", false, "Dropbox"},
	{".dropbox.cache", true, "Dropbox"},
	{".sync_*.db", false, "Nextcloud/ownCloud"},
	{"._sync_*.db", false, "Nextcloud/ownCloud"},
	{".owncloudsync.log", false, "Nextcloud/ownCloud"},
	{".tmp.drivedownload", true, "Google Drive"},
	{".tmp.driveupload", true, "Google Drive"},
	{".sync", true, "Resilio Sync"},
	{".megaignore", false, "MEGA"},
}

// detectCloud reports whether dir is inside a cloud-sync folder: by the
// name of dir or a parent, or by a sync client's marker file in dir or a
// parent. It only reads (lstat, and a listing per folder for patterns). A
// folder that claims to hold a name that cannot exist (virtual folders, such
// as smbnetfs's list of shares, answer every lookup) is not searched for
// markers.
func detectCloud(dir string) (service, evidence string) {
	p := filepath.Clean(dir)
	bogus := scratchPrefix + "no-such-entry"
	for {
		base := filepath.Base(p)
		lb := strings.ToLower(base)
		for _, c := range cloudNames {
			if lb == c.component || (c.prefix && strings.HasPrefix(lb, c.component)) {
				return c.service, "folder " + p
			}
		}
		if _, err := os.Lstat(filepath.Join(p, bogus)); err != nil {
			for _, m := range cloudMarkers {
				var found []string
				if strings.Contains(m.name, "*") {
					found, _ = filepath.Glob(filepath.Join(p, m.name))
				} else {
					found = []string{filepath.Join(p, m.name)}
				}
				for _, f := range found {
					if fi, err := os.Lstat(f); err == nil && fi.IsDir() == m.dir && (m.dir || fi.Mode().IsRegular()) {
						return m.service, "marker " + f
					}
				}
			}
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", ""
		}
		p = parent
	}
}
