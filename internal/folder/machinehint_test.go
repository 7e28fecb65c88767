package folder

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sharelock/internal/testdir"
)

func TestMachineHintFormat(t *testing.T) {
	now := time.Now()
	b := encodeMachineHint(42, 7*time.Second, now)
	if gen, ev, wall, ok := decodeMachineHint(b); !ok || gen != 42 || ev != 7*time.Second || !wall.Equal(now.Round(0)) {
		t.Fatalf("round trip: %d %v %v %v (%q)", gen, ev, wall, ok, b)
	}
	bad := map[string]string{
		"torn":               string(b[:len(b)/2]),
		"no newline":         string(b[:len(b)-1]),
		"bit flip":           string(append([]byte{b[0]}, append([]byte("2"), b[2:]...)...)),
		"foreign":            "hello world 00000000\n",
		"empty":              "",
		"gen zero":           string(encodeMachineHint(0, time.Second, now)),
		"foreign generation": string(encodeMachineHint(maxGen, time.Second, now)),
	}
	for name, s := range bad {
		if _, _, _, ok := decodeMachineHint([]byte(s)); ok {
			t.Errorf("%s: %q accepted", name, s)
		}
	}
}

// TestMachineHintUse: a process claims after another local process's
// release without a listing; a hint made stale by another machine's claim
// costs round trips, never the token order; hints too old or from the
// future are not used; a lock folder on a local filesystem leaves none.
func TestMachineHintUse(t *testing.T) {
	if !machineHintsSupported {
		// No machine-wide clock known here: stores keep no hints.
		s := newStore(t, Options{Self: machine("a", 1), HintDir: testdir.New(t)})
		if s.hintDir != "" {
			t.Fatalf("machine hints on (%s) where they are not supported", s.hintDir)
		}
		return
	}
	db := filepath.Join(testdir.New(t), "wems.db")
	dir := LockDir(db)
	ctx := context.Background()
	r := req(db)
	hd := testdir.New(t)
	share := func(d string) (string, bool) { return "test mount", d != hd } // the hint folder is local
	store := func(host string, pid int) *Store {
		s := newStore(t, Options{Self: machine(host, pid), HintDir: hd})
		s.shareKey = share
		return s
	}
	cycle := func(s *Store) uint64 {
		t.Helper()
		l, err := s.Acquire(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release()
		return l.Token()
	}
	a1 := store("a", 1)
	if tok := cycle(a1); tok != 1 {
		t.Fatalf("first token %d", tok)
	}
	a2 := store("a", 2)
	if h, ok := a2.loadMachineHint(dir); !ok || h.gen != 1 || !h.released {
		t.Fatalf("hint after a release by another process of the machine: %+v %v", h, ok)
	}
	// Another machine moves the lock on twice: a's hint is behind.
	b := store("b", 3)
	cycle(b)
	cycle(b)
	if tok := cycle(a2); tok != 4 {
		t.Fatalf("token %d from a stale machine hint, want 4", tok)
	}
	// Too old, or from the future, by either clock; not the owner's; a
	// symlink: not used.
	p := a1.machineHintFile(dir)
	fresh := store("a", 9)
	if h, ok := fresh.loadMachineHint(dir); !ok || h.gen != 4 {
		t.Fatalf("hint after the last release: %+v %v", h, ok)
	}
	for name, c := range map[string]struct {
		ev   time.Duration
		wall time.Time
	}{
		"old":                {a1.mono() - a1.o.GCMinAge/4 - time.Second, time.Now()},
		"future":             {a1.mono() + time.Hour, time.Now()},
		"old by the wall":    {a1.mono(), time.Now().Add(-a1.o.GCMinAge / 4)},
		"future by the wall": {a1.mono(), time.Now().Add(time.Hour)},
	} {
		if err := os.WriteFile(p, encodeMachineHint(4, c.ev, c.wall), 0o600); err != nil {
			t.Fatal(err)
		}
		if h, ok := store("a", 9).loadMachineHint(dir); ok {
			t.Errorf("%s hint used: %+v", name, h)
		}
	}
	good := encodeMachineHint(4, a1.mono(), time.Now())
	if err := os.WriteFile(p+".target", good, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	if err := os.Symlink(p+".target", p); err != nil {
		t.Fatal(err)
	}
	if h, ok := store("a", 9).loadMachineHint(dir); ok {
		t.Errorf("hint through a symlink used: %+v", h)
	}
	// A release replaces the symlink, never writes through it.
	cycle(store("a", 10))
	if b, _ := os.ReadFile(p + ".target"); string(b) != string(good) {
		t.Errorf("a release wrote through the symlink: %q", b)
	}
	if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("hint after a release over a symlink: %v %v", fi, err)
	}
	// A local lock folder: no hint file.
	local := newStore(t, Options{Self: machine("c", 4), HintDir: hd})
	local.shareKey = func(string) (string, bool) { return "", false }
	cycle(local)
	if f := local.machineHintFile(dir); f != "" {
		t.Errorf("hint file for a local lock folder: %s", f)
	}
	if f := local.machineHintPath(dir, "test mount"); fileExists(f) {
		t.Errorf("hint file written for a local lock folder: %s", f)
	}
	// Another host name on the same machine (a simulated machine in
	// tests), or another mount at the same path, keeps its own hints.
	if a1.machineHintPath(dir, "m") == b.machineHintPath(dir, "m") {
		t.Error("hosts share a hint file")
	}
	if a1.machineHintPath(dir, "m1") == a1.machineHintPath(dir, "m2") {
		t.Error("mounts share a hint file")
	}
	// A hint folder on a share: no hints.
	onShareDir := store("d", 11)
	onShareDir.shareKey = func(string) (string, bool) { return "k", true } // the hint folder too
	if f := onShareDir.machineHintFile(dir); f != "" {
		t.Errorf("hint file %s in a hint folder on a share", f)
	}
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
