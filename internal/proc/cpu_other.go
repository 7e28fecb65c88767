//go:build !linux && !windows

package proc

import (
	"fmt"
	"os/exec"
	"time"
)

// cpuTime sums the CPU time of the child and its descendants from one
// `ps -A -o pid=,ppid=,time=` (macOS and the BSDs have no /proc and no job
// objects; ps reads the kernel's process table for us).
func (c *Child) cpuTime() (time.Duration, error) {
	if c.exited() {
		return 0, errExited
	}
	out, err := exec.Command("ps", "-A", "-o", "pid=,ppid=,time=").Output()
	if err != nil {
		return 0, fmt.Errorf("proc: CPU time via ps: %w", err)
	}
	return treeCPU(out, c.Pid())
}
