//go:build unix && !linux

package main

import "syscall"

// alive reports whether a process with this PID exists (a zombie counts as
// alive here: there is no portable way to tell).
func alive(pid int) bool {
	return syscall.Kill(pid, 0) != syscall.ESRCH
}
