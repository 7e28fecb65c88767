// Package clock supplies the time sources the lock protocol uses: a monotonic
// clock that keeps counting while the machine sleeps, for every lease and
// staleness judgement, and the wall clock, for display only.
package clock

import "time"

// System is the real clock. Its zero value is ready to use.
type System struct{}

// Mono returns a monotonic reading. On Linux it is CLOCK_BOOTTIME, which
// (unlike Go's monotonic clock, CLOCK_MONOTONIC) includes time spent in
// suspend, so a holder whose laptop slept past its lease sees the gap. Only
// differences between two readings of the same process are meaningful.
func (System) Mono() time.Duration { return mono() }

// Wall returns the wall clock (display only).
func (System) Wall() time.Time { return time.Now() }

var start = time.Now()

// goMono is Go's monotonic clock relative to process start.
func goMono() time.Duration { return time.Since(start) }
