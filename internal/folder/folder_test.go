package folder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"sharelock/internal/clock"
	"sharelock/internal/core"
	"sharelock/internal/ident"
	"sharelock/internal/proc"
	"sharelock/internal/testdir"
)

// machine returns an identity for a simulated machine: a different host and
// machine ID, so no PID checks apply between machines.
func machine(name string, pid int) *ident.Identity {
	id := ident.Self()
	id.Host = name
	id.MachineID = "machine-" + name
	id.User = "user-" + name
	id.PID = pid
	return &id
}

// skewClock is the real monotonic clock with a wall clock off by skew.
type skewClock struct{ skew time.Duration }

func (c skewClock) Mono() time.Duration { return clock.System{}.Mono() }
func (c skewClock) Wall() time.Time     { return time.Now().Add(c.skew) }

// stallFS wraps OSFS; while stalled, writes block until unstalled.
type stallFS struct {
	OSFS
	mu      sync.Mutex
	stalled chan struct{} // non-nil while stalled; closed to release
	writes  atomic.Int64
}

func (f *stallFS) stall() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stalled == nil {
		f.stalled = make(chan struct{})
	}
}

func (f *stallFS) unstall() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stalled != nil {
		close(f.stalled)
		f.stalled = nil
	}
}

func (f *stallFS) wait() {
	f.mu.Lock()
	ch := f.stalled
	f.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func (f *stallFS) Overwrite(name string, data []byte) error {
	f.writes.Add(1)
	f.wait()
	return f.OSFS.Overwrite(name, data)
}

func newStore(t *testing.T, o Options) *Store {
	t.Helper()
	if o.Self == nil {
		o.Self = machine("m1", 1000)
	}
	if o.ClaimWindow == 0 {
		o.ClaimWindow = time.Second // every store of a test agrees
	}
	return New(o)
}

func req(path string) core.Request {
	return core.Request{Path: path, App: "test", Lease: 600 * time.Millisecond, Heartbeat: 100 * time.Millisecond}
}

func TestAcquireReleaseInspect(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	s := newStore(t, Options{})
	ctx := context.Background()

	info, err := s.Inspect(ctx, db, core.InspectOptions{})
	if err != nil || info.State != core.Free || info.Token != 0 {
		t.Fatalf("fresh lock: %+v, %v", info, err)
	}
	l, err := s.Acquire(ctx, req(db))
	if err != nil {
		t.Fatal(err)
	}
	if l.Token() != 1 {
		t.Fatalf("first token = %d, want 1", l.Token())
	}
	info, err = s.Inspect(ctx, db, core.InspectOptions{History: 5})
	if err != nil || info.State != core.Held || info.Token != 1 || info.Holder.User != "user-m1" || info.Holder.App != "test" {
		t.Fatalf("held: %+v %+v, %v", info, info.Holder, err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	info, _ = s.Inspect(ctx, db, core.InspectOptions{})
	if info.State != core.Free || info.Token != 1 {
		t.Fatalf("after release: %+v", info)
	}
	// A second store (another process) sees the same and gets token 2.
	s2 := newStore(t, Options{Self: machine("m2", 2000)})
	l2, err := s2.Acquire(ctx, req(db))
	if err != nil || l2.Token() != 2 {
		t.Fatalf("second acquire: token %v err %v", l2, err)
	}
	l2.Release()
}

func TestTryAcquireHeldNamesHolder(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	a := newStore(t, Options{Self: machine("FRONTDESK-PC", 10)})
	b := newStore(t, Options{Self: machine("PC-3", 20)})
	la, err := a.Acquire(context.Background(), req(db))
	if err != nil {
		t.Fatal(err)
	}
	defer la.Release()
	_, err = b.Acquire(context.Background(), req(db))
	var le *core.LockedError
	if !errors.As(err, &le) || !errors.Is(err, core.ErrLocked) {
		t.Fatalf("want LockedError, got %v", err)
	}
	msg := err.Error()
	want := db + " is in use by user-FRONTDESK-PC on FRONTDESK-PC (test) since "
	if !strings.HasPrefix(msg, want) || !strings.Contains(msg, "last seen") {
		t.Fatalf("message %q does not start with %q", msg, want)
	}
	if le.Holder.PID != 10 || le.Token != 1 || len(le.Solutions) == 0 {
		t.Fatalf("holder fields: %+v", le)
	}
}

func TestWaitGetsLockAfterRelease(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	a := newStore(t, Options{Self: machine("a", 1)})
	b := newStore(t, Options{Self: machine("b", 2)})
	la, _ := a.Acquire(context.Background(), req(db))
	go func() { time.Sleep(100 * time.Millisecond); la.Release() }()
	r := req(db)
	r.Wait = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lb, err := b.Acquire(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if lb.Token() != 2 {
		t.Fatalf("token %d", lb.Token())
	}
	lb.Release()
}

func TestWaitTimeoutReportsHolder(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	a := newStore(t, Options{Self: machine("a", 1)})
	b := newStore(t, Options{Self: machine("b", 2)})
	la, _ := a.Acquire(context.Background(), req(db))
	defer la.Release()
	r := req(db)
	r.Wait = true
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := b.Acquire(ctx, r)
	if !errors.Is(err, core.ErrLocked) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want locked+deadline, got %v", err)
	}
}

// A crashed holder on this machine (proven dead) is taken over at once.
func TestDeadLocalHolderTakenOverAtOnce(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	self := ident.Self()
	ghost := self
	ghost.PID = 999999
	ghost.StartTime = 12345
	a := newStore(t, Options{Self: &ghost})
	la, err := a.Acquire(context.Background(), core.Request{Path: db, Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Simulate the crash: the heartbeat goroutine stops, nothing released.
	la.(*held).stopQuietly()
	b := newStore(t, Options{Self: &self, Liveness: func(pid int, st uint64) proc.Liveness {
		if pid == 999999 {
			return proc.Dead
		}
		return proc.Alive
	}})
	start := time.Now()
	lb, err := b.Acquire(context.Background(), core.Request{Path: db, Lease: time.Hour})
	if err != nil {
		t.Fatalf("takeover of a dead local holder: %v", err)
	}
	defer lb.Release()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("takeover took %v", d)
	}
	if lb.Token() != 2 {
		t.Fatalf("token %d", lb.Token())
	}
	info, _ := b.Inspect(context.Background(), db, core.InspectOptions{History: 2})
	if len(info.History) != 2 || info.History[1].Kind != kindTakeover || info.History[1].Broke == nil || info.History[1].Broke.PID != 999999 {
		t.Fatalf("history %+v", info.History)
	}
}

// A live holder in another PID namespace (same machine and boot, PID 1 there)
// is not mistaken for a dead process of ours.
func TestOtherPIDNamespaceNotJudgedByPID(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	self := ident.Self()
	other := self
	other.PIDNS = "pid:[1]"
	other.PID = 1
	other.StartTime = 1
	a := newStore(t, Options{Self: &other})
	la, err := a.Acquire(context.Background(), req(db))
	if err != nil {
		t.Fatal(err)
	}
	defer la.Release()
	checked := false
	b := newStore(t, Options{Self: &self, Liveness: func(int, uint64) proc.Liveness { checked = true; return proc.Dead }})
	_, err = b.Acquire(context.Background(), req(db))
	if !errors.Is(err, core.ErrLocked) {
		t.Fatalf("want ErrLocked, got %v", err)
	}
	if checked {
		t.Fatal("PID of a holder in another PID namespace was checked here")
	}
}

// A stalled share: the holder's heartbeat write hangs. Lost must fire on time
// (judged from the last successful heartbeat) while the call still hangs; a
// waiter takes over after the lease; the old token is lower.
func TestStalledHolderLosesOnTimeAndIsTakenOver(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	sfs := &stallFS{}
	a := newStore(t, Options{Self: machine("a", 1), FS: sfs, OpTimeout: 5 * time.Second})
	r := core.Request{Path: db, Lease: 800 * time.Millisecond, Heartbeat: 100 * time.Millisecond}
	la, err := a.Acquire(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond)
	sfs.stall()
	defer sfs.unstall()
	stalledAt := time.Now()
	select {
	case <-la.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("lost did not fire while the share was stalled")
	}
	if d := time.Since(stalledAt); d > lostAfter(r.Lease)+300*time.Millisecond {
		t.Errorf("lost fired %v after the stall (limit %v after the last good heartbeat)", d, lostAfter(r.Lease))
	}
	if !errors.Is(la.Err(), core.ErrLost) || la.Check() == nil {
		t.Fatalf("Err=%v Check=%v", la.Err(), la.Check())
	}
	b := newStore(t, Options{Self: machine("b", 2)})
	r.Wait = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lb, err := b.Acquire(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Release()
	if lb.Token() <= la.Token() {
		t.Fatalf("new token %d not above old %d", lb.Token(), la.Token())
	}
	sfs.unstall()
	if err := la.Release(); !errors.Is(err, core.ErrLost) {
		t.Fatalf("release of a lost lock: %v", err)
	}
	// The new holder is not disturbed by the old one's late writes.
	time.Sleep(300 * time.Millisecond)
	if lb.Check() != nil {
		t.Fatalf("new holder lost: %v", lb.Check())
	}
}

// A holder that was taken over (forced break) learns it at its next heartbeat.
func TestForcedBreakSignalsHolder(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	a := newStore(t, Options{Self: machine("a", 1)})
	la, err := a.Acquire(context.Background(), req(db))
	if err != nil {
		t.Fatal(err)
	}
	b := newStore(t, Options{Self: machine("admin", 2)})
	if _, err := b.Break(context.Background(), db, "test", false); !errors.Is(err, core.ErrLive) {
		t.Fatalf("unforced break of a live holder: %v", err)
	}
	info, err := b.Break(context.Background(), db, "user went home", true)
	if err != nil || info.Token != 2 || info.Holder.User != "user-a" {
		t.Fatalf("break: %+v %v", info, err)
	}
	select {
	case <-la.Lost():
	case <-time.After(3 * time.Second):
		t.Fatal("holder did not learn of the break")
	}
	if !strings.Contains(la.Err().Error(), "taken over by user-admin") {
		t.Fatalf("lost reason: %v", la.Err())
	}
	if _, err := b.Break(context.Background(), db, "again", true); !errors.Is(err, core.ErrNotHeld) {
		t.Fatalf("break of a free lock: %v", err)
	}
	audit, _ := os.ReadFile(filepath.Join(LockDir(db), auditName))
	if !strings.Contains(string(audit), "user went home") {
		t.Fatalf("audit log: %q", audit)
	}
	lc, err := b.Acquire(context.Background(), req(db))
	if err != nil || lc.Token() != 3 {
		t.Fatalf("acquire after break: %v %v", lc, err)
	}
	lc.Release()
}

// Clock skew of ±1 h between machines: no false takeover of a live holder,
// and a dead one is still found stale after one lease.
func TestClockSkewNoFalseTakeover(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	sfs := &stallFS{}
	a := newStore(t, Options{Self: machine("ahead", 1), Clock: skewClock{time.Hour}, FS: sfs})
	b := newStore(t, Options{Self: machine("behind", 2), Clock: skewClock{-time.Hour}})
	r := core.Request{Path: db, Lease: 500 * time.Millisecond, Heartbeat: 100 * time.Millisecond}
	la, err := a.Acquire(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	rw := r
	rw.Wait = true
	ctx, cancel := context.WithTimeout(context.Background(), 4*r.Lease)
	_, err = b.Acquire(ctx, rw)
	cancel()
	if !errors.Is(err, core.ErrLocked) {
		t.Fatalf("skewed waiter took over a live holder: %v", err)
	}
	// Now the holder goes silent; the waiter must find it stale.
	sfs.stall()
	defer sfs.unstall()
	ctx, cancel = context.WithTimeout(context.Background(), 10*r.Lease)
	defer cancel()
	lb, err := b.Acquire(ctx, rw)
	if err != nil {
		t.Fatalf("stale holder not taken over under skew: %v", err)
	}
	lb.Release()
	_ = la
}

// Three waiters race for one stale lock: exactly one wins, every time.
func TestThreeWaitersBreakStaleOnce(t *testing.T) {
	for round := 0; round < 30; round++ {
		db := filepath.Join(testdir.New(t), "wems.db")
		a := newStore(t, Options{Self: machine("dead", 1)})
		la, err := a.Acquire(context.Background(), core.Request{Path: db, Lease: 150 * time.Millisecond, Heartbeat: 35 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		la.(*held).stopQuietly()
		// A winner whose heartbeat is late by most of the short lease (a
		// loaded machine, Wine) loses the lock — it is told, and then the
		// next waiter may take over: that is not a second holder. Count
		// the winners that kept the lock to the end of the round.
		roundEnd := make(chan struct{})
		time.AfterFunc(800*time.Millisecond, func() { close(roundEnd) })
		var wins, lost atomic.Int32
		hold := func(l core.Lease) {
			defer l.Release()
			select {
			case <-roundEnd:
				wins.Add(1)
			case <-l.Lost():
				lost.Add(1)
			}
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 3; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				s := newStore(t, Options{Self: machine(fmt.Sprintf("w%d", i), 10+i)})
				<-start
				// Watch until stale; each must see it stale and try to take over.
				r := core.Request{Path: db, Lease: 150 * time.Millisecond, Heartbeat: 35 * time.Millisecond, Wait: false}
				deadline := time.Now().Add(700 * time.Millisecond)
				for time.Now().Before(deadline) {
					l, err := s.Acquire(context.Background(), r)
					if err == nil {
						hold(l) // keep holding (alive) until the round ends
						return
					}
					if !errors.Is(err, core.ErrLocked) {
						t.Error(err)
						return
					}
					// A non-waiting Acquire sees the content once; waiting
					// keeps the observation so staleness can be judged.
					r.Wait = true
					ctx, cancel := context.WithTimeout(context.Background(), time.Until(deadline))
					l, err = s.Acquire(ctx, r)
					cancel()
					if err == nil {
						hold(l)
						return
					}
				}
			}(i)
		}
		close(start)
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d winners kept the lock (%d more lost it)", round, n, lost.Load())
		}
		if n := lost.Load(); n > 0 {
			t.Logf("round %d: %d winner(s) lost the lock to a late heartbeat and were told", round, n)
		}
	}
}

// The same race through Break: exactly one break record.
func TestConcurrentBreaksOnce(t *testing.T) {
	for round := 0; round < 10; round++ {
		db := filepath.Join(testdir.New(t), "wems.db")
		a := newStore(t, Options{Self: machine("dead", 1)})
		la, _ := a.Acquire(context.Background(), core.Request{Path: db, Lease: 300 * time.Millisecond, Heartbeat: 50 * time.Millisecond})
		la.(*held).stopQuietly()
		var ok, notHeld atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 3; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				s := newStore(t, Options{Self: machine(fmt.Sprintf("admin%d", i), 10+i)})
				_, err := s.Break(context.Background(), db, "stale", false)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, core.ErrNotHeld):
					notHeld.Add(1)
				default:
					t.Error(err)
				}
			}(i)
		}
		wg.Wait()
		if ok.Load() != 1 || notHeld.Load() != 2 {
			t.Fatalf("round %d: %d breaks, %d saw it free", round, ok.Load(), notHeld.Load())
		}
	}
}

func TestGCKeepsHistoryAndForeignFiles(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	s := newStore(t, Options{Keep: 8, GCMinAge: time.Nanosecond})
	dir := LockDir(db)
	os.MkdirAll(dir, 0o777)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
	var last uint64
	for i := 0; i < 100; i++ {
		l, err := s.Acquire(context.Background(), req(db))
		if err != nil {
			t.Fatal(err)
		}
		if l.Token() <= last {
			t.Fatalf("token %d after %d", l.Token(), last)
		}
		last = l.Token()
		if i == 10 {
			// A foreign file inside an old generation stops GC there.
			os.WriteFile(filepath.Join(dir, genName(l.Token()), "foreign"), []byte("x"), 0o644)
		}
		l.Release()
	}
	time.Sleep(200 * time.Millisecond) // background GC
	names, _ := os.ReadDir(dir)
	gens := 0
	for _, n := range names {
		if _, ok := parseGenName(n.Name()); ok {
			gens++
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Fatal("foreign file deleted")
	}
	if _, err := os.Stat(filepath.Join(dir, genName(11), "foreign")); err != nil {
		t.Fatal("foreign file in a generation deleted")
	}
	if _, err := os.Stat(filepath.Join(dir, genName(1))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("generation 1 not collected: %v", err)
	}
	if gens > 100-10 || gens < 8 {
		t.Fatalf("%d generations left", gens)
	}
	info, _ := s.Inspect(context.Background(), db, core.InspectOptions{})
	if len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], "notes.txt") {
		t.Fatalf("warnings %q", info.Warnings)
	}
	// What GC deleted is in history.log: the whole history is still there.
	logged, err := os.ReadFile(filepath.Join(dir, historyName))
	if err != nil || bytes.Count(logged, []byte("\n")) < 10 {
		t.Fatalf("history.log: %v, %d lines", err, bytes.Count(logged, []byte("\n")))
	}
	evs, err := s.History(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 100 {
		t.Fatalf("%d events in the history, want 100", len(evs))
	}
	for i, e := range evs {
		if e.Token != uint64(i+1) || e.Kind != kindAcquire || e.State != stReleased || e.Holder == nil || e.Holder.User == "" {
			t.Fatalf("event %d: %+v", i, e)
		}
		if e.At.Before(e.Holder.Since.Truncate(time.Millisecond)) { // At has ms resolution
			t.Fatalf("event %d released at %v before it was acquired at %v", i, e.At, e.Holder.Since)
		}
	}
}

func TestGCRespectsMinAge(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	s := newStore(t, Options{Keep: 4}) // default min age: 15 min
	for i := 0; i < 40; i++ {
		l, err := s.Acquire(context.Background(), req(db))
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(LockDir(db), genName(1))); err != nil {
		t.Fatal("young generation collected")
	}
}

func TestBadLockPaths(t *testing.T) {
	tmp := testdir.New(t)
	s := newStore(t, Options{})
	ctx := context.Background()

	file := filepath.Join(tmp, "a.db")
	os.WriteFile(file+LockSuffix, []byte("user data"), 0o644)
	_, err := s.Acquire(ctx, req(file))
	var pe *core.PathError
	if !errors.As(err, &pe) || !errors.Is(err, core.ErrBadLockDir) || !strings.Contains(err.Error(), file+LockSuffix) || pe.Fix == "" {
		t.Fatalf("lock path is a file: %v", err)
	}
	if b, _ := os.ReadFile(file + LockSuffix); string(b) != "user data" {
		t.Fatal("user file changed")
	}

	link := filepath.Join(tmp, "b.db")
	os.Mkdir(filepath.Join(tmp, "elsewhere"), 0o777)
	os.Symlink(filepath.Join(tmp, "elsewhere"), link+LockSuffix)
	if fi, err := os.Lstat(link + LockSuffix); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		// Wine 8's CreateSymbolicLink reports success and creates nothing.
		t.Logf("no symbolic link could be made here (%v): that case is not tested", err)
	} else {
		_, err = s.Acquire(ctx, req(link))
		if !errors.Is(err, core.ErrBadLockDir) || !strings.Contains(err.Error(), "symbolic link") {
			t.Fatalf("lock path is a symlink: %v", err)
		}
		if ents, _ := os.ReadDir(filepath.Join(tmp, "elsewhere")); len(ents) != 0 {
			t.Fatal("wrote through a symlink")
		}
	}

	missing := filepath.Join(tmp, "no-such-folder", "c.db")
	_, err = s.Acquire(ctx, req(missing))
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "no-such-folder") || !strings.Contains(pe.Fix, "does not exist") {
		t.Fatalf("missing folder: %v", err)
	}
}

// Corrupt, empty and foreign owner files: clear messages, no panic, taken
// over only after a lease without change, and never deleted.
func TestCorruptOwnerFiles(t *testing.T) {
	for name, content := range map[string]string{
		"empty":     "",
		"garbage":   "\x00\x01garbage",
		"truncated": magicLine + "state=held",
		"foreign":   "this is my shopping list\n",
	} {
		t.Run(name, func(t *testing.T) {
			db := filepath.Join(testdir.New(t), "wems.db")
			dir := LockDir(db)
			os.MkdirAll(filepath.Join(dir, genName(1)), 0o777)
			os.WriteFile(filepath.Join(dir, genName(1), ownerName), []byte(content), 0o644)
			s := newStore(t, Options{})
			r := req(db)
			info, _ := s.Inspect(context.Background(), db, core.InspectOptions{})
			if info.State != core.Held || len(info.Warnings) == 0 || !strings.Contains(info.Warnings[0], genName(1)) {
				t.Fatalf("inspect: %+v", info)
			}
			// Even without waiting, an unreadable record is watched for one
			// lease and then taken over (content unchanged).
			start := time.Now()
			l, err := s.Acquire(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release()
			if d := time.Since(start); d < r.Lease {
				t.Fatalf("took over after %v, before a whole lease", d)
			}
			if l.Token() != 2 {
				t.Fatalf("token %d", l.Token())
			}
			if b, _ := os.ReadFile(filepath.Join(dir, genName(1), ownerName)); string(b) != content {
				t.Fatal("corrupt file was changed")
			}
		})
	}
}

// errFS fails chosen calls with an errno, as shares do.
type errFS struct {
	OSFS
	mkdir, create error
}

func (f errFS) Mkdir(name string) error {
	if f.mkdir != nil && strings.HasSuffix(filepath.Dir(name), LockSuffix) {
		return &fs.PathError{Op: "mkdir", Path: name, Err: f.mkdir}
	}
	return f.OSFS.Mkdir(name)
}

func (f errFS) CreateExcl(name string, data []byte) error {
	if f.create != nil {
		return &fs.PathError{Op: "open", Path: name, Err: f.create}
	}
	return f.OSFS.CreateExcl(name, data)
}

func TestShareErrnosExplained(t *testing.T) {
	for _, tc := range []struct {
		fs   errFS
		want string
	}{
		{errFS{mkdir: syscall.EROFS}, "read-only"},
		{errFS{mkdir: syscall.EACCES}, "permission"},
		{errFS{create: syscall.ENOSPC}, "full"},
	} {
		db := filepath.Join(testdir.New(t), "wems.db")
		s := newStore(t, Options{FS: tc.fs})
		_, err := s.Acquire(context.Background(), req(db))
		var pe *core.PathError
		if !errors.As(err, &pe) || !strings.Contains(pe.Fix, tc.want) || !strings.Contains(err.Error(), LockDir(db)) {
			t.Errorf("%+v: got %v", tc.fs, err)
		}
	}
}

// SFTP reports the loser of a mkdir race as EPERM: after re-checking, that is
// contention, not a permission error.
func TestEPERMLoserIsContention(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	a := newStore(t, Options{Self: machine("a", 1)})
	la, _ := a.Acquire(context.Background(), req(db))
	defer la.Release()
	// b believes generation 1 is free (stale hint) and races for it.
	b := newStore(t, Options{Self: machine("b", 2), FS: epermFS{}})
	b.setHint(LockDir(db), hint{gen: 0, evidence: b.mono(), released: true})
	_, err := b.Acquire(context.Background(), req(db))
	if !errors.Is(err, core.ErrLocked) {
		t.Fatalf("want ErrLocked, got %v", err)
	}
}

type epermFS struct{ OSFS }

func (epermFS) Mkdir(name string) error {
	if err := os.Mkdir(name, 0o777); errors.Is(err, fs.ErrExist) {
		return &fs.PathError{Op: "mkdir", Path: name, Err: syscall.EPERM}
	} else {
		return err
	}
}

// A claim whose evidence is older than half the GC age is verified against a
// fresh listing: a generation number that GC removed must not be reused.
func TestOldEvidenceClaimVerified(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	s := newStore(t, Options{Keep: 4, GCMinAge: time.Nanosecond})
	for i := 0; i < 40; i++ {
		l, _ := s.Acquire(context.Background(), req(db))
		l.Release()
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(LockDir(db), genName(2))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("setup: generation 2 still there: %v", err)
	}
	// A paused process wakes up believing generation 1 is the newest, free.
	p := newStore(t, Options{Self: machine("sleeper", 5), Keep: 4, GCMinAge: time.Hour})
	p.setHint(LockDir(db), hint{gen: 1, evidence: p.mono() - 2*time.Hour, released: true})
	p.o.GCMinAge = time.Hour
	l, err := p.Acquire(context.Background(), req(db))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if l.Token() != 41 {
		t.Fatalf("sleeper got token %d, want 41", l.Token())
	}
}

func TestHeartbeatChangesOwnerFile(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	s := newStore(t, Options{})
	l, _ := s.Acquire(context.Background(), req(db))
	defer l.Release()
	p := filepath.Join(LockDir(db), genName(1), ownerName)
	a, _ := os.ReadFile(p)
	time.Sleep(250 * time.Millisecond)
	b, _ := os.ReadFile(p)
	if string(a) == string(b) || len(a) != len(b) {
		t.Fatalf("heartbeat did not rewrite the owner file in place:\n%q\n%q", a, b)
	}
	o, err := parseOwner(b)
	if err != nil || o.State != stHeld || o.Beat < 2 {
		t.Fatalf("%+v %v", o, err)
	}
}

func FuzzParseOwner(f *testing.F) {
	rec := record{Token: 3, Kind: kindAcquire, User: "alice", Host: "PC", PID: 5, Since: "2026-01-01T09:12:00Z", Nonce: "ab"}
	f.Add(encodeOwner(nil, stHeld, 7, time.Unix(1700000000, 0), encodeRecord(&rec)))
	f.Add([]byte(""))
	f.Add([]byte(magicLine))
	f.Add([]byte(magicLine + "state=released beat=00000000000000000001 at=00000000000000000001\n{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := parseOwner(b)
		if err != nil {
			return
		}
		// Whatever parses must re-encode to a file that parses the same.
		again, err := parseOwner(encodeOwner(nil, o.State, o.Beat, o.At, encodeRecord(&o.Rec)))
		if err != nil || again.State != o.State || again.Beat != o.Beat || again.Rec.Token != o.Rec.Token {
			t.Fatalf("round trip: %v %+v %+v", err, o, again)
		}
	})
}

// stopQuietly simulates a crash: the heartbeat stops, nothing is released.
func (h *held) stopQuietly() {
	close(h.stop)
	<-h.done
}

// Without waiting: a remote holder that looks dead by the clocks is watched
// for a lease and taken over if silent; a live one with a skewed clock is
// refused as soon as its heartbeat changes.
func TestTryAcquireWatchesSuspiciousHolder(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	behind := newStore(t, Options{Self: machine("behind", 1), Clock: skewClock{-time.Hour}})
	la, err := behind.Acquire(context.Background(), req(db))
	if err != nil {
		t.Fatal(err)
	}
	b := newStore(t, Options{Self: machine("b", 2)})
	start := time.Now()
	if _, err := b.Acquire(context.Background(), req(db)); !errors.Is(err, core.ErrLocked) {
		t.Fatalf("live holder with a slow clock taken over: %v", err)
	}
	if d := time.Since(start); d > req(db).Lease {
		t.Errorf("refusal took %v: should end at the first heartbeat change", d)
	}
	la.(*held).stopQuietly()
	time.Sleep(req(db).Lease) // silent
	lb, err := b.Acquire(context.Background(), req(db))
	if err != nil {
		t.Fatalf("silent holder not taken over without waiting: %v", err)
	}
	lb.Release()
}

// slowCreateFS makes owner-file creation slow (a claim being written).
type slowCreateFS struct {
	OSFS
	delay time.Duration
}

func (f slowCreateFS) CreateExcl(name string, data []byte) error {
	time.Sleep(f.delay)
	return f.OSFS.CreateExcl(name, data)
}

// Regression (review R1): a claimant slow to write its record, observed by a
// waiter with a shorter lease, must not end up holding alongside it.
func TestSlowClaimNeverDoubleHolder(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	a := newStore(t, Options{Self: machine("slow", 1), FS: slowCreateFS{delay: 700 * time.Millisecond}})
	b := newStore(t, Options{Self: machine("quick", 2)})
	var la, lb core.Lease
	var errA, errB error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		la, errA = a.Acquire(ctx, core.Request{Path: db, Lease: 6 * time.Second, Wait: true})
	}()
	go func() {
		defer wg.Done()
		time.Sleep(50 * time.Millisecond) // after A's mkdir
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		lb, errB = b.Acquire(ctx, core.Request{Path: db, Lease: 300 * time.Millisecond, Heartbeat: 50 * time.Millisecond, Wait: true})
	}()
	wg.Wait()
	if errA == nil && errB == nil && la.Check() == nil && lb.Check() == nil {
		t.Fatalf("two holders: A token %d, B token %d", la.Token(), lb.Token())
	}
	for _, l := range []core.Lease{la, lb} {
		if l != nil {
			l.Release()
		}
	}
}

// Regression (review R3): Release right after a forced break, before any
// heartbeat noticed it, reports the loss.
func TestReleaseAfterBreakReportsLoss(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	a := newStore(t, Options{Self: machine("a", 1)})
	la, err := a.Acquire(context.Background(), core.Request{Path: db, Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b := newStore(t, Options{Self: machine("admin", 2)})
	if _, err := b.Break(context.Background(), db, "test", true); err != nil {
		t.Fatal(err)
	}
	if err := la.Release(); !errors.Is(err, core.ErrLost) {
		t.Fatalf("Release after a break: %v", err)
	}
	select {
	case <-la.Lost():
	default:
		t.Fatal("Lost not closed")
	}
}

// jumpClock is a clock whose monotonic reading can jump (a suspend).
type jumpClock struct{ off atomic.Int64 }

func (c *jumpClock) Mono() time.Duration { return clock.System{}.Mono() + time.Duration(c.off.Load()) }
func (c *jumpClock) Wall() time.Time     { return time.Now().Add(time.Duration(c.off.Load())) }

// Regression (review R4): after a pause past the loss limit, Release returns
// the loss even if the heartbeat loop never ran.
func TestReleaseAfterPauseReportsLoss(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	c := &jumpClock{}
	a := newStore(t, Options{Clock: c})
	la, err := a.Acquire(context.Background(), core.Request{Path: db, Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c.off.Store(int64(2 * time.Hour)) // the machine slept for two hours
	if err := la.Check(); !errors.Is(err, core.ErrLost) {
		t.Fatalf("Check after sleeping: %v", err)
	}
	if err := la.Release(); !errors.Is(err, core.ErrLost) {
		t.Fatalf("Release after sleeping: %v", err)
	}
	// Nobody took over: the release still frees it for others.
	b := newStore(t, Options{Self: machine("b", 2)})
	deadline := time.Now().Add(2 * time.Second)
	for {
		lb, err := b.Acquire(context.Background(), req(db))
		if err == nil {
			lb.Release()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock not freed after a lost release: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Regression (review R7): odd leases are errors, not panics or instant loss.
func TestLeaseBounds(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	s := newStore(t, Options{})
	for _, r := range []core.Request{
		{Path: db, Lease: 5 * time.Nanosecond},
		{Path: db, Lease: 1 << 62},
		{Path: db, Lease: time.Second, Heartbeat: 400 * time.Millisecond},
	} {
		if l, err := s.Acquire(context.Background(), r); err == nil {
			l.Release()
			t.Errorf("lease %v heartbeat %v accepted", r.Lease, r.Heartbeat)
		}
	}
	if lostAfter(1<<62) <= 0 {
		t.Fatal("lostAfter overflows")
	}
}

// Regression (review R8): a planted huge generation name is foreign; the
// token never wraps.
func TestPlantedHugeGenerationIgnored(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	os.MkdirAll(filepath.Join(LockDir(db), "18446744073709551615"), 0o777)
	s := newStore(t, Options{})
	l, err := s.Acquire(context.Background(), req(db))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if l.Token() != 1 {
		t.Fatalf("token %d", l.Token())
	}
}
