package folder

import "testing"

func TestMountType(t *testing.T) {
	mi := `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw
40 22 0:35 / /mnt/office\040share rw,nosuid shared:20 - fuse.sshfs alice@srv:/data rw,user_id=0
41 22 0:36 / /mnt/nfs rw shared:21 - nfs4 srv:/export rw
42 41 0:37 / /mnt/nfs/local rw shared:22 - tmpfs tmpfs rw
43 22 0:38 / /mnt/smb rw shared:23 - cifs //srv/x rw
`
	for path, want := range map[string]bool{
		"/home/alice/wems.db.lock":        false,
		"/mnt/office share/wems.db.lock":  true,
		"/mnt/office sharex/wems.db.lock": false,
		"/mnt/nfs/wems.db.lock":           true,
		"/mnt/nfs/local/wems.db.lock":     false,
		"/mnt/smb/a/b/wems.db.lock":       true,
		"/proc/x":                         false,
	} {
		typ := mountType(mi, path)
		if got := networkFSType(typ); got != want {
			t.Errorf("%s: type %q, share %v, want %v", path, typ, got, want)
		}
	}
	if onShare(t.TempDir()) {
		t.Error("the test's temporary folder counted as a share")
	}
}
