package main

// The CLI with an etcd store: a real etcd server on a loopback port
// (internal/etcdtest), the plain sharelock handing over to the
// sharelock-etcd built beside it. Without the etcd binary these tests skip,
// except under CI=true where they fail.

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"sharelock/internal/etcdtest"
)

// etcdStatus runs `status --store URL --json db` and decodes it (both into
// statusOut and into raw keys).
func etcdStatus(t *testing.T, url, db string) (statusOut, map[string]json.RawMessage) {
	t.Helper()
	r := runCLI(t, "status", "--store", url, "--json", db)
	var out []statusOut
	var raw []map[string]json.RawMessage
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || json.Unmarshal([]byte(r.stdout), &raw) != nil || len(out) != 1 {
		t.Fatalf("status --store %s --json %s\n%v", url, db, r)
	}
	return out[0], raw[0]
}

// etcdWaitHeld polls status until db is held.
func etcdWaitHeld(t *testing.T, url, db string, holder *bgProc) statusOut {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := etcdStatus(t, url, db)
		if st.State == "held" {
			return st
		}
		if holder.exited() {
			t.Fatalf("holder ended before the lock showed held\n%v", holder.res)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed held; last status %+v", db, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStderr waits up to d until p's stderr contains s.
func (p *bgProc) waitStderr(s string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.stderr.String(), s) {
		if p.exited() || time.Now().After(deadline) {
			p.t.Fatalf("stderr of %v never showed %q\nstdout:\n%s\nstderr:\n%s", p.cmd.Args, s, p.stdout.String(), p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEtcdRunStatusRequestWait: with --store etcd://..., the plain binary
// hands over to sharelock-etcd (same PID), a holder refuses a second run
// (exit 75 naming it), status shows it, a release request reaches it, and a
// waiter gets the lock as soon as it ends, with a higher token.
func TestEtcdRunStatusRequestWait(t *testing.T) {
	url := "etcd://" + etcdtest.Start(t) + "/t"
	const db = "office/wems.db" // a logical name: no such file here
	holder := startCLI(t, "run", "--store", url, db, "--", "sleep", "3")
	st := etcdWaitHeld(t, url, db, holder)
	if st.Holder == nil || st.Holder.PID != holder.pid() || st.Holder.App != "sleep" || st.Token == 0 {
		t.Fatalf("status %+v: want the holder's PID %d (exec keeps it) and app sleep", st, holder.pid())
	}
	if _, raw := etcdStatus(t, url, db); raw["heartbeat_age_seconds"] != nil {
		t.Errorf("status of an etcd lock shows a heartbeat age: %s", raw["heartbeat_age_seconds"])
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatalf("%s exists here: the name must stay logical", db)
	}

	r := runCLI(t, "run", "--store", url, db, "--", "true")
	if r.code != exitLocked {
		t.Fatalf("second run: want exit %d\n%v", exitLocked, r)
	}
	mustContain(t, "second run's stderr", r.stderr, db+" is in use by", "(sleep)", "--wait", "break --store "+url+" --force")

	text := runCLI(t, "status", "--store", url, db)
	mustContain(t, "status", text.stdout, db+": held (token "+strconv.FormatUint(st.Token, 10)+")", "(sleep)")

	r = runCLI(t, "request", "--store", url, "--message", "need to print payroll", db)
	if r.code != 0 {
		t.Fatalf("request: want exit 0 (delivered)\n%v", r)
	}
	mustContain(t, "request's stdout", r.stdout, "their program showed the request")
	holder.waitStderr("need to print payroll", 5*time.Second)

	waiter := startCLI(t, "run", "--store", url, "--wait", "10s", db, "--", "sh", "-c", `echo "$SHARELOCK_TOKEN $SHARELOCK_PATH"`)
	hr := holder.wait(10 * time.Second)
	if hr.code != 0 {
		t.Fatalf("holder: want exit 0\n%v", hr)
	}
	wr := waiter.wait(10 * time.Second)
	if wr.code != 0 {
		t.Fatalf("waiter: want exit 0\n%v", wr)
	}
	fields := strings.Fields(wr.stdout)
	if len(fields) != 2 || fields[1] != db {
		t.Fatalf("waiter printed %q, want TOKEN %s", wr.stdout, db)
	}
	if tok, err := strconv.ParseUint(fields[0], 10, 64); err != nil || tok <= st.Token {
		t.Fatalf("waiter's token %q, want one above the holder's %d", fields[0], st.Token)
	}
	// Released at the end of the run, not when a lease expires.
	if got := wr.elapsed - hr.elapsed; got > 3*time.Second {
		t.Errorf("the waiter ended %v after the holder", got)
	}
	if st, _ := etcdStatus(t, url, db); st.State != "free" {
		t.Errorf("after both runs: %+v, want free", st)
	}
	r = runCLI(t, "stats", "--store", url, "--json", db)
	if r.code != 0 || !strings.Contains(r.stdout, `"path": "`+db+`"`) {
		t.Errorf("stats --store\n%v", r)
	}
}

// TestEtcdBreakAndBadURL: break without --force refuses a live holder (75);
// with it, the holder's run stops its command and exits 76. A bad URL is a
// usage error naming the URL and the fix.
func TestEtcdBreakAndBadURL(t *testing.T) {
	addr := etcdtest.Start(t)
	url := "etcd://" + addr + "/t"
	const db = "db"
	holder := startCLI(t, "run", "--store", url, "--lease", "3s", db, "--", "sleep", "30")
	etcdWaitHeld(t, url, db, holder)

	r := runCLI(t, "break", "--store", url, "--reason", "x", db)
	if r.code != exitLocked {
		t.Fatalf("break without --force: want exit %d\n%v", exitLocked, r)
	}
	mustContain(t, "break's stderr", r.stderr, "--force")
	if strings.Contains(r.stderr, "checking that the holder") {
		t.Errorf("break with etcd waits for a stale holder:\n%s", r.stderr)
	}

	r = runCLI(t, "break", "--store", url, "--force", "--reason", "x", db)
	if r.code != 0 {
		t.Fatalf("break --force: want exit 0\n%v", r)
	}
	mustContain(t, "break's stdout", r.stdout, "broke the lock held by", "(sleep)")
	hr := holder.wait(15 * time.Second)
	if hr.code != exitLost {
		t.Fatalf("broken holder: want exit %d\n%v", exitLost, hr)
	}
	if st, _ := etcdStatus(t, url, db); st.State != "free" {
		t.Errorf("after the break: %+v, want free", st)
	}

	bad := "etcd://" + addr + ",,/t"
	r = runCLI(t, "status", "--store", bad, db)
	if r.code != exitUsage {
		t.Fatalf("bad URL: want exit %d\n%v", exitUsage, r)
	}
	mustContain(t, "stderr", r.stderr, strconv.Quote(bad), "fix:")
}
