//go:build !windows

package folder

// fixForOS returns the fix for an error only this OS reports, or "": none
// here beyond the errnos fixFor handles.
func fixForOS(dir string, err error) string { return "" }
