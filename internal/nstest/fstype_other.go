//go:build !linux

package nstest

import "runtime"

// FSType names the type of the filesystem holding dir; on this OS it is
// not determined.
func FSType(dir string) string { return "unknown (" + runtime.GOOS + ")" }
