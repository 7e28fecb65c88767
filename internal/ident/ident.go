// Package ident answers "who am I": the identity of the current process and
// of the machine and boot it runs on, as recorded in a lock claim, and
// whether another recorded process lives in the same PID space so that its
// liveness can be checked from here (with package proc).
//
// Every field has a documented "unknown" value ("" or 0). A field is never
// filled with a guess: where the platform cannot answer, it stays unknown,
// and SameProcessSpace then answers false, which makes callers fall back to
// the heartbeat lease.
package ident

import (
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
)

// Identity describes the current process and the machine it runs on, as
// recorded in a lock claim.
type Identity struct {
	// User is the login name; on Windows "DOMAIN\user". "" if unknown.
	User string
	// Host is the display host name (os.Hostname; on Linux that of the
	// process's UTS namespace). It is for display only and proves nothing
	// about identity. "" if unknown.
	Host string
	// MachineID is a stable identity of the machine (of the OS
	// installation): Linux /etc/machine-id (fallback
	// /var/lib/dbus/machine-id), 32 lowercase hex digits; Windows
	// HKLM\SOFTWARE\Microsoft\Cryptography MachineGuid; macOS the
	// IOPlatformUUID reported by ioreg. "" if unknown.
	MachineID string
	// BootID changes at every boot of the machine and is stable within a
	// boot: Linux /proc/sys/kernel/random/boot_id; Windows the boot counter
	// BootId under HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\
	// Memory Management\PrefetchParameters, in decimal, or where it is
	// missing (older Windows, Wine) "boottime:" and the kernel's boot time
	// in 100 ns units; macOS sysctl kern.bootsessionuuid. "" if unknown.
	BootID string
	// PIDNS names the PID space within the boot. Linux: the link target of
	// /proc/self/ns/pid, e.g. "pid:[4026531836]"; when the process is in a
	// time namespace other than the initial one, "+" and the target of
	// /proc/self/ns/time are appended (e.g.
	// "pid:[4026531836]+time:[4026532461]"), because /proc reports start
	// times shifted by the reader's time namespace. "" on other OSes, and on
	// Linux if unknown.
	PIDNS string
	// PID is the process ID (os.Getpid()).
	PID int
	// StartTime is this process's start time in the OS units of
	// proc.StartTime: Linux field 22 of /proc/self/stat (clock ticks since
	// boot); Windows the creation FILETIME as a uint64; macOS kinfo_proc
	// p_starttime in microseconds since the Unix epoch. 0 if unknown.
	StartTime uint64
	// ProcOK reports whether this process can check the liveness of other
	// PIDs of its PID space (proc.LivenessSupported): Linux only when /proc
	// is mounted for our PID namespace (the PID in /proc/self/stat equals
	// os.Getpid()); Windows and macOS true; other OSes false.
	ProcOK bool
}

// self computes the identity once.
var self = sync.OnceValue(collect)

// Self returns the identity of the current process. It is computed on the
// first call and cached; later calls return the same value. It is safe for
// concurrent use and never fails: fields that cannot be determined hold
// their unknown value.
func Self() Identity {
	return self()
}

// SameProcessSpace reports whether a process recorded with identity other is
// in the same PID space as the process described by id (normally Self()), so
// that other.PID can be checked for liveness here with proc.Check.
//
// It requires non-empty and equal MachineID and BootID, equal PIDNS, and
// id.ProcOK. On Linux PIDNS must also be non-empty: without it two PID
// namespaces sharing a kernel cannot be told apart. Two containers or
// `unshare --pid` namespaces on one kernel have equal MachineID and BootID
// but different PIDNS, and so are NOT the same process space.
func (id Identity) SameProcessSpace(other Identity) bool {
	if !id.ProcOK {
		return false
	}
	if id.MachineID == "" || id.MachineID != other.MachineID {
		return false
	}
	if id.BootID == "" || id.BootID != other.BootID {
		return false
	}
	if id.PIDNS != other.PIDNS {
		return false
	}
	return id.PIDNS != "" || !pidnsRequired
}

// currentUser returns os/user's name for the current user, or "" if it
// cannot tell (os/user can fail in static builds and containers).
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// unixUser returns the login name on Unix-like systems: os/user, then
// $USER, then $LOGNAME, then the numeric uid, then "".
func unixUser() string {
	if name := currentUser(); name != "" {
		return name
	}
	for _, v := range []string{"USER", "LOGNAME"} {
		if name := os.Getenv(v); name != "" {
			return name
		}
	}
	if uid := os.Getuid(); uid >= 0 {
		return strconv.Itoa(uid)
	}
	return ""
}

// hostname returns os.Hostname(), or "" if unknown.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

// readTrimmed returns the contents of path without surrounding white space,
// or "" if it cannot be read.
func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
