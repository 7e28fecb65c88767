//go:build !linux

package faultfs

import (
	"fmt"
	"runtime"
	"testing"
)

// Mount needs Linux FUSE: elsewhere it skips the test.
func Mount(t testing.TB, backing string) *FS {
	t.Helper()
	t.Skipf("faultfs: FUSE fault injection needs Linux (this is %s)", runtime.GOOS)
	return nil
}

// MountAt needs Linux FUSE: elsewhere it returns an error.
func MountAt(backing, mnt string) (*FS, error) {
	return nil, fmt.Errorf("faultfs: FUSE fault injection needs Linux (this is %s)", runtime.GOOS)
}
