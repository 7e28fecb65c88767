package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// readStat reads and parses /proc/<name>/stat, where name is a PID or "self".
func readStat(name string) (procStat, error) {
	b, err := os.ReadFile("/proc/" + name + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// ownProcfs reports whether /proc is mounted for our PID namespace, so that
// /proc/PID names the same process as PID does in kill(2).
//
// /proc/self resolves to our PID as seen by the procfs instance. If it equals
// os.Getpid() the instance very likely belongs to our namespace; the NSpid
// line of /proc/self/status (Linux 4.1+) settles the coincidence where the
// numbers happen to agree in an ancestor namespace: it lists one PID per
// namespace level from the procfs's level down to ours, so exactly one
// entry means the levels are the same.
var ownProcfs = sync.OnceValue(func() bool {
	st, err := selfStat()
	if err != nil || st.PID != os.Getpid() {
		return false
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for line := range bytes.Lines(status) {
		if v, ok := bytes.CutPrefix(line, []byte("NSpid:")); ok {
			return len(bytes.Fields(v)) == 1
		}
	}
	// Kernels before 4.1 have no NSpid line: the PID check above is all
	// there is.
	return true
})

func livenessSupported() bool { return ownProcfs() }

// exists asks the kernel whether pid exists in our PID namespace.
// It returns Alive, Dead or Unknown.
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

func check(pid int, startTime uint64) Liveness {
	if pid <= 0 || pid > math.MaxInt32 {
		return Unknown
	}
	if v := exists(pid); v != Alive {
		return v
	}
	if !ownProcfs() {
		return Unknown
	}
	st, err := readStat(strconv.Itoa(pid))
	if err != nil {
		// The process may have been reaped since kill(2), or /proc may
		// hide it (hidepid): only the kernel can tell these apart.
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			if exists(pid) == Dead {
				return Dead
			}
		}
		return Unknown
	}
	if st.PID != pid {
		return Unknown
	}
	if isGone(st.State) {
		return Dead
	}
	if startTime != 0 && st.StartTime != startTime {
		return Dead
	}
	return Alive
}

func startTime(pid int) (uint64, error) {
	if pid <= 0 || pid > math.MaxInt32 {
		return 0, fmt.Errorf("%w %d", errInvalidPID, pid)
	}
	if !ownProcfs() {
		return 0, errors.New("proc: /proc is not mounted for this PID namespace")
	}
	st, err := readStat(strconv.Itoa(pid))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return 0, &noProcessError{pid}
		}
		return 0, err
	}
	if st.PID != pid || st.StartTime == 0 {
		return 0, fmt.Errorf("%w: /proc/%d/stat describes pid %d, start time %d", errBadStat, pid, st.PID, st.StartTime)
	}
	return st.StartTime, nil
}

// selfStat is /proc/self/stat as read once: the fields used of it (PID,
// start time) never change for a process, and a new process asks for both
// (ident.Self: start time and LivenessSupported) before its first lock.
var selfStat = sync.OnceValues(func() (procStat, error) { return readStat("self") })

func selfStartTime() (uint64, error) {
	st, err := selfStat()
	if err != nil {
		return 0, err
	}
	if st.StartTime == 0 {
		return 0, fmt.Errorf("%w: start time 0 in /proc/self/stat", errBadStat)
	}
	return st.StartTime, nil
}
