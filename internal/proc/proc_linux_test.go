package proc

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLivenessString(t *testing.T) {
	for l, want := range map[Liveness]string{Unknown: "unknown", Alive: "alive", Dead: "dead", 7: "Liveness(7)"} {
		if got := l.String(); got != want {
			t.Errorf("Liveness(%d).String() = %q, want %q", int(l), got, want)
		}
	}
}

func TestLivenessSupported(t *testing.T) {
	if !LivenessSupported() {
		t.Fatal("LivenessSupported() = false; this test expects /proc mounted for our PID namespace")
	}
}

func TestStartTimeSelf(t *testing.T) {
	st, err := StartTime(os.Getpid())
	if err != nil || st == 0 {
		t.Fatalf("StartTime(self) = %d, %v", st, err)
	}
	self, err := SelfStartTime()
	if err != nil || self != st {
		t.Fatalf("SelfStartTime() = %d, %v; StartTime(self) = %d", self, err, st)
	}
}

func TestCheckSelf(t *testing.T) {
	st, err := StartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if got := Check(os.Getpid(), st); got != Alive {
		t.Errorf("Check(self, %d) = %v, want alive", st, got)
	}
	if got := Check(os.Getpid(), 0); got != Alive {
		t.Errorf("Check(self, 0) = %v, want alive", got)
	}
	if got := Check(os.Getpid(), st+1); got != Dead {
		t.Errorf("Check(self, wrong start) = %v, want dead", got)
	}
}

func TestCheckInvalidPID(t *testing.T) {
	for _, pid := range []int{0, -1, -12345} {
		if got := Check(pid, 0); got != Unknown {
			t.Errorf("Check(%d, 0) = %v, want unknown", pid, got)
		}
		if _, err := StartTime(pid); err == nil {
			t.Errorf("StartTime(%d) succeeded", pid)
		}
	}
}

// unusedPID returns a PID above the kernel's pid_max, which cannot exist.
func unusedPID(t *testing.T) int {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	max, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return max + 1
}

func TestCheckNoSuchPID(t *testing.T) {
	pid := unusedPID(t)
	if got := Check(pid, 0); got != Dead {
		t.Errorf("Check(%d, 0) = %v, want dead", pid, got)
	}
	if got := Check(pid, 12345); got != Dead {
		t.Errorf("Check(%d, 12345) = %v, want dead", pid, got)
	}
	if _, err := StartTime(pid); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("StartTime(%d) error = %v, want os.ErrNotExist", pid, err)
	}
}

// startSleep starts `sleep secs` and kills it when the test ends.
func startSleep(t *testing.T, secs string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", secs)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func TestCheckLiveChild(t *testing.T) {
	cmd := startSleep(t, "60")
	pid := cmd.Process.Pid
	st, err := StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if got := Check(pid, st); got != Alive {
		t.Errorf("Check(child, right start) = %v, want alive", got)
	}
	if got := Check(pid, 0); got != Alive {
		t.Errorf("Check(child, 0) = %v, want alive", got)
	}
	// A record whose start time does not match: the PID was reused.
	if got := Check(pid, st+1); got != Dead {
		t.Errorf("Check(child, wrong start) = %v, want dead", got)
	}
	if got := Check(pid, st-1); got != Dead {
		t.Errorf("Check(child, wrong start) = %v, want dead", got)
	}
}

func TestCheckReapedChild(t *testing.T) {
	cmd := exec.Command("sleep", "0.05")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	st, err := StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := Check(pid, st); got != Dead {
		t.Errorf("Check(reaped child, start) = %v, want dead", got)
	}
	if got := Check(pid, 0); got != Dead {
		// Only a new process that took the PID in the meantime could
		// make this Alive.
		t.Errorf("Check(reaped child, 0) = %v, want dead", got)
	}
}

// procState returns the state letter of pid from /proc/PID/stat.
func procState(t *testing.T, pid int) byte {
	t.Helper()
	st, err := readStat(strconv.Itoa(pid))
	if err != nil {
		t.Fatal(err)
	}
	return st.State
}

func TestCheckZombie(t *testing.T) {
	// exec.Cmd reaps only in Wait, so an exited child stays a zombie until
	// then.
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	st, err := StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for procState(t, pid) != 'Z' {
		if time.Now().After(deadline) {
			t.Fatalf("child %d did not become a zombie (state %c)", pid, procState(t, pid))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := Check(pid, st); got != Dead {
		t.Errorf("Check(zombie, start) = %v, want dead", got)
	}
	if got := Check(pid, 0); got != Dead {
		t.Errorf("Check(zombie, 0) = %v, want dead", got)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("zombie was reaped behind our back: %v", err)
	}
}
