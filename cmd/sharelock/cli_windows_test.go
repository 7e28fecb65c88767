// The CLI on Windows (run under Wine in CI: make wine). The test binary
// plays sharelock itself when SHARELOCK_CLI_TEST=1 (TestMain runs cli), and
// the wrapped command when its first argument is childArg, so `sharelock
// run` is tested with real Windows processes on both sides.

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sharelock"
	"sharelock/internal/proc"
	"sharelock/internal/testdir"
)

const (
	cliEnv   = "SHARELOCK_CLI_TEST"
	childArg = "sharelock-test-child"
)

// TestMain runs, instead of the tests:
//
//	EXE sharelock-test-child env CODE   print "token=T path=P" from the
//	                                    environment, exit with CODE
//	EXE sharelock-test-child sleep      print "child PID START", sleep 60 s
//	SHARELOCK_CLI_TEST=1 EXE ARGS...    sharelock ARGS...
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == childArg {
		os.Exit(testChild(os.Args[2:]))
	}
	if os.Getenv(cliEnv) == "1" {
		os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func testChild(args []string) int {
	switch args[0] {
	case "env":
		fmt.Printf("token=%s path=%s\n", os.Getenv("SHARELOCK_TOKEN"), os.Getenv("SHARELOCK_PATH"))
		code, _ := strconv.Atoi(args[1])
		return code
	case "sleep":
		st, err := proc.SelfStartTime()
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("child", os.Getpid(), st)
		time.Sleep(60 * time.Second)
		return 0
	}
	return 2
}

// sharelockCmd returns the test binary as `sharelock args...`.
func sharelockCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	return cmd
}

// childCmd is the command line of the test child in role.
func childCmd(t *testing.T, role ...string) []string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{exe, childArg}, role...)
}

// TestRunWindows: run passes the token and path to the command and exits
// with its status; a second run while the lock is held exits 75 naming the
// holder.
func TestRunWindows(t *testing.T) {
	db := filepath.Join(testdir.New(t), "data.db")
	var out, errb bytes.Buffer
	cmd := sharelockCmd(t, append([]string{"run", db, "--"}, childCmd(t, "env", "7")...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("run: %v, want exit status 7; stderr:\n%s", err, errb.String())
	}
	if want := "token=1 path=" + db; strings.TrimSpace(out.String()) != want {
		t.Errorf("child printed %q, want %q", out.String(), want)
	}

	l, err := sharelock.TryAcquire(context.Background(), db, sharelock.WithApp("wems.exe"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	out.Reset()
	errb.Reset()
	cmd = sharelockCmd(t, append([]string{"run", db, "--"}, childCmd(t, "env", "0")...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if !errors.As(err, &ee) || ee.ExitCode() != exitLocked {
		t.Fatalf("run while held: %v, want exit status %d; stderr:\n%s", err, exitLocked, errb.String())
	}
	if out.Len() != 0 || !strings.Contains(errb.String(), "is in use by") || !strings.Contains(errb.String(), "(wems.exe)") {
		t.Errorf("run while held: stdout %q, stderr %q; want no child and the holder named", out.String(), errb.String())
	}
}

// TestRunKilledWrapperChildDiesWindows: when sharelock run is killed
// (TerminateProcess: no chance to clean up), the job object kills the
// command too, so it never runs unprotected; and the lock, whose holder is
// now dead on this machine, is taken over at once.
func TestRunKilledWrapperChildDiesWindows(t *testing.T) {
	db := filepath.Join(testdir.New(t), "data.db")
	cmd := sharelockCmd(t, append([]string{"run", "--lease", "60s", db, "--"}, childCmd(t, "sleep")...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 3 || f[0] != "child" {
		t.Fatalf("child said %q (%v); stderr:\n%s", line, err, errb.String())
	}
	pid, _ := strconv.Atoi(f[1])
	start, _ := strconv.ParseUint(f[2], 10, 64)
	if got := proc.Check(pid, start); got != proc.Alive {
		t.Fatalf("child %d is %v while sharelock runs", pid, got)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed := time.Now()
	for proc.Check(pid, start) != proc.Dead {
		if time.Since(killed) > 5*time.Second {
			p, _ := os.FindProcess(pid)
			p.Kill()
			t.Fatalf("child %d still alive 5 s after sharelock run was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	childGone := time.Since(killed)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := sharelock.Acquire(ctx, db)
	if err != nil {
		t.Fatalf("lock of the killed wrapper (lease 60 s) not taken over at once: %v", err)
	}
	defer l.Release()
	info, err := sharelock.Inspect(context.Background(), db, sharelock.WithHistory(1))
	if err != nil || len(info.History) != 1 || info.History[0].Kind != "takeover" {
		t.Errorf("history %+v, %v; want a takeover", info.History, err)
	}
	t.Logf("child gone %v after the wrapper was killed; lock taken over %v after the kill",
		childGone.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
}
