package testdir

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func newDir(t testing.TB) string {
	t.Helper()
	pattern := strings.NewReplacer("/", "_", `\`, "_", ":", "_").Replace(t.Name()) + "-"
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatalf("testdir: %v", err)
	}
	t.Cleanup(func() {
		if err := removeTree(dir); err != nil {
			t.Logf("testdir: leaving %s behind: %v", dir, err)
		}
	})
	return dir
}

// removeTree removes dir and everything below it, deepest entries first,
// without following links, and returns the first error (after trying every
// entry).
func removeTree(dir string) error {
	var paths []string
	var first error
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if first == nil {
				first = err
			}
			return nil
		}
		paths = append(paths, p)
		return nil
	})
	slices.Reverse(paths) // children after their parents in walk order
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) && first == nil {
			first = err
		}
	}
	return first
}
