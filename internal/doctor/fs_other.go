//go:build !linux && !darwin && !windows

package doctor

// detectFS knows nothing on this OS.
func detectFS(dir string) FSInfo { return FSInfo{Type: "unknown"} }
