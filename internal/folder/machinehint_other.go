//go:build !linux

package folder

import "os"

// machineHintsSupported: off where the store's monotonic clock is not known
// to be one clock for every process of the machine (Windows: Go's clock,
// relative to process start; macOS: not yet verified).
const machineHintsSupported = false

func machineClock() bool { return false }

// shareKey: no mount table read here; every folder counts as local (no
// wake-ups exist here to use it).
func shareKey(dir string) (string, bool) { return "", false }

func openHint(path string) (*os.File, error) { return nil, os.ErrPermission }
