package main

import (
	"os"
	"os/exec"
	"strings"
)

// forwardedSignals: none; Windows cannot deliver signals to another process.
var forwardedSignals = []os.Signal{}

// caughtSignals: Ctrl+C reaches the child through the shared console; we
// outlive it and release the lock.
var caughtSignals = []os.Signal{os.Interrupt}

// signalByName: Windows can only kill a process (TerminateProcess).
func signalByName(name string) os.Signal {
	switch strings.ToUpper(strings.TrimPrefix(strings.ToUpper(name), "SIG")) {
	case "KILL":
		return os.Kill
	}
	return nil
}

func signalExitCode(*exec.ExitError) int { return -1 }
