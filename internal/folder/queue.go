package folder

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"sharelock/internal/core"
)

// The wait queue (docs/protocol.md, "Waiting in line") is ADVISORY: it only
// decides who of several clients that all see the lock free tries first.
// Mutual exclusion still rests solely on the mkdir of the next generation;
// nothing here is consulted by a holder, and a client that ignores the queue
// (an old one, or one whose grace period ran out) is merely unfair.
//
// Layout: P.lock/q/<20-digit ticket>/owner, the owner file in the generation
// format with state "waiting" and kind "wait", rewritten every heartbeat.

const (
	queueName = "q"
	// graceMin/graceMax bound how long a client defers to a live ticket
	// ahead of it after it first saw the lock free.
	graceMin = 30 * time.Millisecond
	graceMax = 2 * time.Second
	// graceSlack covers the front's own round trips between seeing the lock
	// free and its mkdir (a read, a listing, the mkdir).
	graceSlack = 25 * time.Millisecond
	// maxTicketReads bounds the tickets read per queue check.
	maxTicketReads = 64
)

func queueDir(dir string) string { return filepath.Join(dir, queueName) }

// leftSuffix names the marker directory q/<ticket>.left: the ticket's
// waiter left the line but could not remove the ticket (see remove).
const leftSuffix = ".left"

// leftLinger is how long a client sees a .left marker before it removes the
// marked ticket.
const leftLinger = time.Second

// ticket is our own place in line: a ticket directory and its heartbeat.
type ticket struct {
	s    *Store
	n    uint64
	tdir string
	body []byte
	stop chan struct{}
	done chan struct{} // closed when the heartbeat goroutine has returned
	gone atomic.Bool   // the ticket file vanished (removed as dead while we paused)
}

// queue is a waiter's view of the wait queue while one Acquire runs.
type queue struct {
	dir     string // the lock directory
	own     *ticket
	watches map[uint64]*watch // per ticket number: staleness judged like holders
	freeGen uint64            // the free generation we are deferring on
	since   time.Duration     // mono time we first saw freeGen free
	sinceOK bool              // since is set (for freeGen)
	ahead   int               // live tickets ahead of ours at the last check (-1: no ticket)
	dirty   bool              // re-check our place at the next poll
	none    bool              // a fresh listing showed no q/: skip the first check
	// rechecked: the one extra check after a head move was made (acquire.go).
	rechecked bool
	// leftSeen: mono time this client first saw each .left marker.
	leftSeen map[uint64]time.Duration
}

// leftFor records that ticket g's .left marker is seen now and returns for
// how long this client has seen it.
func (q *queue) leftFor(g uint64, now time.Duration) time.Duration {
	if q.leftSeen == nil {
		q.leftSeen = map[uint64]time.Duration{}
	}
	first, ok := q.leftSeen[g]
	if !ok {
		q.leftSeen[g] = now
		return 0
	}
	return now - first
}

// queueCheck is the result of judging the tickets ahead of us.
type queueCheck struct {
	ahead []view // live tickets ahead of us, first in line first (a waiter's check: the first only)
	// position is how many tickets the listing showed ahead of us, live or
	// not (those judged dead and removed excepted): our place in line.
	position int
}

// takeTicket puts us at the end of the line: it creates q/ if needed, then
// mkdir q/<max+1> (EEXIST: the next number), writes the ticket record and
// starts its heartbeat. Errors are returned wrapped with the path; the
// caller may go on waiting without a ticket (the queue is advisory).
func (s *Store) takeTicket(ctx context.Context, q *queue, req core.Request) error {
	qd := queueDir(q.dir)
	var names []string
	for try := 0; ; try++ {
		var err error
		names, err = callv(s, ctx, func() ([]string, error) { return s.o.FS.ReadDirNames(qd) }, nil)
		if err == nil {
			break
		}
		if !isNotExist(err) || try > 0 {
			return pathErr("list wait queue", qd, err)
		}
		if err := s.call(ctx, func() error { return s.o.FS.Mkdir(qd) }, nil); err != nil && !isExist(err) && !isPerm(err) {
			return pathErr("create wait queue", qd, err)
		}
	}
	var n uint64
	for _, name := range names {
		// A left marker counts too: its number must not be taken again
		// while the marker may outlive its ticket.
		if g, ok := parseGenName(strings.TrimSuffix(name, leftSuffix)); ok && g > n {
			n = g
		}
	}
	for tries := 0; ; tries++ {
		n++
		if tries > 100 || n > maxGen {
			return fmt.Errorf("sharelock: could not take a ticket in %s", qd)
		}
		tdir := filepath.Join(qd, genName(n))
		err := s.call(ctx, func() error { return s.o.FS.Mkdir(tdir) }, nil)
		switch {
		case err == nil:
		case isExist(err), isPerm(err) && s.exists(ctx, tdir):
			continue
		case isNotExist(err):
			// q/ was removed (by hand, or by an older client): recreate.
			if err := s.call(ctx, func() error { return s.o.FS.Mkdir(qd) }, nil); err != nil && !isExist(err) && !isPerm(err) {
				return pathErr("create wait queue", qd, err)
			}
			n--
			continue
		default:
			return pathErr("take ticket", tdir, err)
		}
		r := req
		r.Reason = ""
		rec := s.newRecord(kindWait, n, &r)
		rec.PollMS = max((2 * s.linePoll()).Milliseconds(), 1)
		t := &ticket{s: s, n: n, tdir: tdir, body: encodeRecord(&rec), stop: make(chan struct{}), done: make(chan struct{})}
		ownerPath := filepath.Join(tdir, ownerName)
		if err := s.call(ctx, func() error {
			return s.o.FS.CreateExcl(ownerPath, encodeOwner(nil, stWaiting, 1, s.wallNow(), t.body))
		}, nil); err != nil {
			close(t.done) // no heartbeat was started
			t.remove()
			return pathErr("write ticket", ownerPath, err)
		}
		q.own = t
		q.dirty = true
		go t.run(req.Heartbeat)
		return nil
	}
}

// run heartbeats the ticket like a hold: the owner file is rewritten (same
// length, no create) every heartbeat until remove. If the file is gone
// (judged dead and removed while we were paused), it stops and sets gone.
func (t *ticket) run(every time.Duration) {
	defer close(t.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	beat := uint64(1)
	path := filepath.Join(t.tdir, ownerName)
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		beat++
		err := t.s.o.FS.Overwrite(path, encodeOwner(nil, stWaiting, beat, t.s.wallNow(), t.body))
		if isNotExist(err) {
			t.gone.Store(true)
			return
		}
	}
}

// remove stops the heartbeat and deletes the ticket: owner file, then the
// directory. q/ itself stays once created: removing it whenever the line
// emptied, while others listed it, made Samba answer their opendir with
// EBUSY (delete pending) and wedged smbnetfs mounts in the chaos runs.
// A heartbeat write still in flight cannot recreate the file (Overwrite
// never creates).
//
// A share may refuse the removal while another client has the file open
// (Samba: EBUSY, a sharing violation, for as long as a waiter reads it —
// and waiters read the front ticket exactly when it leaves). A ticket left
// behind would keep everyone deferring to it on every handoff until its
// lease ran out, so the waiter then creates the marker directory
// q/<ticket>.left ("this waiter left the line"): the next queue check sees
// it in its listing, skips the ticket without reading it and removes both.
// Nothing touches the refused file again (on Samba each refused delete
// also holds up that client's connection, and smbnetfs mounts wedged when
// the file was rewritten or the delete retried). Best effort: whatever
// stays is removed by others once judged dead.
func (t *ticket) remove() {
	select {
	case <-t.stop:
		return
	default:
		close(t.stop)
	}
	s := t.s
	// Let a heartbeat write in flight finish first: removing a file that is
	// open makes sshfs rename it to .fuse_hidden*, which then keeps the
	// ticket directory (and a phantom place in line) forever. Bounded: a
	// write hanging on a stalled share does not hold us up for long.
	if t.done != nil {
		select {
		case <-t.done:
		case <-time.After(time.Second):
		}
	}
	if t.gone.Load() {
		// Judged dead and removed by others: the number may be someone
		// else's ticket by now. Touch nothing.
		return
	}
	bg := context.Background()
	owner := filepath.Join(t.tdir, ownerName)
	mark := func() { _ = s.call(bg, func() error { return s.o.FS.Mkdir(t.tdir + leftSuffix) }, nil) }
	if err := s.call(bg, func() error { return s.o.FS.Remove(owner) }, nil); err != nil && !isNotExist(err) {
		mark()
		return
	}
	if err := s.call(bg, func() error { return s.o.FS.Rmdir(t.tdir) }, nil); err != nil && !isNotExist(err) {
		// The delete was accepted but is pending (Windows, SMB: another
		// handle still open), so the directory stays for now.
		mark()
	}
}

// linePoll is the longest poll interval of the first in line while the
// holder runs on another machine: a fifth of PollMax (50 ms by default, so
// at most 20 reads a second for the one client at the front); the k-th in
// line polls at most k times this. A ticket declares twice this as its
// poll_ms (the second in line must notice it became first), from which
// others derive their grace period.
func (s *Store) linePoll() time.Duration { return max(s.o.PollMax/5, s.o.PollMin) }

// lookTicket reads ticket n's owner file.
func (s *Store) lookTicket(ctx context.Context, qd string, n uint64) (view, error) {
	v := view{gen: n}
	name := filepath.Join(qd, genName(n), ownerName)
	raw, err := callv(s, ctx, func() ([]byte, error) { return s.o.FS.ReadFile(name) }, nil)
	switch {
	case err == nil:
		if raw == nil {
			raw = []byte{}
		}
		v.raw = raw
		v.own, v.bad = parseTicket(raw)
	case isNotExist(err):
		// A ticket being written, or just removed.
	default:
		// Something planted, or an unreadable file: content we cannot use.
		v.raw = []byte("unreadable: " + err.Error())
		v.bad = err
	}
	return v, nil
}

// checkQueue lists the wait queue and judges every ticket ahead of ours (all
// of them if we have none), first in line first. A ticket is dead when its
// waiter is proven gone on this machine, or when this observer has seen its
// content unchanged for its declared lease (for an unreadable one: ours, at
// least the claim window) — the same rules as for a holder. Dead tickets
// are skipped and removed if they hold nothing but an owner file. If quick
// is set (one look, as for TryAcquire), a ticket is also skipped when it
// has no readable record or its own clock says it stopped beating more than
// a lease ago (display-grade evidence, good enough for advice). Only if
// clean is set are dead tickets removed. A waiter's check (quick unset)
// stops at the first live ticket: it only needs to know whether one is
// ahead, and its place (position) comes from the listing, so a check costs
// one listing and about one read instead of one read per ticket ahead.
func (s *Store) checkQueue(ctx context.Context, q *queue, lease time.Duration, quick, clean bool) (queueCheck, error) {
	var out queueCheck
	if q.none {
		q.none = false
		return out, nil
	}
	qd := queueDir(q.dir)
	names, err := callv(s, ctx, func() ([]string, error) { return s.o.FS.ReadDirNames(qd) }, nil)
	if isNotExist(err) {
		return out, nil
	}
	if err != nil {
		return out, pathErr("list wait queue", qd, err)
	}
	var nums []uint64
	now := s.mono()
	left := map[uint64]bool{}
	for _, n := range names {
		if g, ok := parseGenName(strings.TrimSuffix(n, leftSuffix)); ok && strings.HasSuffix(n, leftSuffix) {
			left[g] = true
		}
	}
	for _, n := range names {
		g, ok := parseGenName(n)
		if !ok {
			continue
		}
		if left[g] {
			// Its waiter left the line: skip it unread. The ticket is
			// removed once this client has seen the marker for a while
			// (the reader whose open handle made its waiter's delete
			// fail is done by then: removing at once only met the same
			// refusal); the marker stays until a later check finds
			// the ticket gone (below), so that the number is not taken
			// again meanwhile.
			delete(left, g)
			if clean && q.leftFor(g, now) >= leftLinger {
				removeGen(s.o.FS, filepath.Join(qd, n))
			}
			continue
		}
		if q.own == nil || g < q.own.n {
			nums = append(nums, g)
		}
	}
	if clean {
		// A marker whose ticket is gone (in this fresh listing). Only
		// now may the number be taken again; a cleaner that listed
		// before the ticket went and acts after a new ticket took the
		// number would remove that one (milliseconds; fairness only).
		for g := range left {
			_ = s.o.FS.Rmdir(filepath.Join(qd, genName(g)+leftSuffix))
		}
	}
	slices.Sort(nums)
	out.position = len(nums)
	if len(nums) > maxTicketReads {
		nums = nums[:maxTicketReads]
	}
	if q.watches == nil {
		q.watches = map[uint64]*watch{}
	}
	for _, n := range nums {
		v, _ := s.lookTicket(ctx, qd, n)
		if v.raw == nil && !s.exists(ctx, filepath.Join(qd, genName(n))) {
			continue // removed meanwhile
		}
		w := q.watches[n]
		if w == nil {
			w = &watch{}
			q.watches[n] = w
		}
		unchanged := w.update(&v, now)
		dead := s.dead(&v) || unchanged >= s.leaseOf(&v, lease)
		if !dead && v.raw == nil {
			// A ticket directory without an owner file: one being taken
			// (always at the end of the line, so never ahead of a
			// waiter that took its own before), or one whose removal was
			// cut short (sshfs keeps a file removed while open as
			// .fuse_hidden*, so its directory stays). Neither is someone
			// to defer to; it is still judged dead after the claim window.
			out.position--
			continue
		}
		if dead {
			if clean {
				removeGen(s.o.FS, filepath.Join(qd, genName(n)))
			}
			delete(q.watches, n)
			out.position--
			continue
		}
		if quick && s.suspicious(&v, lease) {
			continue
		}
		out.ahead = append(out.ahead, v)
		if !quick {
			break
		}
	}
	return out, nil
}

// grace is how long a client defers to the live ticket v at the front of the
// line after it saw the lock free: three of the front's longest polls
// (jitter makes one poll up to 1.5 of it, and the front may just have
// started one) plus its own round trips, within [graceMin, graceMax].
func (s *Store) grace(v *view) time.Duration {
	poll := s.o.PollMax
	if v.own != nil && v.own.Rec.PollMS > 0 {
		poll = time.Duration(v.own.Rec.PollMS) * time.Millisecond
	}
	return min(max(3*poll+graceSlack, graceMin), graceMax)
}

// deferToQueue reports whether a client that found generation gen free (or
// takeable) should let a live ticket ahead of it claim first. It takes a
// ticket for a waiting client that has none yet and is deferring. A failure
// to read the queue never blocks a claim: the queue is advisory.
func (s *Store) deferToQueue(ctx context.Context, q *queue, gen uint64, req core.Request) (bool, queueCheck) {
	if q.own != nil && q.own.gone.Load() {
		// Our ticket was judged dead and removed while we were paused:
		// we are no longer in line (a new ticket goes to the end).
		q.own.remove()
		q.own = nil
	}
	c, err := s.checkQueue(ctx, q, req.Lease, !req.Wait, true)
	if err != nil || len(c.ahead) == 0 {
		q.ahead = 0
		return false, c
	}
	q.ahead = max(c.position, 1)
	now := s.mono()
	if !q.sinceOK || q.freeGen != gen {
		q.freeGen, q.since, q.sinceOK = gen, now, true
	}
	if req.Wait && now-q.since >= s.grace(&c.ahead[0]) {
		return false, c // the front is slow or gone: claim anyway
	}
	if req.Wait && q.own == nil {
		_ = s.takeTicket(ctx, q, req)
	}
	return true, c
}

// queueLockedError refuses a no-wait acquire of a free lock that live
// tickets wait for.
func (s *Store) queueLockedError(path string, gen uint64, c queueCheck) error {
	front := c.ahead[0].holder()
	return &core.LockedError{Path: path, Holder: front, Token: gen, Waiting: len(c.ahead), Queued: true,
		Solutions: []string{
			fmt.Sprintf("%d waiting in line will get it first; run again with --wait to take your place in line.", len(c.ahead)),
		}}
}

// waiting returns the live tickets of the lock in dir for Inspect, first in
// line first, with Since = the ticket's time.
func (s *Store) waiting(ctx context.Context, dir string) []core.Holder {
	q := &queue{dir: dir}
	c, err := s.checkQueue(ctx, q, DefaultLease, true, false)
	if err != nil {
		return nil
	}
	var out []core.Holder
	for i := range c.ahead {
		if h := c.ahead[i].holder(); h != nil {
			out = append(out, *h)
		}
	}
	return out
}
