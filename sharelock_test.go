//go:build unix

// Multi-process tests. The test binary re-executes itself as helper
// processes (the pattern of Go's os/exec and lockedfile tests): TestMain
// runs a helper role instead of the tests when SHARELOCK_TEST_HELPER names
// one. Helpers talk to the test on their standard output, one line per
// event, and take commands on their standard input; they exit when it is
// closed.

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
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sharelock"
	"sharelock/internal/ident"
	"sharelock/internal/nstest"
	"sharelock/internal/proc"
)

const helperEnv = "SHARELOCK_TEST_HELPER"

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(runHelper(role, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func runHelper(role string, args []string) int {
	switch role {
	case "agent":
		return runAgent(args)
	case "counter":
		return runCounter(args)
	}
	fmt.Fprintf(os.Stderr, "unknown helper role %q\n", role)
	return 2
}

// ---------------------------------------------------------------------------
// Helper side.

// agent is a helper process that holds at most one lock and obeys commands,
// one per line on standard input:
//
//	try [CTX]              TryAcquire (its context bounded by CTX, default 30s):
//	                       "held TOKEN NANOS" or "locked TOKEN PID HOST ISLOCKED"
//	acquire WAIT [HOLD]    Acquire waiting up to WAIT: "held TOKEN NANOS" (or
//	                       "locked ..."); with HOLD, holds that long, checks
//	                       the lock and releases it ("released ...")
//	release                "released TOKEN NANOS ok|lost|error:..."
//	break FORCE REASON     Break: "broke TOKEN BROKEPID", "notheld", "live" or "error ..."
//	inspect [OBSERVE]      "info STATE TOKEN DEADPROCESS HOST PID"
//	naive PID START        "naive VERDICT": proc.Check(PID, START) as seen here
//
// While it holds a lock it checks it every 50 ms (Check and Lost) and prints
// "lost TOKEN NANOS REASON" once when it is lost. NANOS are wall-clock
// time.Now().UnixNano() readings. Errors print "error ...".
type agent struct {
	path string
	opts []sharelock.Option

	outMu sync.Mutex
	lock  *sharelock.Lock
	stop  chan struct{} // stops the watcher of lock
	done  chan struct{} // closed when the watcher has stopped
}

func runAgent(args []string) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	path := fs.String("path", "", "protected path")
	lease := fs.Duration("lease", 0, "lease")
	hb := fs.Duration("heartbeat", 0, "heartbeat")
	app := fs.String("app", "", "application name")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	a := &agent{path: *path}
	if *lease > 0 {
		a.opts = append(a.opts, sharelock.WithLease(*lease))
	}
	if *hb > 0 {
		a.opts = append(a.opts, sharelock.WithHeartbeat(*hb))
	}
	if *app != "" {
		a.opts = append(a.opts, sharelock.WithApp(*app))
	}
	host, _ := os.Hostname()
	a.say("ready %d %s", os.Getpid(), host)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		a.do(strings.Fields(sc.Text()))
	}
	return 0
}

func (a *agent) say(format string, args ...any) {
	a.outMu.Lock()
	defer a.outMu.Unlock()
	fmt.Printf(format+"\n", args...)
}

func (a *agent) do(f []string) {
	if len(f) == 0 {
		return
	}
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	dur := func(i int) time.Duration {
		d, err := time.ParseDuration(arg(i))
		if err != nil {
			return 0
		}
		return d
	}
	switch f[0] {
	case "try":
		wait := dur(1)
		if wait <= 0 {
			wait = 30 * time.Second
		}
		a.acquire(wait, false, 0)
	case "acquire":
		a.acquire(dur(1), true, dur(2))
	case "release":
		a.release()
	case "break":
		a.breakLock(arg(1) == "true", strings.Join(f[2:], " "))
	case "inspect":
		a.inspect(dur(1))
	case "naive":
		pid, _ := strconv.Atoi(arg(1))
		start, _ := strconv.ParseUint(arg(2), 10, 64)
		a.say("naive %s", proc.Check(pid, start))
	default:
		a.say("error unknown command %q", f[0])
	}
}

// acquire runs Acquire (doWait) or TryAcquire with a context of wait.
func (a *agent) acquire(wait time.Duration, doWait bool, hold time.Duration) {
	if a.lock != nil {
		a.say("error already holding token %d", a.lock.Token())
		return
	}
	var l *sharelock.Lock
	var err error
	if doWait {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		l, err = sharelock.Acquire(ctx, a.path, a.opts...)
		cancel()
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		l, err = sharelock.TryAcquire(ctx, a.path, a.opts...)
		cancel()
	}
	now := time.Now().UnixNano()
	var le *sharelock.LockedError
	switch {
	case err == nil:
		a.lock = l
		a.stop, a.done = make(chan struct{}), make(chan struct{})
		go a.watch(l, a.stop, a.done)
		a.say("held %d %d", l.Token(), now)
	case errors.As(err, &le):
		pid, host := 0, "-"
		if le.Holder != nil {
			pid, host = le.Holder.PID, le.Holder.Host
		}
		a.say("locked %d %d %s %v", le.Token, pid, host, errors.Is(err, sharelock.ErrLocked))
		return
	default:
		a.say("error %v", err)
		return
	}
	if hold > 0 {
		time.Sleep(hold)
		if err := l.Check(); err != nil {
			a.say("error check after holding: %v", err)
		}
		a.release()
	}
}

// watch reports the loss of l, checking it every 50 ms, until stop closes.
func (a *agent) watch(l *sharelock.Lock, stop, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-l.Lost():
		case <-tick.C:
			if err := l.Check(); !errors.Is(err, sharelock.ErrLost) {
				continue
			}
		}
		now := time.Now().UnixNano()
		reason := "?"
		var lost *sharelock.LostError
		if errors.As(l.Err(), &lost) {
			reason = lost.Reason
		}
		a.say("lost %d %d %s", l.Token(), now, reason)
		return
	}
}

func (a *agent) release() {
	l := a.lock
	if l == nil {
		a.say("error not holding")
		return
	}
	close(a.stop)
	<-a.done
	a.lock = nil
	now := time.Now().UnixNano()
	status := "ok"
	if err := l.Release(); errors.Is(err, sharelock.ErrLost) {
		status = "lost"
	} else if err != nil {
		status = "error:" + strings.ReplaceAll(err.Error(), " ", "_")
	}
	a.say("released %d %d %s", l.Token(), now, status)
}

func (a *agent) breakLock(force bool, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := sharelock.Break(ctx, a.path, reason, force)
	switch {
	case err == nil:
		pid := 0
		if info.Holder != nil {
			pid = info.Holder.PID
		}
		a.say("broke %d %d", info.Token, pid)
	case errors.Is(err, sharelock.ErrNotHeld):
		a.say("notheld")
	case errors.Is(err, sharelock.ErrLive):
		a.say("live")
	default:
		a.say("error %v", err)
	}
}

func (a *agent) inspect(observe time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := sharelock.Inspect(ctx, a.path, sharelock.WithObserve(observe))
	if err != nil {
		a.say("error %v", err)
		return
	}
	host, pid := "-", 0
	if info.Holder != nil {
		host, pid = info.Holder.Host, info.Holder.PID
	}
	a.say("info %s %d %v %s %d", info.State, info.Token, info.DeadProcess, host, pid)
}

// ---------------------------------------------------------------------------
// Test side.

// helper is a running helper process.
type helper struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr syncBuffer
	exited chan struct{} // closed after Wait returned
	err    error         // Wait's result, valid after exited
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// helperCmd returns a command that runs the test binary as a helper in
// role, with args.
func helperCmd(role string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), helperEnv+"="+role)
	return cmd
}

// startHelper starts the test binary as a helper in role.
func startHelper(t *testing.T, name, role string, args ...string) *helper {
	t.Helper()
	return startCmd(t, name, helperCmd(role, args...))
}

// startCmd starts cmd (which runs a helper, maybe through a wrapper) and
// arranges for it to be killed at the end of the test.
func startCmd(t *testing.T, name string, cmd *exec.Cmd) *helper {
	t.Helper()
	h := &helper{t: t, name: name, cmd: cmd, lines: make(chan string, 10000), exited: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.stdin, err = cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &h.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
		h.err = cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(func() {
		h.stdin.Close()
		_ = cmd.Process.Kill()
		<-h.exited
		if s := h.stderr.String(); strings.Contains(s, "DATA RACE") || strings.Contains(s, "panic:") || (t.Failed() && s != "") {
			if !t.Failed() {
				t.Errorf("%s reported a problem", name)
			}
			t.Logf("%s stderr:\n%s", name, s)
		}
	})
	return h
}

func (h *helper) pid() int { return h.cmd.Process.Pid }

func (h *helper) send(format string, args ...any) {
	h.t.Helper()
	if _, err := fmt.Fprintf(h.stdin, format+"\n", args...); err != nil {
		h.t.Fatalf("%s: sending command: %v", h.name, err)
	}
}

func (h *helper) signal(sig syscall.Signal) {
	h.t.Helper()
	if err := syscall.Kill(h.pid(), sig); err != nil {
		h.t.Fatalf("%s: kill -%d: %v", h.name, sig, err)
	}
}

// next returns the helper's next output line, failing the test if none
// comes within timeout.
func (h *helper) next(timeout time.Duration) string {
	h.t.Helper()
	select {
	case line, ok := <-h.lines:
		if !ok {
			<-h.exited
			h.t.Fatalf("%s exited (%v) without the expected output; stderr:\n%s", h.name, h.err, h.stderr.String())
		}
		return line
	case <-time.After(timeout):
		h.t.Fatalf("%s: no output within %v; stderr:\n%s", h.name, timeout, h.stderr.String())
	}
	panic("unreachable")
}

// expect returns the fields of the helper's next output line, which must
// start with word.
func (h *helper) expect(word string, timeout time.Duration) []string {
	h.t.Helper()
	line := h.next(timeout)
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != word {
		h.t.Fatalf("%s: got %q, want a %q line", h.name, line, word)
	}
	return f
}

// startAgent starts an agent helper for path and waits until it is ready.
func startAgent(t *testing.T, name, path string, flags ...string) *helper {
	t.Helper()
	h := startHelper(t, name, "agent", append([]string{"-path", path}, flags...)...)
	h.expect("ready", 30*time.Second)
	return h
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return v
}

// hold is one hold of the lock as logged by a helper.
type hold struct {
	who        string
	token      int64
	start, end int64 // wall-clock nanoseconds
}

// checkHolds sorts holds by start and checks that they do not overlap and
// that tokens strictly increase.
func checkHolds(t *testing.T, holds []hold) {
	t.Helper()
	slices.SortFunc(holds, func(a, b hold) int {
		if a.start != b.start {
			if a.start < b.start {
				return -1
			}
			return 1
		}
		return int(a.token - b.token)
	})
	bad := 0
	for i := 1; i < len(holds); i++ {
		p, c := holds[i-1], holds[i]
		if c.start < p.end {
			bad++
			if bad <= 10 {
				t.Errorf("overlapping holds: %s token %d [%d, %d] and %s token %d [%d, %d] (overlap %v)",
					p.who, p.token, p.start, p.end, c.who, c.token, c.start, c.end, time.Duration(p.end-c.start))
			}
		}
		if c.token <= p.token {
			bad++
			if bad <= 10 {
				t.Errorf("token not increasing in start order: %s token %d then %s token %d", p.who, p.token, c.who, c.token)
			}
		}
	}
	if bad > 10 {
		t.Errorf("... %d violations in all", bad)
	}
}

// TestManyProcessesCounter: 8 processes increment a shared counter file 200
// times each, under the lock. No increment may be lost, and no two holds
// may overlap.
func TestManyProcessesCounter(t *testing.T) {
	const procs, n = 8, 200
	begin := time.Now()
	dir := t.TempDir()
	path := filepath.Join(dir, "wems.db")
	counter := filepath.Join(dir, "counter")
	if err := os.WriteFile(counter, []byte("0"), 0o666); err != nil {
		t.Fatal(err)
	}
	var hs []*helper
	for i := 0; i < procs; i++ {
		h := startHelper(t, fmt.Sprintf("worker%d", i), "counter", "-path", path, "-counter", counter,
			"-log", filepath.Join(dir, fmt.Sprintf("log%d", i)), "-n", strconv.Itoa(n), "-lease", "2s")
		hs = append(hs, h)
	}
	for _, h := range hs {
		h.expect("ready", 30*time.Second)
	}
	started := time.Now()
	for _, h := range hs {
		h.send("go")
	}
	for _, h := range hs {
		h.expect("done", 120*time.Second)
		<-h.exited
		if h.err != nil {
			t.Fatalf("%s: %v", h.name, h.err)
		}
	}
	elapsed := time.Since(started)

	b, err := os.ReadFile(counter)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(procs*n) {
		t.Errorf("counter = %s, want %d", got, procs*n)
	}
	var holds []hold
	for i := 0; i < procs; i++ {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("log%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			f := strings.Fields(line)
			if len(f) != 3 {
				t.Fatalf("log%d: bad line %q", i, line)
			}
			holds = append(holds, hold{fmt.Sprint("worker", i), atoi(t, f[0]), atoi(t, f[1]), atoi(t, f[2])})
		}
	}
	if len(holds) != procs*n {
		t.Fatalf("%d holds logged, want %d", len(holds), procs*n)
	}
	checkHolds(t, holds)
	info, err := sharelock.Inspect(context.Background(), path)
	if err != nil || info.State != sharelock.Free {
		t.Errorf("after all workers: %+v, %v", info, err)
	}
	// Runs of consecutive holds by the same worker show how fair handoff is.
	switches := 0
	for i := 1; i < len(holds); i++ {
		if holds[i].who != holds[i-1].who {
			switches++
		}
	}
	t.Logf("%d acquisitions by %d processes in %v (%v per acquisition, %d handoffs between processes); whole test %v",
		procs*n, procs, elapsed.Round(time.Millisecond), (elapsed / (procs * n)).Round(time.Microsecond), switches,
		time.Since(begin).Round(time.Millisecond))
}

// TestNoWaitRefusedWithHolderIdentity: a lock held by another process is
// refused at once, naming that process's user, host, application and PID.
func TestNoWaitRefusedWithHolderIdentity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wems.db")
	a := startAgent(t, "A", path, "-app", "wems.exe")
	a.send("try")
	token := atoi(t, a.expect("held", 30*time.Second)[1])

	start := time.Now()
	l, err := sharelock.TryAcquire(context.Background(), path)
	if err == nil {
		l.Release()
		t.Fatal("TryAcquire succeeded while another process holds the lock")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("TryAcquire took %v to refuse", d)
	}
	var le *sharelock.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not a *LockedError", err, err)
	}
	if !errors.Is(err, sharelock.ErrLocked) {
		t.Errorf("errors.Is(%v, ErrLocked) = false", err)
	}
	self := ident.Self()
	want := fmt.Sprintf("%s is in use by %s on %s (wems.exe) since ", path, self.User, self.Host)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if le.Holder == nil || le.Holder.PID != a.pid() {
		t.Errorf("holder %+v, want PID %d", le.Holder, a.pid())
	}
	if le.Token != uint64(token) {
		t.Errorf("LockedError.Token = %d, want the holder's %d", le.Token, token)
	}
	t.Logf("refused: %v", err)
}

// TestKill9HolderSameHostTakeover: a holder on this machine killed with
// SIGKILL is taken over at once, long before its lease ends.
func TestKill9HolderSameHostTakeover(t *testing.T) {
	const rounds = 5
	const lease = 60 * time.Second
	path := filepath.Join(t.TempDir(), "wems.db")
	w := startAgent(t, "waiter", path)
	var took []time.Duration
	for r := 0; r < rounds; r++ {
		a := startAgent(t, fmt.Sprint("holder", r), path, "-lease", lease.String())
		a.send("try")
		token := atoi(t, a.expect("held", 30*time.Second)[1])

		w.send("try")
		w.expect("locked", 30*time.Second)
		w.send("acquire 30s")
		time.Sleep(300 * time.Millisecond) // let the waiter settle into its wait
		killed := time.Now()
		a.signal(syscall.SIGKILL)
		f := w.expect("held", 40*time.Second)
		d := time.Duration(atoi(t, f[2]) - killed.UnixNano())
		took = append(took, d)
		if got := atoi(t, f[1]); got != token+1 {
			t.Errorf("round %d: waiter got token %d, want %d", r, got, token+1)
		}
		if d > 5*time.Second {
			t.Errorf("round %d: takeover %v after the kill; want far less than the %v lease", r, d, lease)
		}
		info, err := sharelock.Inspect(context.Background(), path, sharelock.WithHistory(1))
		if err != nil || len(info.History) != 1 || info.History[0].Kind != "takeover" ||
			info.History[0].Broke == nil || info.History[0].Broke.PID != a.pid() {
			t.Errorf("round %d: history %+v, %v; want a takeover of PID %d", r, info.History, err, a.pid())
		}
		w.send("release")
		w.expect("released", 30*time.Second)
	}
	sorted := slices.Clone(took)
	slices.Sort(sorted)
	t.Logf("takeover after kill -9 (kill to waiter's acquisition): median %v, min %v, max %v, all %v",
		sorted[len(sorted)/2], sorted[0], sorted[len(sorted)-1], took)
}

// TestSIGSTOPHolderPastLease: a holder paused (SIGSTOP) past its lease is
// taken over by a waiter after the lease; when it resumes it learns at once
// that it lost the lock.
func TestSIGSTOPHolderPastLease(t *testing.T) {
	const lease, heartbeat = 1500 * time.Millisecond, 300 * time.Millisecond
	path := filepath.Join(t.TempDir(), "wems.db")
	a := startAgent(t, "A", path, "-lease", lease.String(), "-heartbeat", heartbeat.String())
	w := startAgent(t, "waiter", path)
	a.send("try")
	token := atoi(t, a.expect("held", 30*time.Second)[1])
	w.send("try")
	w.expect("locked", 30*time.Second)
	w.send("acquire 30s")
	time.Sleep(500 * time.Millisecond) // the waiter sees the heartbeat change

	stopped := time.Now()
	a.signal(syscall.SIGSTOP)
	f := w.expect("held", 30*time.Second)
	wtoken, took := atoi(t, f[1]), time.Duration(atoi(t, f[2])-stopped.UnixNano())
	if wtoken != token+1 {
		t.Errorf("waiter token %d, want %d", wtoken, token+1)
	}
	// The waiter may only take over after a whole lease without a change;
	// the last change was at most a heartbeat before the stop (with 200 ms
	// of slack for scheduling).
	if min := lease - heartbeat - 200*time.Millisecond; took < min {
		t.Errorf("taken over %v after SIGSTOP; must be at least %v (lease %v)", took, min, lease)
	}
	if took > 10*lease {
		t.Errorf("taken over only %v after SIGSTOP (lease %v)", took, lease)
	}

	resumed := time.Now()
	a.signal(syscall.SIGCONT)
	f = a.expect("lost", 5*time.Second)
	if got := atoi(t, f[1]); got != token || got >= wtoken {
		t.Errorf("A lost token %d; want its own %d, below the waiter's %d", got, token, wtoken)
	}
	noticed := time.Duration(atoi(t, f[2]) - resumed.UnixNano())
	a.send("release")
	if st := a.expect("released", 5*time.Second)[3]; st != "lost" {
		t.Errorf("A's Release after the takeover: %s, want ErrLost", st)
	}
	info, err := sharelock.Inspect(context.Background(), path)
	if err != nil || info.State != sharelock.Held || info.Token != uint64(wtoken) || info.Holder.PID != w.pid() {
		t.Errorf("after A resumed: %+v, %v; want held by the waiter with token %d", info, err, wtoken)
	}
	t.Logf("takeover %v after SIGSTOP (lease %v); A noticed the loss %v after SIGCONT: %s",
		took.Round(time.Millisecond), lease, noticed.Round(10*time.Microsecond), strings.Join(f[3:], " "))
}

// TestBreakStaleThreeProcesses: three processes break the same stale lock
// (its holder is paused) at once: exactly one succeeds; the others find it
// free. The paused holder learns that it lost the lock.
func TestBreakStaleThreeProcesses(t *testing.T) {
	const lease = 500 * time.Millisecond
	path := filepath.Join(t.TempDir(), "wems.db")
	holder := startAgent(t, "holder", path, "-lease", lease.String(), "-heartbeat", "100ms")
	var bs []*helper
	for i := 0; i < 3; i++ {
		bs = append(bs, startAgent(t, fmt.Sprint("breaker", i), path))
	}
	for iter := 0; iter < 10; iter++ {
		holder.send("acquire 10s")
		token := atoi(t, holder.expect("held", 15*time.Second)[1])
		holder.signal(syscall.SIGSTOP)
		for _, b := range bs {
			b.send("break false stale")
		}
		broke, free := 0, 0
		for _, b := range bs {
			line := b.next(30 * time.Second)
			f := strings.Fields(line)
			switch {
			case len(f) == 3 && f[0] == "broke":
				broke++
				if atoi(t, f[1]) != token+1 || atoi(t, f[2]) != int64(holder.pid()) {
					t.Errorf("iteration %d: %s: %q; want break token %d of PID %d", iter, b.name, line, token+1, holder.pid())
				}
			case line == "notheld":
				free++
			default:
				t.Errorf("iteration %d: %s: %q", iter, b.name, line)
			}
		}
		if broke != 1 || free != 2 {
			t.Fatalf("iteration %d: %d breaks succeeded and %d found the lock free; want 1 and 2", iter, broke, free)
		}
		holder.signal(syscall.SIGCONT)
		if got := atoi(t, holder.expect("lost", 5*time.Second)[1]); got != token {
			t.Fatalf("iteration %d: holder lost token %d, want %d", iter, got, token)
		}
		holder.send("release")
		holder.expect("released", 5*time.Second)
	}
}

// TestStaleRaceThreeAcquirers: three processes wait for a lock whose holder
// is paused. Exactly one takes it over after the lease; the others get it
// one after the other, each only after the previous one released it.
func TestStaleRaceThreeAcquirers(t *testing.T) {
	const lease = 500 * time.Millisecond
	path := filepath.Join(t.TempDir(), "wems.db")
	holder := startAgent(t, "holder", path, "-lease", lease.String(), "-heartbeat", "100ms")
	var ws []*helper
	for i := 0; i < 3; i++ {
		ws = append(ws, startAgent(t, fmt.Sprint("waiter", i), path, "-lease", "1s", "-heartbeat", "100ms"))
	}
	for iter := 0; iter < 3; iter++ {
		holder.send("acquire 10s")
		token := atoi(t, holder.expect("held", 15*time.Second)[1])
		holder.signal(syscall.SIGSTOP)
		for _, w := range ws {
			w.send("acquire 30s 600ms")
		}
		var holds []hold
		for _, w := range ws {
			f := w.expect("held", 30*time.Second)
			g := w.expect("released", 30*time.Second)
			if g[1] != f[1] || g[3] != "ok" {
				t.Errorf("iteration %d: %s: %v after %v", iter, w.name, g, f)
			}
			holds = append(holds, hold{w.name, atoi(t, f[1]), atoi(t, f[2]), atoi(t, g[2])})
		}
		checkHolds(t, holds)
		for i, h := range holds {
			if h.token != token+1+int64(i) {
				t.Errorf("iteration %d: tokens %+v; want %d, %d, %d", iter, holds, token+1, token+2, token+3)
				break
			}
		}
		info, err := sharelock.Inspect(context.Background(), path, sharelock.WithHistory(4))
		var kinds []string
		for _, e := range info.History {
			kinds = append(kinds, e.Kind)
		}
		if err != nil || !slices.Equal(kinds[1:], []string{"takeover", "acquire", "acquire"}) {
			t.Errorf("iteration %d: history kinds %v, %v; want one takeover, then two acquires", iter, kinds, err)
		}
		holder.signal(syscall.SIGCONT)
		holder.expect("lost", 5*time.Second)
		holder.send("release")
		holder.expect("released", 5*time.Second)
	}
}

// TestPIDNamespaces: two simulated machines (PID+UTS namespaces of this
// kernel, same machine and boot IDs). A holder on m1 records a PID that does
// not exist on m2; m2 must not judge it by that PID: it gets ErrLocked, and
// Inspect reports the lock held, not stale. That stays so even after m1's
// namespace is gone: only the lease can end the hold.
func TestPIDNamespaces(t *testing.T) {
	nstest.Require(t)
	const holderPID = 5000
	path := filepath.Join(t.TempDir(), "wems.db")
	agentArgs := []string{"-path", path, "-lease", "60s"}
	cmd1 := nstest.Command("m1", holderPID, os.Args[0], agentArgs...)
	cmd1.Env = append(os.Environ(), helperEnv+"=agent")
	m1 := startCmd(t, "m1", cmd1)
	if f := m1.expect("ready", 30*time.Second); f[1] != strconv.Itoa(holderPID) || f[2] != "m1" {
		t.Fatalf("m1 helper: %v; want PID %d on host m1", f, holderPID)
	}
	m1.send("try")
	token := atoi(t, m1.expect("held", 30*time.Second)[1])

	// The host's view: held by m1, by a PID that is not checked here.
	info, err := sharelock.Inspect(context.Background(), path)
	if err != nil || info.State != sharelock.Held || info.DeadProcess || info.Holder == nil ||
		info.Holder.Host != "m1" || info.Holder.PID != holderPID {
		t.Fatalf("host's Inspect: %+v (holder %+v), %v; want held by PID %d on m1", info, info.Holder, err, holderPID)
	}
	if info.Holder.PIDNS == ident.Self().PIDNS || info.Holder.MachineID != ident.Self().MachineID {
		t.Fatalf("m1's holder recorded PID namespace %q and machine %q; want another namespace of this machine (%q, %q)",
			info.Holder.PIDNS, info.Holder.MachineID, ident.Self().PIDNS, ident.Self().MachineID)
	}
	start := info.Holder.StartTime

	cmd2 := nstest.Command("m2", 0, os.Args[0], agentArgs...)
	cmd2.Env = append(os.Environ(), helperEnv+"=agent")
	m2 := startCmd(t, "m2", cmd2)
	if f := m2.expect("ready", 30*time.Second); f[1] != "1" || f[2] != "m2" {
		t.Fatalf("m2 helper: %v; want PID 1 on host m2", f)
	}
	checkM2 := func(when string) {
		t.Helper()
		// The premise: judged by PID on m2, the holder would be dead.
		m2.send("naive %d %d", holderPID, start)
		if f := m2.expect("naive", 30*time.Second); f[1] != "dead" {
			t.Fatalf("%s: on m2, PID %d is %s; the test needs a PID that does not exist there", when, holderPID, f[1])
		}
		m2.send("try")
		f := m2.expect("locked", 30*time.Second)
		if want := []string{"locked", fmt.Sprint(token), fmt.Sprint(holderPID), "m1", "true"}; !slices.Equal(f, want) {
			t.Errorf("%s: m2's TryAcquire: %v, want %v", when, f, want)
		}
		m2.send("inspect")
		if f, want := m2.expect("info", 30*time.Second), []string{"info", "held", fmt.Sprint(token), "false", "m1", fmt.Sprint(holderPID)}; !slices.Equal(f, want) {
			t.Errorf("%s: m2's Inspect: %v, want %v", when, f, want)
		}
		m2.send("inspect 1s")
		if f := m2.expect("info", 30*time.Second); f[1] != "held" {
			t.Errorf("%s: m2's Inspect watching for 1 s: %v, want held", when, f)
		}
	}
	checkM2("m1 alive")

	// Kill m1's whole namespace: its holder is gone, but m2 cannot know
	// that by PID and must wait for the (60 s) lease.
	m1.signal(syscall.SIGKILL)
	<-m1.exited
	checkM2("m1 gone")
	if _, err := sharelock.TryAcquire(context.Background(), path); !errors.Is(err, sharelock.ErrLocked) {
		t.Errorf("host's TryAcquire after m1 died: %v, want ErrLocked (lease not over)", err)
	}
}

// TestTryAcquireAfterLossSeesSuccessor: a process whose lock was broken
// (it learned so from its heartbeat) must see the lock as it is now when it
// tries again: held by the new holder, who must be named, not the process's
// own old claim; and free once that holder released it.
func TestTryAcquireAfterLossSeesSuccessor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wems.db")
	l, err := sharelock.TryAcquire(context.Background(), path, sharelock.WithLease(1500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	b := startAgent(t, "B", path)
	b.send("break true admin")
	b.expect("broke", 30*time.Second)
	select {
	case <-l.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("the broken holder did not learn of the break")
	}
	if err := l.Release(); !errors.Is(err, sharelock.ErrLost) {
		t.Fatalf("Release after the break: %v, want ErrLost", err)
	}
	b.send("try")
	btoken := atoi(t, b.expect("held", 30*time.Second)[1])

	_, err = sharelock.TryAcquire(context.Background(), path)
	var le *sharelock.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("TryAcquire while B holds the lock: %v, want a *LockedError", err)
	}
	named := 0
	if le.Holder != nil {
		named = le.Holder.PID
	}
	if le.Token != uint64(btoken) || named != b.pid() {
		t.Errorf("TryAcquire while B (PID %d, token %d) holds the lock names token %d, PID %d: %v",
			b.pid(), btoken, le.Token, named, err)
	}

	b.send("release")
	b.expect("released", 30*time.Second)
	l2, err := sharelock.TryAcquire(context.Background(), path)
	if err != nil {
		t.Errorf("TryAcquire of the free lock: %v", err)
	} else {
		if l2.Token() != uint64(btoken)+1 {
			t.Errorf("token %d, want %d", l2.Token(), btoken+1)
		}
		l2.Release()
	}
}
