package folder

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"sharelock/internal/core"
	"sharelock/internal/testdir"
)

// callFS counts protocol calls (FS methods): on a share each is a round
// trip to the file server.
type callFS struct {
	OSFS
	n atomic.Int64
}

func (c *callFS) Mkdir(name string) error { c.n.Add(1); return c.OSFS.Mkdir(name) }
func (c *callFS) ReadFile(name string) ([]byte, error) {
	c.n.Add(1)
	return c.OSFS.ReadFile(name)
}
func (c *callFS) CreateExcl(name string, data []byte) error {
	c.n.Add(1)
	return c.OSFS.CreateExcl(name, data)
}
func (c *callFS) Overwrite(name string, data []byte) error {
	c.n.Add(1)
	return c.OSFS.Overwrite(name, data)
}
func (c *callFS) Append(name string, data []byte) error {
	c.n.Add(1)
	return c.OSFS.Append(name, data)
}
func (c *callFS) ReadDirNames(name string) ([]string, error) {
	c.n.Add(1)
	return c.OSFS.ReadDirNames(name)
}
func (c *callFS) Lstat(name string) (fs.FileInfo, error) { c.n.Add(1); return c.OSFS.Lstat(name) }
func (c *callFS) Remove(name string) error               { c.n.Add(1); return c.OSFS.Remove(name) }
func (c *callFS) Rmdir(name string) error                { c.n.Add(1); return c.OSFS.Rmdir(name) }

// TestProtocolCalls counts the round trips of each uncontended operation
// (docs/benchmarks.md) and keeps them from growing unnoticed.
func TestProtocolCalls(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	ctx := context.Background()
	r := req(db)
	r.Lease, r.Heartbeat = 2*time.Second, 100*time.Millisecond
	count := func(c *callFS, fn func()) int64 {
		c.n.Store(0)
		fn()
		return c.n.Load()
	}
	// Make the lock folder and a few generations first.
	setup := newStore(t, Options{Self: machine("setup", 1)})
	for range 3 {
		l, err := setup.Acquire(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
	}

	// A new process: listing, read of the head, mkdir, create.
	cf := &callFS{}
	s := newStore(t, Options{Self: machine("a", 2), FS: cf})
	var l core.Lease
	var err error
	fresh := count(cf, func() { l, err = s.Acquire(ctx, r) })
	if err != nil {
		t.Fatal(err)
	}
	rel := count(cf, func() { err = l.Release() })
	if err != nil {
		t.Fatal(err)
	}
	// The same process again: its own release is its hint (no read).
	warm := count(cf, func() { l, err = s.Acquire(ctx, r) })
	if err != nil {
		t.Fatal(err)
	}
	// Heartbeats while held.
	time.Sleep(50 * time.Millisecond)
	c0 := cf.n.Load()
	time.Sleep(time.Second)
	perBeat := float64(cf.n.Load()-c0) / 10
	l.Release()
	// After someone else took and released it: our hint is behind, so the
	// claim of the old head+1 fails and we walk forward (6 calls).
	l2, err := setup.Acquire(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	l2.Release()
	other := count(cf, func() { l, err = s.Acquire(ctx, r) })
	if err != nil {
		t.Fatal(err)
	}
	l.Release()

	// A new process on a machine where another process released the lock
	// last (the lock folder taken to be on a share): the machine hint
	// says free, so as after its own release — queue check, mkdir, create.
	// Even once q/ exists (someone waited in line).
	hd := testdir.New(t)
	onShare := func(d string) (string, bool) { return "test mount", d != hd } // the hint folder is local
	m1 := newStore(t, Options{Self: machine("b", 4), HintDir: hd})
	m1.shareKey = onShare
	if l, err = m1.Acquire(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(LockDir(db), "q"), 0o755); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	cf3 := &callFS{}
	m2 := newStore(t, Options{Self: machine("b", 5), FS: cf3, HintDir: hd})
	m2.shareKey = onShare
	if machineHintsSupported {
		m2.hintDir = hd // its FS only counts the OS's calls: same paths
	}
	hinted := count(cf3, func() { l, err = m2.Acquire(ctx, r) })
	if !machineHintsSupported {
		hinted = 0 // a listing, as without hints (not compared below)
	}
	if err != nil {
		t.Fatal(err)
	}
	if l.Token() != l2.Token()+3 {
		t.Errorf("token %d after the machine hint, want %d", l.Token(), l2.Token()+3)
	}
	l.Release()

	t.Logf("protocol calls: acquire by a new process %d (%d with another local process's hint), acquire after own release %d, acquire after another's release %d, release %d, heartbeat %.1f",
		fresh, hinted, warm, other, rel, perBeat)
	if fresh > 4 || hinted > 3 || warm > 3 || other > 6 || rel > 2 || perBeat > 3.2 {
		t.Fatalf("more round trips than designed: fresh %d (≤ 4), with a machine hint %d (≤ 3), warm %d (≤ 3), other %d (≤ 6), release %d (≤ 2), heartbeat %.1f (≤ 3)",
			fresh, hinted, warm, other, rel, perBeat)
	}
}
