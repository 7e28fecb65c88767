//go:build !linux && !darwin

package clock

import "time"

// mono falls back to Go's monotonic clock. On Windows Go reads the interrupt
// time, which includes time spent asleep.
func mono() time.Duration { return goMono() }
