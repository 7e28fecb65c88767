package clock

import (
	"time"

	"golang.org/x/sys/unix"
)

func mono() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return goMono()
	}
	return time.Duration(ts.Nano())
}
