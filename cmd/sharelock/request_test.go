//go:build unix

package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// sharelock request reaches a holder started by sharelock run: run prints
// the request for its user, the requester learns it was shown (exit 0);
// --json carries the same; nobody to ask is exit 1 with a clear message.
func TestRequestShownByRun(t *testing.T) {
	db := newDB(t)
	holder := startCLI(t, "run", "--lease", "2s", db, "--", "sleep", "3")
	waitHeld(t, db, holder)
	r := runCLI(t, "request", "--message", "need to print payroll", db)
	if r.code != 0 {
		t.Fatalf("request: want exit 0\n%v", r)
	}
	mustContain(t, "request stdout", r.stdout, "Asked ", "to release "+db, "showed the request")
	r = runCLI(t, "request", "--json", db)
	var out map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 {
		t.Fatalf("request --json: %v\n%v", err, r)
	}
	if out["delivery"] != "delivered" || out["token"] != float64(1) || out["holder"] == nil {
		t.Fatalf("request --json: %v", out)
	}
	hr := holder.wait(10 * time.Second)
	if hr.code != 0 {
		t.Fatalf("holder: %v", hr)
	}
	mustContain(t, "holder stderr", hr.stderr, `is waiting for `+db+`: "need to print payroll"`, "Save your work and close sleep")
	r = runCLI(t, "request", db)
	if r.code != 1 || !strings.Contains(r.stderr, "nobody holds "+db) {
		t.Fatalf("request on a free lock: want exit 1 naming the path\n%v", r)
	}
	if r := runCLI(t, "request", db, "extra"); r.code != exitUsage {
		t.Fatalf("two paths: want usage error\n%v", r)
	}
}

// run --idle-release: an idle command keeps the lock while nobody waits;
// when someone waits in line it is warned, then stopped, its lock released
// (exit 76) and the waiter gets it.
func TestRunIdleRelease(t *testing.T) {
	db := newDB(t)
	holder := startCLI(t, "run", "--lease", "1s", "--idle-release", "1s", "--idle-grace", "1s", db, "--", "sleep", "60")
	waitHeld(t, db, holder)
	time.Sleep(2500 * time.Millisecond)
	if holder.exited() {
		t.Fatalf("idle holder ended with nobody waiting\n%v", holder.wait(0))
	}
	start := time.Now()
	w := runCLI(t, "run", "--wait", "30s", db, "--", "sh", "-c", `echo "$SHARELOCK_TOKEN"`)
	if w.code != 0 || w.stdout != "2\n" {
		t.Fatalf("waiter: want exit 0 and token 2\n%v", w)
	}
	hr := holder.wait(15 * time.Second)
	if hr.code != exitLost {
		t.Fatalf("idle holder: want exit %d\n%v", exitLost, hr)
	}
	mustContain(t, "idle holder stderr", hr.stderr, "has been idle for", "Save your work now", "released after", "stopping sleep")
	t.Logf("waiter got the lock %v after it started waiting (idle limit 1 s, grace 1 s, heartbeat 250 ms)", time.Since(start).Round(time.Millisecond))

	// A busy command is never idle.
	busy := startCLI(t, "run", "--lease", "1s", "--idle-release", "1s", "--idle-grace", "1s", db, "--",
		"sh", "-c", `end=$(($(date +%s)+6)); while [ $(date +%s) -lt $end ]; do :; done`)
	waitHeld(t, db, busy)
	w = runCLI(t, "run", "--wait", "30s", db, "--", "true")
	if br := busy.wait(15 * time.Second); br.code != 0 || strings.Contains(br.stderr, "idle") {
		t.Fatalf("busy holder: want exit 0 without an idle warning\n%v", br)
	}
	if w.code != 0 {
		t.Fatalf("waiter behind a busy holder: %v", w)
	}
}
