package proc

import (
	"errors"
	"os"
	"os/exec"
	"time"
)

// Child is a child process started by Start so that it cannot outlive the
// supervising (calling) process, as far as the OS allows:
//
//   - Linux: the child gets SysProcAttr.Pdeathsig = SIGKILL, so the kernel
//     kills it when its parent dies, however the parent dies (including
//     SIGKILL). Pdeathsig fires when the *thread* that forked the child
//     exits, not the process (Go issue 27505), so Start forks from a
//     goroutine locked to its own OS thread, and that goroutine stays on the
//     thread, waiting for the child, until the child has been reaped (one
//     OS thread per running child). The caller's goroutine and thread play
//     no part: Start may be called from a goroutine that is locked to a
//     thread and then exits.
//     Limits of the mechanism: the kernel clears Pdeathsig when the child
//     executes a set-user-ID, set-group-ID or file-capability binary, and
//     grandchildren are not covered.
//   - Windows: the child is assigned to a new job object with
//     JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE right after it is created. The job
//     handle is never closed by this package: it stays open for the life of
//     the supervisor, and when the supervisor exits, however it exits, the
//     system closes it and terminates the child and every process the child
//     created after the assignment. A process the child creates in the short
//     window between its creation and the assignment is not covered. If the
//     assignment fails, Start kills the child and returns the error.
//   - macOS and other systems: there is no kernel mechanism; the child is
//     started normally. If the supervisor is killed without a chance to run
//     its own cleanup (SIGKILL, crash), the child survives; otherwise the
//     caller is expected to Stop it on its way out.
//
// A Child's methods are safe for concurrent use.
type Child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the child has been reaped
	err  error         // result of cmd.Wait, valid once done is closed
	sys  childSys      // OS-specific state
}

// ErrNotExited is returned by Stop when the child is still not reaped some
// time after it was killed: it is stuck in the kernel, typically in
// uninterruptible I/O (for example on a network share that went away). The
// child will still be reaped in the background when the kernel lets it go,
// and Wait returns then.
var ErrNotExited = errors.New("proc: child has not exited after being killed")

// killReapWait is the least time Stop waits for the child to be reaped after
// killing it.
const killReapWait = 5 * time.Second

// Start starts cmd, which must not have been started, supervised as described
// on Child. It may modify cmd.SysProcAttr (on Linux it sets Pdeathsig to
// SIGKILL, replacing any other value, and keeps every other field).
//
// After a successful Start the caller must not call cmd.Wait, cmd.Start,
// cmd.Run or cmd.Process.Release: the Child waits for the process itself,
// and its Wait returns the result. cmd.ProcessState is valid once Wait has
// returned. If Start returns an error, no process is left running.
func Start(cmd *exec.Cmd) (*Child, error) {
	if cmd == nil {
		return nil, errors.New("proc: Start with nil *exec.Cmd")
	}
	if cmd.Process != nil {
		return nil, errors.New("proc: Start: command already started")
	}
	c := &Child{cmd: cmd, done: make(chan struct{})}
	if err := c.start(); err != nil {
		return nil, err
	}
	return c, nil
}

// Warm does ahead of time the one-time work that the first Start in a
// process would otherwise do on the caller's path, so that a caller in a
// hurry can overlap it with other work by calling Warm on a goroutine of its
// own while it prepares the command: on Linux, Go's check that pidfds work
// (os runs it once per process, before its first child: it starts and reaps
// a short-lived child of its own, ~0.1 ms). Elsewhere it does nothing. Safe
// to call any number of times, concurrently with Start.
func Warm() { warm() }

// startPlain starts the child with no supervision mechanism and reaps it in
// the background.
func (c *Child) startPlain() error {
	if err := c.cmd.Start(); err != nil {
		return err
	}
	go c.reap()
	return nil
}

// reap waits for the child, records the result and marks it done. It must be
// called exactly once, after a successful cmd.Start.
func (c *Child) reap() {
	err := c.cmd.Wait()
	c.sys.reaped()
	c.err = err
	close(c.done)
}

// Pid returns the child's process ID. After the child has been reaped the PID
// may belong to another process.
func (c *Child) Pid() int {
	return c.cmd.Process.Pid
}

// Wait waits for the child to exit and be reaped, then returns what
// exec.Cmd.Wait returned: nil for a zero exit status, an *exec.ExitError for
// a non-zero status or death by a signal, or an error copying its I/O.
// It may be called from any goroutine, concurrently with Signal and Stop;
// further calls return the same result.
func (c *Child) Wait() error {
	<-c.done
	return c.err
}

// Done returns a channel that is closed once the child has exited and been
// reaped; Wait then returns at once. It lets a caller select on the child's
// end along with other events without a goroutine of its own blocked in
// Wait.
func (c *Child) Done() <-chan struct{} {
	return c.done
}

// exited reports whether the child has been reaped.
func (c *Child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// waitFor waits up to d for the child to be reaped and reports whether it was.
func (c *Child) waitFor(d time.Duration) bool {
	if d <= 0 {
		return c.exited()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C:
		return false
	}
}

// Signal sends sig to the child. Once the child has exited it does nothing
// and returns nil; it never signals a process that merely reuses the PID.
//
// On Windows only os.Kill can be sent; it terminates the child with
// TerminateProcess (exit code 1). Any other signal returns an error while
// the child runs.
func (c *Child) Signal(sig os.Signal) error {
	if c.exited() {
		return nil
	}
	return c.signal(sig)
}

// Stop asks the child to stop and returns once it has exited and been
// reaped. It may be called concurrently with Wait, Signal and other Stop
// calls; after the child has exited it does nothing and returns nil.
//
// On Unix systems Stop sends SIGTERM, waits up to grace for the child to
// exit, then sends SIGKILL; with grace <= 0 it sends SIGKILL at once. On
// Windows, which has no polite stop request for an arbitrary process, Stop
// terminates the child at once (TerminateProcess) and grace only extends how
// long it waits for the exit to be observed.
//
// After the kill Stop waits up to the larger of grace and 5 seconds for the
// child to be reaped, and returns ErrNotExited if it was not. A non-nil error
// from sending a signal is returned as is.
func (c *Child) Stop(grace time.Duration) error {
	if c.exited() {
		return nil
	}
	if grace > 0 && politeStop != nil {
		if err := c.Signal(politeStop); err != nil {
			return err
		}
		if c.waitFor(grace) {
			return nil
		}
	}
	if err := c.Signal(os.Kill); err != nil {
		return err
	}
	if c.waitFor(max(grace, killReapWait)) {
		return nil
	}
	return ErrNotExited
}

// ErrCPUUnsupported is returned by CPUTime where the process tree's CPU
// time cannot be measured (Windows: the child is not in a job object).
var ErrCPUUnsupported = errors.New("proc: CPU time of a process tree is not supported on this OS")

var errExited = errors.New("proc: child has exited")

// CPUTime returns the CPU time (user + system) used so far by the child and
// the processes it started: on Linux its live descendants plus those it
// waited for; on Windows every process of its job object; on macOS and the
// BSDs the tree in one `ps -A -o pid=,ppid=,time=`. It is for
// activity detection (has the program done anything lately?), not
// accounting: a descendant that was re-parented away (a daemon) is not
// counted on Linux. It fails once the child has exited.
func (c *Child) CPUTime() (time.Duration, error) { return c.cpuTime() }
