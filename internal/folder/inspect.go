package folder

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"time"

	"sharelock/internal/core"
)

// head finds the newest generation: the listing's maximum, then probing
// forward (a listing may come from a client cache).
func (s *Store) head(ctx context.Context, dir string) (*listing, uint64, error) {
	l, err := s.scan(ctx, dir, false)
	if err != nil {
		return nil, 0, err
	}
	g := l.max()
	for i := 0; i < 1000 && s.exists(ctx, filepath.Join(dir, genName(g+1))); i++ {
		g++
	}
	return l, g, nil
}

// Inspect implements core.Store.
func (s *Store) Inspect(ctx context.Context, path string, opt core.InspectOptions) (core.Info, error) {
	dir := LockDir(path)
	info := core.Info{Path: path, State: core.Free}
	l, g, err := s.head(ctx, dir)
	if err != nil {
		return info, err
	}
	info.Warnings = l.warnings
	v, err := s.look(ctx, dir, g)
	if err != nil {
		return info, err
	}
	if opt.History > 0 {
		info.History = s.history(ctx, dir, l, g, opt.History)
	}
	s.judge(ctx, dir, &v, &info, opt.Observe, DefaultLease)
	info.Waiting = s.waiting(ctx, dir)
	return info, nil
}

// judge fills info's state from generation v, watching its heartbeat for up
// to observe.
func (s *Store) judge(ctx context.Context, dir string, v *view, info *core.Info, observe, ourLease time.Duration) {
	info.Token = v.gen
	if v.gen == 0 {
		info.State = core.Free
		return
	}
	if v.own != nil && v.own.Rec.Kind != kindVoid {
		info.Holder = v.holder()
	}
	if v.free() {
		info.State = core.Free
		return
	}
	if v.raw != nil && v.own == nil {
		info.Warnings = append(info.Warnings, fmt.Sprintf("lock record %s is unreadable: %v",
			filepath.Join(dir, genName(v.gen), ownerName), v.bad))
	}
	info.State = core.Held
	if s.dead(v) {
		info.State, info.DeadProcess = core.Stale, true
		return
	}
	var w watch
	start := s.mono()
	w.update(v, start)
	lease := s.leaseOf(v, ourLease)
	if v.own != nil {
		if d := s.wallNow().Sub(v.own.At); d > 0 {
			info.HeartbeatAge = d // estimate from the holder's clock, display only
		}
	}
	if observe <= 0 {
		return
	}
	poll := 200 * time.Millisecond
	for s.mono()-start < observe {
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		nv, err := s.look(ctx, dir, v.gen)
		if err != nil {
			return
		}
		now := s.mono()
		unchanged := w.update(&nv, now)
		if unchanged < now-start || nv.free() {
			// It changed: alive (or released meanwhile).
			if nv.free() {
				info.State = core.Free
			}
			info.HeartbeatAge = unchanged
			return
		}
		info.HeartbeatAge = unchanged
		if unchanged >= lease {
			info.State = core.Stale
			return
		}
	}
}

// history reads the owner files of the newest n generations.
func (s *Store) history(ctx context.Context, dir string, l *listing, head uint64, n int) []core.Event {
	var gens []uint64
	for g := head; g > l.max(); g-- {
		gens = append(gens, g)
	}
	for i := len(l.gens) - 1; i >= 0 && len(gens) < n; i-- {
		gens = append(gens, l.gens[i])
	}
	if len(gens) > n {
		gens = gens[:n]
	}
	ev := make([]core.Event, 0, len(gens))
	for i := len(gens) - 1; i >= 0; i-- {
		v, err := s.look(ctx, dir, gens[i])
		if err != nil || v.own == nil {
			continue
		}
		ev = append(ev, eventOf(&v))
	}
	return ev
}

// Break implements core.Store. It ends the current claim by claiming the
// next generation with a break record. Without force it first makes sure the
// holder is dead: proven gone on this machine, or no heartbeat change seen
// for a whole lease (it watches for up to that long).
func (s *Store) Break(ctx context.Context, path, reason string, force bool) (core.Info, error) {
	dir := LockDir(path)
	if reason == "" {
		return core.Info{Path: path}, errors.New("sharelock: a reason is required to break a lock")
	}
	for attempt := 0; attempt < 5; attempt++ {
		l, g, err := s.head(ctx, dir)
		if err != nil {
			return core.Info{Path: path}, err
		}
		v, err := s.look(ctx, dir, g)
		if err != nil {
			return core.Info{Path: path}, err
		}
		info := core.Info{Path: path}
		observe := time.Duration(0)
		if !force {
			observe = s.leaseOf(&v, DefaultLease) + time.Second
		}
		s.judge(ctx, dir, &v, &info, observe, DefaultLease)
		if err := ctx.Err(); err != nil {
			return info, err
		}
		switch {
		case info.State == core.Free:
			return info, fmt.Errorf("%w: %s is free, nothing to break", core.ErrNotHeld, path)
		case info.State == core.Held && !force:
			return info, fmt.Errorf("%w: %s; its heartbeat is still changing (use --force to break it anyway)",
				core.ErrLive, (&core.LockedError{Path: path, Holder: info.Holder}).Error())
		}
		// Re-read: judging may have taken a lease; the holder may have
		// released meanwhile (then there is nothing to break).
		req := core.Request{Path: path, Lease: DefaultLease, Heartbeat: DefaultHeartbeat, Reason: reason, App: "sharelock break"}
		rec := s.newRecord(kindBreak, g+1, &req)
		rec.Broke, rec.BrokeToken = v.holder(), g
		ok, err := s.claimRecord(ctx, dir, rec, l.evidence)
		if err != nil {
			return info, err
		}
		if !ok {
			continue // someone else moved first: look again
		}
		s.audit(dir, rec, info.State)
		out := core.Info{Path: path, State: core.Free, Token: g + 1, Holder: rec.Broke}
		return out, nil
	}
	return core.Info{Path: path}, fmt.Errorf("sharelock: %s kept changing while breaking; try again", path)
}

// claimRecord claims generation rec.Token with a finished (released) record:
// used for breaks. It reports whether the claim succeeded.
func (s *Store) claimRecord(ctx context.Context, dir string, rec record, evidence time.Duration) (bool, error) {
	gdir := filepath.Join(dir, genName(rec.Token))
	ownerPath := filepath.Join(gdir, ownerName)
	err := s.call(ctx, func() error { return s.o.FS.Mkdir(gdir) }, func(late error) {
		if late == nil {
			s.writeVoid(ownerPath, rec)
		}
	})
	switch {
	case err == nil:
	case isExist(err), isPerm(err) && s.exists(ctx, gdir):
		return false, nil
	default:
		return false, pathErr("claim", gdir, err)
	}
	if s.mono()-evidence >= s.o.GCMinAge/2 {
		l, err := s.scan(ctx, dir, false)
		if err != nil || l.max() != rec.Token {
			s.writeVoid(ownerPath, rec)
			return false, err
		}
	}
	content := encodeOwner(nil, stReleased, 1, s.wallNow(), encodeRecord(&rec))
	if err := s.call(ctx, func() error { return s.o.FS.CreateExcl(ownerPath, content) }, nil); err != nil {
		return false, pathErr("write break record", ownerPath, err)
	}
	return true, nil
}

// audit appends one JSON line per break to the lock directory's audit.log
// (best effort: the break record itself is the authoritative trace).
func (s *Store) audit(dir string, rec record, judged core.State) {
	line, _ := json.Marshal(map[string]any{
		"at": rec.Since, "token": rec.Token, "by_user": rec.User, "by_host": rec.Host,
		"reason": rec.Reason, "broke": rec.Broke, "broke_token": rec.BrokeToken, "judged": judged,
	})
	_ = s.call(context.Background(), func() error {
		return s.o.FS.Append(filepath.Join(dir, auditName), append(line, '\n'))
	}, nil)
}

// gc deletes old generations, keeping at least Keep of them, and only those
// whose successor Keep places later is GCMinAge old on the file server's
// clock (compared with the mtime of our fresh owner file, so two clocks of
// different machines are never compared). It deletes only what the protocol
// creates (a generation directory holding at most an owner file) and stops
// at the first surprise.
func (s *Store) gc(dir string, latest uint64) {
	keep := uint64(s.o.Keep)
	if latest <= keep {
		return
	}
	// Listing the folder costs O(generations): do it only when something
	// may have become old enough since the last pass.
	s.mu.Lock()
	if s.mono() < s.gcAfter[dir] {
		s.mu.Unlock()
		return
	}
	s.gcAfter[dir] = s.mono() + s.o.GCMinAge // until this pass says otherwise
	s.mu.Unlock()
	next := s.collect(dir, latest, keep)
	s.mu.Lock()
	s.gcAfter[dir] = s.mono() + next
	s.mu.Unlock()
}

// collect runs one collection pass and returns how long to wait before the
// next one is worth its listing.
func (s *Store) collect(dir string, latest, keep uint64) time.Duration {
	fsys := s.o.FS
	retry := s.o.GCMinAge / 8
	names, err := fsys.ReadDirNames(dir)
	if err != nil {
		return retry
	}
	now, err := fsys.Lstat(filepath.Join(dir, genName(latest), ownerName))
	if err != nil {
		return retry
	}
	serverNow := now.ModTime()
	var gens []uint64
	for _, n := range names {
		if g, ok := parseGenName(n); ok && g+keep <= latest {
			gens = append(gens, g)
		}
	}
	slices.Sort(gens)
	next := retry
	var old []uint64
	for _, g := range gens {
		succ, err := fsys.Lstat(filepath.Join(dir, genName(g+keep)))
		if err != nil {
			break
		}
		if age := serverNow.Sub(succ.ModTime()); age < s.o.GCMinAge {
			// Everything from here on is younger: come back when this one
			// is old enough.
			next = max(s.o.GCMinAge-age, min(time.Second, s.o.GCMinAge))
			break
		}
		old = append(old, g)
	}
	if len(old) == 0 {
		return next
	}
	// Keep what the generations say in history.log before deleting them,
	// in one append. Two collectors may both log a generation: readers
	// drop duplicates by token. If the append fails, nothing is deleted.
	var lines []byte
	for _, g := range old {
		v, err := s.look(context.Background(), dir, g)
		if err != nil {
			return retry
		}
		if v.own == nil {
			continue // no record (an abandoned claim): nothing to keep
		}
		line, err := json.Marshal(eventOf(&v))
		if err != nil {
			return retry
		}
		lines = append(append(lines, line...), '\n')
	}
	if len(lines) > 0 {
		if err := s.call(context.Background(), func() error {
			return fsys.Append(filepath.Join(dir, historyName), lines)
		}, nil); err != nil {
			return retry
		}
	}
	for _, g := range old {
		if !removeGen(fsys, filepath.Join(dir, genName(g))) {
			return retry
		}
	}
	return next
}

// eventOf renders a generation with a record as a transition.
func eventOf(v *view) core.Event {
	r := &v.own.Rec
	return core.Event{Token: r.Token, Kind: r.Kind, State: v.own.State,
		Holder: r.holder(), Reason: r.Reason, Broke: r.Broke, At: v.own.At}
}

// History implements core.Store: the transitions kept in history.log (of
// generations GC deleted) and those of the generations still there, oldest
// first, one per token. A damaged history.log line is skipped.
func (s *Store) History(ctx context.Context, path string) ([]core.Event, error) {
	dir := LockDir(path)
	l, g, err := s.head(ctx, dir)
	if err != nil {
		return nil, err
	}
	byTok := map[uint64]core.Event{}
	raw, err := callv(s, ctx, func() ([]byte, error) { return s.o.FS.ReadFile(filepath.Join(dir, historyName)) }, nil)
	if err != nil && !isNotExist(err) {
		return nil, fmt.Errorf("sharelock: reading %s: %w", filepath.Join(dir, historyName), err)
	}
	for _, line := range bytes.Split(raw, []byte("\n")) {
		var e core.Event
		if len(line) == 0 || json.Unmarshal(line, &e) != nil || e.Token == 0 {
			continue
		}
		byTok[e.Token] = e
	}
	for _, e := range s.history(ctx, dir, l, g, len(l.gens)+int(g-l.max())) {
		byTok[e.Token] = e
	}
	out := make([]core.Event, 0, len(byTok))
	for _, e := range byTok {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b core.Event) int { return cmp.Compare(a.Token, b.Token) })
	return out, nil
}

// removeGen removes one generation directory (or wait-queue ticket) if it
// holds nothing but files sharelock creates there: the owner file, release
// requests and their answers. It reports false (and removes nothing further) on anything
// unexpected.
func removeGen(fsys FS, gdir string) bool {
	fi, err := fsys.Lstat(gdir)
	if isNotExist(err) {
		return true
	}
	if err != nil || !fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0 {
		return false
	}
	names, err := fsys.ReadDirNames(gdir)
	if err != nil {
		return isNotExist(err)
	}
	for _, n := range names {
		if n != ownerName && !isRequestFile(n) {
			return false // foreign content: never delete what we did not create
		}
	}
	// Release requests and their answers first, the owner file last.
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Compare(boolInt(a == ownerName), boolInt(b == ownerName))
	})
	for _, n := range names {
		ofi, err := fsys.Lstat(filepath.Join(gdir, n))
		if err != nil || !ofi.Mode().IsRegular() {
			if isNotExist(err) {
				continue
			}
			return false
		}
		if err := fsys.Remove(filepath.Join(gdir, n)); err != nil && !isNotExist(err) {
			return false // e.g. EBUSY on SMB while someone reads it: later
		}
	}
	if err := fsys.Rmdir(gdir); err != nil && !isNotExist(err) {
		return false
	}
	return true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
