//go:build windows

package dashboard

import "io/fs"

// checkAdminPerm: Windows reports no Unix permission bits; the file's ACL
// is the administrator's business.
func checkAdminPerm(path string, fi fs.FileInfo) error { return nil }
