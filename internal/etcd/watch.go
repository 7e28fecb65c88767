package etcd

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// One watch per lock and store, shared by the store's holds and waiters of
// that lock and kept open for a while after the last one leaves: creating
// and cancelling a watch for every acquisition made an uncontended
// acquire+release about 20 % slower (measured against etcd's Mutex).
//
// Continuity: a hold subscribes before its acquiring transaction when the
// lock's watch already runs, so every event after that transaction reaches
// it (the watch delivers revisions in order, without gaps: the client
// resumes a broken stream from the last revision it delivered). The first
// acquisition of a lock in a store starts the watch right after its
// transaction, from the next revision. If the cluster compacted revisions
// the watch had not delivered yet, it restarts from a fresh read and tells
// its subscribers to read their state again (resync).
//
// Deferred start: a hold acquired at once while the lock's watch does not
// run does not start it at once but after watchDelay (hold.attach), from
// the revision after its claim; if it is released before, no watch is
// started at all. Most uncontended holds are short, and an open watch costs
// every acquisition and release of the lock (the cluster sends, and the
// client decodes, each of their writes), while starting one costs as much as
// the acquisition itself. Nothing is missed: the watch starts from the
// claim's revision, so a break, a release request or a waiter in those
// first watchDelay reaches the hold when the watch starts (at most
// watchDelay later than through a running watch). The keep-alive checks
// (Check, and the session's loss after three quarters of the TTL) do not
// depend on the watch. Waiters, and holds acquired while the watch runs,
// subscribe at once as before.

// watchLinger is how long a lock's watch stays open with no subscriber.
const watchLinger = 30 * time.Second

// watchDelay is how long a hold acquired at once waits before it starts
// the lock's watch (see Deferred start above).
const watchDelay = 50 * time.Millisecond

// lockWatch is the shared watch on one lock's keys.
type lockWatch struct {
	s    *Store
	base string

	mu     sync.Mutex
	subs   map[*inbox]struct{}
	next   int64 // the revision the watch delivers from
	idle   *time.Timer
	cancel context.CancelFunc
	dead   bool
}

// inbox queues a subscriber's batches of events (one batch per watch
// response, in order); sig is signalled when something arrives.
type inbox struct {
	mu      sync.Mutex
	batches [][]*clientv3.Event
	resync  bool
	sig     chan struct{}
	// handler, once set, gets the batches directly (in the watch goroutine).
	handler func([]*clientv3.Event, bool)
}

func newInbox() *inbox { return &inbox{sig: make(chan struct{}, 1)} }

func (in *inbox) push(b []*clientv3.Event, resync bool) {
	in.mu.Lock()
	if f := in.handler; f != nil {
		in.mu.Unlock()
		f(b, resync)
		return
	}
	if len(b) > 0 {
		in.batches = append(in.batches, b)
	}
	in.resync = in.resync || resync
	in.mu.Unlock()
	select {
	case in.sig <- struct{}{}:
	default:
	}
}

// handle hands what is queued, then every later batch, to f (in order:
// the watch goroutine waits while the queue is handed over).
func (in *inbox) handle(f func([]*clientv3.Event, bool)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.resync || len(in.batches) > 0 {
		b, r := in.batches, in.resync
		in.batches, in.resync = nil, false
		if len(b) == 0 {
			f(nil, r)
		}
		for i, x := range b {
			f(x, r && i == 0)
		}
	}
	in.handler = f
}

// take returns what arrived since the last take.
func (in *inbox) take() ([][]*clientv3.Event, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	b, r := in.batches, in.resync
	in.batches, in.resync = nil, false
	return b, r
}

// subscribe returns an inbox for base's events. If the lock's watch is
// running, the inbox gets every event from now on and started is true;
// otherwise the caller must call start with the revision it read, after
// which the inbox gets every event after it.
func (s *Store) subscribe(base string) (in *inbox, started bool) {
	in = newInbox()
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.watches[base]
	if w == nil || w.isDead() {
		return in, false
	}
	w.add(in)
	return in, true
}

// startWatch subscribes in to base's watch, starting one from rev+1 if
// none runs. An already running watch may be past rev+1: then in is told to
// resync. After Close it does nothing (the holds have been told the store
// closed).
func (s *Store) startWatch(base string, in *inbox, rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	w := s.watches[base]
	if w != nil && !w.isDead() {
		// Judge and subscribe in one critical section: run moves next
		// and delivers under the same lock, so in gets every batch from
		// next on, and a resync covers what came before.
		w.mu.Lock()
		behind := w.next > rev+1
		w.subs[in] = struct{}{}
		if w.idle != nil {
			w.idle.Stop()
			w.idle = nil
		}
		w.mu.Unlock()
		if behind {
			in.push(nil, true)
		}
		return
	}
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(context.Background()))
	w = &lockWatch{s: s, base: base, subs: map[*inbox]struct{}{}, next: rev + 1, cancel: cancel}
	s.watches[base] = w
	w.add(in)
	go w.run(ctx)
}

func (w *lockWatch) isDead() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dead
}

func (w *lockWatch) add(in *inbox) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.subs[in] = struct{}{}
	if w.idle != nil {
		w.idle.Stop()
		w.idle = nil
	}
}

// unsubscribe removes in; the watch closes after watchLinger unused.
func (s *Store) unsubscribe(base string, in *inbox) {
	s.mu.Lock()
	w := s.watches[base]
	s.mu.Unlock()
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.subs, in)
	if len(w.subs) == 0 && w.idle == nil && !w.dead {
		w.idle = time.AfterFunc(watchLinger, w.closeIfIdle)
	}
}

func (w *lockWatch) closeIfIdle() {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.subs) > 0 || w.dead {
		return
	}
	w.dead = true
	w.cancel()
	if w.s.watches[w.base] == w {
		delete(w.s.watches, w.base)
	}
}

// closeAll ends every watch (Store.Close).
func (s *Store) closeWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for base, w := range s.watches {
		w.mu.Lock()
		w.dead = true
		w.cancel()
		w.mu.Unlock()
		delete(s.watches, base)
	}
}

// deliver moves next to the revision after the batch and hands the batch
// to every subscriber, in one critical section (see startWatch).
func (w *lockWatch) deliver(next int64, b []*clientv3.Event, resync bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next = next
	for in := range w.subs {
		in.push(b, resync)
	}
}

// run delivers the watch's events until it is closed, restarting it where
// it stopped (or, after a compaction, from a fresh read, telling the
// subscribers to resync).
func (w *lockWatch) run(ctx context.Context) {
	for try := 0; ctx.Err() == nil; try++ {
		w.mu.Lock()
		from := w.next
		w.mu.Unlock()
		wctx, cancel := context.WithCancel(ctx)
		for wr := range w.s.cli.Watch(wctx, w.base, clientv3.WithPrefix(), clientv3.WithRev(from)) {
			if wr.CompactRevision != 0 {
				// Events we had not delivered are gone: start from now.
				r, err := w.s.cli.Get(ctx, w.base+"\x00", clientv3.WithCountOnly())
				if err == nil {
					w.deliver(r.Header.Revision+1, nil, true)
				}
				break
			}
			if wr.Err() != nil || wr.Canceled {
				break
			}
			try = 0
			if len(wr.Events) > 0 {
				w.deliver(wr.Events[len(wr.Events)-1].Kv.ModRevision+1, wr.Events, false)
			}
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		t := time.NewTimer(min(time.Duration(try+1)*50*time.Millisecond, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
