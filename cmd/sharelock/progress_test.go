package main

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestProgressLine(t *testing.T) {
	for _, tc := range []struct {
		who            string
		elapsed, total time.Duration
		width          int
		want           string
	}{
		{"alice on FRONTDESK-PC (wems.exe)", 12*time.Second + 900*time.Millisecond, time.Minute, 100,
			"sharelock: waiting for alice on FRONTDESK-PC (wems.exe) — 12 s of 60 s…"},
		{"", 3 * time.Second, 5 * time.Minute, 100,
			"sharelock: waiting for the lock on data/wems.db — 3 s of 5 min…"},
		{"bob on PC-3", 125 * time.Second, 90 * time.Minute, 100,
			"sharelock: waiting for bob on PC-3 — 2 min 5 s of 90 min…"},
	} {
		if got := progressLine("data/wems.db", tc.who, tc.elapsed, tc.total, tc.width); got != tc.want {
			t.Errorf("progressLine(%q, %v, %v) = %q, want %q", tc.who, tc.elapsed, tc.total, got, tc.want)
		}
	}
	// Cut to one less than the terminal's width, so that it never wraps.
	got := progressLine("data/wems.db", "alice on FRONTDESK-PC (wems.exe)", time.Second, time.Minute, 30)
	if n := utf8.RuneCountInString(got); n != 29 || !strings.HasPrefix(got, "sharelock: waiting for alice") || !strings.HasSuffix(got, "…") {
		t.Errorf("cut to 30 columns: %q (%d runes)", got, n)
	}
}
