package doctor_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"sharelock/internal/doctor"
)

// A folder nobody may write to is bad input, named with a fix: a read-only
// tmpfs as root (root ignores permission bits), a 0555 folder otherwise.
func TestNotWritable(t *testing.T) {
	dir := t.TempDir()
	want := "read-only"
	if os.Geteuid() == 0 {
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_RDONLY, "size=1m"); err != nil {
			t.Skipf("cannot mount a read-only tmpfs: %v", err)
		}
		t.Cleanup(func() {
			if err := unix.Unmount(dir, 0); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
			}
		})
	} else {
		want = "write (modify) access"
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
	}
	_, err := doctor.Run(context.Background(), dir, doctor.Options{})
	var ie *doctor.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("got %v, want an *InputError", err)
	}
	if ie.Path != dir || !strings.Contains(ie.Fix, want) {
		t.Errorf("%v: want the path %s and a fix mentioning %q", err, dir, want)
	}
}

// The filesystem of a tmpfs is named from statfs and mountinfo.
func TestDetectTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, 0) })
	r := run(t, dir, doctor.Options{Rounds: 5})
	if r.FS.Type != "tmpfs" || r.FS.Magic != "0x1021994" || r.FS.MountPoint != dir || r.FS.Kind != "local" {
		t.Errorf("filesystem %+v: want tmpfs (0x1021994) mounted at %s, local", r.FS, dir)
	}
}
