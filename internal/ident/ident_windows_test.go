package ident

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"sharelock/internal/proc"
)

// identHelperEnv makes the test binary print its Self() and exit instead of
// running the tests (TestSelfSameInSecondProcess).
const identHelperEnv = "SHARELOCK_IDENT_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(identHelperEnv) != "" {
		id := Self()
		fmt.Printf("%s|%s|%s|%s|%d|%d\n", id.User, id.Host, id.MachineID, id.BootID, id.PID, id.StartTime)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestSelfWindows(t *testing.T) {
	id := Self()
	t.Logf("Self() = %+v", id)
	if !strings.Contains(id.User, `\`) {
		t.Errorf("User = %q, want DOMAIN\\user", id.User)
	}
	if id.MachineID == "" || id.Host == "" || id.BootID == "" || id.PIDNS != "" || !id.ProcOK {
		t.Errorf("Self() = %+v: want MachineID, Host and BootID known, PIDNS empty, ProcOK", id)
	}
	st, err := proc.StartTime(os.Getpid())
	if err != nil || id.StartTime != st {
		t.Errorf("StartTime = %d, want %d (%v)", id.StartTime, st, err)
	}
}

// TestSelfSameInSecondProcess: another process on this machine and boot
// records the same user, machine and boot IDs (so SameProcessSpace holds and
// the same-machine liveness check applies), and its own PID and start time.
func TestSelfSameInSecondProcess(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), identHelperEnv+"=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("second process: %v", err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), "|")
	if len(f) != 6 {
		t.Fatalf("second process printed %q", out)
	}
	self := Self()
	if f[0] != self.User || f[1] != self.Host || f[2] != self.MachineID || f[3] != self.BootID {
		t.Errorf("second process: user %q host %q machine %q boot %q; this one: %q %q %q %q",
			f[0], f[1], f[2], f[3], self.User, self.Host, self.MachineID, self.BootID)
	}
	other := self
	fmt.Sscan(f[4], &other.PID)
	fmt.Sscan(f[5], &other.StartTime)
	if other.PID == self.PID || other.StartTime == 0 || other.StartTime == self.StartTime {
		t.Errorf("second process: PID %d start %d; this one: PID %d start %d", other.PID, other.StartTime, self.PID, self.StartTime)
	}
	if !self.SameProcessSpace(other) {
		t.Errorf("SameProcessSpace(second process) = false")
	}
	// It has exited: judged dead by its recorded PID and start time.
	if got := proc.Check(other.PID, other.StartTime); got != proc.Dead {
		t.Errorf("Check(exited second process) = %v, want dead", got)
	}
}
