//go:build linux

package faultfs_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"sharelock/internal/faultfs"
)

func TestBasic(t *testing.T) {
	backing := t.TempDir()
	fsys := faultfs.Mount(t, backing)
	fsys.ResetCounts()

	name := filepath.Join(fsys.Dir(), "sub", "hello.txt")
	if err := os.Mkdir(filepath.Dir(name), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte("hello"), 0o666); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(backing, "sub", "hello.txt"))
	if err != nil || string(got) != "hello" {
		t.Fatalf("backing file: %q, %v", got, err)
	}
	if got, err := os.ReadFile(name); err != nil || string(got) != "hello" {
		t.Fatalf("read through mount: %q, %v", got, err)
	}
	names, err := readDirNames(fsys.Dir())
	if err != nil || !slices.Equal(names, []string{"sub"}) {
		t.Fatalf("listing: %v, %v", names, err)
	}
	if err := os.Rename(name, name+".2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(name + ".2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Dir(name)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(backing, "sub")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("sub still in backing: %v", err)
	}
	time.Sleep(20 * time.Millisecond) // RELEASE is asynchronous
	c := fsys.Counts()
	t.Logf("counts: %s", faultfs.FormatCounts(c))
	for _, op := range []faultfs.Op{faultfs.OpLookup, faultfs.OpMkdir, faultfs.OpCreate, faultfs.OpOpen,
		faultfs.OpRead, faultfs.OpWrite, faultfs.OpFlush, faultfs.OpRelease, faultfs.OpReaddir,
		faultfs.OpRename, faultfs.OpUnlink, faultfs.OpRmdir} {
		if c[op] == 0 {
			t.Errorf("no %s counted", op)
		}
	}
	fsys.ResetCounts()
	if n := faultfs.Total(fsys.Counts()); n != 0 {
		t.Errorf("after ResetCounts: %d calls", n)
	}
	if _, err := os.Lstat(fsys.Dir()); err != nil {
		t.Fatal(err)
	}
	if c := fsys.Counts(); c[faultfs.OpGetattr] == 0 {
		t.Errorf("lstat of the root not counted: %v", c)
	}
}

func TestFailAndClear(t *testing.T) {
	backing := t.TempDir()
	fsys := faultfs.Mount(t, backing)
	fsys.FailOps(syscall.ENOSPC, faultfs.OpCreate, faultfs.OpWrite)
	fsys.FailOps(syscall.EIO, faultfs.OpMkdir)
	err := os.WriteFile(filepath.Join(fsys.Dir(), "f"), []byte("x"), 0o666)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("create: %v, want ENOSPC", err)
	}
	if err := os.Mkdir(filepath.Join(fsys.Dir(), "d"), 0o777); !errors.Is(err, syscall.EIO) {
		t.Errorf("mkdir: %v, want EIO", err)
	}
	if entries, _ := os.ReadDir(backing); len(entries) != 0 {
		t.Errorf("a failed call reached the backing directory: %v", entries)
	}
	// A write to an existing file fails too.
	if err := os.WriteFile(filepath.Join(backing, "g"), []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fsys.Dir(), "g"), []byte("y"), 0o666); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("write: %v, want ENOSPC", err)
	}
	fsys.Clear()
	if err := os.WriteFile(filepath.Join(fsys.Dir(), "f"), []byte("x"), 0o666); err != nil {
		t.Errorf("after Clear: %v", err)
	}
	if err := os.Mkdir(filepath.Join(fsys.Dir(), "d"), 0o777); err != nil {
		t.Errorf("after Clear: %v", err)
	}
	// No ops: every op fails.
	fsys.FailOps(syscall.EIO)
	if _, err := os.Lstat(filepath.Join(fsys.Dir(), "f")); !errors.Is(err, syscall.EIO) {
		t.Errorf("lstat with every op failing: %v", err)
	}
	fsys.FailOps(0)
	if _, err := os.Lstat(filepath.Join(fsys.Dir(), "f")); err != nil {
		t.Errorf("lstat after FailOps(0): %v", err)
	}
}

func TestLatency(t *testing.T) {
	fsys := faultfs.Mount(t, t.TempDir())
	name := filepath.Join(fsys.Dir(), "f")
	if err := os.WriteFile(name, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	fsys.SetLatency(faultfs.OpOpen, 100*time.Millisecond)
	start := time.Now()
	if _, err := os.ReadFile(name); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("read with 100ms open latency took %v", d)
	}
	fsys.SetLatency(faultfs.OpOpen, 0)
	start = time.Now()
	if _, err := os.ReadFile(name); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 90*time.Millisecond {
		t.Errorf("read without latency took %v", d)
	}
}

func TestHang(t *testing.T) {
	backing := t.TempDir()
	fsys := faultfs.Mount(t, backing)
	name := filepath.Join(fsys.Dir(), "f")
	if err := os.WriteFile(name, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	fsys.Hang(faultfs.OpWrite)
	done := make(chan error, 1)
	go func() { done <- os.WriteFile(name, []byte("y"), 0o666) }()
	waitFor(t, "a hung write", func() bool { return fsys.Hung() == 1 })
	select {
	case err := <-done:
		t.Fatalf("write returned while hung: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	// Other calls go on.
	if _, err := os.Lstat(name); err != nil {
		t.Fatal(err)
	}
	fsys.Unhang()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("write still hung after Unhang")
	}
	if got, _ := os.ReadFile(filepath.Join(backing, "f")); string(got) != "y" {
		t.Errorf("backing has %q", got)
	}

	// A call still hung at cleanup is released, so the unmount works.
	fsys.Hang()
	go func() { _, _ = os.ReadFile(name) }()
	waitFor(t, "a hung read", func() bool { return fsys.Hung() >= 1 })
}

func TestUnmountReleasesHang(t *testing.T) {
	fsys := faultfs.Mount(t, t.TempDir())
	fsys.Hang()
	done := make(chan error, 1)
	go func() { _, err := os.Lstat(filepath.Join(fsys.Dir(), "x")); done <- err }()
	waitFor(t, "a hung lstat", func() bool { return fsys.Hung() >= 1 })
	if err := fsys.Unmount(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("lstat still hung after Unmount")
	}
	if isMounted(t, fsys.Dir()) {
		t.Fatalf("%s still mounted", fsys.Dir())
	}
}

func TestDelayVisibility(t *testing.T) {
	backing := t.TempDir()
	fsys := faultfs.Mount(t, backing)
	const delay = 400 * time.Millisecond
	if err := os.Mkdir(filepath.Join(backing, "old"), 0o777); err != nil {
		t.Fatal(err)
	}
	time.Sleep(delay)
	fsys.DelayVisibility(delay)

	// Created elsewhere (in the backing directory): hidden for delay.
	created := time.Now()
	if err := os.Mkdir(filepath.Join(backing, "new"), 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(fsys.Dir(), "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("new entry visible at once: %v", err)
	}
	if names, _ := readDirNames(fsys.Dir()); !slices.Equal(names, []string{"old"}) {
		t.Errorf("listing shows %v, want [old]", names)
	}
	// The file server still refuses to create it again.
	if err := os.Mkdir(filepath.Join(fsys.Dir(), "new"), 0o777); !errors.Is(err, os.ErrExist) {
		t.Errorf("mkdir of a hidden entry: %v, want EEXIST", err)
	}
	// Created through the mount: visible at once.
	if err := os.Mkdir(filepath.Join(fsys.Dir(), "mine"), 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(fsys.Dir(), "mine")); err != nil {
		t.Errorf("own entry hidden: %v", err)
	}
	waitFor(t, "the new entry to appear", func() bool {
		_, err := os.Lstat(filepath.Join(fsys.Dir(), "new"))
		return err == nil
	})
	// Birth times come from the kernel's coarse clock (a tick behind).
	if d := time.Since(created); d < delay-10*time.Millisecond {
		t.Errorf("visible after %v, want >= %v", d, delay)
	}
	if names, _ := readDirNames(fsys.Dir()); !slices.Equal(names, []string{"mine", "new", "old"}) {
		t.Errorf("listing shows %v", names)
	}
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isMounted(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(strings.Split(string(b), "\n"), func(l string) bool {
		f := strings.Fields(l)
		return len(f) > 1 && f[1] == dir
	})
}
