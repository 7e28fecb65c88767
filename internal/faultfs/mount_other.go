//go:build !linux

package faultfs

import (
	"runtime"
	"testing"
)

// Mount needs Linux FUSE: elsewhere it skips the test.
func Mount(t testing.TB, backing string) *FS {
	t.Helper()
	t.Skipf("faultfs: FUSE fault injection needs Linux (this is %s)", runtime.GOOS)
	return nil
}
