// Package folder implements the shared-folder lock store: the on-disk
// protocol of docs/protocol.md (version 1), which needs nothing but a folder
// that several machines can reach (local disk, SMB, NFS, SFTP).
//
// A lock for P lives in the directory P.lock. Each transition (acquire,
// takeover, break) claims the next generation by creating the directory
// P.lock/<20-digit number> with mkdir, the one primitive measured atomic on
// every share we support. The generation number is the fencing token. The
// claimant writes an owner file into its generation and rewrites it at every
// heartbeat and at release; observers judge staleness by seeing no change of
// that content for a whole lease on their own monotonic clock.
package folder

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"sharelock/internal/clock"
	"sharelock/internal/core"
	"sharelock/internal/ident"
	"sharelock/internal/proc"
)

// Defaults, with reasons (see docs/protocol.md).
const (
	// DefaultLease: an observer declares a holder stale after seeing no
	// heartbeat change for this long. It must exceed the worst cache delay
	// of a share (21 s measured with sshfs default caching) plus a
	// heartbeat interval, with margin.
	DefaultLease = 40 * time.Second
	// DefaultHeartbeat: the holder rewrites its owner file this often.
	DefaultHeartbeat = 5 * time.Second
	// DefaultKeep: generations kept as history (at least).
	DefaultKeep = 64
	// DefaultGCMinAge: a generation is deleted only when the generation Keep
	// places after it is at least this old (on the file server's clock).
	// Claims that took longer than half of this since their evidence are
	// verified by a fresh listing (see claim).
	DefaultGCMinAge = 15 * time.Minute
	// MaxCacheStaleness is the longest a directory listing may be served from
	// a client cache (sshfs default: 20 s). Evidence from a listing is dated
	// this much before the listing was requested.
	MaxCacheStaleness = 60 * time.Second
	// DefaultClaimWindow: see Options.ClaimWindow. It exceeds any sane
	// mkdir-to-write delay on a share (milliseconds measured) by far.
	DefaultClaimWindow = 10 * time.Second
	// DefaultOpTimeout bounds every single filesystem call on the caller's
	// path: a stalled share yields an error instead of a hang.
	DefaultOpTimeout = 30 * time.Second

	gcEvery   = 16 // run GC after claiming every 16th generation
	ownerName = "owner"
	auditName = "audit.log"
	// historyName: one JSON line (a core.Event) per generation, appended by
	// GC just before it deletes the generation, so the holders of a lock
	// can be counted long after their generations are gone.
	historyName = "history.log"
	// LockSuffix is appended to the protected path to name its lock directory.
	LockSuffix = ".lock"
)

// Options configures a Store. Zero fields take defaults.
type Options struct {
	FS        FS
	Clock     core.Clock
	Self      *ident.Identity // who we are; default ident.Self()
	OpTimeout time.Duration
	Keep      int
	GCMinAge  time.Duration
	// PollMin/PollMax bound the waiting poll interval (jittered, growing).
	// PollMaxLocal applies when the holder runs on this machine (liveness
	// checks are cheap there, and a crashed holder is taken over at once).
	PollMin, PollMax, PollMaxLocal time.Duration
	// ClaimWindow is how long a generation without a readable owner file
	// (a claim being written, or damage) is given before observers may
	// judge it stale, whatever their own lease; a claimant whose owner
	// write completes later than half of it gives its claim up. A
	// protocol constant: every client of a lock must use the same value.
	ClaimWindow time.Duration
	// Liveness decides whether a process recorded by a holder on this
	// machine is alive; default proc.Check.
	Liveness func(pid int, startTime uint64) proc.Liveness
	// HintDir is the local folder where processes of this machine leave
	// each other the last generation they released of a lock on a share,
	// which saves the next one a round trip (machinehint.go); default the
	// user's cache folder (sharelock/hints). Used only with the system
	// clock, on Linux. NoMachineHints turns them off.
	HintDir        string
	NoMachineHints bool
}

// Store is the shared-folder store. It is safe for concurrent use.
type Store struct {
	o    Options
	self ident.Identity

	mu      sync.Mutex
	hints   map[string]hint
	gcAfter map[string]time.Duration // per lock dir: no collection before this mono time

	// mounts caches mountOf per directory (guarded by mu); shareKey is
	// shareKey but for tests.
	mounts   map[string]mount
	shareKey func(dir string) (string, bool)
	// hintDir: where machine hints are kept (machinehint.go); "" when off.
	hintDir string
}

// mount is what mountOf learned of a directory.
type mount struct {
	key   string // identifies the mount (shareKey); "" if not a share
	share bool   // on a network or FUSE filesystem
}

// mountOf reports whether dir lies on a network or FUSE filesystem, and
// the key of its mount (shareKey): read from the mount table once per
// directory, no round trip to a server. It decides whether waiters use
// wake-ups (local filesystems) and where machine hints apply (shares).
func (s *Store) mountOf(dir string) (key string, share bool) {
	s.mu.Lock()
	m, ok := s.mounts[dir]
	s.mu.Unlock()
	if !ok {
		m.key, m.share = s.shareKey(dir)
		s.mu.Lock()
		s.mounts[dir] = m
		s.mu.Unlock()
	}
	return m.key, m.share
}

// hint remembers, per lock directory, the last generation this process
// claimed and when it last had evidence that nothing newer existed.
type hint struct {
	gen      uint64
	evidence time.Duration // mono time at which gen was the newest generation
	released bool          // we released gen ourselves: it is known free
}

// New returns a Store.
func New(o Options) *Store {
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	_, systemClock := o.Clock.(clock.System)
	if o.OpTimeout <= 0 {
		o.OpTimeout = DefaultOpTimeout
	}
	if o.Keep <= 0 {
		o.Keep = DefaultKeep
	}
	if o.GCMinAge <= 0 {
		o.GCMinAge = DefaultGCMinAge
	}
	if o.PollMin <= 0 {
		o.PollMin = time.Millisecond
	}
	if o.PollMax <= 0 {
		o.PollMax = 250 * time.Millisecond
	}
	if o.PollMaxLocal <= 0 {
		o.PollMaxLocal = 20 * time.Millisecond
	}
	if o.ClaimWindow <= 0 {
		o.ClaimWindow = DefaultClaimWindow
	}
	if o.Liveness == nil {
		o.Liveness = proc.Check
	}
	s := &Store{o: o, hints: map[string]hint{}, gcAfter: map[string]time.Duration{}, shareKey: shareKey, mounts: map[string]mount{}}
	if machineHintsSupported && systemClock && machineClock() && !o.NoMachineHints && s.wakeable() {
		// Only with the system clock reading the machine-wide clock,
		// and the OS's own filesystem calls (whose paths are this
		// kernel's).
		s.hintDir = o.HintDir
		if s.hintDir == "" {
			s.hintDir = defaultHintDir()
		}
	}
	if o.Self != nil {
		s.self = *o.Self
	} else {
		s.self = ident.Self()
	}
	return s
}

// LockDir returns the lock directory for path.
func LockDir(path string) string { return filepath.Clean(path) + LockSuffix }

func (s *Store) mono() time.Duration { return s.o.Clock.Mono() }

// call runs fn, giving up after the operation timeout or when ctx ends. fn
// keeps running in the background if it hangs (a kernel call on a stalled
// share cannot be interrupted); late, if not nil, receives its eventual
// result in that case.
func (s *Store) call(ctx context.Context, fn func() error, late func(error)) error {
	_, err := callv(s, ctx, func() (struct{}, error) { return struct{}{}, fn() }, late)
	return err
}

// callv is call for a function with a result. The result travels through
// the channel, so a call abandoned after a timeout never writes into the
// caller's variables.
func callv[T any](s *Store, ctx context.Context, fn func() (T, error), late func(error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		done <- result{v, err}
	}()
	t := time.NewTimer(s.o.OpTimeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
	case <-t.C:
	}
	if late != nil {
		go func() { late((<-done).err) }()
	}
	var zero T
	if ctx.Err() != nil {
		return zero, ctx.Err()
	}
	return zero, errStalled
}

// lstat is FS.Lstat under call.
func (s *Store) lstat(ctx context.Context, name string) (fs.FileInfo, error) {
	return callv(s, ctx, func() (fs.FileInfo, error) { return s.o.FS.Lstat(name) }, nil)
}

// readOwner reads the owner file of generation g. raw is nil if the file does
// not exist (a claim not yet written).
func (s *Store) readOwner(ctx context.Context, dir string, g uint64) (raw []byte, err error) {
	name := filepath.Join(dir, genName(g), ownerName)
	for try := 0; ; try++ {
		raw, err = callv(s, ctx, func() ([]byte, error) { return s.o.FS.ReadFile(name) }, nil)
		if isStale(err) && try < 2 {
			continue
		}
		break
	}
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) || errors.Is(err, errTooBig) || errors.Is(err, errNotRegular) || errors.Is(err, syscall.ELOOP) {
			// Something planted where a generation directory or owner
			// file should be: content we cannot use; treat as corrupt.
			return []byte("unreadable: " + err.Error()), nil
		}
		return nil, pathErr("read", name, err)
	}
	if raw == nil {
		raw = []byte{}
	}
	return raw, nil
}

// listing is a scan of a lock directory.
type listing struct {
	gens     []uint64 // ascending
	warnings []string
	queue    bool          // the wait queue q/ exists
	evidence time.Duration // mono time at which no newer generation than max existed
}

func (l *listing) max() uint64 {
	if len(l.gens) == 0 {
		return 0
	}
	return l.gens[len(l.gens)-1]
}

// scan lists the lock directory, creating it if needed (create=true).
func (s *Store) scan(ctx context.Context, dir string, create bool) (*listing, error) {
	t0 := s.mono()
	names, err := callv(s, ctx, func() ([]string, error) { return s.o.FS.ReadDirNames(dir) }, nil)
	if err != nil {
		if isNotExist(err) && create {
			if err := s.ensureDir(ctx, dir); err != nil {
				return nil, err
			}
			return s.scan(ctx, dir, false)
		}
		if isNotExist(err) {
			// Never locked, or the folder itself is missing?
			parent := filepath.Dir(dir)
			if _, perr := s.lstat(ctx, parent); perr != nil {
				return nil, &core.PathError{Op: "inspect", Path: parent, Err: perr,
					Fix: "check that the folder " + parent + " exists and is reachable"}
			}
			return &listing{evidence: t0 - MaxCacheStaleness}, nil
		}
		return nil, s.explainDir(ctx, dir, err)
	}
	l := &listing{evidence: t0 - MaxCacheStaleness}
	for _, n := range names {
		if g, ok := parseGenName(n); ok {
			l.gens = append(l.gens, g)
			continue
		}
		if n == queueName {
			l.queue = true
			continue
		}
		if n == auditName || n == historyName {
			continue
		}
		l.warnings = append(l.warnings, fmt.Sprintf("foreign entry %q in %s: sharelock ignores it and never deletes it", n, dir))
	}
	slices.Sort(l.gens)
	return l, nil
}

// ensureDir creates the lock directory, explaining every way that can fail.
func (s *Store) ensureDir(ctx context.Context, dir string) error {
	err := s.call(ctx, func() error { return s.o.FS.Mkdir(dir) }, nil)
	if err == nil || isExist(err) {
		return s.checkDir(ctx, dir)
	}
	if isPerm(err) {
		if s.checkDir(ctx, dir) == nil {
			return nil // lost a creation race (SFTP reports EPERM)
		}
	}
	if isNotExist(err) {
		parent := filepath.Dir(dir)
		return &core.PathError{Op: "create lock folder", Path: dir, Err: err,
			Fix: "the folder " + parent + " does not exist or is unreachable; create it or fix the path"}
	}
	return pathErr("create lock folder", dir, err)
}

// checkDir verifies that dir is a real directory (not a file, not a symlink).
func (s *Store) checkDir(ctx context.Context, dir string) error {
	var fi fs.FileInfo
	var err error
	for try := 0; ; try++ {
		fi, err = s.lstat(ctx, dir)
		if isNotExist(err) && try < 20 {
			// mkdir said it exists but we cannot see it yet (another
			// client just created it; our view lags): wait a little.
			if !sleepCtx(ctx, 50*time.Millisecond) {
				return ctx.Err()
			}
			continue
		}
		break
	}
	if err != nil {
		return pathErr("inspect lock folder", dir, err)
	}
	return dirKindErr(dir, fi)
}

func dirKindErr(dir string, fi fs.FileInfo) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return &core.PathError{Op: "use lock folder", Path: dir, Err: core.ErrBadLockDir,
			Fix: "it is a symbolic link; sharelock never follows links for its lock folder: remove the link (sharelock will create a real folder)"}
	case !fi.IsDir():
		return &core.PathError{Op: "use lock folder", Path: dir, Err: core.ErrBadLockDir,
			Fix: "it is a file, not a sharelock lock folder; move it away (sharelock deletes nothing it did not create)"}
	}
	return nil
}

// explainDir turns a listing error into a PathError.
func (s *Store) explainDir(ctx context.Context, dir string, err error) error {
	if fi, lerr := s.lstat(ctx, dir); lerr == nil {
		if kerr := dirKindErr(dir, fi); kerr != nil {
			return kerr
		}
	}
	return pathErr("list lock folder", dir, err)
}

// view is what an observer knows about one generation.
type view struct {
	gen uint64
	raw []byte // owner file content; nil: absent
	own *owner // parsed; nil if absent or unparseable
	bad error  // why raw did not parse
}

func (s *Store) look(ctx context.Context, dir string, g uint64) (view, error) {
	v := view{gen: g}
	if g == 0 {
		return v, nil
	}
	raw, err := s.readOwner(ctx, dir, g)
	if err != nil {
		return v, err
	}
	v.raw = raw
	if raw != nil {
		v.own, v.bad = parseOwner(raw)
	}
	return v, nil
}

// free reports whether generation v holds nothing: none yet, released, lost,
// a break record or a void claim.
func (v *view) free() bool {
	return v.gen == 0 || (v.own != nil && v.own.State != stHeld)
}

func (v *view) holder() *core.Holder {
	if v.own == nil {
		return nil
	}
	h := v.own.Rec.holder()
	return h
}

// dead reports whether v's holder runs on this machine, in our PID space, and
// is proven gone.
func (s *Store) dead(v *view) bool {
	if v.own == nil {
		return false
	}
	r := &v.own.Rec
	other := ident.Identity{MachineID: r.MachineID, BootID: r.BootID, PIDNS: r.PIDNS}
	if !s.self.SameProcessSpace(other) {
		return false
	}
	if r.PID == s.self.PID && r.StartTime == s.self.StartTime {
		return false // ourselves
	}
	return s.o.Liveness(r.PID, r.StartTime) == proc.Dead
}

func (s *Store) local(v *view) bool {
	if v.own == nil {
		return false
	}
	r := &v.own.Rec
	return s.self.SameProcessSpace(ident.Identity{MachineID: r.MachineID, BootID: r.BootID, PIDNS: r.PIDNS})
}

// watch tracks one generation's owner content over time, on our monotonic
// clock: the basis of every staleness judgement.
type watch struct {
	gen     uint64
	raw     []byte
	present bool // the owner file existed
	seen    bool
	first   time.Duration // mono time of the first observation of this generation
	changed time.Duration // mono time the content was first seen as it is now
}

// update records an observation and returns how long the content has been
// unchanged.
func (w *watch) update(v *view, now time.Duration) time.Duration {
	present := v.raw != nil
	if !w.seen || w.gen != v.gen {
		w.first = now
	}
	if !w.seen || w.gen != v.gen || w.present != present || string(w.raw) != string(v.raw) {
		w.gen, w.seen, w.present, w.changed = v.gen, true, present, now
		w.raw = append(w.raw[:0], v.raw...)
	}
	return now - w.changed
}

// suspicious reports whether a held generation looks dead at first sight:
// no readable record, or a last write older than its lease by our clock
// (clocks may disagree: this only decides whether to watch it).
func (s *Store) suspicious(v *view, ours time.Duration) bool {
	if v.own == nil {
		return true
	}
	return s.wallNow().Sub(v.own.At) > s.leaseOf(v, ours)
}

// leaseOf returns the lease to judge v by: the lease its claimant declared;
// for a generation without a readable record, ours but at least the claim
// window (its claimant may be slow to write, with a longer lease).
func (s *Store) leaseOf(v *view, ours time.Duration) time.Duration {
	if v.own != nil && v.own.Rec.LeaseMS > 0 {
		return time.Duration(v.own.Rec.LeaseMS) * time.Millisecond
	}
	return max(ours, s.o.ClaimWindow)
}

func newNonce() string {
	var b [12]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sleepCtx sleeps for d or until ctx ends; it reports whether it slept.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d)
}

// wallNow returns our wall clock.
func (s *Store) wallNow() time.Time { return s.o.Clock.Wall() }

// newRecord fills the identity part of a record.
func (s *Store) newRecord(kind string, token uint64, req *core.Request) record {
	app := req.App
	if app == "" {
		app = filepath.Base(os.Args[0])
	}
	return record{
		Token: token, Kind: kind,
		User: s.self.User, Host: s.self.Host, App: app, PID: s.self.PID,
		MachineID: s.self.MachineID, BootID: s.self.BootID, PIDNS: s.self.PIDNS, StartTime: s.self.StartTime,
		Since:   s.wallNow().UTC().Format(time.RFC3339Nano),
		LeaseMS: req.Lease.Milliseconds(), BeatMS: req.Heartbeat.Milliseconds(),
		Nonce:  newNonce(),
		Reason: req.Reason,
	}
}
