//go:build !linux

package sqlitefence

// dropPageCache: nothing to do here. Windows SMB clients keep cached data
// coherent through oplocks and leases (a write by another client breaks
// them); macOS is not tested.
func dropPageCache(path string) {}
