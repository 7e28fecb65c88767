//go:build !linux

package folder

// machineHintsSupported: off where the store's monotonic clock is not known
// to be one clock for every process of the machine (Windows: Go's clock,
// relative to process start; macOS: not yet verified).
const machineHintsSupported = false

func onShare(dir string) bool { return false }
