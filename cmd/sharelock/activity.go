package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"sharelock/internal/proc"
)

// activitySample is how often run --idle-release samples the command's
// activity (more often for an idle limit under 8 s).
const activitySample = 2 * time.Second

// activeCPUShare is the CPU use, as a share of one core over a sample, above
// which the command counts as active (an idle desktop program uses less;
// one that redraws, computes or talks to the database uses more).
const activeCPUShare = 0.01

// activity judges whether a wrapped command is in use, for idle release: it
// is active when its process tree used more than activeCPUShare of a core
// since the last sample, or when the protected file changed (size or
// modification time). It is a heuristic, which is why idle release is
// opt-in: a program that polls in the background never looks idle, and
// one whose user reads without touching anything looks idle.
type activity struct {
	child   *proc.Child
	path    string
	lastCPU time.Duration
	lastAt  time.Time
	noCPU   bool
	size    int64
	mtime   time.Time
}

func newActivity(child *proc.Child, path string, stderr io.Writer) *activity {
	a := &activity{child: child, path: path, lastAt: time.Now()}
	cpu, err := child.CPUTime()
	if errors.Is(err, proc.ErrCPUUnsupported) {
		a.noCPU = true
		fmt.Fprintf(stderr, "sharelock: --idle-release: this system cannot measure the CPU use of %s; only changes to %s count as activity\n", path, path)
	}
	a.lastCPU = cpu
	a.fileChanged()
	return a
}

// fileChanged reports whether the protected file's size or modification
// time differ from the last look.
func (a *activity) fileChanged() bool {
	fi, err := os.Stat(a.path)
	if err != nil {
		return false
	}
	changed := fi.Size() != a.size || !fi.ModTime().Equal(a.mtime)
	a.size, a.mtime = fi.Size(), fi.ModTime()
	return changed
}

// active samples the command and reports whether it did something since
// the previous sample.
func (a *activity) active() bool {
	now := time.Now()
	busy := false
	if !a.noCPU {
		if cpu, err := a.child.CPUTime(); err == nil {
			busy = float64(cpu-a.lastCPU) > activeCPUShare*float64(now.Sub(a.lastAt))
			a.lastCPU = cpu
		}
	}
	a.lastAt = now
	return a.fileChanged() || busy
}
