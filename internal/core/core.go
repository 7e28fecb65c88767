// Package core holds the types shared by the public sharelock API and the
// stores behind it (the shared-folder store today, etcd later): the holder
// record, the inspection result, the typed errors and the Store interface.
//
// The public package re-exports these with type aliases, so callers never
// import core directly.
package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// State is the state of a lock as seen by an observer.
type State string

const (
	// Free: nobody holds the lock.
	Free State = "free"
	// Held: a holder claimed it and its heartbeat is alive (or too young to judge).
	Held State = "held"
	// Stale: a holder claimed it but has shown no sign of life for a whole lease,
	// or is proven dead on this machine. The next acquirer may take it over.
	Stale State = "stale"
)

// Holder describes who claimed a lock. Wall-clock fields are for display only:
// sharelock never compares clocks of different machines to judge staleness.
type Holder struct {
	User  string    `json:"user"`
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	App   string    `json:"app"`
	Since time.Time `json:"since"` // holder's wall clock at acquisition (display only)

	// Identity used to decide whether the holder's process can be checked
	// for liveness from here (same machine, same boot, same PID namespace).
	MachineID string `json:"machine_id,omitempty"`
	BootID    string `json:"boot_id,omitempty"`
	PIDNS     string `json:"pid_ns,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"`

	Lease     time.Duration `json:"-"`
	Heartbeat time.Duration `json:"-"`
}

// Who renders "alice on FRONTDESK-PC (wems.exe)".
func (h *Holder) Who() string {
	if h == nil {
		return "an unknown holder"
	}
	var b strings.Builder
	user := h.User
	if user == "" {
		user = "an unknown user"
	}
	b.WriteString(user)
	if h.Host != "" {
		b.WriteString(" on ")
		b.WriteString(h.Host)
	}
	if h.App != "" {
		fmt.Fprintf(&b, " (%s)", h.App)
	}
	return b.String()
}

// Event is one transition in a lock's history (a generation).
type Event struct {
	Token  uint64    `json:"token"`
	Kind   string    `json:"kind"`  // "acquire", "takeover", "break", "void"
	State  string    `json:"state"` // "held", "released", "lost" as last written by its claimant
	Holder *Holder   `json:"holder,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Broke  *Holder   `json:"broke,omitempty"` // for "break" and "takeover": whose claim was ended
	At     time.Time `json:"at"`              // claimant's wall clock (display only)
}

// Info is the result of inspecting a lock.
type Info struct {
	Path  string `json:"path"`
	State State  `json:"state"`
	// Token is the fencing token of the current (or last) claim: strictly
	// increasing over the life of the lock.
	Token  uint64  `json:"token"`
	Holder *Holder `json:"holder,omitempty"`
	// HeartbeatAge is how long this observer has seen no change of the
	// holder's heartbeat, on its own monotonic clock. It is a lower bound:
	// one Inspect call sees at most its own observation window.
	HeartbeatAge time.Duration `json:"-"`
	// DeadProcess is true when the holder is proven dead on this machine.
	DeadProcess bool `json:"-"`
	// History holds recent transitions, oldest first.
	History []Event `json:"-"`
	// Warnings lists foreign or damaged entries found in the lock directory.
	Warnings []string `json:"-"`
	// Waiting lists the processes waiting in line for the lock (the
	// advisory wait queue), first in line first. Holder.Since is when each
	// took its ticket (its own wall clock, display only). Tickets proven
	// dead on this machine, or whose own clock says they stopped beating
	// more than a lease ago, are left out.
	Waiting []Holder `json:"-"`
}

// Sentinel errors, for errors.Is.
var (
	// ErrLocked: the lock is held by someone else (the error is a *LockedError).
	ErrLocked = errors.New("lock is held by another process")
	// ErrLost: the lock was lost while held (taken over, broken, or the
	// heartbeat could not be written for most of a lease).
	ErrLost = errors.New("lock was lost")
	// ErrNotHeld: the operation needs a live hold and there is none.
	ErrNotHeld = errors.New("lock is not held")
	// ErrLive: Break refused because the holder is alive (use force).
	ErrLive = errors.New("lock holder is alive")
	// ErrBadLockDir: the lock directory is unusable (a regular file, a
	// symlink, foreign content, permission problems). The error is a *PathError.
	ErrBadLockDir = errors.New("unusable lock directory")
)

// LockedError reports that a lock is held by someone else. Error() reads like
// "data/wems.db is in use by alice on FRONTDESK-PC (wems.exe) since 09:12, last seen 3 s ago".
type LockedError struct {
	Path     string
	Holder   *Holder
	Token    uint64
	LastSeen time.Duration // time since the heartbeat last changed, as observed here
	Stale    bool          // the holder looks dead but could not be taken over in time
	// Waiting is how many processes wait in line for the lock. With Queued
	// it is the reason for the refusal: the lock is free but reserved for
	// those waiting (Holder is then the first in line).
	Waiting int
	Queued  bool
	// Solutions are suggestions a UI can show to the user.
	Solutions []string
}

func (e *LockedError) Error() string {
	var b strings.Builder
	if e.Queued {
		others := "other processes are"
		if e.Waiting == 1 {
			others = "other process is"
		}
		fmt.Fprintf(&b, "%s is free but %d %s waiting in line for it (next: %s)", e.Path, e.Waiting, others, e.Holder.Who())
		return b.String()
	}
	fmt.Fprintf(&b, "%s is in use by %s", e.Path, e.Holder.Who())
	if e.Holder != nil && !e.Holder.Since.IsZero() {
		fmt.Fprintf(&b, " since %s", sinceText(e.Holder.Since))
	}
	if e.LastSeen > 0 {
		fmt.Fprintf(&b, ", last seen %s ago", AgeText(e.LastSeen))
	}
	if e.Waiting > 0 {
		fmt.Fprintf(&b, "; %d waiting in line", e.Waiting)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// DefaultSolutions returns the suggestions shown with a LockedError. They
// name no command-line flag: a desktop dialog shows them too (the CLI adds
// its own hint about --wait).
func DefaultSolutions(path string, h *Holder) []string {
	user := "the holder"
	if h != nil && h.User != "" {
		user = h.User
	}
	return []string{
		fmt.Sprintf("Wait for %s to close it, then try again.", user),
		fmt.Sprintf("If nobody is using it, an administrator can release it: sharelock break --reason \"...\" %s", path),
		"Make sure everyone has write access to the folder that holds it.",
	}
}

func sinceText(t time.Time) string {
	now := time.Now()
	lt := t.Local()
	if lt.Year() == now.Year() && lt.YearDay() == now.YearDay() {
		return lt.Format("15:04")
	}
	return lt.Format("2006-01-02 15:04")
}

// AgeText renders a duration the way people say it: "<1 s", "12 s",
// "4 min", "3 h" (truncated to the unit).
func AgeText(d time.Duration) string {
	switch {
	case d < time.Second:
		return "<1 s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%d s", int(d/time.Second))
	case d < 2*time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	default:
		return fmt.Sprintf("%d h", int(d/time.Hour))
	}
}

// LostError tells why a held lock was lost.
type LostError struct {
	Path   string
	Token  uint64
	Reason string // e.g. "taken over by bob on PC-3 (token 12)", "heartbeat not written for 31s"
	// Idle is set when the lock was released for an idle holder
	// (Request.IdleLimit).
	Idle bool
}

func (e *LostError) Error() string {
	return fmt.Sprintf("lock on %s (token %d) lost: %s", e.Path, e.Token, e.Reason)
}

// Is makes errors.Is(err, ErrLost) true.
func (e *LostError) Is(target error) bool { return target == ErrLost }

// PathError is a problem with a path in the lock directory, with a fix a user can apply.
type PathError struct {
	Op   string // what sharelock was doing
	Path string // the offending path
	Err  error  // the cause (may wrap an errno)
	Fix  string // what the user can do about it
}

func (e *PathError) Error() string {
	s := fmt.Sprintf("sharelock: %s %s: %v", e.Op, e.Path, e.Err)
	if e.Fix != "" {
		s += " (fix: " + e.Fix + ")"
	}
	return s
}

func (e *PathError) Unwrap() error { return e.Err }

// Clock supplies time. Mono must be monotonic and should keep counting while
// the machine sleeps (CLOCK_BOOTTIME on Linux), so that a holder waking from
// a suspend learns how long it was gone. Wall is for display only.
type Clock interface {
	Mono() time.Duration
	Wall() time.Time
}

// Request describes an acquisition.
type Request struct {
	Path      string
	App       string
	Lease     time.Duration
	Heartbeat time.Duration
	Wait      bool // false: fail at once with a *LockedError if held
	Reason    string
	// IdleLimit, if positive, enables idle release: once the holder has
	// not called Touch for IdleLimit and someone waits for the lock (in
	// line, or by a release request), it gets a NoticeIdle; if it still
	// does not call Touch within IdleGrace, the lock is released for it
	// and lost with a *LostError whose Idle is set.
	IdleLimit time.Duration
	IdleGrace time.Duration
}

// NoticeKind tells what a Notice is about.
type NoticeKind string

const (
	// NoticeRequest: someone asks the holder to release the lock
	// (sharelock request, or RequestRelease).
	NoticeRequest NoticeKind = "request"
	// NoticeIdle: the holder has been idle for its idle limit while others
	// wait; the lock will be released for it at Deadline unless it calls
	// Touch before then. Save your work and release.
	NoticeIdle NoticeKind = "idle"
)

// Notice is something a holder's library tells the holding program.
type Notice struct {
	Kind NoticeKind
	// From is who asks (NoticeRequest) or the first in line (NoticeIdle,
	// nil if only a request was waiting).
	From *Holder
	// Message is the requester's text (may be empty).
	Message string
	// At is when the request was made (requester's clock, display only),
	// or when the idle notice was given.
	At time.Time
	// Waiting is how many wait in line (NoticeIdle).
	Waiting int
	// Deadline is when the lock will be released (NoticeIdle; this
	// machine's wall clock).
	Deadline time.Time
}

// Delivery is the outcome of a release request.
type Delivery string

const (
	// Delivered: the holder's library passed the request to its program,
	// which takes requests (sharelock run shows them to its user).
	Delivered Delivery = "delivered"
	// NotListening: the holder's library saw the request, but its program
	// does not take requests.
	NotListening Delivery = "not-listening"
	// Unconfirmed: no answer in time. The holder may be paused, its share
	// unreachable, or it runs a sharelock too old to take requests.
	Unconfirmed Delivery = "unconfirmed"
	// HandedOn: the lock was released or changed hands before the holder
	// answered; the request is moot.
	HandedOn Delivery = "handed-on"
)

// RequestResult reports what became of a release request.
type RequestResult struct {
	Path     string
	Token    uint64  // the claim the request was addressed to
	Holder   *Holder // its holder
	Delivery Delivery
	// SeenAt is when the holder answered (its clock, display only).
	SeenAt time.Time
}

// InspectOptions tunes Inspect.
type InspectOptions struct {
	// Observe, if positive, watches the holder's heartbeat for up to this
	// long (returning early once it changes), so that a holder that shows
	// no sign of life for a whole lease is reported Stale. Without it a
	// remote holder is reported Held unless it is proven dead locally.
	Observe time.Duration
	// History is how many past transitions to return (0: none).
	History int
}

// Lease is a held lock as returned by a Store.
type Lease interface {
	Token() uint64
	Holder() *Holder
	// Lost is closed when the lock is lost; Err then returns a *LostError.
	Lost() <-chan struct{}
	Err() error
	// Check returns nil if the lease is still safe to act on now.
	Check() error
	// Release ends the hold. It is idempotent.
	Release() error
	// Notices delivers release requests and idle warnings to the holding
	// program. A hold whose Notices was never called answers requests
	// with NotListening. Notices that find the channel full are dropped.
	Notices() <-chan Notice
	// Touch tells the lease the program is active (see Request.IdleLimit).
	Touch()
}

// Store is a place where locks live: a shared folder or an etcd cluster.
type Store interface {
	Acquire(ctx context.Context, req Request) (Lease, error)
	Inspect(ctx context.Context, path string, opt InspectOptions) (Info, error)
	// Break ends the current claim. Without force it refuses a live holder
	// (ErrLive). It records who broke whose lock and why.
	Break(ctx context.Context, path, reason string, force bool) (Info, error)
	// History returns every transition of the lock the store still knows,
	// oldest first, one per token.
	History(ctx context.Context, path string) ([]Event, error)
	// RequestRelease asks the current holder of path to release it, with
	// an optional message, and waits (bounded by ctx and by a few of the
	// holder's heartbeats) for its answer. ErrNotHeld if nobody holds it.
	RequestRelease(ctx context.Context, path, message string) (RequestResult, error)
}
