//go:build !linux && !windows && !darwin

package proc

import (
	"errors"
	"os"
	"syscall"
)

// politeStop is the signal Stop sends before resorting to os.Kill.
var politeStop os.Signal = syscall.SIGTERM

// childSys is the OS-specific part of a Child; nothing is supervised here.
type childSys struct{}

func (childSys) reaped() {}

// start starts the child plainly: no kernel mechanism is used on these
// systems (see Child).
func (c *Child) start() error { return c.startPlain() }

// signal sends sig through os.Process, which refuses (ErrProcessDone) once
// the child is known to be reaped.
func (c *Child) signal(sig os.Signal) error {
	err := c.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

func warm() {}
