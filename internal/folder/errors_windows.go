package folder

import (
	"errors"

	"golang.org/x/sys/windows"
)

// fixForOS returns the fix for the Windows errors that mean another program
// keeps a file of the lock folder dir open in a way that excludes us (after
// fs_windows.go's retries), or "".
func fixForOS(dir string, err error) string {
	switch {
	case errors.Is(err, windows.ERROR_SHARING_VIOLATION), errors.Is(err, windows.ERROR_LOCK_VIOLATION):
		return "another program keeps a file in " + dir + " open without sharing it (a backup tool, virus scanner or an old sharelock?); sharelock retries, but if this persists close that program"
	case errors.Is(err, windows.ERROR_DELETE_PENDING):
		return "a file in " + dir + " was deleted while another program still has it open; it disappears when that program closes it: retry"
	}
	return ""
}
