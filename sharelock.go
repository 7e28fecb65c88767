// Package sharelock gives one program at a time exclusive use of a file that
// several machines reach through a shared folder (SMB, NFS, SFTP, local
// disk), tells everyone else who has it, and recovers by itself when a
// holder crashes or its machine drops off the network.
//
// The lock for data/wems.db lives beside it in data/wems.db.lock/ and needs
// nothing but the folder: no server. See docs/protocol.md for the on-disk
// format.
//
//	lock, err := sharelock.Acquire(ctx, "data/wems.db", sharelock.WithApp("wems"))
//	if errors.Is(err, sharelock.ErrLocked) {
//		fmt.Println(err) // data/wems.db is in use by alice on FRONTDESK-PC (wems) since 09:12, last seen 3 s ago
//		return
//	}
//	defer lock.Release()
//	// ... use the database; pass lock.Token() to it as a fencing token;
//	// stop writing when <-lock.Lost() fires.
//
// Waiting follows ctx: Acquire waits until the lock is free or ctx ends;
// TryAcquire does not wait.
package sharelock

import (
	"context"
	"sync"
	"time"

	"sharelock/internal/core"
	"sharelock/internal/folder"
)

// Types shared with the stores.
type (
	// State is free, held or stale.
	State = core.State
	// Holder tells who holds (or held) a lock.
	Holder = core.Holder
	// Info is what Inspect reports.
	Info = core.Info
	// Event is one transition in a lock's history.
	Event = core.Event
	// LockedError: the lock is held by someone else. Error() reads like
	// "data/wems.db is in use by alice on FRONTDESK-PC (wems.exe) since 09:12, last seen 3 s ago".
	LockedError = core.LockedError
	// LostError: a held lock was lost.
	LostError = core.LostError
	// PathError: a problem with a path, with a fix for the user.
	PathError = core.PathError
	// Store is where locks live (the shared folder by default).
	Store = core.Store
	// Clock supplies time (monotonic for leases, wall for display).
	Clock = core.Clock
	// Notice is a release request or an idle warning for a holder.
	Notice = core.Notice
	// NoticeKind tells what a Notice is about.
	NoticeKind = core.NoticeKind
	// RequestResult reports what became of a release request.
	RequestResult = core.RequestResult
	// Delivery is the outcome of a release request.
	Delivery = core.Delivery
)

// Notice kinds.
const (
	NoticeRequest = core.NoticeRequest
	NoticeIdle    = core.NoticeIdle
)

// Outcomes of a release request.
const (
	Delivered    = core.Delivered
	NotListening = core.NotListening
	Unconfirmed  = core.Unconfirmed
	HandedOn     = core.HandedOn
)

// States.
const (
	Free  = core.Free
	Held  = core.Held
	Stale = core.Stale
)

// Errors, for errors.Is.
var (
	ErrLocked     = core.ErrLocked
	ErrLost       = core.ErrLost
	ErrNotHeld    = core.ErrNotHeld
	ErrLive       = core.ErrLive
	ErrBadLockDir = core.ErrBadLockDir
)

// Defaults.
const (
	DefaultLease     = folder.DefaultLease
	DefaultHeartbeat = folder.DefaultHeartbeat
)

type config struct {
	store     Store
	app       string
	lease     time.Duration
	heartbeat time.Duration
	observe   time.Duration
	history   int
	idleLimit time.Duration
	idleGrace time.Duration
}

// Option configures a call.
type Option func(*config)

// WithStore selects the store (default: the shared-folder store).
func WithStore(s Store) Option { return func(c *config) { c.store = s } }

// WithApp names the application shown to others ("in use by alice on PC-1 (wems)").
// Default: the executable's name.
func WithApp(name string) Option { return func(c *config) { c.app = name } }

// WithLease sets the lease: how long observers wait, seeing no heartbeat,
// before they take the lock over. Default 40 s (see docs/protocol.md).
func WithLease(d time.Duration) Option { return func(c *config) { c.lease = d } }

// WithHeartbeat sets how often the holder renews its heartbeat (default 5 s;
// at most a third of the lease).
func WithHeartbeat(d time.Duration) Option { return func(c *config) { c.heartbeat = d } }

// WithObserve makes Inspect watch the holder's heartbeat for up to d, so that
// a silent remote holder can be reported Stale.
func WithObserve(d time.Duration) Option { return func(c *config) { c.observe = d } }

// WithHistory makes Inspect return the last n transitions.
func WithHistory(n int) Option { return func(c *config) { c.history = n } }

// WithIdleRelease opts in to idle release for Acquire and TryAcquire: once
// the program has not called Lock.Touch for limit while someone waits for
// the lock (in line, or by RequestRelease), it gets a NoticeIdle on
// Lock.Notices; if it still does not call Touch within grace (default
// 1 min), the lock is released for it and Lock.Lost fires with a *LostError
// whose Idle is set. The program must then stop writing, as for any loss.
// Checks run at each heartbeat, so each time may be late by one heartbeat.
func WithIdleRelease(limit, grace time.Duration) Option {
	return func(c *config) { c.idleLimit, c.idleGrace = limit, grace }
}

// defaultStore is made on first use, not at package init: folder.New
// collects this process's identity (user, host, machine and boot IDs, start
// time: a dozen file reads), which every program linking sharelock would
// otherwise pay at start, whether it takes a lock or not.
var defaultStore = sync.OnceValue(func() Store { return folder.New(folder.Options{}) })

// DefaultStore returns the shared-folder store used when no WithStore is given.
func DefaultStore() Store { return defaultStore() }

func build(opts []Option) config {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.store == nil {
		c.store = defaultStore()
	}
	return c
}

// Lock is a held lock. Its methods are safe for concurrent use.
type Lock struct {
	path string
	l    core.Lease
}

// Acquire takes the lock for path, waiting until it is free or ctx ends. If
// ctx ends after a holder was seen, the error wraps a *LockedError
// (errors.Is(err, ErrLocked)) naming the holder, and ctx's error. A holder that is proven dead on this machine is taken
// over at once; one whose heartbeat has not changed for a whole lease is
// taken over too.
func Acquire(ctx context.Context, path string, opts ...Option) (*Lock, error) {
	return acquire(ctx, path, true, opts)
}

// TryAcquire takes the lock for path if it is free (or its holder is proven
// dead); otherwise it returns a *LockedError without waiting for the holder.
// One look cannot prove a remote holder dead, so if the holder looks dead
// (unreadable record, or its last heartbeat long ago by the clocks) TryAcquire
// watches it for up to one lease and takes it over if it stays silent; ctx
// bounds that watch.
func TryAcquire(ctx context.Context, path string, opts ...Option) (*Lock, error) {
	return acquire(ctx, path, false, opts)
}

func acquire(ctx context.Context, path string, wait bool, opts []Option) (*Lock, error) {
	c := build(opts)
	l, err := c.store.Acquire(ctx, core.Request{Path: path, App: c.app, Lease: c.lease, Heartbeat: c.heartbeat, Wait: wait,
		IdleLimit: c.idleLimit, IdleGrace: c.idleGrace})
	if err != nil {
		return nil, err
	}
	return &Lock{path: path, l: l}, nil
}

// Path returns the protected path.
func (l *Lock) Path() string { return l.path }

// Token returns the fencing token: strictly increasing over the life of the
// lock, so a resource can reject writes carrying a token lower than one it
// has already seen.
func (l *Lock) Token() uint64 { return l.l.Token() }

// Holder returns this hold's own record.
func (l *Lock) Holder() *Holder { return l.l.Holder() }

// Lost returns a channel closed when the lock is lost: someone took it over
// or broke it, or the heartbeat could not be written for three quarters of
// the lease (it fires on time even while a filesystem call hangs).
func (l *Lock) Lost() <-chan struct{} { return l.l.Lost() }

// Err returns why the lock was lost (a *LostError), or nil.
func (l *Lock) Err() error { return l.l.Err() }

// Check returns nil if the lock is still safe to act on right now. Call it
// before each critical write: after a pause (SIGSTOP, laptop sleep) it fails
// at once, before the heartbeat loop has had a chance to run.
func (l *Lock) Check() error { return l.l.Check() }

// Release releases the lock. It is idempotent. It returns the *LostError if
// the lock had been lost meanwhile.
func (l *Lock) Release() error { return l.l.Release() }

// Notices returns the channel on which the lock delivers release requests
// (NoticeRequest: someone ran "sharelock request" or called RequestRelease)
// and idle warnings (NoticeIdle, see WithIdleRelease). Until Notices is
// first called, requests are answered "not listening" to their senders.
// The channel is buffered; notices that find it full are dropped. It is
// never closed: select on Lost as well.
func (l *Lock) Notices() <-chan Notice { return l.l.Notices() }

// Touch tells the lock the program is active, resetting the idle timer of
// WithIdleRelease (and cancelling a pending idle release). Cheap: call it on
// every user action.
func (l *Lock) Touch() { l.l.Touch() }

// RequestRelease asks the current holder of path to release it, passing
// message along, and waits for the holder's answer: at most two of its
// heartbeats plus 2 s (10 s plus 2 s by default), or until ctx ends. The
// result's Delivery tells whether the holder's program got it (Delivered),
// its library saw it but the program does not take requests
// (NotListening), the lock changed hands meanwhile (HandedOn), or no answer
// came (Unconfirmed). It fails with ErrNotHeld if nobody holds the lock.
func RequestRelease(ctx context.Context, path, message string, opts ...Option) (RequestResult, error) {
	c := build(opts)
	return c.store.RequestRelease(ctx, path, message)
}

// Inspect reports the state of the lock for path without taking it.
func Inspect(ctx context.Context, path string, opts ...Option) (Info, error) {
	c := build(opts)
	return c.store.Inspect(ctx, path, core.InspectOptions{Observe: c.observe, History: c.history})
}

// History returns every known transition of the lock for path, oldest
// first: who acquired it (Holder.Since), how each claim ended (State, and At:
// the claimant's last status write, its release time when released),
// crashes taken over (Kind "takeover") and forced releases (Kind "break").
// The folder store keeps the newest generations and, for the ones it has
// garbage-collected, a line each in the lock folder's history.log.
func History(ctx context.Context, path string, opts ...Option) ([]Event, error) {
	c := build(opts)
	return c.store.History(ctx, path)
}

// Break ends the current hold of path, recording reason and who broke whose
// lock. Without force it breaks only a stale lock: it watches the holder's
// heartbeat for up to a lease and returns an error wrapping ErrLive if it
// changes. It returns an error wrapping ErrNotHeld if the lock is free.
func Break(ctx context.Context, path, reason string, force bool, opts ...Option) (Info, error) {
	c := build(opts)
	return c.store.Break(ctx, path, reason, force)
}
