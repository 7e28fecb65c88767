package proc

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestCheckSelfWindows(t *testing.T) {
	st, err := StartTime(os.Getpid())
	if err != nil || st == 0 {
		t.Fatalf("StartTime(self) = %d, %v", st, err)
	}
	if self, err := SelfStartTime(); err != nil || self != st {
		t.Fatalf("SelfStartTime() = %d, %v; want %d", self, err, st)
	}
	if got := Check(os.Getpid(), st); got != Alive {
		t.Errorf("Check(self) = %v, want alive", got)
	}
	if got := Check(os.Getpid(), st+1); got != Dead {
		t.Errorf("Check(self, wrong start) = %v, want dead", got)
	}
	if got := Check(0, 0); got != Unknown {
		t.Errorf("Check(0, 0) = %v, want unknown", got)
	}
}

// TestCheckChildWindows: a running child is alive with its own start time
// and dead with any other (a reused PID); once it has exited it is dead.
func TestCheckChildWindows(t *testing.T) {
	cmd := helperCommand("sleep")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid
	st, err := StartTime(pid)
	if err != nil || st == 0 {
		t.Fatalf("StartTime(child) = %d, %v", st, err)
	}
	for _, c := range []struct {
		start uint64
		want  Liveness
	}{{st, Alive}, {0, Alive}, {st + 1, Dead}, {st - 1, Dead}} {
		if got := Check(pid, c.start); got != c.want {
			t.Errorf("Check(child, %d) = %v, want %v", c.start, got, c.want)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if got := waitLiveness(pid, st, Dead, 5*time.Second); got != Dead {
		t.Errorf("Check(exited child) = %v, want dead", got)
	}
}

// TestCheckNoSuchPIDWindows: a PID no process has is dead; StartTime says
// it does not exist.
func TestCheckNoSuchPIDWindows(t *testing.T) {
	const pid = 0x3FFFFFFC // far above any PID Windows or Wine hands out
	if got := Check(pid, 0); got != Dead {
		t.Errorf("Check(%d, 0) = %v, want dead", pid, got)
	}
	if _, err := StartTime(pid); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("StartTime(%d) error = %v, want os.ErrNotExist", pid, err)
	}
}
