package dashboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"sharelock"
	"sharelock/internal/folder"
)

// Lock is one lock in a Snapshot: the JSON object of /api/locks.
type Lock struct {
	// Name is the protected file's path relative to the folder, with
	// forward slashes ("data/wems.db"); its lock directory is Name+".lock".
	Name string `json:"name"`
	// State is "free", "held", "stale" or "error" (the last look failed;
	// Error says why; the other fields are the last known ones).
	State string `json:"state"`
	Token uint64 `json:"token"`
	// Holder is set for held and stale locks.
	Holder *HolderJSON `json:"holder,omitempty"`
	// LastSeen is when this dashboard last saw the holder's heartbeat
	// change (on its first look, estimated from the holder's own clock).
	LastSeen *time.Time `json:"last_seen,omitempty"`
	// StaleReason says why a stale lock is stale.
	StaleReason string   `json:"stale_reason,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
	Error       string   `json:"error,omitempty"`
	// Waiting lists who waits in line, first in line first (Since: when
	// each took its place, its own clock).
	Waiting []WaiterJSON `json:"waiting,omitempty"`
	// Checked is when the state was last read successfully.
	Checked time.Time `json:"checked"`
}

// HolderJSON is who holds a lock.
type HolderJSON struct {
	User         string    `json:"user"`
	Host         string    `json:"host"`
	PID          int       `json:"pid"`
	App          string    `json:"app"`
	Since        time.Time `json:"since"`
	LeaseSeconds float64   `json:"lease_seconds"`
}

// WaiterJSON is one process waiting in line for a lock.
type WaiterJSON struct {
	User  string    `json:"user"`
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	App   string    `json:"app"`
	Since time.Time `json:"since"`
}

// Snapshot is the state of every lock under the folder, as of one poll.
type Snapshot struct {
	Dir string `json:"dir"`
	// Version increases whenever anything but time has changed.
	Version uint64 `json:"version"`
	// ServerTime is when the snapshot was rendered (ages are relative to it).
	ServerTime time.Time `json:"server_time"`
	// UnreachableSince is set while the folder does not answer within the
	// timeout; Locks then holds the last known states.
	UnreachableSince *time.Time `json:"unreachable_since,omitempty"`
	UnreachableError string     `json:"unreachable_error,omitempty"`
	// Listed is when the folder was last listed successfully.
	Listed time.Time `json:"listed"`
	Locks  []Lock    `json:"locks"`
}

// WatcherOptions tunes a Watcher. Zero values take the defaults.
type WatcherOptions struct {
	Poll        time.Duration // how often every lock is inspected (default 1 s)
	Relist      time.Duration // how often the folder is listed again (default 5 s)
	Timeout     time.Duration // bound on each share access (default 5 s)
	Concurrency int           // inspections in flight at once (default 8)
	Depth       int           // folder levels searched for *.lock (default 3)
	// Store is passed to sharelock calls (default: the shared-folder store).
	Store sharelock.Store
}

func (o *WatcherOptions) defaults() {
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Relist <= 0 {
		o.Relist = 5 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Depth <= 0 {
		o.Depth = 3
	}
}

// Watcher keeps the state of every lock under one folder up to date: one
// goroutine lists the folder (every Relist) and inspects every lock (every
// Poll, with bounded concurrency), and any number of subscribers get the
// new Snapshot when something changes. Every share access is bounded by
// Timeout, so a stalled share makes the snapshot say "unreachable" instead
// of blocking anyone.
//
// Staleness is the dashboard's own observer verdict (docs/protocol.md,
// "Heartbeat, lease and staleness"): a held lock whose owner file's bytes
// this watcher has seen unchanged for the holder's whole lease, on its own
// monotonic clock, is shown stale; so is one whose holder is proven dead on
// this machine.
type Watcher struct {
	dir  string
	opts WatcherOptions
	io   *bounded

	mu       sync.Mutex
	snap     Snapshot
	subs     map[chan struct{}]struct{}
	obs      map[string]*observation // by lock name
	names    []string
	listedAt time.Time
	kick     chan struct{}
}

type observation struct {
	token   uint64
	content []byte
	since   time.Time // monotonic reading (time.Now) when content was first seen
	seen    time.Time // display: when the heartbeat was last seen changing
}

// NewWatcher returns a watcher of dir; call Run to start it.
func NewWatcher(dir string, opts WatcherOptions) *Watcher {
	opts.defaults()
	return &Watcher{dir: dir, opts: opts, io: newBounded(2 * opts.Concurrency),
		subs: map[chan struct{}]struct{}{}, obs: map[string]*observation{}, kick: make(chan struct{}, 1),
		snap: Snapshot{Dir: dir, Locks: []Lock{}}}
}

// Run polls until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	for {
		start := time.Now()
		w.Refresh(ctx)
		// A slow share stretches the interval rather than stacking polls.
		wait := max(w.opts.Poll-time.Since(start), w.opts.Poll/4)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-w.kick:
			t.Stop()
		}
	}
}

// Kick makes Run poll again now (after a change made through the
// dashboard) instead of at the next interval.
func (w *Watcher) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Snapshot returns the current snapshot (a copy; ServerTime is now).
func (w *Watcher) Snapshot() Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.snap
	s.Locks = slices.Clone(s.Locks)
	s.ServerTime = time.Now()
	return s
}

// Subscribe returns a channel that receives a value (coalesced) after each
// change of the snapshot, and a function that ends the subscription.
func (w *Watcher) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	w.subs[ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(w.subs, ch)
		w.mu.Unlock()
	}
}

// Lookup returns the last known state of the lock called name.
func (w *Watcher) Lookup(name string) (Lock, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.snap.Locks {
		if l.Name == name {
			return l, true
		}
	}
	return Lock{}, false
}

// Path returns the protected file's path for a lock name (name as in
// Lock.Name; it must not leave the folder).
func (w *Watcher) Path(name string) (string, error) {
	clean := filepath.Clean(filepath.FromSlash(name))
	if name == "" || !filepath.IsLocal(clean) {
		return "", fmt.Errorf("dashboard: bad lock name %q", name)
	}
	return filepath.Join(w.dir, clean), nil
}

// Refresh lists the folder if it is due, inspects every lock once and
// publishes the result. Run calls it every Poll; tests and benchmarks may
// call it directly.
func (w *Watcher) Refresh(ctx context.Context) {
	w.mu.Lock()
	names, due := w.names, w.listedAt.IsZero() || time.Since(w.listedAt) >= w.opts.Relist || w.snap.UnreachableSince != nil
	w.mu.Unlock()
	var listErr error
	if due {
		lctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
		var listed []string
		listed, listErr = w.list(lctx)
		cancel()
		if listErr == nil {
			names = listed
			w.mu.Lock()
			w.names, w.listedAt = listed, time.Now()
			w.mu.Unlock()
		}
	}
	if listErr != nil {
		// The share does not answer: keep the last known states rather
		// than waiting out a timeout for every lock.
		w.publish(nil, nil, listErr)
		return
	}
	// The first access that times out ends the round: the share stalled,
	// and a thousand more timeouts would only delay saying so.
	round, stall := context.WithCancel(ctx)
	defer stall()
	locks := make([]Lock, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, w.opts.Concurrency)
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var timedOut bool
			locks[i], timedOut = w.inspect(round, name)
			if timedOut {
				stall()
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	w.publish(locks, names, nil)
}

// publish folds one poll into the snapshot and notifies subscribers if
// anything changed.
func (w *Watcher) publish(locks []Lock, names []string, listErr error) {
	failed := 0
	var firstErr string
	for _, l := range locks {
		if l.State == "error" {
			failed++
			if firstErr == "" {
				firstErr = l.Error
			}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.snap
	next := Snapshot{Dir: w.dir, Version: old.Version, Listed: w.listedAt, Locks: locks}
	prev := map[string]Lock{}
	for _, l := range old.Locks {
		prev[l.Name] = l
	}
	for i, l := range next.Locks {
		if l.State == "error" {
			if p, ok := prev[l.Name]; ok && p.State != "error" {
				// Keep the last known state, marked with the error.
				p.Error = l.Error
				next.Locks[i] = p
			}
		}
	}
	unreachable := listErr != nil || (len(locks) > 0 && failed == len(locks))
	if unreachable {
		since := time.Now()
		if old.UnreachableSince != nil {
			since = *old.UnreachableSince
		}
		next.UnreachableSince = &since
		next.UnreachableError = firstErr
		if listErr != nil {
			next.UnreachableError = listErr.Error()
		}
		if listErr != nil {
			next.Locks = old.Locks
			for i := range next.Locks {
				if next.Locks[i].Error == "" {
					next.Locks[i].Error = "share unreachable: " + next.UnreachableError
				}
			}
		}
	}
	// Forget observations of locks that went away.
	if listErr == nil {
		live := make(map[string]bool, len(names))
		for _, n := range names {
			live[n] = true
		}
		for n := range w.obs {
			if !live[n] {
				delete(w.obs, n)
			}
		}
	}
	if changed(old, next) {
		next.Version++
		for ch := range w.subs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	w.snap = next
}

// changed reports whether b differs from a in anything but timestamps of
// successful checks.
func changed(a, b Snapshot) bool {
	if (a.UnreachableSince == nil) != (b.UnreachableSince == nil) || len(a.Locks) != len(b.Locks) {
		return true
	}
	for i := range a.Locks {
		x, y := a.Locks[i], b.Locks[i]
		if x.Name != y.Name || x.State != y.State || x.Token != y.Token || x.Error != y.Error ||
			x.StaleReason != y.StaleReason || !slices.Equal(x.Warnings, y.Warnings) ||
			(x.Holder == nil) != (y.Holder == nil) || (x.Holder != nil && *x.Holder != *y.Holder) ||
			(x.LastSeen == nil) != (y.LastSeen == nil) || (x.LastSeen != nil && !x.LastSeen.Equal(*y.LastSeen)) {
			return true
		}
	}
	return false
}

// inspect reads one lock's state, bounded by the timeout. timedOut reports
// that the share did not answer in time.
func (w *Watcher) inspect(ctx context.Context, name string) (out Lock, timedOut bool) {
	out = Lock{Name: name}
	path, err := w.Path(name)
	if err != nil {
		out.State, out.Error = "error", err.Error()
		return out, false
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	var opts []sharelock.Option
	if w.opts.Store != nil {
		opts = append(opts, sharelock.WithStore(w.opts.Store))
	}
	var info sharelock.Info
	err = w.io.do(ctx, func() error {
		var err error
		info, err = sharelock.Inspect(ctx, path, opts...)
		return err
	})
	if err != nil {
		out.State, out.Error = "error", fmt.Sprintf("inspecting %s: %v", name, err)
		return out, errors.Is(err, context.DeadlineExceeded)
	}
	now := time.Now()
	out.Checked = now
	out.State, out.Token, out.Warnings = string(info.State), info.Token, info.Warnings
	for _, wt := range info.Waiting {
		out.Waiting = append(out.Waiting, WaiterJSON{User: wt.User, Host: wt.Host, PID: wt.PID, App: wt.App, Since: wt.Since})
	}
	if info.State == sharelock.Free || info.Holder == nil {
		if info.State != sharelock.Free && info.Holder == nil {
			out.Holder = &HolderJSON{User: "(unknown)"}
		}
		w.forget(name)
		if info.State == sharelock.Free {
			return out, false
		}
	}
	h := info.Holder
	lease := sharelock.DefaultLease
	if h != nil {
		out.Holder = &HolderJSON{User: h.User, Host: h.Host, PID: h.PID, App: h.App, Since: h.Since}
		if h.Lease > 0 {
			lease = h.Lease
		}
		out.Holder.LeaseSeconds = lease.Seconds()
	}
	// Observe the owner file's bytes: unchanged for a whole lease → stale.
	var content []byte
	ownerPath := filepath.Join(folder.LockDir(path), fmt.Sprintf("%020d", info.Token), "owner")
	readErr := w.io.do(ctx, func() error {
		var err error
		content, err = readSmall(ownerPath)
		return err
	})
	if readErr != nil && !errors.Is(readErr, os.ErrNotExist) {
		out.State, out.Error = "error", fmt.Sprintf("reading %s: %v", ownerPath, readErr)
		return out, errors.Is(readErr, context.DeadlineExceeded)
	}
	w.mu.Lock()
	o := w.obs[name]
	if o == nil || o.token != info.Token || !bytes.Equal(o.content, content) {
		seen := now
		if o == nil && info.HeartbeatAge > 0 && info.HeartbeatAge < lease {
			seen = now.Add(-info.HeartbeatAge) // first look: the holder's clock, display only
		}
		o = &observation{token: info.Token, content: content, since: now, seen: seen}
		w.obs[name] = o
	}
	unchanged := now.Sub(o.since) // monotonic
	seen := o.seen
	w.mu.Unlock()
	out.LastSeen = &seen
	switch {
	case info.DeadProcess:
		out.State = string(sharelock.Stale)
		out.StaleReason = fmt.Sprintf("process %d is gone on this machine", h.PID)
	case info.State == sharelock.Stale:
		out.StaleReason = "holder judged dead"
	case unchanged >= lease:
		out.State = string(sharelock.Stale)
		out.StaleReason = "no heartbeat for a whole lease"
	}
	return out, false
}

func (w *Watcher) forget(name string) {
	w.mu.Lock()
	delete(w.obs, name)
	w.mu.Unlock()
}

// readSmall reads at most 64 KiB of a file without following a final
// symlink-free assumption (the owner file is tiny).
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64<<10))
}

// list finds every lock directory under the folder, up to Depth levels,
// without descending into lock directories (their generations) or hidden
// directories. Names are sorted.
func (w *Watcher) list(ctx context.Context) ([]string, error) {
	var names []string
	var walk func(rel string, depth int) error
	walk = func(rel string, depth int) error {
		var entries []os.DirEntry
		err := w.io.do(ctx, func() error {
			var err error
			entries, err = os.ReadDir(filepath.Join(w.dir, rel))
			return err
		})
		if err != nil {
			if rel != "" && (errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission)) {
				return nil // vanished or private subfolder: skip it
			}
			return fmt.Errorf("listing %s: %w", filepath.Join(w.dir, rel), err)
		}
		for _, e := range entries {
			n := e.Name()
			if !e.IsDir() || strings.HasPrefix(n, ".") {
				continue
			}
			r := filepath.Join(rel, n)
			if strings.HasSuffix(n, folder.LockSuffix) && len(n) > len(folder.LockSuffix) {
				names = append(names, filepath.ToSlash(strings.TrimSuffix(r, folder.LockSuffix)))
				continue
			}
			if depth > 1 {
				if err := walk(r, depth-1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk("", w.opts.Depth); err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// bounded runs file-system calls with a bound on how many may be in flight
// (hung on a stalled share) at once, and returns when ctx ends even if the
// call does not: a hung call keeps its slot until it returns, so a stalled
// share costs at most the bound in goroutines.
type bounded struct{ slots chan struct{} }

func newBounded(n int) *bounded { return &bounded{slots: make(chan struct{}, n)} }

func (b *bounded) do(ctx context.Context, fn func() error) error {
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("the share did not answer in time (%w)", ctx.Err())
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-b.slots }()
		done <- fn()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("the share did not answer in time (%w)", ctx.Err())
	}
}
