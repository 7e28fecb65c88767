package folder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"sharelock/internal/core"
	"sharelock/internal/testdir"
)

// refusingFS fails some calls the way SMB shares do: Remove of a ticket's
// owner file with EBUSY (Samba refuses to delete a file another client has
// open), ReadFile of one path with EIO (smbnetfs).
type refusingFS struct {
	OSFS
	busyTickets atomic.Bool
	eioPath     atomic.Pointer[string]
}

func (f *refusingFS) Remove(name string) error {
	if f.busyTickets.Load() && strings.Contains(name, string(filepath.Separator)+queueName+string(filepath.Separator)) {
		return &pathError{name, syscall.EBUSY}
	}
	return f.OSFS.Remove(name)
}

func (f *refusingFS) ReadFile(name string) ([]byte, error) {
	if p := f.eioPath.Load(); p != nil && *p == name {
		return nil, &pathError{name, syscall.EIO}
	}
	return f.OSFS.ReadFile(name)
}

type pathError struct {
	path string
	err  syscall.Errno
}

func (e *pathError) Error() string { return e.path + ": " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }

// TestTicketLeftWhenRemovalRefused: a waiter that got the lock but could
// not remove its ticket (EBUSY) marks it "released", so nobody defers to a
// ticket whose waiter left the line (before, everyone deferred to it on
// every handoff until its lease ran out).
func TestTicketLeftWhenRemovalRefused(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	ctx := context.Background()
	rfs := &refusingFS{}
	rfs.busyTickets.Store(true)
	holder := newStore(t, Options{Self: machine("holder", 100)})
	waiter := newStore(t, Options{Self: machine("waiter", 101), FS: rfs})
	r := req(db)
	r.Lease = 5 * time.Second // a ticket left live would block others for this long
	r.Heartbeat = time.Second
	l0, err := holder.Acquire(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan core.Lease, 1)
	go func() {
		w := r
		w.Wait = true
		l, err := waiter.Acquire(ctx, w)
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	waitFor(t, "waiter's ticket", func() bool { return len(tickets(t, db)) == 1 })
	l0.Release()
	l1 := <-got
	if l1 == nil {
		t.FailNow()
	}
	l1.Release()
	if q := tickets(t, db); len(q) != 2 || q[1] != q[0]+leftSuffix {
		t.Fatalf("q/ after the refused removal: %v, want the ticket left behind and its marker", q)
	}
	// The owner file was not touched again after the refused delete.
	owner := filepath.Join(queueDir(LockDir(db)), tickets(t, db)[0], ownerName)
	if raw, err := os.ReadFile(owner); err != nil || !strings.Contains(string(raw), stWaiting) {
		t.Fatalf("left ticket's owner file: %q, %v", raw, err)
	}
	// A free lock with only a left ticket in q/: granted at once, without
	// waiting (a live ticket would refuse it: "waiting in line").
	other := newStore(t, Options{Self: machine("other", 102)})
	l2, err := other.Acquire(ctx, req(db))
	if err != nil {
		t.Fatalf("TryAcquire with only a left ticket in line: %v", err)
	}
	l2.Release()
	if info, err := other.Inspect(ctx, db, core.InspectOptions{}); err != nil || len(info.Waiting) != 0 {
		t.Fatalf("Inspect shows %d waiting (%v), want none", len(info.Waiting), err)
	}
	// The next queue check that may clean removed both (the share no
	// longer refuses).
	rfs.busyTickets.Store(false)
	l3, err := waiter.Acquire(ctx, req(db))
	if err != nil {
		t.Fatal(err)
	}
	l3.Release()
	if q := tickets(t, db); len(q) != 0 {
		t.Fatalf("q/ after a cleaning check: %v, want empty", q)
	}
}

// TestWaiterFollowsPastEIO: a waiter whose reads of the head's owner file
// keep failing with EIO while the lock moves on follows the newer
// generation instead of waiting out the error (smbnetfs kept failing one
// old generation's file on one mount for seconds).
func TestWaiterFollowsPastEIO(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rfs := &refusingFS{}
	a := newStore(t, Options{Self: machine("a", 100)})
	b := newStore(t, Options{Self: machine("b", 101)})
	waiter := newStore(t, Options{Self: machine("w", 102), FS: rfs})
	la, err := a.Acquire(ctx, req(db))
	if err != nil {
		t.Fatal(err)
	}
	first := la.Token()
	type result struct {
		l   core.Lease
		err error
		at  time.Time
	}
	got := make(chan result, 1)
	go func() {
		r := req(db)
		r.Wait = true
		l, err := waiter.Acquire(ctx, r)
		got <- result{l, err, time.Now()}
	}()
	waitFor(t, "waiter's ticket", func() bool { return len(tickets(t, db)) == 1 })
	owner := filepath.Join(LockDir(db), genName(first), ownerName)
	rfs.eioPath.Store(&owner) // from now on the waiter cannot read the head
	// b claims the next generation (after deferring to the waiter's ticket
	// for its grace) and holds it briefly.
	la.Release()
	r := req(db)
	r.Wait = true
	lb, err := b.Acquire(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	released := time.Now()
	lb.Release()
	res := <-got
	if res.err != nil {
		t.Fatalf("waiter: %v", res.err)
	}
	defer res.l.Release()
	if res.l.Token() != lb.Token()+1 || lb.Token() != first+1 {
		t.Fatalf("tokens: a %d, b %d, waiter %d", first, lb.Token(), res.l.Token())
	}
	// Without following, the waiter would have read EIO until transientFor
	// (10 s) and failed.
	if d := res.at.Sub(released); d > 5*time.Second {
		t.Fatalf("waiter took %v after b's release", d)
	}
	if !errors.Is(&pathError{"x", syscall.EIO}, syscall.EIO) {
		t.Fatal("pathError does not unwrap")
	}
}
