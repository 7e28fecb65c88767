//go:build unix

package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// execBinary replaces this process with path, given args (after its own
// name), the same environment and the same PID. It returns only if that
// fails.
func execBinary(path string, args []string, stderr io.Writer) int {
	err := syscall.Exec(path, append([]string{path}, args...), os.Environ())
	fmt.Fprintf(stderr, "sharelock: cannot start %s: %v\n", path, err)
	return exitError
}
