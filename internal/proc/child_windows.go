package proc

import (
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// politeStop is nil: Windows has no polite stop request that works for an
// arbitrary process, so Stop terminates at once.
var politeStop os.Signal

// childSys holds the job object that kills the child when the supervisor
// exits, and a handle to the child used to terminate it safely.
type childSys struct {
	// job is never closed: closing it would kill the child (and whatever it
	// started), which must happen only when the supervisor exits.
	job windows.Handle

	mu   sync.Mutex
	proc windows.Handle // 0 once the child has been reaped
}

// reaped closes the child's process handle. The handle kept the PID from
// being reused; after the reap, Signal does nothing and needs no handle.
func (s *childSys) reaped() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != 0 {
		windows.CloseHandle(s.proc)
		s.proc = 0
	}
}

// newKillOnCloseJob creates an unnamed, non-inheritable job object whose
// processes are all terminated when its last handle is closed.
func newKillOnCloseJob() (windows.Handle, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return 0, fmt.Errorf("proc: CreateJobObject: %w", err)
	}
	var info windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return 0, fmt.Errorf("proc: SetInformationJobObject: %w", err)
	}
	return job, nil
}

// start creates the job, starts the child and assigns it to the job. The
// os.Process returned by cmd.Start holds a handle to the child, so its PID
// cannot be reused before OpenProcess below: the handle opened here is for
// the same process. Nested jobs (Windows 8 and later) let this work even when
// the supervisor itself runs inside a job.
func (c *Child) start() error {
	job, err := newKillOnCloseJob()
	if err != nil {
		return err
	}
	if err := c.cmd.Start(); err != nil {
		windows.CloseHandle(job)
		return err
	}
	const access = windows.PROCESS_SET_QUOTA | windows.PROCESS_TERMINATE |
		windows.PROCESS_QUERY_LIMITED_INFORMATION | windows.SYNCHRONIZE
	h, err := windows.OpenProcess(access, false, uint32(c.cmd.Process.Pid))
	if err == nil {
		if err = windows.AssignProcessToJobObject(job, h); err != nil {
			windows.CloseHandle(h)
			err = fmt.Errorf("proc: AssignProcessToJobObject: %w", err)
		}
	} else {
		err = fmt.Errorf("proc: OpenProcess: %w", err)
	}
	if err != nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
		windows.CloseHandle(job)
		return err
	}
	c.sys.job = job
	c.sys.proc = h
	go c.reap()
	return nil
}

// signal terminates the child for os.Kill; other signals are unsupported.
// A child that has already terminated (but is not yet reaped) is left alone
// and nil is returned.
func (c *Child) signal(sig os.Signal) error {
	if sig != os.Kill {
		return fmt.Errorf("proc: signal %v is not supported on Windows (only os.Kill)", sig)
	}
	c.sys.mu.Lock()
	defer c.sys.mu.Unlock()
	if c.sys.proc == 0 {
		return nil
	}
	if ev, err := windows.WaitForSingleObject(c.sys.proc, 0); err == nil && ev == windows.WAIT_OBJECT_0 {
		return nil
	}
	if err := windows.TerminateProcess(c.sys.proc, 1); err != nil {
		// TerminateProcess fails with access denied on a process that is
		// already terminating.
		if ev, werr := windows.WaitForSingleObject(c.sys.proc, 0); werr == nil && ev == windows.WAIT_OBJECT_0 {
			return nil
		}
		return fmt.Errorf("proc: TerminateProcess: %w", err)
	}
	return nil
}

func warm() {}
