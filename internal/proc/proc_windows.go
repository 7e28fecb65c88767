package proc

import (
	"errors"
	"fmt"
	"math"
	"os"

	"golang.org/x/sys/windows"
)

// stillActive is the exit code GetExitCodeProcess reports for a running
// process (STILL_ACTIVE).
const stillActive = 259

func livenessSupported() bool { return true }

// openQuery opens pid for querying. It asks for SYNCHRONIZE too, so that a
// process that exited with code 259 can be told from a running one, and
// falls back to query rights alone where SYNCHRONIZE is refused.
func openQuery(pid int) (h windows.Handle, canSync bool, err error) {
	h, err = windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION|windows.SYNCHRONIZE, false, uint32(pid))
	if err == nil {
		return h, true, nil
	}
	if err == windows.ERROR_ACCESS_DENIED {
		h, err = windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
		if err == nil {
			return h, false, nil
		}
	}
	return 0, false, err
}

// hasExited reports whether the process behind h has terminated. Windows
// keeps an exited process object (and its PID) alive while any handle to it
// is open, so OpenProcess succeeding proves nothing by itself.
func hasExited(h windows.Handle, canSync bool) (bool, error) {
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err != nil {
		return false, err
	}
	if code != stillActive {
		return true, nil
	}
	if !canSync {
		// Running, or exited with code 259: assume running.
		return false, nil
	}
	ev, err := windows.WaitForSingleObject(h, 0)
	if err != nil {
		return false, err
	}
	return ev == windows.WAIT_OBJECT_0, nil
}

// creationTime returns the process creation time as a FILETIME in a uint64.
func creationTime(h windows.Handle) (uint64, error) {
	var created, exited, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(h, &created, &exited, &kernel, &user); err != nil {
		return 0, err
	}
	return uint64(created.HighDateTime)<<32 | uint64(created.LowDateTime), nil
}

func check(pid int, startTime uint64) Liveness {
	if pid <= 0 || uint64(pid) > math.MaxUint32 {
		return Unknown
	}
	h, canSync, err := openQuery(pid)
	if err != nil {
		if err == windows.ERROR_INVALID_PARAMETER {
			return Dead // no process object with that PID
		}
		return Unknown
	}
	defer windows.CloseHandle(h)
	gone, err := hasExited(h, canSync)
	if err != nil {
		return Unknown
	}
	if gone {
		return Dead
	}
	if startTime != 0 {
		created, err := creationTime(h)
		if err != nil {
			return Unknown
		}
		if created != startTime {
			return Dead
		}
	}
	return Alive
}

func startTime(pid int) (uint64, error) {
	if pid <= 0 || uint64(pid) > math.MaxUint32 {
		return 0, fmt.Errorf("%w %d", errInvalidPID, pid)
	}
	h, _, err := openQuery(pid)
	if err != nil {
		if err == windows.ERROR_INVALID_PARAMETER {
			return 0, &noProcessError{pid}
		}
		return 0, fmt.Errorf("proc: OpenProcess(%d): %w", pid, err)
	}
	defer windows.CloseHandle(h)
	created, err := creationTime(h)
	if err != nil {
		return 0, fmt.Errorf("proc: GetProcessTimes(%d): %w", pid, err)
	}
	if created == 0 {
		return 0, errors.New("proc: GetProcessTimes gave no creation time")
	}
	return created, nil
}

func selfStartTime() (uint64, error) { return startTime(os.Getpid()) }
