package proc

import (
	"errors"
	"os"
	"runtime"
	"syscall"
)

// politeStop is the signal Stop sends before resorting to SIGKILL.
var politeStop os.Signal = syscall.SIGTERM

// childSys is the OS-specific part of a Child; Linux needs none.
type childSys struct{}

func (childSys) reaped() {}

// warm runs os's one-time check of pidfd support (see Warm): os.FindProcess
// is the cheapest call that triggers it; the handle it opens on our own PID
// is closed at once.
func warm() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Release()
	}
}

// start forks the child from a goroutine locked to its OS thread. The kernel
// delivers Pdeathsig when the forking thread exits, so that goroutine keeps
// the thread until the child has been reaped: it does the reaping itself.
// A goroutine that exits while locked makes the runtime discard its thread,
// which would fire Pdeathsig; unlocking happens only after the reap.
func (c *Child) start() error {
	cmd := c.cmd
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.reap()
	}()
	return <-started
}

// signal sends sig through os.Process, which refuses (ErrProcessDone) once
// the child is reaped and so never hits a reused PID.
func (c *Child) signal(sig os.Signal) error {
	err := c.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}
