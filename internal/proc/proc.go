// Package proc judges whether a recorded process is still alive and runs
// child processes that cannot outlive their supervisor.
//
// Liveness verdicts are only meaningful for processes in the caller's own PID
// space: the same machine, the same boot and (on Linux) the same PID
// namespace. Callers establish that with ident.Identity.SameProcessSpace
// before calling Check; a process recorded on another machine must be judged
// by its heartbeat lease instead.
//
// Start times are opaque numbers in OS-specific units (see StartTime). They
// are compared for equality only, to detect that a PID has been reused by a
// different process; they are never converted to wall-clock time.
package proc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Liveness is the verdict on a recorded process.
type Liveness int

const (
	// Unknown means the verdict cannot be given here (no permission, /proc
	// belonging to another PID namespace, unsupported OS, invalid PID). The
	// caller must fall back to the heartbeat lease.
	Unknown Liveness = iota
	// Alive means a process with that PID exists, is not a zombie and, when a
	// start time was given, started at that time.
	Alive
	// Dead means the process is proven gone: no process has that PID, or the
	// PID now belongs to a process with a different start time, or the
	// process has exited and is a zombie waiting to be reaped.
	Dead
)

// String returns "unknown", "alive" or "dead" (or "Liveness(N)" for values
// outside the defined set).
func (l Liveness) String() string {
	switch l {
	case Unknown:
		return "unknown"
	case Alive:
		return "alive"
	case Dead:
		return "dead"
	}
	return "Liveness(" + strconv.Itoa(int(l)) + ")"
}

// Check reports whether the process pid that started at startTime (in the
// units of StartTime and ident.Identity.StartTime) is alive.
//
// It must only be trusted for processes in the caller's own PID space (see
// ident.Identity.SameProcessSpace): a PID recorded elsewhere names an
// unrelated process here.
//
// A startTime of 0 means "not recorded": the verdict is then Alive or
// Unknown for an existing process, never Dead on the grounds of a start time
// mismatch (Dead is still returned when the PID does not exist or is a
// zombie). A pid <= 0, or one too large to be a PID on this OS, yields
// Unknown.
//
//   - Linux: kill(pid, 0) decides existence in the caller's PID namespace
//     (ESRCH -> Dead; this is not fooled by /proc mounted with hidepid).
//     For an existing process, /proc/PID/stat gives the state (Z or X ->
//     Dead) and the start time (field 22, clock ticks since boot; differs ->
//     Dead). If /proc is not mounted for the caller's PID namespace, or the
//     file cannot be read, the verdict is Unknown.
//   - Windows: OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION);
//     ERROR_INVALID_PARAMETER (no such PID) -> Dead; an exit code other than
//     STILL_ACTIVE, or a signalled process handle -> Dead; a creation time
//     (GetProcessTimes) other than startTime -> Dead; access denied and any
//     other failure -> Unknown.
//   - macOS: kill(pid, 0) (ESRCH -> Dead), then sysctl kern.proc.pid.PID:
//     p_stat SZOMB -> Dead; p_starttime (microseconds since the epoch)
//     other than startTime -> Dead; any failure -> Unknown.
//   - Other systems: always Unknown.
func Check(pid int, startTime uint64) Liveness {
	return check(pid, startTime)
}

// StartTime returns the start time of process pid in the units recorded in
// ident.Identity.StartTime:
//
//   - Linux: field 22 of /proc/PID/stat, clock ticks since boot. An error is
//     returned when /proc is not mounted for the caller's PID namespace,
//     since /proc/PID would then describe an unrelated process.
//   - Windows: the process creation time (GetProcessTimes) as a FILETIME,
//     100 ns intervals since 1601-01-01 UTC, High<<32 | Low.
//   - macOS: kinfo_proc p_starttime in microseconds since the Unix epoch.
//   - Other systems: an error matching errors.ErrUnsupported.
//
// If no process has that PID the error matches os.ErrNotExist. The result is
// never 0 when the error is nil.
func StartTime(pid int) (uint64, error) {
	return startTime(pid)
}

// SelfStartTime returns the start time of the calling process, in the units
// of StartTime. On Linux it reads /proc/self/stat, which describes the caller
// even when /proc belongs to an ancestor PID namespace (where StartTime
// refuses to answer); elsewhere it equals StartTime(os.Getpid()).
func SelfStartTime() (uint64, error) {
	return selfStartTime()
}

// LivenessSupported reports whether Check can judge processes of the caller's
// own PID space on this system: on Linux, whether /proc is mounted for the
// caller's PID namespace (the PID in /proc/self/stat equals os.Getpid() and
// /proc/self/status shows a single NSpid level); on Windows and macOS, true;
// elsewhere false. The answer is computed once and cached.
func LivenessSupported() bool {
	return livenessSupported()
}

// noProcessError reports that no process has the PID; it matches
// os.ErrNotExist.
type noProcessError struct{ pid int }

func (e *noProcessError) Error() string {
	return fmt.Sprintf("proc: no process with pid %d", e.pid)
}

func (e *noProcessError) Is(target error) bool { return target == os.ErrNotExist }

var errInvalidPID = errors.New("proc: invalid pid")
