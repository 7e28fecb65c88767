//go:build linux

package mountinfo

import (
	"os"
	"testing"
)

const sample = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw
40 22 0:35 / /mnt/office\040share rw,nosuid shared:20 - fuse.sshfs alice@srv:/data\040x rw,user_id=0
41 22 0:36 / /mnt/nfs rw shared:21 - nfs4 srv:/export rw
42 41 0:37 / /mnt/nfs/local rw shared:22 - tmpfs tmpfs rw
43 22 0:38 / /mnt/smb rw shared:23 - cifs //srv/x rw
44 22 0:39 / /mnt/smb rw shared:24 - tmpfs over rw
`

func TestOf(t *testing.T) {
	for path, want := range map[string]Mount{
		"/home/alice/wems.db.lock":        {Point: "/", Type: "ext4", Source: "/dev/sda1"},
		"/mnt/office share/wems.db.lock":  {Point: "/mnt/office share", Type: "fuse.sshfs", Source: "alice@srv:/data x"},
		"/mnt/office sharex/wems.db.lock": {Point: "/", Type: "ext4", Source: "/dev/sda1"},
		"/mnt/nfs/wems.db.lock":           {Point: "/mnt/nfs", Type: "nfs4", Source: "srv:/export"},
		"/mnt/nfs/local/wems.db.lock":     {Point: "/mnt/nfs/local", Type: "tmpfs", Source: "tmpfs"},
		"/mnt/smb/a/b":                    {Point: "/mnt/smb", Type: "tmpfs", Source: "over"}, // the later mount hides the earlier
	} {
		got, ok := Of(sample, path)
		got.ID, got.Dev, got.Root = "", "", ""
		if !ok || got != want {
			t.Errorf("%s: %+v %v, want %+v", path, got, ok, want)
		}
	}
	if m, _ := Of(sample, "/mnt/nfs/x"); m.ID != "41" || m.Dev != "0:36" || m.Root != "/" {
		t.Errorf("ID, device, root of /mnt/nfs: %+v", m)
	}
	if m, ok := Of(sample, "relative/path"); ok {
		t.Errorf("relative path: %+v", m)
	}
}

func TestNetwork(t *testing.T) {
	for typ, want := range map[string]bool{
		"fuse.sshfs": true, "fuse.smbnetfs": true, "nfs": true, "nfs4": true, "cifs": true, "smb3": true,
		"ext4": false, "tmpfs": false, "overlay": false, "btrfs": false, "": false,
	} {
		if got := Network(typ); got != want {
			t.Errorf("%q: %v, want %v", typ, got, want)
		}
	}
}

func TestLookupReal(t *testing.T) {
	dir := t.TempDir()
	m, ok := Lookup(dir)
	if !ok {
		t.Fatal("no mount for", dir)
	}
	if Network(m.Type) {
		t.Errorf("the test's temporary folder %s is on %+v", dir, m)
	}
	if _, err := os.Stat(m.Point); err != nil {
		t.Errorf("mount point %q: %v", m.Point, err)
	}
}
