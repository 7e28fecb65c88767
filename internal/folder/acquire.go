package folder

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"sharelock/internal/core"
)

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
	var head uint64
	var evidence time.Duration
	knownFree := false
	if ok && s.mono()-h.evidence < s.o.GCMinAge/4 {
		head, evidence, knownFree = h.gen, h.evidence, h.released
	} else {
		l, err := s.scan(ctx, dir, true)
		if err != nil {
			return nil, err
		}
		head, evidence = l.max(), l.evidence
	}

	// The advisory wait queue: our ticket (if we took one) is removed
	// whatever happens, after a claim or when we give up.
	q := &queue{dir: dir}
	defer func() {
		if q.own != nil {
			q.own.remove()
		}
	}()

	poll := s.o.PollMin
	polls, walked := 0, 0
	var tryUntil time.Duration // no-wait: how long we may watch a suspicious holder
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var v view
		free := knownFree
		if knownFree {
			v = view{gen: head}
			knownFree = false
		} else {
			v, err = s.look(ctx, dir, head)
			if err != nil {
				return nil, err
			}
		}
		*last = v
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
					return nil, s.queueLockedError(req.Path, head, c)
				}
				kind, deferred = "", true
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
				return nil, err
			}
			if ls != nil {
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
				head, evidence = max(head+1, restart.max()), restart.evidence
			} else {
				// Someone else claimed head+1 first: judge it afresh.
				head++
			}
			*w = watch{}
			q.dirty = true
			poll = s.o.PollMin
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
				q.ahead = len(c.ahead)
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
				if s.exists(ctx, filepath.Join(dir, genName(head+1))) {
					head++
					*w = watch{}
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
			if s.exists(ctx, filepath.Join(dir, genName(head+1))) {
				head++
				*w = watch{}
				q.dirty = true
				poll = s.o.PollMin
				continue
			}
		}
		max := s.o.PollMax
		if s.local(&v) {
			max = s.o.PollMaxLocal
			if q.own != nil {
				// In line: the nearer the front, the more often we
				// look (a local read costs microseconds).
				max = min(max, frontPollLocal*time.Duration(1+q.ahead))
			}
		} else if q.own != nil {
			max = min(max, s.linePoll()*time.Duration(1+q.ahead))
		}
		if poll > max {
			poll = max
		}
		t := time.NewTimer(jitter(poll))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err() // Acquire names the holder
		case <-t.C:
		}
		poll = poll * 3 / 2
		if poll < s.o.PollMin {
			poll = s.o.PollMin
		}
	}
}

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
