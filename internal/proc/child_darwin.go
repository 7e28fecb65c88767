package proc

import (
	"errors"
	"os"
	"syscall"
)

// politeStop is the signal Stop sends before resorting to SIGKILL.
var politeStop os.Signal = syscall.SIGTERM

// childSys is the OS-specific part of a Child; macOS needs none.
type childSys struct{}

func (childSys) reaped() {}

// start starts the child plainly: macOS has neither a parent-death signal
// nor job objects, nothing that makes the kernel kill a child when its parent
// dies (see Child).
func (c *Child) start() error { return c.startPlain() }

// signal sends sig through os.Process, which refuses (ErrProcessDone) once
// the child is known to be reaped. (On macOS the os package cannot wait
// without reaping, so a signal racing the reap itself could in theory reach
// a process that reused the PID within that instant; PIDs are allocated
// upwards to 99999 before they wrap, which makes this remote.)
func (c *Child) signal(sig os.Signal) error {
	err := c.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

func warm() {}
