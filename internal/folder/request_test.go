package folder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sharelock/internal/core"
	"sharelock/internal/testdir"
)

// A release request reaches a listening holder as a notice, with the
// requester's name and message, and the requester learns it was delivered.
func TestRequestDelivered(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	a := newStore(t, Options{Self: machine("a", 1)})
	la, err := a.Acquire(context.Background(), req(db))
	if err != nil {
		t.Fatal(err)
	}
	defer la.Release()
	notices := la.Notices()
	b := newStore(t, Options{Self: machine("bob", 2)})
	res, err := b.RequestRelease(context.Background(), db, "need to print payroll\x1b[2J")
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivery != core.Delivered || res.Token != 1 || res.Holder == nil || res.Holder.User != "user-a" || res.SeenAt.IsZero() {
		t.Fatalf("result: %+v", res)
	}
	select {
	case n := <-notices:
		if n.Kind != core.NoticeRequest || n.From == nil || n.From.User != "user-bob" || n.From.Host != "bob" {
			t.Fatalf("notice: %+v", n)
		}
		if n.Message != "need to print payroll [2J" {
			t.Fatalf("message not cleaned of control characters: %q", n.Message)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no notice")
	}
	// A second request gets the next number and is delivered too.
	res, err = b.RequestRelease(context.Background(), db, "")
	if err != nil || res.Delivery != core.Delivered {
		t.Fatalf("second request: %+v %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(LockDir(db), genName(1), "request-2.seen")); err != nil {
		t.Fatal(err)
	}
}

// A holder whose program never asked for notices answers "not listening".
func TestRequestNotListening(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	a := newStore(t, Options{Self: machine("a", 1)})
	la, err := a.Acquire(context.Background(), req(db))
	if err != nil {
		t.Fatal(err)
	}
	defer la.Release()
	b := newStore(t, Options{Self: machine("bob", 2)})
	res, err := b.RequestRelease(context.Background(), db, "hello")
	if err != nil || res.Delivery != core.NotListening {
		t.Fatalf("result: %+v %v", res, err)
	}
}

// Nobody to ask: ErrNotHeld naming the path. A holder that releases while
// the request waits makes it moot (HandedOn); a paused holder leaves it
// unconfirmed within the bounded wait.
func TestRequestFreeReleasedPaused(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	b := newStore(t, Options{Self: machine("bob", 2)})
	if _, err := b.RequestRelease(context.Background(), db, ""); !errors.Is(err, core.ErrNotHeld) || !strings.Contains(err.Error(), db) {
		t.Fatalf("free lock: %v", err)
	}

	// Released while the request waits (before the holder's first
	// heartbeat, at 1 s, could answer it).
	sfs := &stallFS{}
	a := newStore(t, Options{Self: machine("a", 1), FS: sfs})
	r := req(db)
	r.Lease, r.Heartbeat = 4*time.Second, time.Second
	la, err := a.Acquire(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		la.Release()
	}()
	res, err := b.RequestRelease(context.Background(), db, "")
	if err != nil || res.Delivery != core.HandedOn {
		t.Fatalf("released meanwhile: %+v %v", res, err)
	}

	// Unconfirmed: the holder's calls hang (a paused or cut-off holder).
	lc, err := a.Acquire(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Release()
	sfs.stall()
	defer sfs.unstall()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	res, err = b.RequestRelease(ctx, db, "")
	if err != nil || res.Delivery != core.Unconfirmed {
		t.Fatalf("paused holder: %+v %v", res, err)
	}
}

// Idle release: nothing happens while nobody waits; once someone waits in
// line, an idle holder gets a NoticeIdle, then loses the lock (Idle set) and
// the waiter gets it. A Touch during the grace period cancels the release.
func TestIdleRelease(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	a := newStore(t, Options{Self: machine("a", 1)})
	r := req(db)
	r.IdleLimit, r.IdleGrace = 300*time.Millisecond, 400*time.Millisecond
	la, err := a.Acquire(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	notices := la.Notices()
	// Idle with nobody waiting: kept.
	time.Sleep(time.Second)
	if la.Check() != nil {
		t.Fatalf("idle holder lost its lock with nobody waiting: %v", la.Err())
	}

	b := newStore(t, Options{Self: machine("bob", 2)})
	got := make(chan core.Lease, 1)
	go func() {
		rb := req(db)
		rb.Wait = true
		lb, err := b.Acquire(context.Background(), rb)
		if err != nil {
			t.Error(err)
		}
		got <- lb
	}()
	var n core.Notice
	select {
	case n = <-notices:
	case <-time.After(3 * time.Second):
		t.Fatal("no idle notice")
	}
	if n.Kind != core.NoticeIdle || n.Waiting != 1 || n.From == nil || n.From.User != "user-bob" || !n.Deadline.After(time.Now()) {
		t.Fatalf("idle notice: %+v", n)
	}
	// Active again during the grace: the release is off.
	for i := 0; i < 8; i++ {
		la.Touch()
		time.Sleep(100 * time.Millisecond)
	}
	if la.Check() != nil {
		t.Fatalf("touched holder lost its lock: %v", la.Err())
	}
	// Idle again: notice, then release for it.
	select {
	case n = <-notices:
	case <-time.After(3 * time.Second):
		t.Fatal("no second idle notice")
	}
	select {
	case <-la.Lost():
	case <-time.After(3 * time.Second):
		t.Fatal("idle holder kept the lock")
	}
	var le *core.LostError
	if !errors.As(la.Err(), &le) || !le.Idle || !strings.Contains(le.Reason, "user-bob") {
		t.Fatalf("lost error: %#v", la.Err())
	}
	select {
	case lb := <-got:
		if lb == nil || lb.Token() != 2 {
			t.Fatalf("waiter: %v", lb)
		}
		lb.Release()
	case <-time.After(3 * time.Second):
		t.Fatal("waiter did not get the released lock")
	}
	if err := la.Release(); !errors.Is(err, core.ErrLost) {
		t.Fatalf("release after idle release: %v", err)
	}
}

// A release request counts as someone waiting for idle release.
func TestIdleReleaseOnRequest(t *testing.T) {
	db := filepath.Join(testdir.New(t), "wems.db")
	a := newStore(t, Options{Self: machine("a", 1)})
	r := req(db)
	r.IdleLimit, r.IdleGrace = 200*time.Millisecond, 200*time.Millisecond
	la, err := a.Acquire(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	defer la.Release()
	b := newStore(t, Options{Self: machine("bob", 2)})
	if res, err := b.RequestRelease(context.Background(), db, "please"); err != nil || res.Delivery != core.NotListening {
		t.Fatalf("request: %+v %v", res, err)
	}
	select {
	case <-la.Lost():
	case <-time.After(3 * time.Second):
		t.Fatal("idle holder kept the lock after a request")
	}
	if !strings.Contains(la.Err().Error(), "release request") {
		t.Fatalf("lost error: %v", la.Err())
	}
}

// Garbage collection removes request files with their generation.
func TestRemoveGenWithRequests(t *testing.T) {
	dir := testdir.New(t)
	gdir := filepath.Join(dir, genName(5))
	for _, n := range []string{gdir} {
		if err := os.Mkdir(n, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{ownerName, "request-1", "request-1.seen", "request-2"} {
		if err := os.WriteFile(filepath.Join(gdir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !removeGen(OSFS{}, gdir) {
		t.Fatal("not removed")
	}
	if _, err := os.Stat(gdir); !os.IsNotExist(err) {
		t.Fatalf("still there: %v", err)
	}
	// Foreign content: nothing deleted.
	os.Mkdir(gdir, 0o755)
	for _, n := range []string{ownerName, "request-1", "request-01", "notes.txt"} {
		os.WriteFile(filepath.Join(gdir, n), []byte("x"), 0o644)
	}
	if removeGen(OSFS{}, gdir) {
		t.Fatal("removed foreign content")
	}
	names, _ := os.ReadDir(gdir)
	if len(names) != 4 {
		t.Fatalf("deleted something: %v", names)
	}
}
