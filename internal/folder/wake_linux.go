//go:build linux

package folder

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A waker turns changes to a lock directory made through THIS machine's
// kernel into wake-ups of one waiting Acquire, so that a waiter whose holder
// runs on the same machine need not poll to notice a release (issue 6,
// part 4). On Linux it is an inotify instance of its own per waiting Acquire,
// taken only once that Acquire has to wait (an uncontended acquire never
// pays for it) and given back when the Acquire returns.
//
// Wake-ups are HINTS. Guaranteed: a wake-up is only ever sent after a
// change in a watched directory (or a queue overflow), at most one is
// pending at a time (a burst of changes coalesces into one), and a nil or
// failed waker simply never fires. NOT guaranteed: that any change is
// reported. inotify sees only changes made through this machine's kernel —
// a share changed by another client (NFS, SMB, SFTP from elsewhere), a
// second mount of the same share, or a FUSE server changing files on its
// own gives no event — and the instance may be unavailable (EMFILE: the
// per-user limit of inotify instances, 128 by default; ENOSYS) or fail
// later. Correctness therefore never depends on it: the waiting loop keeps
// polling with its bounded backoff and only looks sooner when woken. The
// one thing it relaxes while the waker is healthy: a waiter BEHIND the front
// of the line, whose holder runs on this machine, polls at PollMaxLocal
// (20 ms by default) instead of k × 2 ms; the front keeps its 2 ms (it must
// also notice a holder that died without a release, which no event reports),
// and waits on a holder of another machine are unchanged. So a lost or
// missing event costs at most one such poll interval (× 1.5 with jitter),
// never an unbounded wait.
//
// What is watched (all with IN_ONLYDIR|IN_DONT_FOLLOW):
//   - the lock directory P.lock: a newer generation created or moved in
//     (wakeHead: the front claimed, or a takeover); the head's directory
//     removed (wakeGen);
//   - the head generation's directory, only while we are first in line (or
//     without a ticket): its owner file created or written (wakeGen: a
//     claim completed, a heartbeat, the release), or the directory removed.
//     Waiters further back are not woken by a release, so that a release
//     wakes one waiter and not the whole line (they follow the head when
//     the front's mkdir wakes them);
//   - the queue directory P.lock/q while we hold a ticket: a ticket ahead of
//     ours removed (wakeQueue: we may now be first). Tickets created behind
//     us, and ticket heartbeats, wake nobody.
const (
	wakeGen   = 1 << iota // the head generation changed: look again
	wakeHead              // a newer generation appeared: follow the head
	wakeQueue             // a ticket ahead of ours left: re-check our place
)

const (
	wakeLockMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_TO | unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW
	wakeGenMask  = unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_CREATE | unix.IN_DELETE_SELF | unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW
	wakeQMask    = unix.IN_DELETE | unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW
)

type waker struct {
	fd    int // the inotify descriptor (owned by f; used for add/rm watch)
	f     *os.File
	c     chan struct{}
	flags atomic.Uint32 // wake* flags gathered since the last take
	done  chan struct{} // the reader ended
	dead  atomic.Bool   // the reader stopped on an error: no more wake-ups
	idle  time.Time     // when it went back to the pool

	// mu orders watch changes against the reader's classification of
	// events, so that an event on a new watch is never read before its
	// descriptor is known.
	mu     sync.Mutex
	dir    string // the lock directory
	lockWD int    // -1: none
	genWD  int    // -1: none
	gen    uint64 // generation genWD watches
	head   uint64 // newer generations created wake wakeHead
	qWD    int    // -1: none
	ticket uint64 // our ticket: removals of smaller ones wake wakeQueue
}

// Closing an inotify instance that had watches waits for the kernel's
// (S)RCU grace period: 8-16 ms measured on Linux 6.18, which an Acquire must
// not spend between its claim and its return. Instances are therefore
// kept in a small per-process pool and reused: a waker's Close only removes
// its watches (microseconds). Idle instances beyond wakePoolMax, or idle
// longer than wakePoolIdle, are closed in the background. Each instance
// counts against the per-user inotify limit (max_user_instances, 128 by
// default) while it exists.
const (
	wakePoolMax  = 8
	wakePoolIdle = 30 * time.Second
)

var wakePool struct {
	mu    sync.Mutex
	idle  []*waker
	timer *time.Timer
}

// newWaker returns a waker for the lock directory dir, or nil if inotify is
// unavailable (the caller then polls only).
func newWaker(dir string) *waker {
	w := poolGet()
	if w == nil {
		if w = openWaker(); w == nil {
			return nil
		}
	}
	w.mu.Lock()
	wd, err := unix.InotifyAddWatch(w.fd, dir, wakeLockMask)
	if err == nil {
		w.dir, w.lockWD = dir, wd
	}
	w.mu.Unlock()
	if err != nil {
		w.Close()
		return nil
	}
	return w
}

func openWaker() *waker {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil // EMFILE, ENOSYS...: poll only
	}
	// A non-blocking descriptor: os.NewFile registers it with the runtime
	// poller, so the reader parks in the poller (not a thread) and closing
	// f ends its Read. (A reader blocked in poll(2) on a thread of its own
	// was measured slower in BenchmarkHandoff8: p50 0.75 ms instead of
	// 0.43 ms.)
	f := os.NewFile(uintptr(fd), "inotify")
	if f == nil {
		unix.Close(fd)
		return nil
	}
	w := &waker{fd: fd, f: f, c: make(chan struct{}, 1), done: make(chan struct{}),
		lockWD: -1, genWD: -1, qWD: -1}
	go w.read()
	return w
}

func poolGet() *waker {
	wakePool.mu.Lock()
	defer wakePool.mu.Unlock()
	for n := len(wakePool.idle); n > 0; n = len(wakePool.idle) {
		w := wakePool.idle[n-1]
		wakePool.idle = wakePool.idle[:n-1]
		if w.healthy() {
			return w
		}
		go w.destroy()
	}
	return nil
}

// poolPut keeps w (without watches) for reuse, or closes it.
func poolPut(w *waker) {
	wakePool.mu.Lock()
	defer wakePool.mu.Unlock()
	if !w.healthy() || len(wakePool.idle) >= wakePoolMax {
		go w.destroy()
		return
	}
	w.idle = time.Now()
	wakePool.idle = append(wakePool.idle, w)
	if wakePool.timer == nil {
		wakePool.timer = time.AfterFunc(wakePoolIdle, poolReap)
	}
}

// poolReap closes instances idle for wakePoolIdle.
func poolReap() {
	wakePool.mu.Lock()
	defer wakePool.mu.Unlock()
	keep := wakePool.idle[:0]
	for _, w := range wakePool.idle {
		if time.Since(w.idle) >= wakePoolIdle {
			go w.destroy()
		} else {
			keep = append(keep, w)
		}
	}
	clear(wakePool.idle[len(keep):])
	wakePool.idle = keep
	wakePool.timer = nil
	if len(keep) > 0 {
		wakePool.timer = time.AfterFunc(wakePoolIdle, poolReap)
	}
}

// destroy closes the instance and waits for its reader (slow: see above).
func (w *waker) destroy() {
	w.f.Close()
	<-w.done
}

// C returns the wake-up channel; nil (never ready) for a nil waker.
func (w *waker) C() <-chan struct{} {
	if w == nil {
		return nil
	}
	return w.c
}

// take returns and clears the flags gathered since the last call.
func (w *waker) take() uint32 {
	if w == nil {
		return 0
	}
	return w.flags.Swap(0)
}

// healthy reports whether wake-ups may come: the waker exists and its reader
// has not failed.
func (w *waker) healthy() bool { return w != nil && !w.dead.Load() }

// follow points the watches at the current state of the wait: the head
// generation (its directory watched only if watchGen), and our ticket (0:
// none; the queue directory is watched while we have one). It reports
// whether a watch was added, in which case the caller must look again
// before sleeping: a change between its last look and the new watch gave
// no event.
func (w *waker) follow(head uint64, watchGen bool, ticket uint64) (added bool) {
	if !w.healthy() {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.head = head
	// New generations matter to the front of the line (and to a waiter
	// without a ticket) only: behind it, a waiter learns that its turn
	// comes from the queue (a ticket ahead leaving), and waking the whole
	// line at every claim made the claimer wait for the CPU (2 cores, 8
	// processes: a cross-process handoff took 0.4 ms instead of 0.15).
	wantLock := watchGen || ticket == 0
	if w.lockWD >= 0 && !wantLock {
		_, _ = unix.InotifyRmWatch(w.fd, uint32(w.lockWD))
		w.lockWD = -1
	}
	if w.lockWD < 0 && wantLock {
		if wd, err := unix.InotifyAddWatch(w.fd, w.dir, wakeLockMask); err == nil {
			w.lockWD, added = wd, true
		}
	}
	if w.genWD >= 0 && (!watchGen || w.gen != head) {
		_, _ = unix.InotifyRmWatch(w.fd, uint32(w.genWD))
		w.genWD = -1
	}
	if watchGen && w.genWD < 0 && head > 0 {
		// ENOENT (collected, or removed by hand): the lock directory's
		// watch still reports newer generations.
		if wd, err := unix.InotifyAddWatch(w.fd, filepath.Join(w.dir, genName(head)), wakeGenMask); err == nil {
			w.genWD, w.gen, added = wd, head, true
		}
	}
	if ticket != 0 && (w.qWD < 0 || w.ticket != ticket) {
		// Adding a watch for an inode already watched returns the same
		// descriptor with the mask replaced.
		if wd, err := unix.InotifyAddWatch(w.fd, queueDir(w.dir), wakeQMask); err == nil {
			w.qWD, w.ticket, added = wd, ticket, true
		}
	}
	return added
}

// needs reports whether follow would add a watch (a cheap test, without
// system calls, so that the caller only bounds real work).
func (w *waker) needs(head uint64, watchGen bool, ticket uint64) bool {
	if !w.healthy() {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	wantLock := watchGen || ticket == 0
	return w.head != head || (wantLock != (w.lockWD >= 0)) || (watchGen != (w.genWD >= 0)) ||
		(watchGen && w.gen != head) || (ticket != 0 && (w.qWD < 0 || w.ticket != ticket))
}

// Close ends this waker's use of its instance: it removes the watches
// (events still queued for them are ignored) and returns the instance to
// the pool. Nil-safe.
func (w *waker) Close() {
	if w == nil {
		return
	}
	w.mu.Lock()
	for _, wd := range []int{w.lockWD, w.genWD, w.qWD} {
		if wd >= 0 {
			_, _ = unix.InotifyRmWatch(w.fd, uint32(wd))
		}
	}
	w.dir, w.lockWD, w.genWD, w.qWD = "", -1, -1, -1
	w.gen, w.head, w.ticket = 0, 0, 0
	w.mu.Unlock()
	w.flags.Store(0)
	select {
	case <-w.c:
	default:
	}
	poolPut(w)
}

// read turns events into wake-ups until destroy.
func (w *waker) read() {
	defer close(w.done)
	buf := make([]byte, 4096) // room for many events (16 bytes + name each)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				w.dead.Store(true) // polling carries on alone
			}
			return
		}
		if fl := w.classify(buf[:n]); fl != 0 {
			w.flags.Or(fl)
			select {
			case w.c <- struct{}{}:
			default: // one is pending already
			}
		}
	}
}

// classify returns the wake flags a batch of events calls for.
func (w *waker) classify(b []byte) uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var fl uint32
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(b) {
			break
		}
		name := string(bytes.TrimRight(b[unix.SizeofInotifyEvent:end], "\x00"))
		b = b[end:]
		wd, mask := int(ev.Wd), ev.Mask
		switch {
		case mask&unix.IN_Q_OVERFLOW != 0:
			fl |= wakeGen | wakeHead | wakeQueue // events lost: look at everything
		case wd == w.lockWD:
			if mask&(unix.IN_DELETE_SELF|unix.IN_IGNORED) != 0 {
				w.lockWD = -1            // follow watches it again if it is recreated
				fl |= wakeGen | wakeHead // the lock directory itself is gone
				continue
			}
			g, ok := parseGenName(name)
			switch {
			case !ok: // q, audit.log, history.log: nothing to act on
			case mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 && g > w.head:
				fl |= wakeHead
			case mask&unix.IN_DELETE != 0 && g == w.head:
				fl |= wakeGen
			}
		case wd == w.genWD:
			if mask&(unix.IN_DELETE_SELF|unix.IN_IGNORED) != 0 {
				w.genWD = -1 // removed with its directory
				fl |= wakeGen
			} else if name == ownerName {
				fl |= wakeGen
			}
			// Other files (release requests) wake nobody.
		case wd == w.qWD:
			if mask&(unix.IN_DELETE_SELF|unix.IN_IGNORED) != 0 {
				w.qWD = -1 // q removed: the line emptied (our ticket is gone too)
				fl |= wakeQueue
			} else if g, ok := parseGenName(name); ok && g < w.ticket {
				fl |= wakeQueue
			}
		}
		// Other descriptors: a watch we removed (its IN_IGNORED, or an
		// event queued before the removal).
	}
	return fl
}
