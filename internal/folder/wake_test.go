package folder

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"sharelock/internal/proc"
	"sharelock/internal/testdir"
)

// pollOnlyFS is OSFS under another type: the store does not use wake-ups
// with it (wakeable), so its waiters only poll.
type pollOnlyFS struct{ OSFS }

// sameMachine returns two identities of one machine (distinct PIDs that
// Liveness below declares alive), so that holder and waiter are local to
// each other.
func sameMachine(pid int) Options {
	return Options{Self: machine("here", pid), Liveness: func(int, uint64) proc.Liveness { return proc.Alive }}
}

// handoffAfterRelease lets waiter wait for db held by holder, releases once
// the waiter is in line and asleep, and returns how long after the release
// the waiter got the lock.
func handoffAfterRelease(t *testing.T, holder, waiter *Store, db string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lh, err := holder.Acquire(ctx, req(db))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan time.Time, 1)
	go func() {
		r := req(db)
		r.Wait = true
		l, err := waiter.Acquire(ctx, r)
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- time.Now()
		l.Release()
	}()
	waitFor(t, "the waiter's ticket", func() bool { return len(tickets(t, db)) == 1 })
	time.Sleep(50 * time.Millisecond) // the waiter is in its (long) sleep
	released := time.Now()
	if err := lh.Release(); err != nil {
		t.Fatal(err)
	}
	at, ok := <-got
	if !ok {
		t.FailNow()
	}
	return at.Sub(released)
}

// slowPolls makes polling alone take at least half a second per look.
func slowPolls(o Options) Options {
	o.PollMin, o.PollMax, o.PollMaxLocal = time.Second, 10*time.Second, 10*time.Second
	return o
}

// TestWakeSameMachineHandoff: a waiter whose polls are at least half a
// second apart gets the lock within 200 ms of a release on the same machine:
// only the wake-up can do that. (A functional check of the wake path, with
// a generous bound; not a measurement.)
func TestWakeSameMachineHandoff(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("wake-ups exist on Linux only")
	}
	for i := range 3 {
		db := filepath.Join(testdir.New(t), "wems.db")
		holder := newStore(t, sameMachine(10))
		waiter := newStore(t, slowPolls(sameMachine(11)))
		if d := handoffAfterRelease(t, holder, waiter, db); d > 200*time.Millisecond {
			t.Fatalf("round %d: the waiter got the lock %v after the release; a wake-up should bring it within milliseconds", i, d)
		}
	}
}

// TestWakeDisabledStillPolls: without wake-ups (an FS other than OSFS),
// waiting works by polling alone: quickly with the default intervals, and
// with slow polls only after a poll (which also shows that the speed of
// TestWakeSameMachineHandoff comes from the wake-up).
func TestWakeDisabledStillPolls(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	holder := newStore(t, sameMachine(10))
	o := sameMachine(11)
	o.FS = pollOnlyFS{}
	if d := handoffAfterRelease(t, holder, newStore(t, o), db); d > time.Second {
		t.Fatalf("polling alone: the waiter got the lock %v after the release", d)
	}
	db = filepath.Join(testdir.New(t), "wems.db")
	if d := handoffAfterRelease(t, holder, newStore(t, slowPolls(o)), db); d < 300*time.Millisecond {
		t.Fatalf("slow polls without wake-ups: the waiter got the lock %v after the release; it should have waited for a poll (≥ 0.45 s)", d)
	}
}

// TestWakerEvents: what wakes a waker and what does not.
func TestWakerEvents(t *testing.T) {
	dir := LockDir(filepath.Join(testdir.New(t), "wems.db"))
	for _, d := range []string{dir, filepath.Join(dir, genName(5)), queueDir(dir)} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	owner := filepath.Join(dir, genName(5), ownerName)
	if err := os.WriteFile(owner, []byte("held"), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint64{3, 7, 9} {
		if err := os.Mkdir(filepath.Join(queueDir(dir), genName(n)), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	w := newWaker(dir)
	if w == nil {
		if runtime.GOOS == "linux" {
			t.Fatal("no waker on Linux")
		}
		t.Skip("no wake-ups on " + runtime.GOOS)
	}
	defer w.Close()
	expect := func(what string, want uint32, change func()) {
		t.Helper()
		// Let wake-ups of earlier changes arrive, and drop them.
		time.Sleep(20 * time.Millisecond)
		select {
		case <-w.C():
		default:
		}
		w.take()
		change()
		if want == 0 {
			select {
			case <-w.C():
				t.Fatalf("%s: woke (flags %b), should not", what, w.take())
			case <-time.After(100 * time.Millisecond):
			}
			return
		}
		var got uint32
		timeout := time.After(2 * time.Second)
		for got&want != want {
			select {
			case <-w.C():
				got |= w.take()
			case <-timeout:
				t.Fatalf("%s: flags %b, want %b", what, got, want)
			}
		}
	}
	write := func() {
		if err := (OSFS{}).Overwrite(owner, []byte("rele")); err != nil {
			t.Fatal(err)
		}
	}
	// Behind the front (no generation watch), ticket 7 ours.
	if !w.follow(5, false, 7) {
		t.Fatal("follow added no watch")
	}
	expect("release seen from behind the front", 0, write)
	expect("ticket behind ours removed", 0, func() { os.Remove(filepath.Join(queueDir(dir), genName(9))) })
	expect("ticket taken behind ours", 0, func() { os.Mkdir(filepath.Join(queueDir(dir), genName(10)), 0o777) })
	expect("ticket ahead removed", wakeQueue, func() { os.Remove(filepath.Join(queueDir(dir), genName(3))) })
	expect("older generation created", 0, func() { os.Mkdir(filepath.Join(dir, genName(2)), 0o777) })
	// At the front.
	if !w.follow(5, true, 7) {
		t.Fatal("follow added no generation watch")
	}
	expect("release at the front", wakeGen, write)
	expect("request file in the generation", 0, func() { os.WriteFile(filepath.Join(dir, genName(5), "request-1"), nil, 0o666) })
	expect("next generation claimed", wakeHead, func() { os.Mkdir(filepath.Join(dir, genName(6)), 0o777) })
	// The head moved on: the old generation is no longer watched.
	if !w.follow(6, true, 7) {
		t.Fatal("follow did not watch the new head")
	}
	expect("write to a superseded generation", 0, write)
	expect("claim record written", wakeGen, func() { os.WriteFile(filepath.Join(dir, genName(6), ownerName), []byte("held"), 0o666) })

	// Given back and reused: nothing of the old watches remains.
	w.Close()
	w = newWaker(dir)
	if w == nil {
		t.Fatal("no waker the second time")
	}
	expect("after reuse, a write to an unwatched generation", 0, func() {
		os.WriteFile(filepath.Join(dir, genName(6), ownerName), []byte("rele"), 0o666)
	})
}
