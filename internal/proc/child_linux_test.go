package proc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a supervisor process when this variable is set
// (the os/exec test helper pattern).
const helperEnv = "SHARELOCK_PROC_TEST_HELPER"

func init() {
	if os.Getenv(helperEnv) != "" {
		// Keep the main goroutine on the main thread, so that the helper
		// goroutines below run on other threads, which the runtime really
		// terminates when they exit locked (it never terminates the main
		// thread).
		runtime.LockOSThread()
	}
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		supervisorHelper(mode)
		return
	}
	os.Exit(m.Run())
}

// supervisorHelper starts `sleep 60` as described by mode, prints
// "PID STARTTIME" of the sleep on stdout, then idles until killed.
func supervisorHelper(mode string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	type started struct {
		pid   int
		start uint64
	}
	// launch starts `sleep 60` (naively for "control") and returns its PID
	// and start time, taken while it is certainly alive.
	launch := func() (started, error) {
		cmd := exec.Command("sleep", "60")
		var pid int
		if mode == "control" {
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if err := cmd.Start(); err != nil {
				return started{}, err
			}
			pid = cmd.Process.Pid
		} else {
			c, err := Start(cmd)
			if err != nil {
				return started{}, err
			}
			pid = c.Pid()
		}
		st, err := StartTime(pid)
		return started{pid, st}, err
	}
	var s started
	var err error
	switch mode {
	case "direct":
		s, err = launch()
	case "goroutine", "control":
		// Start from a goroutine locked to its thread, which then exits
		// still locked: the runtime terminates the thread. With "control",
		// the child is started the naive way (Pdeathsig set, exec.Cmd.Start
		// on that thread) and dies with the thread (Go issue 27505).
		type result struct {
			s   started
			err error
		}
		ch := make(chan result)
		go func() {
			runtime.LockOSThread()
			s, err := launch()
			ch <- result{s, err}
		}()
		r := <-ch
		s, err = r.s, r.err
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fail(err)
	}
	pid, st := s.pid, s.start
	fmt.Printf("%d %d\n", pid, st)
	time.Sleep(10 * time.Minute)
	os.Exit(0)
}

// startSupervisor runs the test binary as a supervisor helper in mode and
// returns it with the PID and start time of its sleep child. Both are
// killed when the test ends, the child only if it is still the same process.
func startSupervisor(t *testing.T, mode string) (helper *exec.Cmd, pid int, start uint64) {
	t.Helper()
	helper = exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"="+mode)
	helper.Stderr = os.Stderr
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		helper.Process.Kill()
		helper.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if _, err := fmt.Sscan(strings.TrimSpace(s), &pid, &start); err != nil {
			t.Fatalf("helper printed %q: %v", s, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("helper printed nothing within 10s")
	}
	t.Cleanup(func() {
		if Check(pid, start) == Alive {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return helper, pid, start
}

// waitDead polls Check until it reports Dead or d passes.
func waitDead(pid int, start uint64, d time.Duration) Liveness {
	deadline := time.Now().Add(d)
	for {
		v := Check(pid, start)
		if v == Dead || time.Now().After(deadline) {
			return v
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testSupervisorKilled(t *testing.T, mode string) {
	helper, pid, start := startSupervisor(t, mode)
	// Give a wrongly supervised child time to die with its thread.
	time.Sleep(300 * time.Millisecond)
	if got := Check(pid, start); got != Alive {
		t.Fatalf("child %d is %v while its supervisor runs, want alive", pid, got)
	}
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	helper.Wait()
	if got := waitDead(pid, start, 5*time.Second); got != Dead {
		t.Fatalf("child %d is %v 5s after its supervisor was killed, want dead", pid, got)
	}
}

func TestSuperviseKillSupervisor(t *testing.T) {
	testSupervisorKilled(t, "direct")
}

func TestSuperviseStartFromExitingThread(t *testing.T) {
	testSupervisorKilled(t, "goroutine")
}

// TestSuperviseControl shows that the goroutine test above exercises Go
// issue 27505: started naively from a thread that then exits, a child with
// Pdeathsig dies although its supervisor is still running.
func TestSuperviseControl(t *testing.T) {
	helper, pid, start := startSupervisor(t, "control")
	if got := waitDead(pid, start, 5*time.Second); got != Dead {
		t.Fatalf("naively started child is %v after its thread exited, want dead", got)
	}
	if err := helper.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("supervisor helper died: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(nil); err == nil {
		t.Error("Start(nil) succeeded")
	}
	if _, err := Start(exec.Command("/nonexistent/sharelock-test-binary")); err == nil {
		t.Error("Start of a missing binary succeeded")
	}
	cmd := exec.Command("true")
	c, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Start(cmd); err == nil {
		t.Error("second Start of the same command succeeded")
	}
	if err := c.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
}

func TestStartKeepsSysProcAttr(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	c, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(0)
	if cmd.SysProcAttr.Pdeathsig != syscall.SIGKILL || !cmd.SysProcAttr.Setpgid {
		t.Errorf("SysProcAttr = %+v, want Setpgid kept and Pdeathsig SIGKILL", cmd.SysProcAttr)
	}
	pgid, err := syscall.Getpgid(c.Pid())
	if err != nil || pgid != c.Pid() {
		t.Errorf("child pgid = %d, %v; want %d", pgid, err, c.Pid())
	}
}

// startReady starts sh -c script, which must print a line once it is ready.
func startReady(t *testing.T, script string) *Child {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(0) })
	ready := make(chan struct{})
	go func() {
		bufio.NewReader(out).ReadString('\n')
		close(ready)
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("child never became ready")
	}
	return c
}

func TestStopTrapsTerm(t *testing.T) {
	c := startReady(t, `trap 'kill $! 2>/dev/null; exit 0' TERM; sleep 60 & echo ready; wait`)
	waitErr := make(chan error, 1)
	go func() { waitErr <- c.Wait() }() // Wait concurrently with Stop
	begin := time.Now()
	if err := c.Stop(10 * time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("Stop took %v for a child that exits on SIGTERM", d)
	}
	select {
	case err := <-waitErr:
		if err != nil {
			t.Errorf("Wait = %v, want nil (exit 0 from the TERM trap)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after Stop")
	}
	// Everything after the exit is a no-op.
	if err := c.Wait(); err != nil {
		t.Errorf("second Wait = %v", err)
	}
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("Signal after exit = %v, want nil", err)
	}
	if err := c.Signal(os.Kill); err != nil {
		t.Errorf("Signal(Kill) after exit = %v, want nil", err)
	}
	if err := c.Stop(time.Second); err != nil {
		t.Errorf("Stop after exit = %v, want nil", err)
	}
}

func TestStopIgnoresTerm(t *testing.T) {
	// exec keeps the ignored disposition, so sleep itself ignores SIGTERM
	// and no grandchild outlives the test.
	c := startReady(t, `trap '' TERM; echo ready; exec sleep 60`)
	pid := c.Pid()
	start, err := StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	const grace = 500 * time.Millisecond
	begin := time.Now()
	if err := c.Stop(grace); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	d := time.Since(begin)
	if d < grace {
		t.Errorf("Stop returned after %v, before the %v grace ran out", d, grace)
	}
	if d > grace+3*time.Second {
		t.Errorf("Stop took %v", d)
	}
	var ee *exec.ExitError
	if err := c.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("Wait = %v, want death by SIGKILL", err)
	}
	if got := Check(pid, start); got != Dead {
		t.Errorf("Check after Stop = %v, want dead", got)
	}
}

func TestStopZeroGraceKills(t *testing.T) {
	c := startReady(t, `trap '' TERM; echo ready; exec sleep 60`)
	begin := time.Now()
	if err := c.Stop(0); err != nil {
		t.Fatalf("Stop(0): %v", err)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("Stop(0) took %v", d)
	}
}

func TestSignalConcurrentWithWait(t *testing.T) {
	c, err := Start(exec.Command("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	for range 2 {
		go func() { done <- c.Wait() }()
	}
	stops := make(chan error, 4)
	for range 4 {
		go func() { stops <- c.Stop(2 * time.Second) }()
	}
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("Signal: %v", err)
	}
	for range 4 {
		if err := <-stops; err != nil {
			t.Errorf("Stop: %v", err)
		}
	}
	for range 2 {
		var ee *exec.ExitError
		if err := <-done; !errors.As(err, &ee) {
			t.Errorf("Wait = %v, want an *exec.ExitError", err)
		}
	}
}

// Done is closed once the child is reaped, and Wait then returns its result
// at once; Warm before Start changes nothing.
func TestDoneAndWarm(t *testing.T) {
	Warm()
	c, err := Start(exec.Command("sh", "-c", "exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed 10 s after the child was started")
	}
	if !c.exited() {
		t.Fatal("Done closed before the child was reaped")
	}
	var ee *exec.ExitError
	if err := c.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("Wait after Done: %v, want exit status 3", err)
	}
}
