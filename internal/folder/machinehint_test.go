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
	b := encodeMachineHint(42, 7*time.Second)
	if gen, ev, ok := decodeMachineHint(b); !ok || gen != 42 || ev != 7*time.Second {
		t.Fatalf("round trip: %d %v %v (%q)", gen, ev, ok, b)
	}
	bad := map[string]string{
		"torn":       string(b[:len(b)/2]),
		"no newline": string(b[:len(b)-1]),
		"bit flip":   string(append([]byte{b[0]}, append([]byte("2"), b[2:]...)...)),
		"foreign":    "hello world 00000000\n",
		"empty":      "",
		"gen zero":   string(encodeMachineHint(0, time.Second)),
	}
	for name, s := range bad {
		if _, _, ok := decodeMachineHint([]byte(s)); ok {
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
	share := func(string) bool { return true }
	store := func(host string, pid int) *Store {
		s := newStore(t, Options{Self: machine(host, pid), HintDir: hd})
		s.onShare = share
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
	// Too old, or from the future: not used.
	p := a1.machineHintPath(dir)
	for name, ev := range map[string]time.Duration{
		"old":    a1.mono() - a1.o.GCMinAge/4 - time.Second,
		"future": a1.mono() + time.Hour,
	} {
		if err := os.WriteFile(p, encodeMachineHint(4, ev), 0o600); err != nil {
			t.Fatal(err)
		}
		if h, ok := store("a", 9).loadMachineHint(dir); ok {
			t.Errorf("%s hint used: %+v", name, h)
		}
	}
	// A local lock folder: no hint file.
	local := newStore(t, Options{Self: machine("c", 4), HintDir: hd})
	local.onShare = func(string) bool { return false }
	cycle(local)
	if _, err := os.Stat(local.machineHintPath(dir)); !os.IsNotExist(err) {
		t.Errorf("hint file for a local lock folder: %v", err)
	}
	// Another host name on the same machine (a simulated machine in
	// tests) keeps its own hints.
	if a1.machineHintPath(dir) == b.machineHintPath(dir) {
		t.Error("hosts share a hint file")
	}
}
