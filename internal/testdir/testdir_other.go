//go:build !windows

package testdir

import "testing"

func newDir(t testing.TB) string { return t.TempDir() }
