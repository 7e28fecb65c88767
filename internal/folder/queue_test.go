package folder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sharelock/internal/core"
	"sharelock/internal/proc"
	"sharelock/internal/testdir"
)

// tickets lists the ticket numbers in the wait queue of db.
func tickets(t *testing.T, db string) []string {
	t.Helper()
	names, err := os.ReadDir(queueDir(LockDir(db)))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		out = append(out, n.Name())
	}
	return out
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestQueueFIFO: four waiters of four machines, queued one after the other,
// get the lock in the order they came, although the releaser itself asks
// again at once; Inspect lists them in order and does not warn about q.
func TestQueueFIFO(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	ctx := context.Background()
	s0 := newStore(t, Options{Self: machine("m0", 100)})
	l0, err := s0.Acquire(ctx, req(db))
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		s := newStore(t, Options{Self: machine(fmt.Sprintf("m%d", i), 100+i)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := req(db)
			r.Wait = true
			l, err := s.Acquire(ctx, r)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			l.Release()
		}()
		waitFor(t, fmt.Sprintf("ticket %d", i), func() bool { return len(tickets(t, db)) == i })
	}
	info, err := s0.Inspect(ctx, db, core.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Waiting) != n {
		t.Fatalf("Inspect: %d waiting, want %d: %+v", len(info.Waiting), n, info.Waiting)
	}
	for i, h := range info.Waiting {
		if want := fmt.Sprintf("user-m%d", i+1); h.User != want || h.Since.IsZero() {
			t.Errorf("waiting[%d] = %+v, want %s with a ticket time", i, h, want)
		}
	}
	for _, w := range info.Warnings {
		if strings.Contains(w, `"q"`) {
			t.Errorf("warning about the wait queue: %s", w)
		}
	}
	if err := l0.Release(); err != nil {
		t.Fatal(err)
	}
	// The releaser wants it back at once: it must queue behind the others.
	r := req(db)
	r.Wait = true
	again, err := s0.Acquire(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	order = append(order, 0)
	got := fmt.Sprint(order)
	mu.Unlock()
	again.Release()
	wg.Wait()
	if want := "[1 2 3 4 0]"; got != want {
		t.Fatalf("acquisition order %s, want %s", got, want)
	}
	if q := tickets(t, db); q != nil {
		t.Fatalf("wait queue left behind: %v", q)
	}
}

// TestReleaserDefersToWaiter: the next generation goes to the waiter, not to
// the releaser asking again at once (which has no ticket yet).
func TestReleaserDefersToWaiter(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	ctx := context.Background()
	s0 := newStore(t, Options{Self: machine("m0", 100)})
	s1 := newStore(t, Options{Self: machine("m1", 101)})
	for round := 0; round < 5; round++ {
		l0, err := s0.Acquire(ctx, req(db))
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan uint64, 1)
		go func() {
			r := req(db)
			r.Wait = true
			l, err := s1.Acquire(ctx, r)
			if err != nil {
				t.Error(err)
				got <- 0
				return
			}
			got <- l.Token()
			time.Sleep(time.Millisecond)
			l.Release()
		}()
		waitFor(t, "waiter's ticket", func() bool { return len(tickets(t, db)) == 1 })
		l0.Release()
		r := req(db)
		r.Wait = true
		l, err := s0.Acquire(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if l.Token() == l0.Token()+1 {
			// The releaser jumped the line: let the waiter finish
			// rather than hang on it.
			l.Release()
			t.Fatalf("round %d: released %d, the releaser got %d before the waiter (waiter got %d)",
				round, l0.Token(), l.Token(), <-got)
		}
		if w := <-got; w != l0.Token()+1 || l.Token() != l0.Token()+2 {
			t.Fatalf("round %d: released %d; waiter got %d, releaser %d", round, l0.Token(), w, l.Token())
		}
		l.Release()
	}
}

// TestTryAcquireRefusedWithWaiters: a free lock with a live ticket is
// refused without waiting, naming the line; once the line is empty it is
// granted.
func TestTryAcquireRefusedWithWaiters(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	ctx := context.Background()
	s0 := newStore(t, Options{Self: machine("m0", 100)})
	l0, err := s0.Acquire(ctx, req(db))
	if err != nil {
		t.Fatal(err)
	}
	l0.Release()
	sw := newStore(t, Options{Self: machine("bob-pc", 200)})
	q := &queue{dir: LockDir(db)}
	if err := sw.takeTicket(ctx, q, req(db)); err != nil {
		t.Fatal(err)
	}
	s1 := newStore(t, Options{Self: machine("m1", 101)})
	_, err = s1.Acquire(ctx, req(db))
	var le *core.LockedError
	if !errors.As(err, &le) || !le.Queued || le.Waiting != 1 || le.Holder == nil || le.Holder.Host != "bob-pc" {
		t.Fatalf("TryAcquire with a waiter: %v (%+v)", err, le)
	}
	if msg := err.Error(); !strings.Contains(msg, "is free but 1 other process is waiting in line for it (next: user-bob-pc on bob-pc") {
		t.Fatalf("message: %s", msg)
	}
	q.own.remove()
	l1, err := s1.Acquire(ctx, req(db))
	if err != nil {
		t.Fatalf("TryAcquire with an empty line: %v", err)
	}
	l1.Release()
	if q := tickets(t, db); q != nil {
		t.Fatalf("wait queue left behind: %v", q)
	}
}

// TestDeadTicketSkippedAfterLease: a remote waiter whose ticket stops
// beating is skipped once this observer saw it unchanged for its lease
// (well before the grace period would have let us claim anyway), and its
// ticket is removed.
func TestDeadTicketSkippedAfterLease(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	ctx := context.Background()
	s0 := newStore(t, Options{Self: machine("m0", 100)})
	l0, err := s0.Acquire(ctx, req(db))
	if err != nil {
		t.Fatal(err)
	}
	// Its ticket declares a slow poll: deferring to it would take the
	// longest grace (2 s), so a quick acquire below proves it was skipped.
	sd := newStore(t, Options{Self: machine("gone", 300), PollMax: 5 * time.Second})
	q := &queue{dir: LockDir(db)}
	short := core.Request{Path: db, App: "test", Lease: 100 * time.Millisecond, Heartbeat: 25 * time.Millisecond}
	if err := sd.takeTicket(ctx, q, short); err != nil {
		t.Fatal(err)
	}
	dead := q.own.tdir
	close(q.own.stop) // the waiter's machine went away: no more heartbeats

	s1 := newStore(t, Options{Self: machine("m1", 101)})
	done := make(chan time.Time, 1)
	go func() {
		r := req(db)
		r.Wait = true
		l, err := s1.Acquire(ctx, r)
		if err != nil {
			t.Error(err)
		} else {
			l.Release()
		}
		done <- time.Now()
	}()
	waitFor(t, "second ticket", func() bool { return len(tickets(t, db)) == 2 })
	time.Sleep(150 * time.Millisecond) // more than the dead ticket's lease
	released := time.Now()
	l0.Release()
	if took := (<-done).Sub(released); took > 600*time.Millisecond {
		t.Fatalf("waiter behind a dead ticket took %v", took)
	}
	if _, err := os.Lstat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dead ticket %s not removed: %v", dead, err)
	}
}

// TestKilledTicketHolderCleaned: a waiter on this machine that is killed
// leaves its ticket; the next waiter proves the process gone, skips it at
// once and removes it.
func TestKilledTicketHolderCleaned(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	ctx := context.Background()
	const killed = 4242
	liveness := func(pid int, start uint64) proc.Liveness {
		if pid == killed {
			return proc.Dead
		}
		return proc.Alive
	}
	s0 := newStore(t, Options{Self: machine("pc", 100), Liveness: liveness})
	l0, err := s0.Acquire(ctx, req(db))
	if err != nil {
		t.Fatal(err)
	}
	sk := newStore(t, Options{Self: machine("pc", killed), Liveness: liveness})
	q := &queue{dir: LockDir(db)}
	if err := sk.takeTicket(ctx, q, req(db)); err != nil {
		t.Fatal(err)
	}
	// Killed: the heartbeat stops, the ticket stays.
	close(q.own.stop)
	// A grace of 2 s: skipping the ticket must not wait for it.
	s1 := newStore(t, Options{Self: machine("pc", 101), Liveness: liveness, PollMax: 2 * time.Second})
	done := make(chan time.Time, 1)
	go func() {
		r := req(db)
		r.Wait = true
		l, err := s1.Acquire(ctx, r)
		if err != nil {
			t.Error(err)
		} else {
			l.Release()
		}
		done <- time.Now()
	}()
	// Refused, s1 takes a ticket, checks its place in line and finds the
	// killed waiter's ticket proven dead: removed at once.
	killedDir := q.own.tdir
	waitFor(t, "the killed waiter's ticket removed", func() bool {
		_, err := os.Lstat(killedDir)
		return errors.Is(err, os.ErrNotExist) && len(tickets(t, db)) == 1
	})
	released := time.Now()
	l0.Release()
	if took := (<-done).Sub(released); took > 300*time.Millisecond {
		t.Fatalf("waiter behind a killed waiter's ticket took %v", took)
	}
	if q := tickets(t, db); q != nil {
		t.Fatalf("wait queue not cleaned: %v", q)
	}
}

// TestGivingUpRemovesTicket: a waiter whose context ends leaves the line.
func TestGivingUpRemovesTicket(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	s0 := newStore(t, Options{Self: machine("m0", 100)})
	l0, err := s0.Acquire(context.Background(), req(db))
	if err != nil {
		t.Fatal(err)
	}
	defer l0.Release()
	s1 := newStore(t, Options{Self: machine("m1", 101)})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r := req(db)
	r.Wait = true
	if _, err := s1.Acquire(ctx, r); !errors.Is(err, core.ErrLocked) {
		t.Fatalf("wait timeout: %v", err)
	}
	if q := tickets(t, db); q != nil {
		t.Fatalf("ticket left behind: %v", q)
	}
}

// TestTicketRecordsKeptApart: a ticket record is never taken for a lock
// record (a generation holding one is unreadable, i.e. held by an unknown
// claimant), nor a lock record for a ticket.
func TestTicketRecordsKeptApart(t *testing.T) {
	s := newStore(t, Options{})
	r := req("x")
	tk := s.newRecord(kindWait, 3, &r)
	raw := encodeOwner(nil, stWaiting, 1, time.Now(), encodeRecord(&tk))
	if _, err := parseOwner(raw); err == nil {
		t.Fatal("ticket record accepted as a lock record")
	}
	if o, err := parseTicket(raw); err != nil || o.State != stWaiting {
		t.Fatalf("ticket: %+v %v", o, err)
	}
	lk := s.newRecord(kindAcquire, 3, &r)
	raw = encodeOwner(nil, stHeld, 1, time.Now(), encodeRecord(&lk))
	if _, err := parseTicket(raw); err == nil {
		t.Fatal("lock record accepted as a ticket")
	}
	mixed := encodeOwner(nil, stWaiting, 1, time.Now(), encodeRecord(&lk))
	if _, err := parseAny(mixed); err == nil {
		t.Fatal("state waiting with kind acquire accepted")
	}
}

// A ticket directory left without an owner file (sshfs keeps a file removed
// while open as .fuse_hidden*, so the directory cannot be removed) is nobody
// to defer to: a no-wait acquire of the free lock succeeds at once, and a
// waiter behind it is not held up by a grace period per handoff.
func TestQueueIgnoresTicketWithoutOwner(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	qd := queueDir(LockDir(db))
	leftover := filepath.Join(qd, genName(1))
	if err := os.MkdirAll(leftover, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(leftover, ".fuse_hidden0000009a00000002"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// With a slow poll the grace for a ticket without a record is 2 s:
	// deferring to the leftover would show as a 2 s wait.
	s := newStore(t, Options{Self: machine("a", 1), PollMax: 2 * time.Second})
	r := req(db)
	r.Wait = true
	start := time.Now()
	l, err := s.Acquire(context.Background(), r)
	if err != nil {
		t.Fatalf("acquire with an ownerless ticket ahead: %v", err)
	}
	defer l.Release()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("deferred %v to a ticket without an owner file", d)
	}
	// The foreign file is never deleted.
	if _, err := os.Stat(filepath.Join(leftover, ".fuse_hidden0000009a00000002")); err != nil {
		t.Fatal(err)
	}
}
