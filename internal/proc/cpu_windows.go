package proc

import (
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// jobAccounting is JOBOBJECT_BASIC_ACCOUNTING_INFORMATION.
type jobAccounting struct {
	TotalUserTime             int64 // 100 ns units
	TotalKernelTime           int64
	ThisPeriodTotalUserTime   int64
	ThisPeriodTotalKernelTime int64
	TotalPageFaultCount       uint32
	TotalProcesses            uint32
	ActiveProcesses           uint32
	TotalTerminatedProcesses  uint32
}

// cpuTime is the user+kernel CPU time of every process in the child's job
// object (the child and everything it started, living or ended).
func (c *Child) cpuTime() (time.Duration, error) {
	if c.exited() {
		return 0, errExited
	}
	if c.sys.job == 0 {
		return 0, ErrCPUUnsupported
	}
	var info jobAccounting
	if err := windows.QueryInformationJobObject(c.sys.job, windows.JobObjectBasicAccountingInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)), nil); err != nil {
		return 0, fmt.Errorf("proc: job accounting: %w", err)
	}
	return time.Duration(info.TotalUserTime+info.TotalKernelTime) * 100, nil
}
