package sharetest

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"sharelock/internal/faultfs"
)

// TestWatchMountAbortsWedgedMount: a FUSE mount that stops answering (every
// call hangs) is aborted by the watchdog, so calls stuck on it return
// (ECONNABORTED; later ones ENOTCONN) instead of hanging forever.
func TestWatchMountAbortsWedgedMount(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (FUSE, fusectl)")
		}
		t.Skip("needs root (FUSE, fusectl)")
	}
	old := wedgeAfter
	wedgeAfter = 2 * time.Second
	defer func() { wedgeAfter = old }()
	f := faultfs.Mount(t, t.TempDir())
	sh := &Share{Name: "wedge", Dir: t.TempDir(), Mounts: []string{f.Dir()}}
	stop := make(chan struct{})
	defer close(stop)
	go watchMount(sh, f.Dir(), stop)
	time.Sleep(2500 * time.Millisecond) // a few good probes first
	f.Hang()
	stuck := make(chan error, 1)
	go func() {
		_, err := os.Lstat(filepath.Join(f.Dir(), "anything"))
		stuck <- err
	}()
	select {
	case err := <-stuck:
		if !errors.Is(err, syscall.ECONNABORTED) && !errors.Is(err, syscall.ENOTCONN) {
			t.Fatalf("the call stuck on the wedged mount returned %v, want ECONNABORTED or ENOTCONN", err)
		}
	case <-time.After(30 * time.Second):
		f.Unhang()
		t.Fatal("the watchdog did not abort the wedged mount within 30 s")
	}
	// The watchdog writes its log just after the abort that freed the call.
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, err := os.ReadFile(filepath.Join(sh.Dir, "wedged.log"))
		if err == nil && len(data) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no wedged.log: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
