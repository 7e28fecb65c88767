//go:build linux

// Package chaos is sharelock's chaos checker: W worker processes on each of H
// simulated machines (Linux PID+UTS namespaces, each with its own mount of
// one shared folder) loop acquire → read-increment-write of a shared record
// → release, while a driver kills holders with SIGKILL, pauses holders with
// SIGSTOP past their lease (then SIGCONT), and, on a fault-injecting share,
// injects I/O errors and stalls. Every operation is logged with its call and
// return times; afterwards the history is checked by a linearizability
// checker (porcupine) against a model of "one lock + a register updated
// only by the holder", and by direct invariants: no two holds overlap,
// tokens grow in acquisition order, no update lost, every crash recovered
// within its bound. A violation writes a report (and porcupine's HTML view)
// and makes Run return an error.
//
// The record is a plain file rewritten with write-to-temporary + rename, as
// an application would; the worker checks its lock (Lock.Check) and the
// token stored with the record just before writing. A holder paused between
// that check and its write cannot be stopped by any lock on a plain file
// share (only a store that checks the token itself can: issue 7's fenced
// SQLite); the checker names such a write "late write of a paused holder"
// when the pause log proves it, and counts it apart from protocol
// violations.
//
// Processes: the driver (Run) starts one agent per machine with
// unshare(1); the agent is PID 1 of its machine and starts, restarts and
// signals the machine's workers. The same executable plays all three roles,
// chosen by the environment variable RoleEnv: a program that uses this
// package must call MaybeRole first thing in main (or TestMain).
package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// RoleEnv selects the role of a re-executed process: "agent" or "worker".
const RoleEnv = "SHARELOCK_CHAOS_ROLE"

// confEnv carries the process's configuration (JSON).
const confEnv = "SHARELOCK_CHAOS_CONF"

// MaybeRole runs the agent or worker role when this process was started as
// one (RoleEnv set) and exits; otherwise it returns at once.
func MaybeRole() {
	switch os.Getenv(RoleEnv) {
	case "":
		return
	case "agent":
		os.Exit(agentMain())
	case "worker":
		os.Exit(workerMain())
	default:
		fmt.Fprintf(os.Stderr, "chaos: unknown %s=%q\n", RoleEnv, os.Getenv(RoleEnv))
		os.Exit(2)
	}
}

// now is the time stamp of every logged event: CLOCK_MONOTONIC in
// nanoseconds, one clock for every process of this machine (the simulated
// machines share the kernel), so events of different processes compare.
func now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// event is one line of a worker's or agent's log.
type event struct {
	E   string `json:"e"`             // what happened (see the worker and agent)
	T   int64  `json:"t"`             // now() when it happened
	W   int    `json:"w,omitempty"`   // worker number (agent events)
	Inc int    `json:"inc,omitempty"` // incarnation of that worker (agent events)
	PID int    `json:"pid,omitempty"` // PID in the machine's namespace
	Tok uint64 `json:"tok,omitempty"` // fencing token
	V   int64  `json:"v,omitempty"`   // record value read or written
	VT  uint64 `json:"vt,omitempty"`  // token stored with the value read
	D   int64  `json:"d,omitempty"`   // duration (pause), ns
	Err string `json:"err,omitempty"`
}

// logger appends events to a file, one JSON line per write(2): a process
// killed with SIGKILL loses nothing it logged.
type logger struct{ f *os.File }

func openLog(path string) (*logger, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("chaos: opening log: %w", err)
	}
	return &logger{f}, nil
}

func (l *logger) log(e event) {
	if e.T == 0 {
		e.T = now()
	}
	b, _ := json.Marshal(e)
	b = append(b, '\n')
	if _, err := l.f.Write(b); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: writing log %s: %v\n", l.f.Name(), err)
		os.Exit(3)
	}
}

func (l *logger) close() error { return l.f.Close() }

// workerConf is a worker's configuration (JSON in confEnv).
type workerConf struct {
	Dir     string        // the share as this machine mounts it
	Store   string        // etcd store URL; "": the folder store on Dir
	Out     string        // log directory (local disk)
	W       int           // worker number, global
	Inc     int           // incarnation (restarts after a kill)
	Lease   time.Duration // lock lease
	Beat    time.Duration // heartbeat
	Hold    time.Duration // extra time held after the update
	Timeout time.Duration // one Acquire's limit
	Ctl     bool          // fd 3 is the control socket to the agent
}

func getConf(v any) error {
	raw := os.Getenv(confEnv)
	if raw == "" {
		return fmt.Errorf("chaos: %s is not set", confEnv)
	}
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		return fmt.Errorf("chaos: bad %s: %w", confEnv, err)
	}
	return nil
}

// Names inside the shared folder and the log directory.
const (
	lockName     = "chaos.db"          // the lock path (sharelock locks chaos.db.lock/)
	etcdLockName = "chaos/" + lockName // the logical lock name in an etcd store
	recordName   = "chaos.rec"         // the shared record: "VALUE TOKEN\n"
	stopName     = "stop"              // in the log directory: workers finish
)

func workerLog(out string, w, inc int) string {
	return fmt.Sprintf("%s/worker-%03d-%02d.log", out, w, inc)
}

func agentLog(out string, m int) string { return fmt.Sprintf("%s/agent-%02d.log", out, m) }
