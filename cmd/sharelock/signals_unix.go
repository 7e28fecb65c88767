//go:build unix

package main

import (
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// forwardedSignals are passed on to the child instead of ending sharelock.
// SIGINT and SIGQUIT are caught (so sharelock outlives the child and
// releases the lock) but not forwarded: from a terminal they already reach
// the child, which shares our process group.
var forwardedSignals = []os.Signal{syscall.SIGTERM, syscall.SIGHUP}

// caughtSignals are caught and not forwarded.
var caughtSignals = []os.Signal{syscall.SIGINT, syscall.SIGQUIT}

func signalByName(name string) os.Signal {
	name = strings.ToUpper(strings.TrimPrefix(strings.ToUpper(name), "SIG"))
	if s := unix.SignalNum("SIG" + name); s != 0 {
		return s
	}
	return nil
}

func signalExitCode(ee *exec.ExitError) int {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return -1
}
