//go:build !linux && !windows && !darwin

package proc

import (
	"errors"
	"fmt"
)

// On these systems no process table is consulted: Check always answers
// Unknown and the caller relies on the heartbeat lease.

func livenessSupported() bool { return false }

func check(pid int, startTime uint64) Liveness { return Unknown }

func startTime(pid int) (uint64, error) {
	return 0, fmt.Errorf("proc: process start time: %w", errors.ErrUnsupported)
}

func selfStartTime() (uint64, error) { return startTime(0) }
