//go:build !linux

// Command peers compares sharelock with its peers; it runs on Linux only
// (CLOCK_MONOTONIC logs, flock(1), the SFTP and FUSE rigs).
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "peers: the peer benchmark runs on Linux only (this is %s)\n", runtime.GOOS)
	os.Exit(2)
}
