package proc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat (USER_HZ, fixed at
// 100 in the kernel's user-space ABI).
const userHZ = 100

// cpuTime sums user+system CPU time of the child and its live descendants
// (found through /proc/PID/task/TID/children), plus the CPU time of
// descendants that already exited and were waited for (cutime, cstime).
func (c *Child) cpuTime() (time.Duration, error) {
	if c.exited() {
		return 0, errExited
	}
	var ticks uint64
	queue := []int{c.Pid()}
	seen := map[int]bool{}
	for len(queue) > 0 && len(seen) < maxTreeProcs {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			if pid == c.Pid() {
				return 0, fmt.Errorf("proc: CPU time of %d: %w", pid, err)
			}
			continue // a descendant that just exited
		}
		t, err := statCPUTicks(b)
		if err != nil {
			continue
		}
		ticks += t
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, f := range tasks {
			cb, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, w := range bytes.Fields(cb) {
				if p, err := strconv.Atoi(string(w)); err == nil {
					queue = append(queue, p)
				}
			}
		}
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// statCPUTicks returns utime+stime+cutime+cstime (fields 14–17) of a
// /proc/PID/stat line, in USER_HZ ticks.
func statCPUTicks(b []byte) (uint64, error) {
	closing := bytes.LastIndexByte(b, ')')
	if closing < 0 {
		return 0, errBadStat
	}
	fields := bytes.Fields(b[closing+1:]) // fields[0] is field 3
	if len(fields) < 17-2 {
		return 0, errBadStat
	}
	var sum uint64
	for f := 14; f <= 17; f++ {
		v, err := strconv.ParseInt(string(fields[f-3]), 10, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("%w: CPU time field %d", errBadStat, f)
		}
		sum += uint64(v)
	}
	return sum, nil
}
