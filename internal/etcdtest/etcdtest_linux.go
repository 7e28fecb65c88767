package etcdtest

import (
	"os/exec"
	"runtime"
	"syscall"
)

// startDyingWithUs starts cmd so that it is killed (SIGKILL) when the test
// binary dies, even before its cleanups run, and calls exited once cmd has
// been reaped. Pdeathsig fires when the thread that started the child ends,
// and the runtime ends a thread whose goroutine exits while locked to it,
// so the start and the wait run on one locked thread that lives as long as
// the child (as in internal/proc).
func startDyingWithUs(cmd *exec.Cmd, exited func()) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		exited()
	}()
	return <-started
}
