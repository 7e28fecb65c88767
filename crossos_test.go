//go:build linux || windows

package sharelock_test

// Helpers shared by the Windows multi-process tests
// (sharelock_windows_test.go) and the mixed Linux+Windows test
// (mixed_os_linux_test.go).

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// xhold is one hold of the lock as logged by a counter helper: "TOKEN START
// END" (wall-clock nanoseconds after acquiring and before releasing).
type xhold struct {
	who        string
	token      int64
	start, end int64
}

// readHolds parses the hold log a counter helper wrote to name.
func readHolds(t *testing.T, who, name string) []xhold {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("%s's hold log: %v", who, err)
	}
	var hs []xhold
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("%s's hold log: bad line %q", who, line)
		}
		var v [3]int64
		for i := range f {
			if v[i], err = strconv.ParseInt(f[i], 10, 64); err != nil {
				t.Fatalf("%s's hold log: bad line %q", who, line)
			}
		}
		hs = append(hs, xhold{who, v[0], v[1], v[2]})
	}
	return hs
}

// checkExclusive sorts holds by start time and reports overlapping holds and
// tokens that do not increase in that order. It returns the number of
// handoffs between different holders.
func checkExclusive(t *testing.T, holds []xhold) (handoffs int) {
	t.Helper()
	slices.SortFunc(holds, func(a, b xhold) int {
		if a.start != b.start {
			if a.start < b.start {
				return -1
			}
			return 1
		}
		return int(a.token - b.token)
	})
	bad := 0
	for i := 1; i < len(holds); i++ {
		p, c := holds[i-1], holds[i]
		if c.who != p.who {
			handoffs++
		}
		if c.start < p.end || c.token <= p.token {
			bad++
			if bad <= 10 {
				t.Errorf("holds %s token %d [%d, %d] and %s token %d [%d, %d]: overlap or token order violated",
					p.who, p.token, p.start, p.end, c.who, c.token, c.start, c.end)
			}
		}
	}
	if bad > 10 {
		t.Errorf("... %d violations in all", bad)
	}
	return handoffs
}

// readCounter returns the number in the counter file.
func readCounter(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("counter file %q: %v", b, err)
	}
	return v
}

// describe names a role for messages.
func describe(role string, i int) string { return fmt.Sprintf("%s%d", role, i) }
