package folder

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"sharelock/internal/core"
)

// held is a lock held through the folder store.
type held struct {
	s         *Store
	dir       string
	ownerPath string
	req       core.Request
	rec       record
	body      []byte

	// Owned by the heartbeat goroutine while it runs, then by Release.
	beat    uint64
	pending chan beatResult // a heartbeat still in flight when run ended

	lastOK  time.Duration // mono start time of the last successful heartbeat (atomic via mu)
	checked time.Duration // mono time the successor was last seen absent

	mu       sync.Mutex
	lostOnce sync.Once
	lost     chan struct{}
	lostErr  error
	stop     chan struct{}
	done     chan struct{}
	released atomic.Bool
	relErr   error
	relOnce  sync.Once

	// ticketGone is closed once the wait-queue ticket this hold was
	// waiting with has been removed (nil: it had none). The removal runs
	// after Acquire returned, so it is not on the handoff's path; Release
	// waits for it before freeing the lock, so that nobody then defers to
	// a ticket whose waiter holds or held the lock.
	ticketGone chan struct{}

	// Release requests and idle release (request.go, idle.go).
	notices   chan core.Notice
	listening atomic.Bool  // Notices was called
	lastTouch atomic.Int64 // mono time of the last Touch (or the claim)
	reqNext   int          // next request number to probe (heartbeat goroutine)
	reqBad    int          // heartbeats the request reqNext has been unreadable
	// Owned by run: when the idle notice was given (0: none pending), and
	// when a request was last seen.
	idleWarned  time.Duration
	lastRequest time.Duration
}

// Notices implements core.Lease.
func (h *held) Notices() <-chan core.Notice {
	h.listening.Store(true)
	return h.notices
}

// Touch implements core.Lease.
func (h *held) Touch() { h.lastTouch.Store(int64(h.s.mono())) }

// notify hands n to the program if it listens; a full channel drops it.
func (h *held) notify(n core.Notice) {
	if !h.listening.Load() {
		return
	}
	select {
	case h.notices <- n:
	default:
	}
}

func (h *held) Token() uint64         { return h.rec.Token }
func (h *held) Holder() *core.Holder  { return h.rec.holder() }
func (h *held) Lost() <-chan struct{} { return h.lost }

// Err returns the reason the lock was lost, or nil.
func (h *held) Err() error {
	select {
	case <-h.lost:
		return h.lostErr
	default:
		return nil
	}
}

// Check returns nil if the lock is still safe to act on: not lost, and a
// heartbeat succeeded within the loss threshold (on the monotonic clock that
// counts suspend, so a holder waking from sleep fails this check at once).
func (h *held) Check() error {
	if err := h.Err(); err != nil {
		return err
	}
	if h.released.Load() {
		return fmt.Errorf("%w: released", core.ErrNotHeld)
	}
	h.mu.Lock()
	last := h.lastOK
	h.mu.Unlock()
	if gap := h.s.mono() - last; gap >= lostAfter(h.req.Lease) {
		h.lose(fmt.Sprintf("no successful heartbeat for %v", gap.Round(time.Millisecond)))
		return h.lostErr
	}
	return nil
}

func (h *held) lose(reason string) {
	h.lostOnce.Do(func() {
		h.lostErr = &core.LostError{Path: h.req.Path, Token: h.rec.Token, Reason: reason}
		h.s.dropHint(h.dir, h.rec.Token)
		close(h.lost)
	})
}

type beatResult struct {
	start     time.Duration
	err       error
	successor *view
	requests  []core.Notice
	checked   bool          // waiting was looked up (idle past the limit)
	waiting   []core.Holder // live tickets in line, first first
}

// run is the heartbeat loop. Filesystem calls run in their own goroutine, at
// most one at a time, so that a call hanging on a stalled share never keeps
// the loss from being signalled on time.
func (h *held) run() {
	defer close(h.done)
	s := h.s
	limit := lostAfter(h.req.Lease)
	tick := time.NewTicker(h.req.Heartbeat)
	defer tick.Stop()
	watchdog := time.NewTimer(limit)
	defer watchdog.Stop()
	results := make(chan beatResult, 1)
	inflight := false
	// untilLimit is how long until the loss limit, counted from the start
	// of the last successful heartbeat (not from when its reply came).
	untilLimit := func() time.Duration {
		h.mu.Lock()
		last := h.lastOK
		h.mu.Unlock()
		return last + limit - s.mono()
	}
	checkGap := func() bool {
		if d := untilLimit(); d <= 0 {
			h.lose(fmt.Sprintf("no successful heartbeat for %v (limit %v)", (limit - d).Round(time.Millisecond), limit))
			return true
		}
		return false
	}
	// leave hands a heartbeat still in flight to Release and markLost, so
	// that they can rewrite the record after it lands.
	leave := func() {
		if inflight {
			h.pending = results
		}
	}
	for {
		select {
		case <-h.stop:
			if inflight {
				select {
				case r := <-results:
					inflight = false
					h.note(r)
				case <-time.After(s.o.OpTimeout):
				}
			}
			leave()
			return
		case <-tick.C:
			if checkGap() {
				leave()
				h.markLost()
				return
			}
			if !inflight {
				inflight = true
				h.beat++
				idle := h.idleFor() >= h.req.IdleLimit && h.req.IdleLimit > 0
				go func(start time.Duration, beat uint64) { results <- h.beatOnce(start, beat, idle) }(s.mono(), h.beat)
			}
		case r := <-results:
			inflight = false
			if h.note(r) {
				return
			}
			if h.idleCheck(r) {
				leave()
				h.rewriteAfterPending(stReleased)
				return
			}
			watchdog.Reset(max(untilLimit(), 0))
		case <-watchdog.C:
			if checkGap() {
				leave()
				h.markLost()
				return
			}
			watchdog.Reset(max(untilLimit(), time.Millisecond))
		}
	}
}

// note records a heartbeat result. It reports whether the lock is lost.
func (h *held) note(r beatResult) bool {
	for _, n := range r.requests {
		h.lastRequest = h.s.mono()
		h.notify(n)
	}
	switch {
	case r.successor != nil:
		who := "another process"
		if hh := r.successor.holder(); hh != nil {
			who = hh.Who()
		}
		h.lose(fmt.Sprintf("taken over by %s (token %d)", who, r.successor.gen))
		return true
	case r.err == nil:
		h.mu.Lock()
		if r.start > h.lastOK {
			h.lastOK = r.start
		}
		h.checked = r.start
		h.mu.Unlock()
	case isNotExist(r.err):
		h.lose("the lock record was removed: " + r.err.Error())
		return true
	}
	// Other errors: keep trying; the loss limit decides.
	return false
}

// beatOnce rewrites the owner file with the next beat and checks that no
// successor generation exists.
func (h *held) beatOnce(start time.Duration, beat uint64, checkWaiting bool) beatResult {
	s := h.s
	content := encodeOwner(nil, stHeld, beat, s.wallNow(), h.body)
	err := s.o.FS.Overwrite(h.ownerPath, content)
	if isStale(err) {
		err = s.o.FS.Overwrite(h.ownerPath, content)
	}
	if err != nil {
		return beatResult{start: start, err: err}
	}
	next := h.rec.Token + 1
	if _, err := s.o.FS.Lstat(filepath.Join(h.dir, genName(next))); err == nil {
		v := h.lookSuccessor()
		return beatResult{start: start, successor: &v}
	} else if !isNotExist(err) {
		return beatResult{start: start, err: err}
	}
	r := beatResult{start: start, requests: h.pollRequests()}
	if checkWaiting {
		r.checked = true
		r.waiting = s.waiting(context.Background(), h.dir)
	}
	return r
}

// lookSuccessor reads the generation after ours, which exists. Its claimant
// writes the record just after its mkdir, so an unreadable one is read
// again a few times (for up to ~50 ms) to name who took over.
func (h *held) lookSuccessor() view {
	var v view
	for try := 0; try < 10; try++ {
		v, _ = h.s.look(context.Background(), h.dir, h.rec.Token+1)
		if v.own != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return v
}

// markLost tells waiters, best effort, that this claim ended (the write may
// well fail: losing usually means the share is unreachable). It waits for a
// heartbeat still in flight, so that cannot land after it.
func (h *held) markLost() {
	h.rewriteAfterPending(stLost)
}

// rewriteAfterPending writes state into the owner file in the background,
// after any heartbeat still in flight has returned.
func (h *held) rewriteAfterPending(state string) {
	content := encodeOwner(nil, state, h.beat+1, h.s.wallNow(), h.body)
	pending := h.pending
	go func() {
		if pending != nil {
			<-pending
		}
		_ = h.s.o.FS.Overwrite(h.ownerPath, content)
	}()
}

// Release ends the hold: it stops the heartbeat, checks that nobody took
// over (one lstat) and marks the generation released (one write). It is
// idempotent; every call returns the first call's result. If the lock had
// been lost — taken over, broken, or not renewed for three quarters of the
// lease (a pause, a stalled share) — Release returns the *LostError so the
// caller learns its work may not have been protected.
func (h *held) Release() error {
	h.relOnce.Do(func() {
		if h.ticketGone != nil {
			<-h.ticketGone
		}
		h.released.Store(true)
		close(h.stop)
		<-h.done
		s := h.s
		if h.Err() == nil {
			_ = h.Check() // a pause past the limit counts as loss
		}
		successor := false
		if h.Err() == nil {
			next := filepath.Join(h.dir, genName(h.rec.Token+1))
			if _, err := s.lstat(context.Background(), next); err == nil {
				successor = true
				v := h.lookSuccessor()
				h.note(beatResult{successor: &v})
			}
		}
		if err := h.Err(); err != nil {
			h.relErr = err
			if !successor {
				h.rewriteAfterPending(stReleased) // nobody took over: free it
			}
			return
		}
		content := encodeOwner(nil, stReleased, h.beat+1, s.wallNow(), h.body)
		err := s.call(context.Background(), func() error { return s.o.FS.Overwrite(h.ownerPath, content) }, nil)
		if err != nil {
			h.relErr = pathErr("release", h.ownerPath, err)
			return
		}
		if h.pending != nil {
			// A heartbeat outlived our wait and may land after the
			// release record: write it again once it has.
			h.rewriteAfterPending(stReleased)
		}
		h.mu.Lock()
		checked := h.checked
		h.mu.Unlock()
		rh := hint{gen: h.rec.Token, evidence: checked, released: true}
		s.setHint(h.dir, rh)
		s.saveMachineHint(h.dir, rh)
	})
	return h.relErr
}
