package dialog

import (
	"fmt"
	"strings"
	"time"

	"sharelock/internal/core"
)

// TitleRequest is the title of the dialog that shows a release request.
const TitleRequest = "Someone is waiting for the database"

// TitleIdle is the title of the dialog that warns of an idle release.
const TitleIdle = "The database will be released"

// Request builds the text shown to the holder when someone asks it to
// release path, with Warning set:
//
//	bob on PC-3 is waiting for data/wems.db: "need to print payroll"
//
//	Save your work and close wems when you can.
func Request(n core.Notice, path, program string) Message {
	var b strings.Builder
	fmt.Fprintf(&b, "%s is waiting for %s", n.From.Who(), path)
	if m := strings.TrimSpace(n.Message); m != "" {
		fmt.Fprintf(&b, ": %q", m)
	}
	fmt.Fprintf(&b, "\n\nSave your work and close %s when you can.", program)
	return Message{Title: TitleRequest, Body: b.String(), Warning: true}
}

// Idle builds the warning shown to an idle holder before the lock is
// released for it (now decides how the deadline is written).
func Idle(n core.Notice, path, program string, idle time.Duration, now time.Time) Message {
	var b strings.Builder
	who, verb := "someone", "is"
	if n.From != nil {
		who = n.From.Who()
		if n.Waiting > 1 {
			who += fmt.Sprintf(" and %d more", n.Waiting-1)
			verb = "are"
		}
	}
	fmt.Fprintf(&b, "%s has been idle for %s and %s %s waiting for %s.\n\n", program, roundDuration(idle), who, verb, path)
	fmt.Fprintf(&b, "Save your work now: at %s (in %s) %s will be closed and the lock released, unless it becomes active again.",
		n.Deadline.Local().Format("15:04:05"), roundDuration(n.Deadline.Sub(now)), program)
	return Message{Title: TitleIdle, Body: b.String(), Warning: true}
}

// roundDuration renders d as "45 s", "3 min" or "2 h".
func roundDuration(d time.Duration) string {
	switch {
	case d < 2*time.Minute:
		return fmt.Sprintf("%d s", int(max(d, 0).Round(time.Second)/time.Second))
	case d < 2*time.Hour:
		return fmt.Sprintf("%d min", int(d.Round(time.Minute)/time.Minute))
	default:
		return fmt.Sprintf("%d h", int(d.Round(time.Hour)/time.Hour))
	}
}
