package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"sharelock/internal/core"
)

// History event kinds and states.
const (
	kindAcquire = "acquire"
	kindBreak   = "break"

	stWaiting  = "waiting"
	stHeld     = "held"
	stReleased = "released"
	stLost     = "lost"
	stBroken   = "broken"
)

// entry is the JSON value of q/ (holder record), h/ (history event) and
// audit keys.
type entry struct {
	Holder     core.Holder  `json:"holder"`
	LeaseMS    int64        `json:"lease_ms,omitempty"`
	Kind       string       `json:"kind,omitempty"`
	State      string       `json:"state,omitempty"`
	Reason     string       `json:"reason,omitempty"`
	Broke      *core.Holder `json:"broke,omitempty"`
	BrokeToken uint64       `json:"broke_token,omitempty"`
	At         time.Time    `json:"at"`
	Path       string       `json:"path,omitempty"`
	Nonce      string       `json:"nonce,omitempty"` // the acquisition's nonce: its h/ key's name (in q/ values too)
}

func (e *entry) encode() string {
	b, _ := json.Marshal(e)
	return string(b)
}

// encodeWith returns what encode returns, given holder, the JSON of
// e.Holder: a hold encodes its holder record once and its entries (q/
// value, history events) around it, without reflection (encoding each
// entry in full took about 7 % of an uncontended acquire+release's client
// CPU). Entries naming a broken holder take encode.
func (e *entry) encodeWith(holder []byte) string {
	if e.Broke != nil || e.BrokeToken != 0 {
		return e.encode()
	}
	at, err := e.At.MarshalJSON()
	if err != nil {
		return e.encode()
	}
	b := make([]byte, 0, len(holder)+len(e.Reason)+len(e.Path)+len(e.Nonce)+128)
	b = append(b, `{"holder":`...)
	b = append(b, holder...)
	if e.LeaseMS != 0 {
		b = append(b, `,"lease_ms":`...)
		b = strconv.AppendInt(b, e.LeaseMS, 10)
	}
	b = appendField(b, "kind", e.Kind)
	b = appendField(b, "state", e.State)
	b = appendField(b, "reason", e.Reason)
	b = append(b, `,"at":`...)
	b = append(b, at...)
	b = appendField(b, "path", e.Path)
	b = appendField(b, "nonce", e.Nonce)
	b = append(b, '}')
	return string(b)
}

// appendField appends ,"name":value as encoding/json writes an omitempty
// string field (so with its escaping: quotes, backslashes, control and
// non-ASCII characters, and <, > and & as encoding/json escapes them for
// HTML).
func appendField(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(v)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"')
}

func decodeEntry(b []byte) (*entry, error) {
	var e entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	e.Holder.Lease = time.Duration(e.LeaseMS) * time.Millisecond
	return &e, nil
}

// holderOf decodes the holder record of a q/ key; a damaged one is shown
// as an unknown holder rather than failing.
func holderOf(kv *mvccpb.KeyValue) *core.Holder {
	e, err := decodeEntry(kv.Value)
	if err != nil {
		return &core.Holder{User: "an unreadable holder record"}
	}
	h := e.Holder
	return &h
}

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
		req.Heartbeat = min(req.Lease/8, 5*time.Second)
	}
	req.Heartbeat = max(req.Heartbeat, 10*time.Millisecond)
	return req, nil
}

// qent is a key in the line.
type qent struct {
	key    string
	rev    int64
	holder *core.Holder
}

// Acquire implements core.Store. With req.Wait it joins the line and waits
// (watching, not polling) until every key ahead of it is gone or ctx ends;
// if ctx ends the error wraps a *core.LockedError naming the holder and
// ctx's error. Without req.Wait it is refused with a *core.LockedError if
// anyone holds the lock. (In etcd a line without a holder cannot exist: the
// oldest key in the line is the holder, even before its client notices, so
// the refusal always names the holder and is never Queued.)
func (s *Store) Acquire(ctx context.Context, req core.Request) (core.Lease, error) {
	req, err := normalize(req)
	if err != nil {
		return nil, err
	}
	// A waiter whose lease ended (the cluster lost its leader for too
	// long, say) or that met an unavailable cluster joins the line again,
	// at its end, until ctx ends.
	for try := 0; ; try++ {
		l, err := s.acquireOnce(ctx, req)
		if err == nil || !req.Wait || !transient(err) || ctx.Err() != nil {
			return l, err
		}
		t := time.NewTimer(min(time.Duration(try+1)*100*time.Millisecond, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (gave up waiting: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// errLostPlace: a waiter's key vanished (its lease ended) before its turn.
var errLostPlace = errors.New("lost our place in line")

// transient reports whether a failed attempt may succeed if tried again.
func transient(err error) bool {
	if errors.Is(err, errLostPlace) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

func (s *Store) acquireOnce(ctx context.Context, req core.Request) (core.Lease, error) {
	sess, err := s.session(ctx, ttlOf(req.Lease))
	if err != nil {
		return nil, err
	}
	base := s.lockBase(req.Path)
	h := &hold{s: s, sess: sess, req: req, base: base, nonce: newNonce(), slot: s.takeSlot(base),
		rec:      s.holderRecord(req.App, req.Lease),
		lost:     make(chan struct{}),
		notices:  make(chan core.Notice, noticeBuffer),
		answered: map[string]bool{},
	}
	h.qkey = queuePrefix(base) + h.slot
	h.hkey = historyPrefix(base) + h.nonce
	h.lastTouch.Store(int64(s.mono()))
	h.ctx, h.cancel = context.WithCancel(context.Background())

	h.recJSON, _ = json.Marshal(&h.rec)
	qval := (&entry{Holder: h.rec, LeaseMS: req.Lease.Milliseconds(), At: h.rec.Since, Nonce: h.nonce}).encodeWith(h.recJSON)
	ev := entry{Holder: h.rec, LeaseMS: req.Lease.Milliseconds(), Kind: kindAcquire, State: stHeld,
		Reason: req.Reason, At: h.rec.Since, Path: req.Path, Nonce: h.nonce}
	heldEv := ev.encodeWith(h.recJSON)

	free := clientv3.Compare(clientv3.CreateRevision(queuePrefix(base)), "=", 0).WithPrefix()
	putQ := clientv3.OpPut(h.qkey, qval, clientv3.WithLease(sess.id))
	var els []clientv3.Op
	if req.Wait {
		ev.State = stWaiting
		els = []clientv3.Op{putQ, clientv3.OpPut(h.hkey, ev.encodeWith(h.recJSON)),
			clientv3.OpGet(queuePrefix(base), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))}
	} else {
		els = []clientv3.Op{clientv3.OpGet(queuePrefix(base), clientv3.WithFirstCreate()...)}
	}
	in, started := s.subscribe(base)
	resp, err := s.cli.Txn(ctx).If(free).Then(putQ, clientv3.OpPut(h.hkey, heldEv)).Else(els...).Commit()
	if err != nil {
		s.unsubscribe(base, in)
		h.cancel()
		// The transaction may have been applied: never leave a key behind
		// that our live session would keep holding.
		h.cleanup()
		return nil, s.wrap("acquire "+req.Path, err)
	}
	if !resp.Succeeded && !req.Wait {
		s.unsubscribe(base, in)
		h.cancel()
		rr := resp.Responses[0].GetResponseRange()
		if len(rr.Kvs) == 0 { // it was released in between: a fresh look
			return s.acquireOnce(ctx, req)
		}
		holder := holderOf(rr.Kvs[0])
		return nil, &core.LockedError{Path: req.Path, Holder: holder, Token: uint64(rr.Kvs[0].CreateRevision),
			Waiting: int(rr.Count) - 1, Solutions: core.DefaultSolutions(req.Path, holder)}
	}
	h.rev = resp.Header.Revision
	switch {
	case started:
		h.in = in
	case !resp.Succeeded:
		h.in = in
		s.startWatch(base, in, h.rev)
	default:
		// Held at once, and the lock's watch does not run: hold starts it
		// after watchDelay, from the revision after our claim, unless we
		// released before (see watch.go).
	}
	if !resp.Succeeded {
		for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
			if kv.CreateRevision < h.rev && string(kv.Key) != h.qkey {
				h.ahead = append(h.ahead, qent{key: string(kv.Key), rev: kv.CreateRevision, holder: holderOf(kv)})
			}
		}
		if err := h.waitTurn(ctx); err != nil {
			s.unsubscribe(base, in)
			h.cancel()
			h.cleanup()
			if ctx.Err() != nil && len(h.ahead) > 0 {
				le := &core.LockedError{Path: req.Path, Holder: h.ahead[0].holder, Token: uint64(h.ahead[0].rev),
					Waiting: len(h.ahead) - 1, Solutions: core.DefaultSolutions(req.Path, h.ahead[0].holder)}
				return nil, fmt.Errorf("%w (gave up waiting: %w)", le, ctx.Err())
			}
			return nil, err
		}
		// Our turn: mark the history event held (only if our key is still
		// there: a lease that expired while we waited loses our place).
		r, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(h.qkey), "=", h.rev)).
			Then(clientv3.OpPut(h.hkey, heldEv)).Commit()
		if err != nil || !r.Succeeded {
			s.unsubscribe(base, in)
			h.cancel()
			h.cleanup()
			if err == nil {
				err = fmt.Errorf("sharelock: %w for %s: %s", errLostPlace, req.Path, h.sessionWhy())
			} else {
				err = s.wrap("acquire "+req.Path, err)
			}
			return nil, err
		}
	}
	h.hold()
	return h, nil
}

// hold is a lock held (or being waited for) through the etcd store.
type hold struct {
	s     *Store
	sess  *session
	req   core.Request
	base  string
	nonce string // names the history event (h/)
	slot  string // names the key in the line (q/): reused, see Store.takeSlot
	qkey  string
	hkey  string
	rev   int64 // create revision of qkey: the token
	rec   core.Holder
	// recJSON is rec in JSON, for entry.encodeWith.
	recJSON []byte

	// The lock's events (watch.go), read by the goroutine that waits, then
	// by the lock's watch goroutine; events up to syncRev are already reflected (resync).
	// in is nil while a hold acquired at once waits for watchDelay before
	// it attaches (attach); inMu guards in, attachTimer and detached once
	// held.
	in          *inbox
	inMu        sync.Mutex
	attachTimer *time.Timer
	detached    bool
	syncRev     int64
	ahead       []qent // keys ahead of ours (while waiting)
	behind      []qent // keys after ours (waiters, once held)
	// answered holds the request keys already answered.
	answered map[string]bool

	ctx    context.Context // ends at release
	cancel context.CancelFunc
	relMu  sync.Mutex // orders release against losses
	// mu guards the event state (ahead, behind, answered, syncRev, idle
	// state) once held: the watch goroutine, the idle timer and a resync
	// touch it.
	mu sync.Mutex

	lostOnce   sync.Once
	lost       chan struct{}
	lostErr    error
	detachOnce sync.Once
	idleTimer  *time.Timer // guarded by mu
	released   atomic.Bool
	relOnce    sync.Once
	relErr     error

	notices     chan core.Notice
	listening   atomic.Bool
	lastTouch   atomic.Int64
	idleWarned  time.Duration
	lastRequest time.Duration
}

// applyBatch applies one watch response's events that are newer than what
// the hold has seen. It returns an error if they end our claim.
func (h *hold) applyBatch(b []*clientv3.Event) error {
	seen := max(h.rev, h.syncRev)
	broken := ""
	for _, ev := range b {
		if ev.Kv.ModRevision > seen && string(ev.Kv.Key) == h.hkey && ev.Type == clientv3.EventTypePut {
			if e, err := decodeEntry(ev.Kv.Value); err == nil && e.State == stBroken {
				broken = e.Reason
			}
		}
	}
	for _, ev := range b {
		if ev.Kv.ModRevision <= seen {
			continue
		}
		if err := h.apply(ev, broken); err != nil {
			return err
		}
	}
	return nil
}

// events applies what arrived in the inbox (resyncing first if asked).
func (h *hold) events(ctx context.Context) error {
	batches, resync := h.in.take()
	if resync {
		if err := h.resync(ctx); err != nil {
			return err
		}
	}
	for _, b := range batches {
		if err := h.applyBatch(b); err != nil {
			return err
		}
	}
	return nil
}

func (h *hold) sessionWhy() string {
	if r := h.sess.reason(); r != "" {
		return r
	}
	return "our key in the line was deleted (lease expired, or broken)"
}

// cleanup deletes our keys after a failed or abandoned attempt. If that
// fails the session is abandoned (its lease then expires), so that no key
// of ours can stay behind on a live lease.
func (h *hold) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err := h.s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(h.qkey), ">", 0)).
		Then(clientv3.OpDelete(h.qkey), clientv3.OpDelete(h.hkey)).Commit()
	if err != nil {
		h.s.abandon(h.sess, "could not remove an abandoned key: "+err.Error())
	}
}

// abandon stops keeping ss alive, so that its lease expires on the cluster.
func (s *Store) abandon(ss *session, why string) {
	ss.end(why)
	ss.cancel()
	s.mu.Lock()
	if s.sessions[ss.ttl] == ss {
		delete(s.sessions, ss.ttl)
	}
	s.mu.Unlock()
}

// waitTurn waits until every key ahead of ours is gone.
func (h *hold) waitTurn(ctx context.Context) error {
	for len(h.ahead) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.sess.done:
			return fmt.Errorf("sharelock: %w for %s: %s", errLostPlace, h.req.Path, h.sess.reason())
		case <-h.in.sig:
			if err := h.events(ctx); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("sharelock: %w for %s: %w", errLostPlace, h.req.Path, err)
			}
		}
	}
	return nil
}

// apply updates the hold's view with one event. It returns an error if the
// event ends our claim (our key deleted or replaced). broken is the break
// record seen in the same response, if any.
func (h *hold) apply(ev *clientv3.Event, broken string) error {
	key := string(ev.Kv.Key)
	switch {
	case key == h.qkey:
		if ev.Type == clientv3.EventTypeDelete {
			if broken != "" {
				return errors.New(broken)
			}
			return errors.New(h.sessionWhy())
		}
		if ev.Kv.CreateRevision != h.rev {
			return errors.New("our key in the line was replaced")
		}
	case strings.HasPrefix(key, queuePrefix(h.base)):
		if ev.Type == clientv3.EventTypeDelete {
			h.ahead = removeKey(h.ahead, key)
			h.behind = removeKey(h.behind, key)
			return nil
		}
		if ev.Kv.CreateRevision > h.rev {
			h.behind = removeKey(h.behind, key)
			h.behind = append(h.behind, qent{key: key, rev: ev.Kv.CreateRevision, holder: holderOf(ev.Kv)})
		}
	case strings.HasPrefix(key, requestPrefix(h.base, uint64(h.rev))):
		if ev.Type == clientv3.EventTypePut && !strings.HasSuffix(key, seenSuffix) {
			h.request(ev.Kv)
		}
	}
	return nil
}

func removeKey(l []qent, key string) []qent {
	for i := range l {
		if l[i].key == key {
			return append(l[:i], l[i+1:]...)
		}
	}
	return l
}

// resync rebuilds the view from a fresh read, after the lock's watch lost
// events (compaction). It retries until it succeeds, ctx ends or the
// session ends.
func (h *hold) resync(ctx context.Context) error {
	for try := 0; ; try++ {
		if try > 0 {
			t := time.NewTimer(min(time.Duration(try)*50*time.Millisecond, time.Second))
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-h.sess.done:
				t.Stop()
				return errors.New(h.sess.reason())
			case <-t.C:
			}
		}
		octx, cancel := context.WithTimeout(ctx, 2*time.Second)
		r, err := h.s.cli.Txn(octx).Then(
			clientv3.OpGet(queuePrefix(h.base), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend)),
			clientv3.OpGet(requestPrefix(h.base, uint64(h.rev)), clientv3.WithPrefix()),
			clientv3.OpGet(h.hkey)).Commit()
		cancel()
		if err != nil {
			continue
		}
		var ahead, behind []qent
		mine := false
		for _, kv := range r.Responses[0].GetResponseRange().Kvs {
			switch {
			case string(kv.Key) == h.qkey:
				mine = kv.CreateRevision == h.rev
			case kv.CreateRevision < h.rev:
				ahead = append(ahead, qent{key: string(kv.Key), rev: kv.CreateRevision, holder: holderOf(kv)})
			default:
				behind = append(behind, qent{key: string(kv.Key), rev: kv.CreateRevision, holder: holderOf(kv)})
			}
		}
		if !mine {
			// A break marked our history event broken, with its reason.
			if kvs := r.Responses[2].GetResponseRange().Kvs; len(kvs) > 0 && kvs[0].CreateRevision == h.rev {
				if e, err := decodeEntry(kvs[0].Value); err == nil && e.State == stBroken {
					return errors.New(e.Reason)
				}
			}
			return errors.New(h.sessionWhy())
		}
		h.ahead, h.behind = ahead, behind
		for _, kv := range r.Responses[1].GetResponseRange().Kvs {
			if !strings.HasSuffix(string(kv.Key), seenSuffix) {
				h.request(kv)
			}
		}
		h.syncRev = r.Header.Revision
		return nil
	}
}

// hold starts the held phase: no goroutine of its own. The lock's watch
// goroutine hands it events (onEvents), the session tells it when the lease
// ends (sessionEnded), and with an idle limit a timer runs the idle checks.
// A hold without an inbox (acquired at once while the lock's watch did not
// run) attaches to the watch after watchDelay (attach).
func (h *hold) hold() {
	h.sess.register(h)
	h.inMu.Lock()
	if h.in != nil {
		h.in.handle(h.onEvents)
	} else {
		h.attachTimer = time.AfterFunc(watchDelay, h.attach)
	}
	h.inMu.Unlock()
	if h.req.IdleLimit > 0 {
		h.mu.Lock()
		h.idleTimer = time.AfterFunc(h.req.Heartbeat, h.idleTick)
		h.mu.Unlock()
	}
}

// attach subscribes a hold that was acquired at once to the lock's watch,
// from the revision after its claim (startWatch; a watch already past it
// makes the hold resync), unless it was released, lost or detached
// meanwhile. Every change to the lock after the claim so reaches the hold,
// at most watchDelay later than it would have through a running watch.
func (h *hold) attach() {
	h.inMu.Lock()
	defer h.inMu.Unlock()
	if h.detached || h.released.Load() || h.Err() != nil {
		return
	}
	in := newInbox()
	in.handle(h.onEvents)
	h.in = in
	h.s.startWatch(h.base, in, h.rev)
}

// onEvents is called by the lock's watch goroutine, in order.
func (h *hold) onEvents(b []*clientv3.Event, resync bool) {
	if h.released.Load() || h.Err() != nil {
		return
	}
	if resync {
		go func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if err := h.resync(h.ctx); err != nil && h.ctx.Err() == nil {
				h.loseHeld(err.Error())
			}
		}()
	}
	h.mu.Lock()
	err := h.applyBatch(b)
	h.mu.Unlock()
	if err != nil {
		h.loseHeld(err.Error())
	}
}

func (h *hold) sessionEnded(reason string) { h.loseHeld(reason) }

func (h *hold) idleTick() {
	h.mu.Lock()
	h.relMu.Lock()
	idle := !h.released.Load() && h.Err() == nil && h.idleCheck()
	h.relMu.Unlock()
	if !idle && !h.released.Load() && h.Err() == nil {
		h.idleTimer.Reset(h.req.Heartbeat)
	}
	h.mu.Unlock()
	if idle {
		h.releaseKeys(stReleased, h.lostErr.(*core.LostError).Reason)
		h.detach()
	}
}

// detach ends the hold's ties to the watch, the session and its timer.
func (h *hold) detach() {
	h.detachOnce.Do(func() {
		h.cancel()
		h.inMu.Lock()
		h.detached = true
		if h.attachTimer != nil {
			h.attachTimer.Stop()
		}
		if h.in != nil {
			h.s.unsubscribe(h.base, h.in)
		}
		h.inMu.Unlock()
		h.sess.unregister(h)
		h.mu.Lock()
		if h.idleTimer != nil {
			h.idleTimer.Stop()
		}
		h.mu.Unlock()
	})
}

// loseHeld marks the hold lost unless it was released meanwhile (our own
// release deletes our key too).
func (h *hold) loseHeld(reason string) {
	h.relMu.Lock()
	defer h.relMu.Unlock()
	if !h.released.Load() {
		h.lose(reason, false)
	}
}

func (h *hold) lose(reason string, idle bool) {
	h.lostOnce.Do(func() {
		h.lostErr = &core.LostError{Path: h.req.Path, Token: uint64(h.rev), Reason: reason, Idle: idle}
		close(h.lost)
		if !idle {
			go h.detach()
		}
	})
}

// Token implements core.Lease: the create revision of our key.
func (h *hold) Token() uint64 { return uint64(h.rev) }

// Holder implements core.Lease.
func (h *hold) Holder() *core.Holder { r := h.rec; return &r }

// Lost implements core.Lease.
func (h *hold) Lost() <-chan struct{} { return h.lost }

// Err implements core.Lease.
func (h *hold) Err() error {
	select {
	case <-h.lost:
		return h.lostErr
	default:
		return nil
	}
}

// Check implements core.Lease: nil if not lost, not released, and a
// keep-alive answer came within three quarters of the TTL (on the monotonic
// clock that counts suspend: after a pause it fails at once).
func (h *hold) Check() error {
	if err := h.Err(); err != nil {
		return err
	}
	if h.released.Load() {
		return fmt.Errorf("%w: released", core.ErrNotHeld)
	}
	if gap := h.s.mono() - h.sess.last(); gap >= lostAfter(h.sess.ttl) {
		h.lose(fmt.Sprintf("no keep-alive answer from etcd for %v (limit %v)", gap.Round(time.Millisecond), lostAfter(h.sess.ttl)), false)
		return h.lostErr
	}
	return nil
}

// Notices implements core.Lease.
func (h *hold) Notices() <-chan core.Notice {
	h.listening.Store(true)
	return h.notices
}

// Touch implements core.Lease.
func (h *hold) Touch() { h.lastTouch.Store(int64(h.s.mono())) }

func (h *hold) notify(n core.Notice) {
	if !h.listening.Load() {
		return
	}
	select {
	case h.notices <- n:
	default:
	}
}

// Release implements core.Lease: one transaction deletes our key (if it
// is still our claim) and marks the history event released. It is
// idempotent. It returns the *LostError if the lock
// had been lost meanwhile.
func (h *hold) Release() error {
	h.relOnce.Do(func() {
		h.relMu.Lock()
		h.released.Store(true)
		h.relMu.Unlock()
		h.detach()
		if h.Err() == nil {
			gap := h.s.mono() - h.sess.last()
			if gap >= lostAfter(h.sess.ttl) {
				h.lose(fmt.Sprintf("no keep-alive answer from etcd for %v", gap.Round(time.Millisecond)), false)
			}
		}
		if err := h.Err(); err != nil {
			h.relErr = err
			if le, ok := err.(*core.LostError); !ok || !le.Idle {
				h.releaseKeys(stLost, "") // best effort: our key may still be there
			}
			return
		}
		ok, err := h.releaseKeys(stReleased, "")
		switch {
		case err != nil:
			h.relErr = err
		case !ok:
			h.lose("our key was gone at release (broken, or the lease expired)", false)
			h.relErr = h.lostErr
		default:
			h.s.putSlot(h.base, h.slot) // our release deleted it
		}
	})
	return h.relErr
}

// releaseKeys deletes our key if it is still our claim and records state
// in the history. It reports whether our
// key was still there. If etcd cannot be reached, the session is abandoned
// so that its lease expires and the key goes with it.
func (h *hold) releaseKeys(state, reason string) (bool, error) {
	ev := entry{Holder: h.rec, LeaseMS: h.req.Lease.Milliseconds(), Kind: kindAcquire, State: state,
		Reason: reason, At: h.s.wallNow().UTC(), Path: h.req.Path, Nonce: h.nonce}
	if ev.Reason == "" {
		ev.Reason = h.req.Reason
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	r, err := h.s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(h.qkey), "=", h.rev)).
		Then(clientv3.OpDelete(h.qkey), clientv3.OpPut(h.hkey, ev.encodeWith(h.recJSON))).Commit()
	if err != nil {
		h.s.abandon(h.sess, "could not release "+h.req.Path+": "+err.Error())
		return false, h.s.wrap("release "+h.req.Path, err)
	}
	if r.Succeeded && rand.N(trimOneIn) == 0 {
		go h.s.trimHistory(h.base)
	}
	return r.Succeeded, nil
}

// idleCheck runs the idle state machine at each tick (see
// core.Request.IdleLimit). It reports whether the lock must be released
// for the idle holder; it has then been marked lost.
func (h *hold) idleCheck() bool {
	limit := h.req.IdleLimit
	if limit <= 0 {
		return false
	}
	now := h.s.mono()
	touched := time.Duration(h.lastTouch.Load())
	if now-touched < limit {
		h.idleWarned = 0
		return false
	}
	requested := h.lastRequest > touched
	waiting := h.waitingHolders()
	if len(waiting) == 0 && !requested {
		h.idleWarned = 0
		return false
	}
	grace := h.req.IdleGrace
	if grace <= 0 {
		grace = DefaultIdleGrace
	}
	if h.idleWarned == 0 {
		h.idleWarned = now
		n := core.Notice{Kind: core.NoticeIdle, Waiting: len(waiting),
			At: h.s.wallNow(), Deadline: h.s.wallNow().Add(grace)}
		if len(waiting) > 0 {
			n.From = &waiting[0]
		}
		h.notify(n)
		return false
	}
	if now-h.idleWarned < grace {
		return false
	}
	who := "a release request"
	if len(waiting) > 0 {
		who = waiting[0].Who()
		if len(waiting) > 1 {
			who += fmt.Sprintf(" and %d more", len(waiting)-1)
		}
		who += " waiting"
	}
	h.lose(fmt.Sprintf("released after %v without activity (idle limit %v, grace %v) for %s",
		(now-touched).Round(time.Second), limit, grace, who), true)
	return true
}

func (h *hold) waitingHolders() []core.Holder {
	out := make([]core.Holder, 0, len(h.behind))
	for _, q := range h.behind {
		if q.holder != nil {
			out = append(out, *q.holder)
		}
	}
	return out
}
