// On macOS CLOCK_MONOTONIC keeps counting while the system sleeps (unlike
// CLOCK_UPTIME_RAW and mach_absolute_time, which Go uses).

package clock

import (
	"time"

	"golang.org/x/sys/unix"
)

func mono() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return goMono()
	}
	return time.Duration(ts.Nano())
}
