package proc

import (
	"errors"
	"fmt"
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// szomb is p_stat of a zombie process (SZOMB in <sys/proc.h>).
const szomb = 5

func livenessSupported() bool { return true }

// exists asks the kernel whether pid exists. It returns Alive, Dead or
// Unknown.
func exists(pid int) Liveness {
	switch err := unix.Kill(pid, 0); err {
	case nil, unix.EPERM:
		return Alive
	case unix.ESRCH:
		return Dead
	default:
		return Unknown
	}
}

// kinfo returns the kernel's process record for pid. A missing process shows
// up as an empty sysctl answer, which x/sys/unix reports as EIO.
func kinfo(pid int) (*unix.KinfoProc, error) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil {
		return nil, err
	}
	if int(kp.Proc.P_pid) != pid {
		return nil, unix.EIO
	}
	return kp, nil
}

// kinfoStart converts p_starttime to microseconds since the Unix epoch.
func kinfoStart(kp *unix.KinfoProc) uint64 {
	tv := kp.Proc.P_starttime
	if tv.Sec < 0 || tv.Usec < 0 {
		return 0
	}
	return uint64(tv.Sec)*1e6 + uint64(tv.Usec)
}

func check(pid int, startTime uint64) Liveness {
	if pid <= 0 || pid > math.MaxInt32 {
		return Unknown
	}
	if v := exists(pid); v != Alive {
		return v
	}
	kp, err := kinfo(pid)
	if err != nil {
		// Gone since kill(2)? Only a second look can tell.
		if exists(pid) == Dead {
			return Dead
		}
		return Unknown
	}
	if kp.Proc.P_stat == szomb {
		return Dead
	}
	if startTime != 0 && kinfoStart(kp) != startTime {
		return Dead
	}
	return Alive
}

func startTime(pid int) (uint64, error) {
	if pid <= 0 || pid > math.MaxInt32 {
		return 0, fmt.Errorf("%w %d", errInvalidPID, pid)
	}
	kp, err := kinfo(pid)
	if err != nil {
		if exists(pid) == Dead {
			return 0, &noProcessError{pid}
		}
		return 0, err
	}
	st := kinfoStart(kp)
	if st == 0 {
		return 0, errors.New("proc: kern.proc.pid gave no start time")
	}
	return st, nil
}

func selfStartTime() (uint64, error) { return startTime(os.Getpid()) }
