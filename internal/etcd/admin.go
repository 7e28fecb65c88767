package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"sharelock/internal/core"
)

const seenSuffix = ".seen"

// requestRec is the value of a release request key.
type requestRec struct {
	From    core.Holder `json:"from"`
	Message string      `json:"message,omitempty"`
	At      time.Time   `json:"at"`
}

// seenRec is the value of a release request's answer.
type seenRec struct {
	Delivery core.Delivery `json:"delivery"`
	At       time.Time     `json:"at"`
}

func getLine(base string) clientv3.Op {
	return clientv3.OpGet(queuePrefix(base), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
}

func getHistory(base string, n int64) clientv3.Op {
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend)}
	if n > 0 {
		opts = append(opts, clientv3.WithLimit(n))
	}
	return clientv3.OpGet(historyPrefix(base), opts...)
}

// Inspect implements core.Store: one read of the line and the newest
// history events. State is Free or Held: a key in the line exists only while
// its client keeps its lease alive, so etcd never shows a stale holder
// (Observe is ignored). Token is the holder's, or when free the last
// claim's.
func (s *Store) Inspect(ctx context.Context, path string, opt core.InspectOptions) (core.Info, error) {
	info := core.Info{Path: path, State: core.Free}
	base := s.lockBase(path)
	r, err := s.cli.Txn(ctx).Then(getLine(base), getHistory(base, int64(max(opt.History, 1)))).Commit()
	if err != nil {
		return info, s.wrap("inspect "+path, err)
	}
	line := r.Responses[0].GetResponseRange().Kvs
	hist := r.Responses[1].GetResponseRange().Kvs
	if len(line) > 0 {
		info.State = core.Held
		info.Token = uint64(line[0].CreateRevision)
		info.Holder = holderOf(line[0])
		for _, kv := range line[1:] {
			info.Waiting = append(info.Waiting, *holderOf(kv))
		}
	} else if len(hist) > 0 {
		info.Token = uint64(hist[0].CreateRevision)
		if e, err := decodeEntry(hist[0].Value); err == nil && e.Kind == kindAcquire {
			hh := e.Holder
			info.Holder = &hh
		}
	}
	if opt.History > 0 {
		info.History = s.events(base, hist, line)
		slices.Reverse(info.History)
	}
	return info, nil
}

// events turns history keys into events; line is the current line, to
// tell a claim still held from one that ended without release.
func (s *Store) events(base string, hist, line []*mvccpb.KeyValue) []core.Event {
	// An acquisition's q/ and h/ keys are created in one transaction: a
	// claim is still in the line if a q/ key has its event's create
	// revision (or, as older clients named both keys alike, its nonce).
	inLine := map[string]bool{}
	revInLine := map[int64]bool{}
	for _, kv := range line {
		inLine[strings.TrimPrefix(string(kv.Key), queuePrefix(base))] = true
		revInLine[kv.CreateRevision] = true
	}
	var out []core.Event
	for _, kv := range hist {
		e, err := decodeEntry(kv.Value)
		if err != nil {
			continue
		}
		if e.State == stWaiting {
			continue // never held (or still waiting)
		}
		state := e.State
		if state == stHeld && !revInLine[kv.CreateRevision] && !inLine[e.Nonce] {
			state = stLost // ended without release: crash or expired lease
		}
		hh := e.Holder
		out = append(out, core.Event{Token: uint64(kv.CreateRevision), Kind: e.Kind, State: state,
			Holder: &hh, Reason: e.Reason, Broke: e.Broke, At: e.At})
	}
	return out
}

// History implements core.Store: the newest events the store keeps (256
// per lock), oldest first.
func (s *Store) History(ctx context.Context, path string) ([]core.Event, error) {
	base := s.lockBase(path)
	r, err := s.cli.Txn(ctx).Then(getLine(base), getHistory(base, 0)).Commit()
	if err != nil {
		return nil, s.wrap("read the history of "+path, err)
	}
	ev := s.events(base, r.Responses[1].GetResponseRange().Kvs, r.Responses[0].GetResponseRange().Kvs)
	slices.Reverse(ev)
	return ev, nil
}

// trimOneIn: one release in trimOneIn (at random) trims the lock's
// history, deleting every event but the newest keepHistory. (It was every
// release whose token was a multiple of 64, which the revisions of a
// regular pattern of writes can miss forever: a lock taken and released
// between two other writes each time never had its history trimmed.)
// Trimming (its read, and in the end one delete per acquisition) took
// about 5 % of an uncontended acquire+release's time; trimming less often
// (one in 128) did not measurably change that.
var trimOneIn = 32

const (
	trimRead  = 1024 // oldest events read by one trim
	maxTxnOps = 128  // etcd's default --max-txn-ops
)

// trimHistory keeps the newest keepHistory events of a lock: one read
// (the oldest keys and the count) and transactions of up to maxTxnOps
// deletes.
func (s *Store) trimHistory(base string) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	r, err := s.cli.Get(ctx, historyPrefix(base), clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(trimRead),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil || r.Count <= keepHistory {
		return
	}
	old := r.Kvs[:min(int(r.Count)-keepHistory, len(r.Kvs))]
	for len(old) > 0 {
		n := min(len(old), maxTxnOps)
		ops := make([]clientv3.Op, 0, n)
		for _, kv := range old[:n] {
			ops = append(ops, clientv3.OpDelete(string(kv.Key)))
		}
		if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return
		}
		old = old[n:]
	}
}

// Break implements core.Store. In one transaction, and only if the holder
// is still the one it read, it deletes the holder's key, marks its history
// event broken, adds a "break" event (the breaker, the broken holder, the
// reason) and an audit key. The holder's watch sees its key deleted and its
// Lost fires. Without force it refuses: a holder in etcd is alive by
// definition (its lease is kept alive), and it says when the lease would
// expire if its client stopped.
func (s *Store) Break(ctx context.Context, path, reason string, force bool) (core.Info, error) {
	if reason == "" {
		return core.Info{Path: path}, errors.New("sharelock: a reason is required to break a lock")
	}
	base := s.lockBase(path)
	for attempt := 0; attempt < 5; attempt++ {
		info, err := s.Inspect(ctx, path, core.InspectOptions{})
		if err != nil {
			return info, err
		}
		if info.State == core.Free {
			return info, fmt.Errorf("%w: %s is free, nothing to break", core.ErrNotHeld, path)
		}
		r, err := s.cli.Get(ctx, queuePrefix(base), clientv3.WithFirstCreate()...)
		if err != nil {
			return info, s.wrap("break "+path, err)
		}
		if len(r.Kvs) == 0 {
			continue
		}
		kv := r.Kvs[0]
		victim := holderOf(kv)
		info.Holder, info.Token = victim, uint64(kv.CreateRevision)
		if !force {
			ttl := ""
			if t, err := s.cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease)); err == nil && t.TTL > 0 {
				ttl = fmt.Sprintf(" (its lease would expire %d s after its client stopped renewing it)", t.GrantedTTL)
			}
			return info, fmt.Errorf("%w: %s; its client keeps its etcd lease alive%s (use --force to break it anyway)",
				core.ErrLive, (&core.LockedError{Path: path, Holder: victim}).Error(), ttl)
		}
		// The holder's history event is h/<nonce>, the nonce in its q/
		// value (older clients: its q/ key's name, the same nonce).
		nonce := strings.TrimPrefix(string(kv.Key), queuePrefix(base))
		ve, err := decodeEntry(kv.Value)
		if err != nil {
			ve = &entry{Holder: *victim}
		} else if ve.Nonce != "" {
			nonce = ve.Nonce
		}
		breaker := s.holderRecord("sharelock break", 0)
		now := s.wallNow().UTC()
		brokenEv := entry{Holder: *victim, LeaseMS: ve.LeaseMS, Kind: kindAcquire, State: stBroken,
			Reason: fmt.Sprintf("broken by %s: %s", breaker.Who(), reason), At: now, Path: path, Nonce: nonce}
		breakEv := entry{Holder: breaker, Kind: kindBreak, State: stReleased, Reason: reason,
			Broke: victim, BrokeToken: uint64(kv.CreateRevision), At: now, Path: path, Nonce: newNonce()}
		tr, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(string(kv.Key)), "=", kv.CreateRevision)).
			Then(clientv3.OpDelete(string(kv.Key)),
				clientv3.OpPut(historyPrefix(base)+nonce, brokenEv.encode()),
				clientv3.OpPut(historyPrefix(base)+breakEv.Nonce, breakEv.encode()),
				clientv3.OpPut(s.auditKey(breakEv.Nonce), breakEv.encode())).Commit()
		if err != nil {
			return info, s.wrap("break "+path, err)
		}
		if !tr.Succeeded {
			continue // it changed hands meanwhile: look again
		}
		return core.Info{Path: path, State: core.Free, Token: uint64(tr.Header.Revision), Holder: victim}, nil
	}
	return core.Info{Path: path}, fmt.Errorf("sharelock: %s kept changing while breaking; try again", path)
}

// Audit returns the break records of the whole store, oldest first.
func (s *Store) Audit(ctx context.Context) ([]core.Event, error) {
	r, err := s.cli.Get(ctx, s.prefix+"/audit/", clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		return nil, s.wrap("read the audit log", err)
	}
	var out []core.Event
	for _, kv := range r.Kvs {
		e, err := decodeEntry(kv.Value)
		if err != nil {
			continue
		}
		hh := e.Holder
		out = append(out, core.Event{Token: uint64(kv.CreateRevision), Kind: e.Kind, State: e.State,
			Holder: &hh, Reason: e.Reason, Broke: e.Broke, At: e.At})
	}
	return out, nil
}

func cleanText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// RequestRelease implements core.Store: it puts a request under the
// holder's token (on a lease of its own, so that it cannot outlive a
// minute) and watches for the holder's answer, for at most the request wait
// (default 5 s) or until ctx ends or the lock changes hands.
func (s *Store) RequestRelease(ctx context.Context, path, message string) (core.RequestResult, error) {
	res := core.RequestResult{Path: path}
	if len(message) > maxMessage {
		return res, fmt.Errorf("sharelock: request message for %s is %d bytes; the limit is %d", path, len(message), maxMessage)
	}
	base := s.lockBase(path)
	r, err := s.cli.Get(ctx, queuePrefix(base), clientv3.WithFirstCreate()...)
	if err != nil {
		return res, s.wrap("request release of "+path, err)
	}
	if len(r.Kvs) == 0 {
		return res, fmt.Errorf("%w: nobody holds %s, nothing to ask", core.ErrNotHeld, path)
	}
	kv := r.Kvs[0]
	res.Token, res.Holder = uint64(kv.CreateRevision), holderOf(kv)
	lease, err := s.cli.Grant(ctx, requestTTL)
	if err != nil {
		return res, s.wrap("request release of "+path, err)
	}
	rec := requestRec{From: s.holderRecord("", 0), Message: message, At: s.wallNow().UTC()}
	body, _ := json.Marshal(&rec)
	key := requestPrefix(base, res.Token) + newNonce()
	tr, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(string(kv.Key)), "=", kv.CreateRevision)).
		Then(clientv3.OpPut(key, string(body), clientv3.WithLease(lease.ID))).Commit()
	if err != nil {
		return res, s.wrap("request release of "+path, err)
	}
	if !tr.Succeeded {
		res.Delivery = core.HandedOn
		return res, nil
	}
	wctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), s.o.requestWait)
	defer cancel()
	// Watch the answer and the holder's key from our put on.
	wch := s.cli.Watch(wctx, base, clientv3.WithPrefix(), clientv3.WithRev(tr.Header.Revision+1))
	for {
		select {
		case <-wctx.Done():
			res.Delivery = core.Unconfirmed
			return res, nil
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				// One direct look, then give up.
				g, err := s.cli.Get(ctx, key+seenSuffix)
				if err == nil && len(g.Kvs) > 0 {
					var sr seenRec
					if json.Unmarshal(g.Kvs[0].Value, &sr) == nil {
						res.Delivery, res.SeenAt = sr.Delivery, sr.At
						return res, nil
					}
				}
				res.Delivery = core.Unconfirmed
				return res, nil
			}
			for _, ev := range wr.Events {
				switch string(ev.Kv.Key) {
				case key + seenSuffix:
					var sr seenRec
					if ev.Type == clientv3.EventTypePut && json.Unmarshal(ev.Kv.Value, &sr) == nil {
						res.Delivery, res.SeenAt = sr.Delivery, sr.At
						return res, nil
					}
				case string(kv.Key):
					if ev.Type == clientv3.EventTypeDelete {
						res.Delivery = core.HandedOn
						return res, nil
					}
				}
			}
		}
	}
}

// request answers one release request (run by the holder's watch loop) and
// hands it to the program.
func (h *hold) request(kv *mvccpb.KeyValue) {
	key := string(kv.Key)
	if h.answered[key] {
		return
	}
	h.answered[key] = true
	var r requestRec
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		return
	}
	d := core.NotListening
	if h.listening.Load() {
		d = core.Delivered
	}
	ans, _ := json.Marshal(&seenRec{Delivery: d, At: h.s.wallNow().UTC()})
	var opts []clientv3.OpOption
	if kv.Lease != 0 {
		opts = append(opts, clientv3.WithLease(clientv3.LeaseID(kv.Lease)))
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		_, _ = h.s.cli.Put(ctx, key+seenSuffix, string(ans), opts...)
	}()
	h.lastRequest = h.s.mono()
	from := r.From
	from.User, from.Host, from.App = cleanText(from.User), cleanText(from.Host), cleanText(from.App)
	msg := cleanText(r.Message)
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
	}
	h.notify(core.Notice{Kind: core.NoticeRequest, From: &from, Message: msg, At: r.At})
}
