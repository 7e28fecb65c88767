package ident

import (
	"os"

	"sharelock/internal/proc"
)

// pidnsRequired: on Linux an empty PIDNS means "unknown", not "the only one".
const pidnsRequired = true

// initTimeNS is the link target of /proc/self/ns/time in the initial time
// namespace (PROC_TIME_INIT_INO), which applies no offset.
const initTimeNS = "time:[4026531834]"

func collect() Identity {
	id := Identity{
		User:      unixUser(),
		Host:      hostname(),
		MachineID: machineID(),
		BootID:    readTrimmed("/proc/sys/kernel/random/boot_id"),
		PIDNS:     pidNamespace(),
		PID:       os.Getpid(),
		ProcOK:    proc.LivenessSupported(),
	}
	if st, err := proc.SelfStartTime(); err == nil {
		id.StartTime = st
	}
	return id
}

// machineID reads the systemd/D-Bus machine ID. A file that is empty or
// holds "uninitialized" (systemd's first-boot marker) or anything else
// than 32 hex digits does not count.
func machineID() string {
	for _, path := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if id := readTrimmed(path); isMachineID(id) {
			return id
		}
	}
	return ""
}

func isMachineID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// pidNamespace returns the PID namespace link target, with the time
// namespace appended when it is not the initial one (see Identity.PIDNS).
// Without a readable /proc/self/ns/pid it returns "".
func pidNamespace() string {
	pidns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil || pidns == "" {
		return ""
	}
	// Kernels before 5.6 have no time namespaces and no ns/time link.
	if timens, err := os.Readlink("/proc/self/ns/time"); err == nil && timens != initTimeNS {
		return pidns + "+" + timens
	}
	return pidns
}
