// Multi-process tests on Windows (run under Wine in CI: make wine). The
// test binary re-executes itself as helper processes when
// SHARELOCK_TEST_HELPER names a role, as the Unix tests in
// sharelock_test.go do:
//
//	counter  -path P -counter C -log L -n N [-lease D] [-gap D] [-inside M]
//	         prints "ready", waits for a line on standard input, then N
//	         times: acquires P, increments the number in C, logs "TOKEN
//	         START END" to L, releases P and pauses for the gap; prints
//	         "done" (or "error ..." and exits 1). With -inside it creates
//	         M exclusively right after acquiring and removes it before
//	         releasing: finding M there means two holders overlap.
//	         The same protocol as the Unix counter helper, so that
//	         mixed_os_linux_test.go can run both against one lock.
//	hold     -path P [-lease D]
//	         TryAcquire P, print "held TOKEN PID START" (or "error ..."),
//	         then hold it until standard input closes.

package sharelock_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sharelock"
	"sharelock/internal/ident"
	"sharelock/internal/proc"
	"sharelock/internal/testdir"
)

const helperEnv = "SHARELOCK_TEST_HELPER"

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(runWindowsHelper(role, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func runWindowsHelper(role string, args []string) int {
	switch role {
	case "counter":
		return runCounter(args)
	case "hold":
		return runHold(args)
	}
	fmt.Fprintf(os.Stderr, "unknown helper role %q\n", role)
	return 2
}

func runHold(args []string) int {
	fs := flag.NewFlagSet("hold", flag.ContinueOnError)
	path := fs.String("path", "", "protected path")
	lease := fs.Duration("lease", 60*time.Second, "lease")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	l, err := sharelock.TryAcquire(ctx, *path, sharelock.WithLease(*lease), sharelock.WithApp("wems.exe"))
	cancel()
	if err != nil {
		fmt.Printf("error %v\n", err)
		return 1
	}
	fmt.Printf("held %d %d %d\n", l.Token(), os.Getpid(), ident.Self().StartTime)
	bufio.NewReader(os.Stdin).ReadString('\n')
	if err := l.Release(); err != nil {
		fmt.Printf("error release: %v\n", err)
		return 1
	}
	return 0
}

// winHelper is a running helper process.
type winHelper struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Scanner
	stderr bytes.Buffer
}

// startWinHelper starts the test binary in role with args; it is killed
// when the test ends.
func startWinHelper(t *testing.T, name, role string, args ...string) *winHelper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h := &winHelper{name: name, cmd: exec.Command(exe, args...)}
	h.cmd.Env = append(os.Environ(), helperEnv+"="+role)
	h.cmd.Stderr = &h.stderr
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := h.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.stdin, h.out = stdin, bufio.NewScanner(stdout)
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		stdin.Close()
		h.cmd.Process.Kill()
		h.cmd.Wait()
		if t.Failed() && h.stderr.Len() > 0 {
			t.Logf("%s stderr:\n%s", name, h.stderr.String())
		}
	})
	return h
}

// expect reads the helper's next line, which must start with word, and
// returns its fields. Lines are read in a goroutine so that a silent helper
// fails the test after timeout instead of hanging it.
func (h *winHelper) expect(t *testing.T, word string, timeout time.Duration) []string {
	t.Helper()
	line := make(chan string, 1)
	go func() {
		if h.out.Scan() {
			line <- h.out.Text()
		}
		close(line)
	}()
	select {
	case l, ok := <-line:
		f := strings.Fields(l)
		if !ok || len(f) == 0 || f[0] != word {
			t.Fatalf("%s: got %q (exited: %v), want a %q line; stderr:\n%s", h.name, l, !ok, word, h.stderr.String())
		}
		return f
	case <-time.After(timeout):
		t.Fatalf("%s: no %q line within %v", h.name, word, timeout)
	}
	panic("unreachable")
}

// TestWindowsProcessesCounter: Windows processes increment a shared counter
// file under the lock. No increment may be lost, no two holds may overlap,
// and tokens increase in hold order.
func TestWindowsProcessesCounter(t *testing.T) {
	const procs, n = 3, 40
	dir := testdir.New(t)
	path := filepath.Join(dir, "wems.db")
	counter := filepath.Join(dir, "counter")
	if err := os.WriteFile(counter, []byte("0"), 0o666); err != nil {
		t.Fatal(err)
	}
	var hs []*winHelper
	for i := 0; i < procs; i++ {
		hs = append(hs, startWinHelper(t, describe("win", i), "counter", "-path", path, "-counter", counter,
			"-log", filepath.Join(dir, describe("log", i)), "-n", strconv.Itoa(n), "-lease", "2s", "-gap", "2ms"))
	}
	for _, h := range hs {
		h.expect(t, "ready", 30*time.Second)
	}
	begin := time.Now()
	for _, h := range hs {
		if _, err := fmt.Fprintln(h.stdin, "go"); err != nil {
			t.Fatalf("%s: %v", h.name, err)
		}
	}
	for _, h := range hs {
		h.expect(t, "done", 120*time.Second)
	}
	elapsed := time.Since(begin)
	if got := readCounter(t, counter); got != procs*n {
		t.Errorf("counter = %d, want %d: increments were lost", got, procs*n)
	}
	var holds []xhold
	for i := 0; i < procs; i++ {
		holds = append(holds, readHolds(t, describe("win", i), filepath.Join(dir, describe("log", i)))...)
	}
	if len(holds) != procs*n {
		t.Fatalf("%d holds logged, want %d", len(holds), procs*n)
	}
	handoffs := checkExclusive(t, holds)
	if handoffs < 5 {
		t.Errorf("only %d handoffs between processes: too little contention was tested", handoffs)
	}
	t.Logf("%d acquisitions by %d Windows processes in %v (%v each), %d handoffs between processes",
		procs*n, procs, elapsed.Round(time.Millisecond), (elapsed / (procs * n)).Round(time.Microsecond), handoffs)
}

// TestKilledWindowsHolderTakenOver: a Windows holder killed with
// TerminateProcess (a crash, Task Manager) is taken over by a waiter on the
// same machine at once, through the same-machine liveness check (process
// gone), long before its 60 s lease ends. While it lives, it is refused
// with its DOMAIN\user named.
func TestKilledWindowsHolderTakenOver(t *testing.T) {
	const rounds = 3
	path := filepath.Join(testdir.New(t), "wems.db")
	var took []time.Duration
	for r := 0; r < rounds; r++ {
		h := startWinHelper(t, describe("holder", r), "hold", "-path", path, "-lease", "60s")
		f := h.expect(t, "held", 30*time.Second)
		token, _ := strconv.ParseUint(f[1], 10, 64)
		pid, _ := strconv.Atoi(f[2])
		start, _ := strconv.ParseUint(f[3], 10, 64)
		if pid != h.cmd.Process.Pid || proc.Check(pid, start) != proc.Alive {
			t.Fatalf("holder says PID %d start %d; process %d is %v", pid, start, h.cmd.Process.Pid, proc.Check(pid, start))
		}

		_, err := sharelock.TryAcquire(context.Background(), path)
		var le *sharelock.LockedError
		if !errors.As(err, &le) || le.Holder == nil || le.Holder.PID != pid {
			t.Fatalf("TryAcquire while the holder lives: %v, want a *LockedError naming PID %d", err, pid)
		}
		if want := ident.Self().User; le.Holder.User != want || !strings.Contains(want, `\`) {
			t.Errorf("holder recorded user %q, want %q (DOMAIN\\user)", le.Holder.User, want)
		}

		got := make(chan *sharelock.Lock, 1)
		errc := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			l, err := sharelock.Acquire(ctx, path)
			if err != nil {
				errc <- err
				return
			}
			got <- l
		}()
		time.Sleep(300 * time.Millisecond) // let the waiter settle into its wait
		killed := time.Now()
		if err := h.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		var l *sharelock.Lock
		select {
		case l = <-got:
		case err := <-errc:
			t.Fatalf("round %d: waiter: %v", r, err)
		}
		d := time.Since(killed)
		took = append(took, d)
		if l.Token() != token+1 {
			t.Errorf("round %d: waiter got token %d, want %d", r, l.Token(), token+1)
		}
		if d > 10*time.Second {
			t.Errorf("round %d: takeover %v after the kill; the same-machine check should beat the 60 s lease by far", r, d)
		}
		info, err := sharelock.Inspect(context.Background(), path, sharelock.WithHistory(1))
		if err != nil || len(info.History) != 1 || info.History[0].Kind != "takeover" ||
			info.History[0].Broke == nil || info.History[0].Broke.PID != pid {
			t.Errorf("round %d: history %+v, %v; want a takeover of PID %d", r, info.History, err, pid)
		} else {
			t.Logf("round %d: %s", r, info.History[0].Reason)
		}
		if err := l.Release(); err != nil {
			t.Errorf("round %d: release: %v", r, err)
		}
	}
	t.Logf("takeover after TerminateProcess (kill to acquisition): %v", took)
}
