package folder

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"sharelock/internal/core"
)

// transientFor is how long a waiter tolerates consecutive EIO reads of the
// head (see acquire).
const transientFor = 10 * time.Second

// Bounds on leases, so that timers stay sane.
const (
	minHeartbeat = time.Millisecond
	maxLease     = 24 * time.Hour
)

// normalize fills request defaults and checks them.
func normalize(req core.Request) (core.Request, error) {
	if req.Path == "" {
		return req, errors.New("sharelock: empty path")
	}
	if req.Lease <= 0 {
		req.Lease = DefaultLease
	}
	if req.Lease > maxLease {
		return req, fmt.Errorf("sharelock: lease %v is longer than the maximum %v", req.Lease, maxLease)
	}
	if req.Heartbeat <= 0 {
		req.Heartbeat = min(req.Lease/8, DefaultHeartbeat)
	}
	if req.Heartbeat < minHeartbeat {
		return req, fmt.Errorf("sharelock: lease %v is too short (heartbeat %v, minimum %v; use a lease of at least 8 ms)", req.Lease, req.Heartbeat, minHeartbeat)
	}
	if req.Heartbeat*4 > req.Lease {
		return req, fmt.Errorf("sharelock: heartbeat %v must be at most a quarter of the lease %v", req.Heartbeat, req.Lease)
	}
	return req, nil
}

// lostAfter is how long a holder tolerates failing heartbeats before it
// declares the lock lost: three quarters of the lease, so that it knows
// before any observer (who waits a whole lease after the last change it saw)
// can take over.
func lostAfter(lease time.Duration) time.Duration { return lease - lease/4 }

// Acquire implements core.Store. If ctx ends after a holder was seen, the
// error wraps both a *core.LockedError naming it and ctx's error.
func (s *Store) Acquire(ctx context.Context, req core.Request) (core.Lease, error) {
	req, err := normalize(req)
	if err != nil {
		return nil, err
	}
	var last view
	var w watch
	l, err := s.acquire(ctx, req, &last, &w)
	if err != nil && ctx.Err() != nil && !errors.Is(err, core.ErrLocked) && last.gen != 0 && !last.free() {
		le := s.lockedError(&last, &w, req.Path)
		return nil, fmt.Errorf("%w (gave up waiting: %w)", le, ctx.Err())
	}
	return l, err
}

func (s *Store) acquire(ctx context.Context, req core.Request, last *view, w *watch) (core.Lease, error) {
	var err error
	dir := LockDir(req.Path)

	// Where to start: our own hint, or a fresh listing.
	s.mu.Lock()
	h, ok := s.hints[dir]
	s.mu.Unlock()
	if !ok || s.mono()-h.evidence >= s.o.GCMinAge/4 {
		// A new process (or our own hint is too old): another process of
		// this machine may have left the generation it released
		// (machinehint.go).
		if mh, found := s.loadMachineHint(dir); found {
			h, ok = mh, true
		}
	}
	var head uint64
	var evidence time.Duration
	knownFree := false
	noQueue := false
	if ok && s.mono()-h.evidence < s.o.GCMinAge/4 {
		head, evidence, knownFree = h.gen, h.evidence, h.released
	} else {
		l, err := s.scan(ctx, dir, true)
		if err != nil {
			return nil, err
		}
		head, evidence = l.max(), l.evidence
		noQueue = !l.queue
	}

	// The advisory wait queue: our ticket (if we took one) is removed
	// whatever happens, after a claim or when we give up. The listing we
	// just made tells whether q/ exists: if not, our first queue check is
	// skipped (one round trip less for a new process; a listing from a
	// stale cache can only make us unfair, never unsafe).
	q := &queue{dir: dir, none: noQueue}
	defer func() {
		if q.own != nil {
			q.own.remove()
		}
	}()

	// Polling. Each wait is jittered to [1/2, 3/2) of the interval, which
	// starts at PollMin and grows ×1.5 per poll up to a cap; it starts over
	// from PollMin whenever the head moves (and, outside the relaxed case
	// below, on a wake-up). One poll is one read of the head's owner file;
	// every 8th poll also lstats head+1. Round trips per waiter per second
	// at worst (every wait at half the cap), defaults (PollMin 1 ms,
	// PollMax 250 ms, so linePoll 50 ms), holder on ANOTHER machine (no
	// wake-ups can come from its changes):
	//   - the front of the line (cap 50 ms): 40 polls = 45 round trips
	//     (22.5 on average);
	//   - the k-th in line (cap min(k×50 ms, 250 ms)): 45/k round trips,
	//     9 from k = 5 on (half on average);
	//   - a waiter without a ticket (cap 250 ms): 9 (4.5 on average);
	// plus, for all: about 10 polls of ramp-up (1, 1.5, 2.25 ... ms) each
	// time the interval starts over, i.e. once per generation claimed; a
	// queue check (1 listing + 1 read per live ticket ahead, at most 64)
	// each time the head moves or a ticket ahead leaves; 1 ticket write per
	// Heartbeat (0.2/s); and while deferring to a live ticket ahead on a
	// free lock (at most its grace, 325 ms by default), a queue check and
	// an lstat of head+1 at every poll: 40/k × (k+2) round trips per
	// second at worst for the k-th. Wake-ups (wake_linux.go) add at most
	// one look (with a probe of head+1 or a queue check when that is what
	// changed) per batch of changes made through this machine's kernel:
	// for the front, 2 per write of the head's owner file (heartbeat,
	// release) and 1 per new generation; behind it, 1 per ticket ahead
	// leaving only.
	poll := s.o.PollMin
	polls, walked := 0, 0
	var firstEIO time.Duration // mono time of the first of consecutive EIO reads
	var claimEIO time.Duration // mono time of this acquire's first EIO claim
	var tryUntil time.Duration // no-wait: how long we may watch a suspicious holder
	// Wake-ups (wake_linux.go): created once we first have to wait, so an
	// uncontended acquire never pays for them. Hints only: we poll anyway.
	var wk *waker
	wkTried := false
	defer func() { wk.Close() }()
	probeNext := false // woken by a newer generation: follow it first
	// nextExists: does head+1 exist (the lock moved on past our head)?
	nextExists := func() bool { return s.exists(ctx, filepath.Join(dir, genName(head+1))) }
	// moveTo makes gen our head: judge it afresh (a new watch), look at
	// the line again, and poll fast from the start.
	moveTo := func(gen uint64) {
		head = gen
		*w = watch{}
		q.dirty, q.rechecked = true, false
		poll = s.restartPoll(q)
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if probeNext {
			probeNext = false
			if nextExists() {
				moveTo(head + 1)
			}
		}
		var v view
		free := knownFree
		if knownFree {
			v = view{gen: head}
			knownFree = false
		} else {
			v, err = s.look(ctx, dir, head)
			if err != nil {
				// A waiter rides out a share's transient I/O errors
				// (smbnetfs answers EIO now and then under load) for
				// up to transientFor; anything else, or longer, ends
				// the wait with the error.
				if !s.rideOut(err, req.Wait, &firstEIO) {
					return nil, err
				}
				// The error may stick to this one file (smbnetfs kept
				// failing an older generation's owner file on one mount
				// while the lock moved on): follow a newer generation.
				// The clock keeps running until a read succeeds.
				if nextExists() {
					moveTo(head + 1)
					continue
				}
				if !sleepCtx(ctx, jitter(max(poll, 10*time.Millisecond))) {
					return nil, ctx.Err()
				}
				continue
			}
			firstEIO = 0
		}
		*last = v
		if !free && !v.free() {
			q.none = false // only a claim right after our listing may skip the check
		}
		kind, reason := "", ""
		deferred := false // free, but we let a live ticket ahead claim it
		var broke *view
		switch {
		case free || v.free():
			kind = kindAcquire
		case s.dead(&v):
			kind, broke = kindTakeover, &v
			reason = fmt.Sprintf("holder process %d on %s is gone", v.own.Rec.PID, v.own.Rec.Host)
		default:
			unchanged := w.update(&v, s.mono())
			lease := s.leaseOf(&v, req.Lease)
			if unchanged >= lease {
				kind, broke = kindTakeover, &v
				reason = fmt.Sprintf("no heartbeat for %v (lease %v)", unchanged.Round(time.Millisecond), lease)
			}
		}
		if kind == kindAcquire {
			// Fairness: let a live ticket ahead of us claim a free lock
			// first, for up to a grace period. Safety does not depend on
			// this. Takeovers do not wait in line: a holder proven dead
			// on this machine cannot be proven so by a front on another
			// machine, and a recovery should not wait for fairness.
			if wait, c := s.deferToQueue(ctx, q, head, req); wait {
				if !req.Wait {
					if free && nextExists() {
						// "Free" came from a hint, which is behind: judge
						// the newer generation before refusing.
						moveTo(head + 1)
						continue
					}
					return nil, s.queueLockedError(req.Path, head, c)
				}
				kind, deferred = "", true
				q.dirty = false // just checked (a ticket taken meanwhile changes nothing ahead)
			}
		}
		if kind != "" {
			r := req
			r.Reason = reason
			rec := s.newRecord(kind, head+1, &r)
			if broke != nil {
				rec.Broke, rec.BrokeToken = broke.holder(), broke.gen
			}
			ls, restart, err := s.claim(ctx, dir, rec, evidence, req)
			if err != nil {
				// As for reads: a waiter rides out transient EIO. If the
				// mkdir did create the generation, the next round finds
				// it taken (EEXIST) and judges it like any claim without
				// a record (stale after the claim window): safe, slower.
				if !s.rideOut(err, req.Wait, &claimEIO) {
					return nil, err
				}
				if !sleepCtx(ctx, jitter(max(poll, 10*time.Millisecond))) {
					return nil, ctx.Err()
				}
				continue
			}
			if ls != nil {
				if t := q.own; t != nil && wk != nil {
					// On a local filesystem, leave the line after
					// returning (see held.ticketGone): removing the
					// ticket wakes the waiters behind (they watch q/),
					// which cost the handoff ~0.4 ms of CPU between
					// processes. On shares it stays on the path (no
					// wake-ups there; and concurrent calls on one
					// smbnetfs or sshfs mount are best kept few).
					q.own = nil
					ls.ticketGone = make(chan struct{})
					go func() {
						defer close(ls.ticketGone)
						t.remove()
					}()
				}
				return ls, nil
			}
			walked++
			if restart == nil && walked > 4 {
				// Our starting point was far behind (an old hint):
				// a listing is cheaper than walking.
				if restart, err = s.scan(ctx, dir, true); err != nil {
					return nil, err
				}
				walked = 0
			}
			if restart != nil {
				// Start over from a fresh listing (our claim was void,
				// or we were far behind) — but never backwards: a listing
				// may come from a client cache (sshfs: 20 s) and miss
				// generations we have seen exist.
				evidence = restart.evidence
				moveTo(max(head+1, restart.max()))
			} else {
				// Someone else claimed head+1 first: judge it afresh.
				moveTo(head + 1)
			}
			continue
		}
		if req.Wait && (q.own == nil || q.own.gone.Load()) && !free && !v.free() {
			// Refused: take our place at the end of the line.
			if q.own != nil {
				q.own.remove()
				q.own = nil
			}
			_ = s.takeTicket(ctx, q, req) // advisory: wait without one on error
		}
		if q.dirty && q.own != nil {
			// The line moved: find out whether we are at its front.
			q.dirty = false
			if c, err := s.checkQueue(ctx, q, req.Lease, false, true); err == nil {
				q.ahead = 0
				if len(c.ahead) > 0 {
					q.ahead = max(c.position, 1)
				}
				if q.ahead == 1 && !q.rechecked {
					// Second in line right after the head moved: the
					// one ahead is likely the new holder, whose ticket
					// goes just after its claim. Look again at the next
					// poll rather than poll at half speed for a whole
					// hold.
					q.dirty, q.rechecked = true, true
				}
			}
		}
		if !req.Wait {
			// Without waiting, one look cannot prove a remote holder
			// dead. If it looks dead (unreadable record, or its own clock
			// says it last wrote more than a lease ago by ours), watch it
			// for one lease: the clocks only decide whether to spend the
			// time, the verdict still comes from unchanged content.
			if tryUntil == 0 && w.seen && w.gen == v.gen && s.suspicious(&v, req.Lease) {
				tryUntil = w.changed + s.leaseOf(&v, req.Lease) + 2*s.o.PollMax
			}
			if changed := w.seen && w.gen == v.gen && w.changed != w.first; tryUntil == 0 || s.mono() >= tryUntil || changed {
				// Before refusing, make sure v is still the newest
				// generation (our starting point may be behind).
				if nextExists() {
					moveTo(head + 1)
					tryUntil = 0
					continue
				}
				return nil, s.lockedError(&v, w, req.Path)
			}
		}
		// Wait and look again. Every few polls, also probe the next
		// generation: a holder taken over by someone else never changes
		// its own file again.
		// A free generation never changes again: while we defer, what
		// matters is whether the front claimed the next one.
		polls++
		if polls%8 == 0 || deferred {
			if nextExists() {
				moveTo(head + 1)
				continue
			}
		}
		// Wake-ups: the queue is watched for tickets ahead of ours
		// leaving; the lock directory (newer generations) and the head's
		// directory (release, heartbeats) only by the front of the line
		// (or a waiter without a ticket), so that a release or a claim
		// wakes one waiter, not the whole line.
		front := q.own == nil || q.ahead == 0
		if !wkTried {
			wkTried = true
			// Not on a share: inotify there would see only this
			// client's changes, and every watch costs lookups on the
			// server.
			if _, share := s.mountOf(dir); s.wakeable() && !share {
				wk = s.openWaker(ctx, dir)
			}
		}
		var ticketNo uint64
		if q.own != nil && !q.own.gone.Load() {
			ticketNo = q.own.n
		}
		added := false
		if wk.needs(head, front, ticketNo) {
			// Adding a watch looks the path up: on a stalled share that
			// can hang like any call, so it is bounded like one. A waker
			// whose call did not return is given up (closed when it does).
			stuck := wk
			if added, err = callv(s, ctx, func() (bool, error) { return stuck.follow(head, front, ticketNo), nil }, func(error) { stuck.Close() }); err != nil {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				wk = nil
			}
		}
		if added && front {
			// A new watch: look once more before sleeping, since a change
			// between our last look and the watch gave no event.
			continue
		}
		max := s.o.PollMax
		local := s.local(&v)
		// Behind the front of the line, with a healthy waker and the
		// holder on this machine, wake-ups report what we wait for (the
		// front's claim, a ticket ahead of ours leaving): we poll at
		// PollMaxLocal only, as a fallback, and not harder after each
		// change, so that the line does not crowd the CPU at every
		// handoff. Right after new watches, the next look comes after
		// PollMin instead (a change just before them gave no event; not
		// at once, so as not to crowd a handoff in progress).
		relaxed := local && !front && wk.healthy() && !added
		if local {
			max = s.o.PollMaxLocal
			if q.own != nil && !relaxed {
				// In line: the nearer the front, the more often we
				// look (a local read costs microseconds).
				max = min(max, s.frontPollLocal()*time.Duration(1+q.ahead))
			}
		} else if q.own != nil {
			max = min(max, s.linePoll()*time.Duration(1+q.ahead))
		}
		switch {
		case added:
			poll = s.o.PollMin
		case poll > max || relaxed:
			poll = max
		}
		t := time.NewTimer(jitter(poll))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err() // Acquire names the holder
		case <-t.C:
		case <-wk.C():
			// Something changed through this machine's kernel: look again
			// at once (and poll from the start, unless relaxed).
			t.Stop()
			ev := wk.take()
			if ev&wakeQueue != 0 {
				q.dirty = true
			}
			if ev&wakeHead != 0 {
				probeNext = true
			}
			poll = s.o.PollMin
			continue
		}
		poll = poll * 3 / 2
		if poll < s.o.PollMin {
			poll = s.o.PollMin
		}
	}
}

// openWaker returns a waker for dir, or nil. Its first watch looks the path
// up, which can hang on a stalled share like any call: it is bounded like
// one, and a waker that comes too late is closed.
func (s *Store) openWaker(ctx context.Context, dir string) *waker {
	var mu sync.Mutex
	abandoned := false
	var made *waker
	w, err := callv(s, ctx, func() (*waker, error) {
		w := newWaker(dir)
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			w.Close()
			return nil, nil
		}
		made = w
		return w, nil
	}, nil)
	if err != nil {
		mu.Lock()
		abandoned = true
		made.Close()
		mu.Unlock()
		return nil
	}
	return w
}

// rideOut reports whether a waiting acquire rides out err: an EIO (a
// share's transient I/O error) within transientFor of the first of the
// series, whose time *since keeps (0: none yet; set here).
func (s *Store) rideOut(err error, wait bool, since *time.Duration) bool {
	if !wait || !errors.Is(err, syscall.EIO) {
		return false
	}
	if *since == 0 {
		*since = s.mono()
	}
	return s.mono()-*since <= transientFor
}

// wakeable reports whether waiters may use wake-ups (wake_linux.go): only
// on the operating system's filesystem, where our paths are this kernel's,
// and (checked by the caller, localFS) only on a local one: on a share
// inotify sees only this client's changes. Another FS (a client library
// for a share, a test double) polls only.
func (s *Store) wakeable() bool {
	switch s.o.FS.(type) {
	case OSFS, *OSFS:
		return true
	}
	return false
}

// restartPoll is the poll interval after the head moved: PollMin for the
// front of the line (or a waiter without a ticket), which races for the next
// free generation; linePoll behind it (capped by the usual limits), since a
// new generation is held for a while and the k-th in line does not need to
// ramp up from 1 ms — on a share that ramp cost each waiter about ten round
// trips per handoff.
func (s *Store) restartPoll(q *queue) time.Duration {
	if q.own == nil || q.ahead == 0 {
		return s.o.PollMin
	}
	return s.linePoll()
}

// frontPollLocal returns the longest poll interval of the first in line while
// the holder runs on this machine: a tenth of PollMaxLocal (the constant
// frontPollLocal, 2 ms, with the default 20 ms), at least PollMin; the k-th
// in line polls at most k times this (only without a healthy waker).
func (s *Store) frontPollLocal() time.Duration { return max(s.o.PollMaxLocal/10, s.o.PollMin) }

func (s *Store) exists(ctx context.Context, name string) bool {
	err := s.call(ctx, func() error {
		_, e := s.o.FS.Lstat(name)
		return e
	}, nil)
	return err == nil
}

func (s *Store) lockedError(v *view, w *watch, path string) error {
	h := v.holder()
	le := &core.LockedError{Path: path, Holder: h, Token: v.gen, Solutions: core.DefaultSolutions(path, h)}
	if w.seen && w.gen == v.gen {
		le.LastSeen = s.mono() - w.changed
	}
	if le.LastSeen == 0 && v.own != nil {
		// One look only: estimate from the holder's own clock (display only).
		if d := s.wallNow().Sub(v.own.At); d > 0 {
			le.LastSeen = d
		}
	}
	if v.own == nil && v.raw != nil {
		le.Solutions = append([]string{fmt.Sprintf("The lock record %s is unreadable (%v); it will be taken over after one lease without heartbeat.",
			filepath.Join(LockDir(path), genName(v.gen), ownerName), v.bad)}, le.Solutions...)
	}
	return le
}

// claim tries to create generation rec.Token. It returns a held lease on
// success; (nil, nil, nil) if someone else created that generation first;
// (nil, listing, nil) if our claim had to be voided, with a fresh listing to
// restart from.
func (s *Store) claim(ctx context.Context, dir string, rec record, evidence time.Duration, req core.Request) (*held, *listing, error) {
	gdir := filepath.Join(dir, genName(rec.Token))
	ownerPath := filepath.Join(gdir, ownerName)
	t0 := s.mono()
	body := encodeRecord(&rec)
	err := s.call(ctx, func() error { return s.o.FS.Mkdir(gdir) }, func(late error) {
		// The mkdir returned after we gave up on it: if it created the
		// generation, mark it void so nobody waits a lease for it.
		if late == nil {
			s.writeVoid(ownerPath, rec)
		}
	})
	switch {
	case err == nil:
	case isExist(err):
		return nil, nil, nil
	case isPerm(err) && s.exists(ctx, gdir):
		return nil, nil, nil // SFTP: the loser of a race may get EPERM
	case isNotExist(err):
		// The lock directory vanished (removed by hand?): recreate and rescan.
		if err := s.ensureDir(ctx, dir); err != nil {
			return nil, nil, err
		}
		l, err := s.scan(ctx, dir, false)
		return nil, l, err
	default:
		return nil, nil, pathErr("claim", gdir, err)
	}
	t1 := s.mono()
	if t1-evidence >= s.o.GCMinAge/2 {
		// Our view of the newest generation is old: the number we created
		// might be one that garbage collection removed long ago. Verify
		// with a fresh listing that ours is the newest.
		l, err := s.scan(ctx, dir, false)
		if err != nil || l.max() != rec.Token {
			s.writeVoid(ownerPath, rec)
			return nil, l, err
		}
	}
	h := &held{
		s: s, dir: dir, ownerPath: ownerPath, req: req, rec: rec, body: body,
		beat: 1, lastOK: t0, checked: t0,
		lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}),
		notices: make(chan core.Notice, noticeBuffer), reqNext: 1,
	}
	h.lastTouch.Store(int64(t0))
	content := encodeOwner(nil, stHeld, h.beat, s.wallNow(), body)
	if err := s.call(ctx, func() error { return s.o.FS.CreateExcl(ownerPath, content) }, func(late error) {
		if late == nil {
			s.overwriteVoid(ownerPath, rec) // landed after we gave up
		}
	}); err != nil {
		// Leave a void record if we can, so nobody waits a claim window
		// for our empty generation.
		s.writeVoid(ownerPath, rec)
		return nil, nil, pathErr("write lock record", ownerPath, err)
	}
	if took := s.mono() - t0; took >= s.o.ClaimWindow/2 {
		// Observers judge a generation without a readable record stale
		// after a claim window: ours took so long that one may have.
		// Give it up and start over.
		s.overwriteVoid(ownerPath, rec)
		l, err := s.scan(ctx, dir, false)
		if err == nil && l.max() < rec.Token {
			l.gens = append(l.gens, rec.Token)
		}
		return nil, l, err
	}
	s.setHint(dir, hint{gen: rec.Token, evidence: t0})
	go h.run()
	if rec.Token%gcEvery == 0 {
		go s.gc(dir, rec.Token)
	}
	return h, nil, nil
}

// voidContent is the owner file of an abandoned claim.
func (s *Store) voidContent(rec record) []byte {
	rec.Kind = kindVoid
	rec.Reason = "claim abandoned by its claimant"
	return encodeOwner(nil, stReleased, 0, s.wallNow(), encodeRecord(&rec))
}

// writeVoid fills an abandoned generation with a void record (best effort):
// creating the owner file, or rewriting one a failed write left behind.
func (s *Store) writeVoid(ownerPath string, rec record) {
	content := s.voidContent(rec)
	err := s.call(context.Background(), func() error { return s.o.FS.CreateExcl(ownerPath, content) }, nil)
	if isExist(err) {
		_ = s.call(context.Background(), func() error { return s.o.FS.Overwrite(ownerPath, content) }, nil)
	}
}

// overwriteVoid ends our own complete claim at once: the same record
// rewritten as released (same length, so no truncation is needed).
func (s *Store) overwriteVoid(ownerPath string, rec record) {
	content := encodeOwner(nil, stReleased, 2, s.wallNow(), encodeRecord(&rec))
	_ = s.call(context.Background(), func() error { return s.o.FS.Overwrite(ownerPath, content) }, nil)
}

// dropHint forgets the hint for dir if it still points at gen (a claim we
// lost): the next acquire starts from a listing.
func (s *Store) dropHint(dir string, gen uint64) {
	s.mu.Lock()
	if h, ok := s.hints[dir]; ok && h.gen == gen {
		delete(s.hints, dir)
	}
	s.mu.Unlock()
}

func (s *Store) setHint(dir string, h hint) {
	s.mu.Lock()
	s.hints[dir] = h
	s.mu.Unlock()
}
