package proc

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// procStat holds the fields of a /proc/PID/stat line that this package uses.
type procStat struct {
	PID       int    // field 1
	Comm      string // field 2, without the parentheses
	State     byte   // field 3: R, S, D, Z, T, t, X, x, I, ...
	StartTime uint64 // field 22: clock ticks after boot
}

var errBadStat = errors.New("proc: malformed /proc/PID/stat")

// parseStat parses the contents of a /proc/PID/stat file.
//
// The comm field (2) is the executable name in parentheses; it may itself
// contain spaces and parentheses (a process can name itself "a) b) c"), so
// it extends from the first '(' to the LAST ')' of the line, and the
// space-separated fields 3, 4, ... follow that last ')'. Any input that does
// not fit this shape, or that has fewer than 22 fields, is an error.
func parseStat(b []byte) (procStat, error) {
	var st procStat
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 2 || closing < open || b[open-1] != ' ' {
		return st, errBadStat
	}
	pid, err := strconv.Atoi(string(b[:open-1]))
	if err != nil || pid <= 0 {
		return st, fmt.Errorf("%w: pid field %q", errBadStat, b[:open-1])
	}
	rest := b[closing+1:]
	if len(rest) == 0 || rest[0] != ' ' {
		return st, errBadStat
	}
	// rest[0] is field 3, so field n is rest[n-3].
	fields := bytes.Fields(rest)
	const startField = 22
	if len(fields) < startField-2 {
		return st, fmt.Errorf("%w: %d fields", errBadStat, len(fields)+2)
	}
	if len(fields[0]) != 1 {
		return st, fmt.Errorf("%w: state field %q", errBadStat, fields[0])
	}
	start, err := strconv.ParseUint(string(fields[startField-3]), 10, 64)
	if err != nil {
		return st, fmt.Errorf("%w: start time field %q", errBadStat, fields[startField-3])
	}
	st.PID = pid
	st.Comm = string(b[open+1 : closing])
	st.State = fields[0][0]
	st.StartTime = start
	return st, nil
}

// isGone reports whether a stat state letter means the process has exited:
// Z (zombie), X (dead) and x (dead, Linux 2.6.33 to 3.13).
func isGone(state byte) bool {
	return state == 'Z' || state == 'X' || state == 'x'
}
