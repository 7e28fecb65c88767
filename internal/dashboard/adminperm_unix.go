//go:build !windows

package dashboard

import (
	"fmt"
	"io/fs"
)

// checkAdminPerm refuses an admin file that others may write.
func checkAdminPerm(path string, fi fs.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("admin file %s: others may write it (mode %v); run chmod 600 %s", path, perm, path)
	}
	return nil
}
