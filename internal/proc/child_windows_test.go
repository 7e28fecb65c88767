package proc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// procHelperEnv makes the test binary play a helper role instead of running
// the tests:
//
//	sleep        sleeps for a minute (a child to supervise or check)
//	supervise    starts "sleep" with Start (job object), prints "child PID
//	             START", then sleeps
//	plain        the same with a plain exec.Cmd.Start (no job object): the
//	             control showing the test can tell the difference
const procHelperEnv = "SHARELOCK_PROC_HELPER"

func TestMain(m *testing.M) {
	if role := os.Getenv(procHelperEnv); role != "" {
		os.Exit(procHelper(role))
	}
	os.Exit(m.Run())
}

func procHelper(role string) int {
	switch role {
	case "sleep":
		time.Sleep(time.Minute)
		return 0
	case "supervise", "plain":
		cmd := helperCommand("sleep")
		var pid int
		if role == "supervise" {
			c, err := Start(cmd)
			if err != nil {
				fmt.Println("error", err)
				return 1
			}
			pid = c.Pid()
		} else {
			if err := cmd.Start(); err != nil {
				fmt.Println("error", err)
				return 1
			}
			pid = cmd.Process.Pid
		}
		st, err := StartTime(pid)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("child", pid, st)
		time.Sleep(time.Minute)
		return 0
	}
	fmt.Fprintf(os.Stderr, "unknown helper role %q\n", role)
	return 2
}

// helperCommand returns a command running the test binary in role.
func helperCommand(role string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), procHelperEnv+"="+role)
	return cmd
}

// waitLiveness polls Check(pid, start) until it answers want or d passes,
// and returns the last answer.
func waitLiveness(pid int, start uint64, want Liveness, d time.Duration) Liveness {
	deadline := time.Now().Add(d)
	for {
		got := Check(pid, start)
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// superviseAndKill starts a supervisor helper in role, reads its child's PID
// and start time, kills the supervisor (TerminateProcess, as a crash or Task
// Manager would) and returns the child's identity and whether it died
// within d.
func superviseAndKill(t *testing.T, role string, d time.Duration) (pid int, start uint64, died bool) {
	t.Helper()
	sup := helperCommand(role)
	out, err := sup.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	defer sup.Wait()
	defer sup.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 3 || f[0] != "child" {
		t.Fatalf("%s helper said %q (%v)", role, line, err)
	}
	pid, _ = strconv.Atoi(f[1])
	start, _ = strconv.ParseUint(f[2], 10, 64)
	if got := Check(pid, start); got != Alive {
		t.Fatalf("%s: child %d is %v before the supervisor is killed", role, pid, got)
	}
	if err := sup.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	sup.Wait()
	return pid, start, waitLiveness(pid, start, Dead, d) == Dead
}

// TestSuperviseKillSupervisorWindows: a child started with Start dies when
// its supervisor is killed (the job object closes with the supervisor's
// last handle); a child started plainly survives (the control).
func TestSuperviseKillSupervisorWindows(t *testing.T) {
	pid, _, died := superviseAndKill(t, "supervise", 5*time.Second)
	if !died {
		t.Errorf("child %d of the killed supervisor is still alive: the job object did not kill it", pid)
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	}

	pid, start, died := superviseAndKill(t, "plain", 1500*time.Millisecond)
	if died {
		t.Errorf("control: a plainly started child %d died with its supervisor; the test cannot tell the job object works", pid)
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		t.Fatalf("control child %d: %v", pid, err)
	}
	p.Kill()
	if got := waitLiveness(pid, start, Dead, 5*time.Second); got != Dead {
		t.Errorf("control child %d after kill: %v", pid, got)
	}
}

// TestStopAndSignalWindows: Stop terminates the child and Wait reports its
// exit; Signal refuses anything but os.Kill; both do nothing once it exited.
func TestStopAndSignalWindows(t *testing.T) {
	c, err := Start(helperCommand("sleep"))
	if err != nil {
		t.Fatal(err)
	}
	pid := c.Pid()
	st, err := StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Signal(os.Interrupt); err == nil {
		t.Error("Signal(os.Interrupt) succeeded; Windows can only kill")
	}
	begin := time.Now()
	if err := c.Stop(time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("Stop took %v", d)
	}
	var ee *exec.ExitError
	if err := c.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("Wait after Stop = %v, want exit status 1", err)
	}
	if got := Check(pid, st); got != Dead {
		t.Errorf("Check(stopped child) = %v, want dead", got)
	}
	if err := c.Signal(os.Kill); err != nil {
		t.Errorf("Signal after exit: %v", err)
	}
	if err := c.Stop(0); err != nil {
		t.Errorf("Stop after exit: %v", err)
	}
}
