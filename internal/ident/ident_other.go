//go:build !linux && !windows && !darwin

package ident

import "os"

// pidnsRequired: no PID namespaces are inspected on these systems; the point
// is moot since MachineID and BootID are unknown here.
const pidnsRequired = false

// collect fills in only what the portable standard library can tell. No
// machine or boot identity is known on these systems, so SameProcessSpace is
// always false and callers rely on the heartbeat lease.
func collect() Identity {
	return Identity{
		User: unixUser(),
		Host: hostname(),
		PID:  os.Getpid(),
	}
}
