// Package testdir gives tests a temporary directory that also works under
// Wine, where the testing package's t.TempDir cannot clean up: os.RemoveAll
// fails there ("Invalid function": Wine 8 lacks the NT calls Go's Windows
// RemoveAll uses), and the failed cleanup fails the test.
package testdir

import "testing"

// New returns a new empty directory for the test, removed when the test and
// its subtests end. On Unix it is t.TempDir(). On Windows it is created
// under os.TempDir() and removed entry by entry with os.Remove (DeleteFile,
// RemoveDirectory); an entry that cannot be removed (still open in a helper
// process, say) is logged, not a failure, and left behind.
func New(t testing.TB) string {
	t.Helper()
	return newDir(t)
}
