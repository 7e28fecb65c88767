package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"

	"sharelock/internal/proc"
)

// execBinary runs path with args (after its own name) on this process's
// console, standard streams and environment, waits for it and returns its
// exit code. Windows cannot replace a process, so the lock's holder PID is
// that of path's process. The child is in a job object that dies with this
// process; Ctrl+C reaches it through the shared console, and this process
// waits for it to end.
func execBinary(path string, args []string, stderr io.Writer) int {
	cmd := exec.Command(path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	ctrlC := make(chan os.Signal, 1)
	signal.Notify(ctrlC, os.Interrupt)
	defer signal.Stop(ctrlC)
	child, err := proc.Start(cmd)
	if err != nil {
		fmt.Fprintf(stderr, "sharelock: cannot start %s: %v\n", path, err)
		return exitError
	}
	err = child.Wait()
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	fmt.Fprintf(stderr, "sharelock: %s: %v\n", path, err)
	return exitError
}
