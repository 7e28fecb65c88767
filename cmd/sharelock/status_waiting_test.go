package main

import (
	"testing"
	"time"

	"sharelock"
)

func TestDescribeWaiting(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	ws := []sharelock.Holder{
		{User: "bob", Host: "PC-3", Since: now.Add(-4*time.Minute - 10*time.Second)},
		{User: "carol", Host: "PC-7", Since: now.Add(-90 * time.Second)},
	}
	if got, want := describeWaiting(ws, now), "2 waiting: bob on PC-3 for 4 min, carol on PC-7 for 90 s"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := describeWaiting(nil, now); got != "" {
		t.Errorf("nobody waiting: %q", got)
	}
}
