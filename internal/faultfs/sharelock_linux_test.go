//go:build linux

package faultfs_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"sharelock"
	"sharelock/internal/core"
	"sharelock/internal/faultfs"
	"sharelock/internal/folder"
	"sharelock/internal/ident"
)

// machine is the identity of a process on another machine: never the same
// process space as ours, so only the lease decides about it.
func machine(name string, pid int) *ident.Identity {
	return &ident.Identity{
		User: "user-" + name, Host: name, PID: pid, StartTime: 1,
		MachineID: fmt.Sprintf("%032x", name), BootID: "boot-" + name,
	}
}

// settle waits for the kernel's asynchronous requests (RELEASE after a
// close) to arrive, so that counts cover a whole operation.
func settle() { time.Sleep(30 * time.Millisecond) }

// perOp accumulates counts over several runs of one operation.
type perOp struct {
	runs   int
	counts map[faultfs.Op]int64
}

func (p *perOp) add(c map[faultfs.Op]int64) {
	if p.counts == nil {
		p.counts = map[faultfs.Op]int64{}
	}
	p.runs++
	for op, n := range c {
		p.counts[op] += n
	}
}

func (p *perOp) mean() float64 {
	return float64(faultfs.Total(p.counts)) / float64(p.runs)
}

func (p *perOp) String() string {
	var b strings.Builder
	for _, op := range faultfs.Ops() {
		if n := p.counts[op]; n != 0 {
			fmt.Fprintf(&b, "%s=%.3g ", op, float64(n)/float64(p.runs))
		}
	}
	fmt.Fprintf(&b, "total=%.3g (mean of %d)", p.mean(), p.runs)
	return b.String()
}

// TestRoundTrips measures how many filesystem calls (round trips to a file
// server) the folder store makes per operation, through a mount without
// client caches.
func TestRoundTrips(t *testing.T) {
	backing := t.TempDir()
	fsys := faultfs.Mount(t, backing)
	ctx := context.Background()
	measure := func(fn func()) map[faultfs.Op]int64 {
		settle()
		fsys.ResetCounts()
		fn()
		settle()
		return fsys.Counts()
	}
	acquire := func(s *folder.Store, path string, opts ...sharelock.Option) *sharelock.Lock {
		t.Helper()
		l, err := sharelock.Acquire(ctx, path, append([]sharelock.Option{sharelock.WithStore(s), sharelock.WithApp("rt")}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	release := func(l *sharelock.Lock) {
		t.Helper()
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
	}

	var first, fresh, hinted, warm, rel perOp
	const paths, warmRuns = 4, 10 // tokens stay below 16: no garbage collection runs
	hints := t.TempDir()
	for i := range paths {
		path := filepath.Join(fsys.Dir(), fmt.Sprintf("db%d", i))
		// The very first acquire: creates the lock folder.
		s := folder.New(folder.Options{Self: machine("A", 100), HintDir: hints})
		var l *sharelock.Lock
		first.add(measure(func() { l = acquire(s, path) }))
		rel.add(measure(func() { release(l) }))
		// A fresh store (a new process) without machine hints: starts
		// from a listing.
		s = folder.New(folder.Options{Self: machine("A", 101), NoMachineHints: true})
		fresh.add(measure(func() { l = acquire(s, path) }))
		rel.add(measure(func() { release(l) }))
		// A fresh store on the machine of a process that released it
		// (this share is a FUSE mount, so the release left a hint).
		s = folder.New(folder.Options{Self: machine("A", 100), HintDir: hints})
		l = acquire(s, path)
		release(l)
		s = folder.New(folder.Options{Self: machine("A", 103), HintDir: hints})
		hinted.add(measure(func() { l = acquire(s, path) }))
		rel.add(measure(func() { release(l) }))
		// The same store again: starts from its hint.
		for range warmRuns {
			warm.add(measure(func() { l = acquire(s, path) }))
			rel.add(measure(func() { release(l) }))
		}
	}

	// Heartbeats: hold for about a second with a 100 ms heartbeat.
	var beat perOp
	{
		s := folder.New(folder.Options{Self: machine("A", 102)})
		l := acquire(s, filepath.Join(fsys.Dir(), "hb"), sharelock.WithLease(time.Second), sharelock.WithHeartbeat(100*time.Millisecond))
		c := measure(func() { time.Sleep(time.Second) })
		beats := c[faultfs.OpWrite] // one write per heartbeat
		if beats < 5 {
			t.Fatalf("only %d heartbeats in a second: %s", beats, faultfs.FormatCounts(c))
		}
		beat.runs = int(beats)
		beat.counts = c
		if err := l.Check(); err != nil {
			t.Fatal(err)
		}
		release(l)
	}

	t.Logf("acquire, first ever (creates the lock folder): %v", &first)
	t.Logf("acquire, fresh store (listing):                %v", &fresh)
	t.Logf("acquire, fresh store (machine hint):           %v", &hinted)
	t.Logf("acquire, warm store (hint):                    %v", &warm)
	t.Logf("release:                                       %v", &rel)
	t.Logf("heartbeat:                                     %v", &beat)
	t.Logf("ROUND TRIPS per operation (no client caches): acquire first-ever=%.1f fresh-store=%.1f fresh-store-with-machine-hint=%.1f warm=%.1f; release=%.1f; heartbeat=%.1f",
		first.mean(), fresh.mean(), hinted.mean(), warm.mean(), rel.mean(), beat.mean())

	for name, p := range map[string]*perOp{"first": &first, "fresh": &fresh, "hinted": &hinted, "warm": &warm, "release": &rel, "heartbeat": &beat} {
		if p.mean() <= 0 {
			t.Errorf("%s: no calls counted", name)
		}
	}
	if rel.mean() > 15 {
		t.Errorf("release takes %.1f calls; it should be one write (open, write, close)", rel.mean())
	}
	if beat.mean() > 20 {
		t.Errorf("a heartbeat takes %.1f calls", beat.mean())
	}
	if hinted.mean() >= fresh.mean() {
		t.Errorf("a fresh acquire with another process's machine hint (%.1f calls) costs no less than one without (%.1f)", hinted.mean(), fresh.mean())
	}
	if warm.mean() > fresh.mean() {
		t.Errorf("warm acquire (%.1f calls) costs more than a fresh one (%.1f)", warm.mean(), fresh.mean())
	}
}

// ownerState returns the state word of an owner file ("held", "released",
// "lost"), or the error.
func ownerState(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.SplitN(string(b), "\n", 3)
	if len(lines) < 2 {
		return fmt.Sprintf("unparsable %q", b)
	}
	return strings.TrimSpace(strings.TrimPrefix(strings.Fields(lines[1])[0], "state="))
}

func genOwner(db string, token uint64) string {
	return filepath.Join(folder.LockDir(db), fmt.Sprintf("%020d", token), "owner")
}

// TestStallLosesThenTakeover: the share stalls under a holder. Its loss
// timer fires on time although its heartbeat hangs; another machine, which
// reaches the file server, takes the lock over only after that; when the
// share comes back the old holder learns it lost, and the new holder keeps
// the lock.
func TestStallLosesThenTakeover(t *testing.T) {
	backing := t.TempDir()
	fsys := faultfs.Mount(t, backing)
	const lease, hb = 1200 * time.Millisecond, 150 * time.Millisecond
	lostAfter := lease * 3 / 4
	opts := func(s *folder.Store) []sharelock.Option {
		return []sharelock.Option{sharelock.WithStore(s), sharelock.WithLease(lease), sharelock.WithHeartbeat(hb)}
	}
	a := folder.New(folder.Options{Self: machine("A", 100), OpTimeout: 2 * time.Second})
	b := folder.New(folder.Options{Self: machine("B", 200), PollMax: 50 * time.Millisecond})
	ctx := context.Background()

	la, err := sharelock.Acquire(ctx, filepath.Join(fsys.Dir(), "wems.db"), opts(a)...)
	if err != nil {
		t.Fatal(err)
	}
	ownerA := filepath.Join(backing, "wems.db.lock", fmt.Sprintf("%020d", la.Token()), "owner")

	// Watch A's owner file on the file server to date its last heartbeat.
	var lastChange atomic.Int64
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		var last []byte
		for {
			if cur, err := os.ReadFile(ownerA); err == nil && string(cur) != string(last) {
				last = cur
				lastChange.Store(time.Now().UnixNano())
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	time.Sleep(4 * hb)

	fsys.Hang() // the network stalls: every call hangs
	hangAt := time.Now()

	type result struct {
		l   *sharelock.Lock
		err error
		at  time.Time
	}
	got := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 10*lease)
		defer cancel()
		l, err := sharelock.Acquire(ctx, filepath.Join(backing, "wems.db"), opts(b)...)
		got <- result{l, err, time.Now()}
	}()

	var lostAt time.Time
	select {
	case <-la.Lost():
		lostAt = time.Now()
	case <-time.After(3 * lease):
		fsys.Unhang()
		t.Fatalf("holder not lost %v after the stall began (heartbeats hung: %d calls)", time.Since(hangAt), fsys.Hung())
	}
	close(stopWatch)
	<-watchDone
	lastGood := time.Unix(0, lastChange.Load())
	sinceBeat := lostAt.Sub(lastGood)
	t.Logf("stall: lost %v after the stall began, %v after the last heartbeat landed (limit %v); %d calls hung; reason: %v",
		lostAt.Sub(hangAt).Round(time.Millisecond), sinceBeat.Round(time.Millisecond), lostAfter, fsys.Hung(), la.Err())
	// The last heartbeat that landed may not have completed (its successor
	// check can hang): the loss may come up to one heartbeat earlier.
	if sinceBeat < lostAfter-hb-50*time.Millisecond || sinceBeat > lostAfter+hb+200*time.Millisecond {
		t.Errorf("lost %v after the last heartbeat; want about %v", sinceBeat, lostAfter)
	}
	if !errors.Is(la.Err(), sharelock.ErrLost) {
		t.Errorf("Err() = %v", la.Err())
	}
	if err := la.Check(); !errors.Is(err, sharelock.ErrLost) {
		t.Errorf("Check() = %v", err)
	}

	r := <-got
	if r.err != nil {
		fsys.Unhang()
		t.Fatalf("the other machine could not take over: %v", r.err)
	}
	lb := r.l
	t.Logf("stall: the other machine took over %v after the stall began (%v after the holder knew it lost), token %d -> %d",
		r.at.Sub(hangAt).Round(time.Millisecond), r.at.Sub(lostAt).Round(time.Millisecond), la.Token(), lb.Token())
	if !r.at.After(lostAt) {
		t.Errorf("takeover at %v before the holder knew it lost (%v): two holders", r.at, lostAt)
	}
	if lb.Token() != la.Token()+1 {
		t.Errorf("new token %d, want %d", lb.Token(), la.Token()+1)
	}
	if lb.Holder().Host != "B" {
		t.Errorf("new holder %+v", lb.Holder())
	}

	// The share comes back: the hung calls of the old holder complete.
	fsys.Unhang()
	err = la.Release()
	if !errors.Is(err, sharelock.ErrLost) || !errors.Is(err, core.ErrLost) {
		t.Errorf("old holder's Release() = %v, want an error wrapping ErrLost", err)
	}
	var le *sharelock.LostError
	if !errors.As(err, &le) || le.Token != la.Token() {
		t.Errorf("old holder's Release() = %#v, want *LostError for token %d", err, la.Token())
	}
	time.Sleep(4 * hb) // the old holder's late writes land; the new holder beats on
	if err := lb.Check(); err != nil {
		t.Errorf("new holder lost its lock after the share came back: %v", err)
	}
	select {
	case <-lb.Lost():
		t.Errorf("new holder lost: %v", lb.Err())
	default:
	}
	st := ownerState(ownerA)
	t.Logf("stall: old holder's owner file after the share came back: state=%s", st)
	if st != "lost" && st != "held" {
		t.Errorf("old holder's owner file state %q", st)
	}
	if st := ownerState(genOwner(filepath.Join(backing, "wems.db"), lb.Token())); st != "held" {
		t.Errorf("new holder's owner file state %q", st)
	}
	if err := lb.Release(); err != nil {
		t.Errorf("new holder's Release: %v", err)
	}
}

// snapshot records every entry under root outside the lock folder skip,
// with its mode and content.
func snapshot(t *testing.T, root, skip string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		m[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestShareErrors: a full disk, I/O errors and a read-only share give a
// *PathError naming the path and a fix, and touch nothing outside the lock
// folder; once the fault is gone, acquiring works.
func TestShareErrors(t *testing.T) {
	readOnly := []faultfs.Op{faultfs.OpMkdir, faultfs.OpCreate, faultfs.OpWrite, faultfs.OpSetattr,
		faultfs.OpUnlink, faultfs.OpRmdir, faultfs.OpRename, faultfs.OpSymlink, faultfs.OpLink, faultfs.OpMknod}
	cases := []struct {
		name     string
		errno    syscall.Errno
		ops      []faultfs.Op
		existing bool   // the lock folder exists already (an earlier acquire)
		op       string // PathError.Op
		fix      string // part of the fix
	}{
		{"ENOSPC-create-owner", syscall.ENOSPC, []faultfs.Op{faultfs.OpCreate}, false, "write lock record", "full"},
		{"ENOSPC-write-owner", syscall.ENOSPC, []faultfs.Op{faultfs.OpWrite}, true, "write lock record", "full"},
		{"EIO-mkdir-lockdir", syscall.EIO, []faultfs.Op{faultfs.OpMkdir}, false, "create lock folder", ""},
		{"EIO-mkdir-generation", syscall.EIO, []faultfs.Op{faultfs.OpMkdir}, true, "claim", ""},
		{"EROFS-new", syscall.EROFS, readOnly, false, "create lock folder", "read-only"},
		{"EROFS-existing", syscall.EROFS, readOnly, true, "claim", "read-only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			backing := t.TempDir()
			if err := os.WriteFile(filepath.Join(backing, "wems.db"), []byte("the database"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(backing, "notes.txt"), []byte("notes"), 0o644); err != nil {
				t.Fatal(err)
			}
			fsys := faultfs.Mount(t, backing)
			db := filepath.Join(fsys.Dir(), "wems.db")
			lockDir := folder.LockDir(db)
			opts := []sharelock.Option{sharelock.WithLease(time.Second), sharelock.WithHeartbeat(200 * time.Millisecond)}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if tc.existing {
				s := folder.New(folder.Options{Self: machine("A", 100)})
				l, err := sharelock.Acquire(ctx, db, append(opts, sharelock.WithStore(s))...)
				if err != nil {
					t.Fatal(err)
				}
				if err := l.Release(); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, backing, folder.LockDir(filepath.Join(backing, "wems.db")))

			fsys.FailOps(tc.errno, tc.ops...)
			s := folder.New(folder.Options{Self: machine("A", 101)})
			l, err := sharelock.Acquire(ctx, db, append(opts, sharelock.WithStore(s))...)
			if err == nil {
				l.Release()
				t.Fatalf("Acquire succeeded with %v on %v", tc.errno, tc.ops)
			}
			t.Logf("%v", err)
			var pe *sharelock.PathError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v, want a *PathError", err, err)
			}
			if !errors.Is(err, tc.errno) {
				t.Errorf("error %v does not wrap %v", err, tc.errno)
			}
			if pe.Op != tc.op {
				t.Errorf("PathError.Op %q, want %q", pe.Op, tc.op)
			}
			if !strings.HasPrefix(pe.Path, lockDir) || !strings.Contains(err.Error(), lockDir) {
				t.Errorf("error does not name the lock path %s: %v", lockDir, err)
			}
			if pe.Fix == "" || !strings.Contains(err.Error(), "fix: ") {
				t.Errorf("the error tells no fix for %v (folder's fixFor has no case for it)", tc.errno)
			} else if !strings.Contains(pe.Fix, tc.fix) {
				t.Errorf("fix %q, want one mentioning %q", pe.Fix, tc.fix)
			}
			if after := snapshot(t, backing, folder.LockDir(filepath.Join(backing, "wems.db"))); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("the failed acquire changed something outside the lock folder:\nbefore %v\nafter  %v", before, after)
			}

			fsys.Clear()
			start := time.Now()
			l, err = sharelock.Acquire(ctx, db, append(opts, sharelock.WithStore(s))...)
			if err != nil {
				t.Fatalf("after Clear: %v", err)
			}
			t.Logf("after Clear: acquired token %d in %v", l.Token(), time.Since(start).Round(time.Millisecond))
			if err := l.Release(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDelayedVisibility: one machine sees the other's new generations only
// 500 ms late (a client cache); mkdir stays atomic at the file server, so
// mutual exclusion holds.
func TestDelayedVisibility(t *testing.T) {
	backing := t.TempDir()
	fsys := faultfs.Mount(t, backing)
	// The lock folder exists already (TestDelayedVisibilityNewLockFolder
	// covers its creation): this test is about generations.
	if err := os.Mkdir(folder.LockDir(filepath.Join(fsys.Dir(), "wems.db")), 0o777); err != nil {
		t.Fatal(err)
	}
	fsys.DelayVisibility(500 * time.Millisecond)
	const rounds = 5
	const lease, hb = 3 * time.Second, 300 * time.Millisecond

	var inside atomic.Int32
	var mu sync.Mutex
	var counter int
	var tokens []uint64
	var overlaps atomic.Int32
	run := func(name string, s *folder.Store, db string) error {
		for range rounds {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			l, err := sharelock.Acquire(ctx, db, sharelock.WithStore(s), sharelock.WithLease(lease), sharelock.WithHeartbeat(hb))
			cancel()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if !inside.CompareAndSwap(0, 1) {
				overlaps.Add(1)
			}
			mu.Lock()
			c := counter
			tokens = append(tokens, l.Token())
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			mu.Lock()
			counter = c + 1
			mu.Unlock()
			if err := l.Check(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			inside.Store(0)
			if err := l.Release(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			time.Sleep(time.Duration(rand.N(700)) * time.Millisecond)
		}
		return nil
	}
	w := folder.New(folder.Options{Self: machine("W", 100), PollMax: 50 * time.Millisecond})
	b := folder.New(folder.Options{Self: machine("B", 200), PollMax: 50 * time.Millisecond})
	errs := make(chan error, 2)
	start := time.Now()
	fsys.ResetCounts()
	go func() { errs <- run("W (late view)", w, filepath.Join(fsys.Dir(), "wems.db")) }()
	go func() { errs <- run("B (file server)", b, filepath.Join(backing, "wems.db")) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	t.Logf("delayed visibility: %d acquisitions in %v, tokens %v; calls through the late mount: %s",
		len(tokens), time.Since(start).Round(time.Millisecond), tokens, faultfs.FormatCounts(fsys.Counts()))
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d overlapping holds", n)
	}
	if counter != 2*rounds {
		t.Errorf("counter %d, want %d (lost updates: overlapping holds)", counter, 2*rounds)
	}
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Errorf("tokens not increasing: %v", tokens)
			break
		}
	}
}

// TestDelayedVisibilityNewLockFolder: another machine has just created the
// lock folder, and this machine's view of it is late. mkdir answers EEXIST
// (the file server knows it), lstat answers ENOENT (the client's view) for
// the visibility delay. Acquire should wait that out rather than fail.
func TestDelayedVisibilityNewLockFolder(t *testing.T) {
	backing := t.TempDir()
	fsys := faultfs.Mount(t, backing)
	const delay = 500 * time.Millisecond
	fsys.DelayVisibility(delay)
	opts := []sharelock.Option{sharelock.WithLease(3 * time.Second), sharelock.WithHeartbeat(300 * time.Millisecond)}

	b := folder.New(folder.Options{Self: machine("B", 200)})
	lb, err := sharelock.Acquire(context.Background(), filepath.Join(backing, "wems.db"), append(opts, sharelock.WithStore(b))...)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		lb.Release()
	}()
	w := folder.New(folder.Options{Self: machine("W", 100), PollMax: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	lw, err := sharelock.Acquire(ctx, filepath.Join(fsys.Dir(), "wems.db"), append(opts, sharelock.WithStore(w))...)
	if err != nil {
		t.Fatalf("the lock folder was just created by another machine and is not yet visible here (mkdir: EEXIST, lstat: ENOENT): Acquire failed after %v instead of waiting %v for it: %v",
			time.Since(start).Round(time.Millisecond), delay, err)
	}
	t.Logf("acquired token %d after %v", lw.Token(), time.Since(start).Round(time.Millisecond))
	if lw.Token() != lb.Token()+1 {
		t.Errorf("token %d, want %d", lw.Token(), lb.Token()+1)
	}
	if err := lw.Release(); err != nil {
		t.Fatal(err)
	}
}
