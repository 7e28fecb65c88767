package folder

import (
	"fmt"
	"time"

	"sharelock/internal/core"
)

// Idle release (core.Request.IdleLimit): opt-in. The heartbeat loop checks,
// once the holder has not called Touch for IdleLimit, whether anyone waits
// (a live ticket in line, or a release request seen since the last Touch).
// If so it gives a NoticeIdle with a deadline IdleGrace later; if the holder
// still has not called Touch by then, the lock is released for it and Lost
// fires with a *core.LostError whose Idle is set. A Touch at any time ends
// the idle period and cancels a pending release. The checks run at heartbeat
// ticks, so every time here is late by up to one heartbeat.

// DefaultIdleGrace is the grace period when IdleLimit is set without one.
const DefaultIdleGrace = time.Minute

// noticeBuffer is the capacity of a hold's notice channel.
const noticeBuffer = 16

// idleFor is how long the holder has not called Touch.
func (h *held) idleFor() time.Duration {
	return h.s.mono() - time.Duration(h.lastTouch.Load())
}

// idleCheck runs the idle state machine after a heartbeat result (in the run
// goroutine). It reports whether the lock must now be released for the idle
// holder; it has then already been marked lost.
func (h *held) idleCheck(r beatResult) bool {
	limit := h.req.IdleLimit
	if limit <= 0 {
		return false
	}
	now := h.s.mono()
	touched := time.Duration(h.lastTouch.Load())
	if now-touched < limit {
		h.idleWarned = 0 // active again: any pending release is off
		return false
	}
	requested := h.lastRequest > touched
	if !r.checked && !requested {
		return false
	}
	if len(r.waiting) == 0 && !requested {
		h.idleWarned = 0 // nobody waits any more
		return false
	}
	grace := h.req.IdleGrace
	if grace <= 0 {
		grace = DefaultIdleGrace
	}
	if h.idleWarned == 0 {
		h.idleWarned = now
		n := core.Notice{Kind: core.NoticeIdle, Waiting: len(r.waiting),
			At: h.s.wallNow(), Deadline: h.s.wallNow().Add(grace)}
		if len(r.waiting) > 0 {
			n.From = &r.waiting[0]
		}
		h.notify(n)
		return false
	}
	if now-h.idleWarned < grace {
		return false
	}
	who := "a release request"
	if len(r.waiting) > 0 {
		who = r.waiting[0].Who()
		if len(r.waiting) > 1 {
			who += fmt.Sprintf(" and %d more", len(r.waiting)-1)
		}
		who += " waiting"
	}
	h.lostOnce.Do(func() {
		h.lostErr = &core.LostError{Path: h.req.Path, Token: h.rec.Token, Idle: true,
			Reason: fmt.Sprintf("released after %v without activity (idle limit %v, grace %v) for %s",
				(now - touched).Round(time.Second), limit, grace, who)}
		h.s.dropHint(h.dir, h.rec.Token)
		close(h.lost)
	})
	return true
}
