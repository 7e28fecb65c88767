package folder

import (
	"context"
	"errors"
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
	ticketCalls atomic.Int64 // Remove and Overwrite calls on tickets' owner files
	eios        atomic.Int64 // EIOs injected
}

func inQueue(name string) bool {
	return strings.Contains(name, string(filepath.Separator)+queueName+string(filepath.Separator))
}

func (f *refusingFS) Remove(name string) error {
	if inQueue(name) {
		f.ticketCalls.Add(1)
		if f.busyTickets.Load() {
			return &pathError{name, syscall.EBUSY}
		}
	}
	return f.OSFS.Remove(name)
}

func (f *refusingFS) Overwrite(name string, data []byte) error {
	if inQueue(name) && !strings.Contains(string(data), stWaiting) {
		f.ticketCalls.Add(1) // not a heartbeat
	}
	return f.OSFS.Overwrite(name, data)
}

func (f *refusingFS) ReadFile(name string) ([]byte, error) {
	if p := f.eioPath.Load(); p != nil && *p == name {
		f.eios.Add(1)
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
// not remove its ticket (EBUSY) marks it with q/<ticket>.left and touches
// the file no more, so nobody defers to a ticket whose waiter left the line
// (before, everyone deferred to it on every handoff until its lease ran
// out); Inspect does not list it; a cleaning check removes the ticket once
// it has seen the marker for leftLinger, and the marker at a later check.
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
	q := tickets(t, db)
	if len(q) != 2 || q[1] != q[0]+leftSuffix {
		t.Fatalf("q/ after the refused removal: %v, want the ticket left behind and its marker", q)
	}
	// One refused delete, then nothing more on that file (no rewrite, no
	// retry).
	if n := rfs.ticketCalls.Load(); n != 1 {
		t.Fatalf("%d Remove/Overwrite calls on the ticket's owner file, want the 1 refused delete", n)
	}
	// Inspect (never cleans) does not count it as waiting.
	other := newStore(t, Options{Self: machine("other", 102)})
	if info, err := other.Inspect(ctx, db, core.InspectOptions{}); err != nil || len(info.Waiting) != 0 {
		t.Fatalf("Inspect shows %d waiting (%v), want none", len(info.Waiting), err)
	}
	if q2 := tickets(t, db); len(q2) != 2 {
		t.Fatalf("Inspect changed q/: %v", q2)
	}
	// A free lock with only a left ticket in line: granted at once without
	// waiting (a live ticket would refuse it: "waiting in line"). This
	// check has just seen the marker: it leaves the ticket alone.
	l2, err := other.Acquire(ctx, req(db))
	if err != nil {
		t.Fatalf("TryAcquire with only a left ticket in line: %v", err)
	}
	l2.Release()
	if q2 := tickets(t, db); len(q2) != 2 {
		t.Fatalf("q/ right after a check that saw the marker first: %v, want both still there", q2)
	}
	// A waiter that sees the marker for leftLinger removes the ticket, and
	// a later check the marker.
	l3, err := other.Acquire(ctx, req(db))
	if err != nil {
		t.Fatal(err)
	}
	waiterReq := req(db)
	waiterReq.Wait = true
	done := make(chan error, 1)
	go func() {
		l, err := newStore(t, Options{Self: machine("third", 103)}).Acquire(ctx, waiterReq)
		if err == nil {
			l.Release()
		}
		done <- err
	}()
	time.Sleep(leftLinger + 300*time.Millisecond)
	l3.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	l4, err := other.Acquire(ctx, req(db))
	if err != nil {
		t.Fatal(err)
	}
	l4.Release()
	if q2 := tickets(t, db); len(q2) != 0 {
		t.Fatalf("q/ after cleaning checks: %v, want empty", q2)
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
	if rfs.eios.Load() == 0 {
		t.Fatal("no EIO was injected: the test tested nothing")
	}
	if !errors.Is(&pathError{"x", syscall.EIO}, syscall.EIO) {
		t.Fatal("pathError does not unwrap")
	}
}
