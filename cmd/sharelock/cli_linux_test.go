package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procStat returns the state letter and fields 3.. of /proc/PID/stat, or
// ok=false if there is no such process.
func procStat(pid int) (fields []string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, false
	}
	return strings.Fields(string(b[i+1:])), true
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	f, ok := procStat(pid)
	return ok && len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// startTime returns field 22 of /proc/PID/stat (start time in clock ticks).
func startTime(t *testing.T, pid int) string {
	t.Helper()
	f, ok := procStat(pid)
	if !ok || len(f) < 20 {
		t.Fatalf("no process %d", pid)
	}
	return f[19]
}

// cpuTicks returns utime+stime of pid in clock ticks.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	f, ok := procStat(pid)
	if !ok || len(f) < 13 {
		t.Fatalf("no process %d", pid)
	}
	return atoiT(t, f[11]) + atoiT(t, f[12])
}

// goneSince reports whether the process pid that started at start no longer
// runs (gone, a zombie, or the PID reused by a younger process).
func goneSince(pid int, start string) bool {
	f, ok := procStat(pid)
	return !ok || len(f) < 20 || f[0] == "Z" || f[0] == "X" || f[19] != start
}

// 4. sharelock run is killed outright: its command dies with it, and the
// next run takes the lock over at once (the holder is provably dead on this
// machine), far sooner than the 40 s default lease.
func TestRunKilledTakesChildAlong(t *testing.T) {
	db := newDB(t)
	holder := startCLI(t, "run", db, "--", "sh", "-c", "echo $$; exec sleep 300")
	out := holder.waitOutput("\n", 10*time.Second)
	childPID := atoiT(t, strings.TrimSpace(out))
	childStart := startTime(t, childPID)
	t.Cleanup(func() {
		if !goneSince(childPID, childStart) {
			syscall.Kill(childPID, syscall.SIGKILL)
		}
	})
	waitHeld(t, db, holder)

	if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	holder.wait(10 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for !goneSince(childPID, childStart) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d still runs 5s after sharelock was killed", childPID)
		}
		time.Sleep(20 * time.Millisecond)
	}

	st := status1(t, db)
	if st.State != "stale" || st.Holder == nil || st.Holder.PID != holder.pid() {
		t.Errorf("status after the holder was killed: %+v, want stale, held by %d", st, holder.pid())
	}
	if tr := runCLI(t, "status", db); !strings.Contains(tr.stdout, "stale") || !strings.Contains(tr.stdout, fmt.Sprint(holder.pid())) {
		t.Errorf("status text does not tell the holder's process is gone:\n%v", tr)
	}

	r := runCLI(t, "run", db, "--", "sh", "-c", `echo "$SHARELOCK_TOKEN"`)
	if r.code != 0 || r.stdout != "2\n" {
		t.Fatalf("run after the holder was killed: want exit 0 and token 2\n%v", r)
	}
	if r.elapsed > 5*time.Second {
		t.Errorf("takeover of a dead local holder took %v", r.elapsed)
	}
}

// A dead holder on this machine can be broken without --force and without
// watching it for a lease.
func TestBreakDeadHolder(t *testing.T) {
	db := newDB(t)
	holder := startCLI(t, "run", db, "--", "sleep", "300")
	waitHeld(t, db, holder)
	if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	holder.wait(10 * time.Second)
	r := runCLI(t, "break", "--reason", "crashed", db)
	if r.code != 0 {
		t.Fatalf("break of a dead holder\n%v", r)
	}
	mustContain(t, "stdout", r.stdout, "broke the lock", "(sleep)", "token 2")
	if r.elapsed > 5*time.Second {
		t.Errorf("break of a dead local holder took %v", r.elapsed)
	}
	if st := status1(t, db); st.State != "free" || st.Token != 2 {
		t.Errorf("after the break: %+v, want free with token 2", st)
	}
}

// Started with SIGHUP ignored (nohup), sharelock must leave it ignored for
// itself and its command instead of catching it and forwarding it.
func TestRunKeepsIgnoredSIGHUP(t *testing.T) {
	db := newDB(t)
	child := `grep '^SigIgn:' /proc/self/status; echo ready; exec sleep 30`
	cmd := exec.Command("sh", "-c", `trap '' HUP; exec "$0" "$@"`, slBin, "run", db, "--", "sh", "-c", child)
	holder := startCmd(t, cmd)
	out := holder.waitOutput("ready", 10*time.Second)
	waitHeld(t, db, holder)
	var mask uint64
	if _, err := fmt.Sscanf(strings.TrimSpace(strings.Split(out, "\n")[0]), "SigIgn: %x", &mask); err != nil {
		t.Fatalf("child printed %q: %v", out, err)
	}
	if mask&(1<<(syscall.SIGHUP-1)) == 0 {
		t.Errorf("the command does not ignore SIGHUP (SigIgn %016x) although sharelock was started with it ignored", mask)
	}
	if err := holder.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if holder.exited() {
		t.Fatalf("SIGHUP ended sharelock or its command although it was ignored\n%v", holder.res)
	}
	if err := holder.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := holder.wait(10 * time.Second); r.code != 128+int(syscall.SIGTERM) {
		t.Errorf("want exit %d after SIGTERM\n%v", 128+int(syscall.SIGTERM), r)
	}
}

// After the lock is lost and the command was sent a signal it does not end
// on, sharelock waits for it without spinning on the closed Lost channel.
func TestRunLostDoesNotSpin(t *testing.T) {
	db := newDB(t)
	script := `trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.1; done`
	holder := startCLI(t, "run", "--lease", "2s", "--on-lost", "signal:USR1", db, "--", "sh", "-c", script)
	holder.waitOutput("ready", 10*time.Second)
	waitHeld(t, db, holder)
	if br := runCLI(t, "break", "--force", "--reason", "test", db); br.code != 0 {
		t.Fatalf("break --force\n%v", br)
	}
	holder.waitOutput("got-usr1", 10*time.Second)
	before := cpuTicks(t, holder.pid())
	time.Sleep(2 * time.Second)
	// /proc reports CPU time in USER_HZ (100) ticks. Waiting costs next to
	// nothing; a busy loop burns a whole CPU (200 ticks in 2 s).
	if used := cpuTicks(t, holder.pid()) - before; used > 100 {
		t.Errorf("sharelock used %d ticks of CPU in 2 s while waiting for its command after the loss", used)
	}
	if err := holder.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := holder.wait(10 * time.Second); r.code != exitLost {
		t.Errorf("want exit %d\n%v", exitLost, r)
	}
}
