//go:build !linux && !windows

package proc

import "time"

// cpuTime is not implemented here (macOS would need proc_pid_rusage for
// each process of the tree).
func (c *Child) cpuTime() (time.Duration, error) { return 0, ErrCPUUnsupported }
