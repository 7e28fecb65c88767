//go:build unix

package main

// These tests build the real sharelock binary once and run it as separate
// processes, the way users and scripts do.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// slBin is the sharelock binary built by TestMain; slEtcdBin, on Linux,
// sharelock-etcd beside it.
var slBin, slEtcdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sharelock-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// A developer's own store must not redirect the tests.
	os.Unsetenv(storeEnv)
	slBin = filepath.Join(dir, "sharelock")
	builds := [][]string{{"build", "-o", slBin, "."}}
	if runtime.GOOS == "linux" {
		// The etcd build beside it, where sharelock looks for it
		// (etcd_cli_linux_test.go); built alongside.
		slEtcdBin = filepath.Join(dir, etcdBinaryName)
		builds = append(builds, []string{"build", "-tags", "etcd", "-o", slEtcdBin, "."})
	}
	errs := make([]error, len(builds))
	outs := make([][]byte, len(builds))
	var wg sync.WaitGroup
	for i, b := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = exec.Command("go", b...).CombinedOutput()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			fmt.Fprintf(os.Stderr, "go %s: %v\n%s", strings.Join(builds[i], " "), err, outs[i])
			os.RemoveAll(dir)
			os.Exit(2)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is a bytes.Buffer safe for a writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// result is how a sharelock process ended.
type result struct {
	code    int            // exit status; -1 if killed by a signal
	sig     syscall.Signal // the signal that killed it, or 0
	stdout  string
	stderr  string
	elapsed time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d (signal %d) after %v\nstdout:\n%s\nstderr:\n%s", r.code, int(r.sig), r.elapsed.Round(time.Millisecond), r.stdout, r.stderr)
}

// bgProc is a sharelock process running in the background.
type bgProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	stdout  syncBuffer
	stderr  syncBuffer
	started time.Time
	done    chan struct{}
	res     result
}

// startCLI starts sharelock with args. The process is killed when the test
// ends if it is still running.
func startCLI(t *testing.T, args ...string) *bgProc {
	t.Helper()
	return startCmd(t, exec.Command(slBin, args...))
}

// startCmd starts cmd (sharelock, or a shell that execs it) like startCLI.
func startCmd(t *testing.T, cmd *exec.Cmd) *bgProc {
	t.Helper()
	p := &bgProc{t: t, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
	// A grandchild that outlives its parent keeps our pipes open; do not
	// wait for it forever.
	cmd.WaitDelay = 5 * time.Second
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		r := result{code: cmd.ProcessState.ExitCode(), elapsed: time.Since(p.started)}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.sig = ws.Signal()
		}
		r.stdout, r.stderr = p.stdout.String(), p.stderr.String()
		p.res = r
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *bgProc) pid() int { return p.cmd.Process.Pid }

func (p *bgProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to end.
func (p *bgProc) wait(d time.Duration) result {
	p.t.Helper()
	select {
	case <-p.done:
		return p.res
	case <-time.After(d):
		p.t.Fatalf("%v still running after %v\nstdout:\n%s\nstderr:\n%s", p.cmd.Args, d, p.stdout.String(), p.stderr.String())
		return result{}
	}
}

// waitOutput waits up to d until the process's stdout contains s.
func (p *bgProc) waitOutput(s string, d time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		out := p.stdout.String()
		if strings.Contains(out, s) {
			return out
		}
		if p.exited() || time.Now().After(deadline) {
			p.t.Fatalf("stdout of %v never showed %q\nstdout:\n%s\nstderr:\n%s", p.cmd.Args, s, out, p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runCLI runs sharelock with args to completion (bounded at one minute).
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	return startCLI(t, args...).wait(time.Minute)
}

// statusOut mirrors the documented JSON of `sharelock status --json`.
type statusOut struct {
	Path                string     `json:"path"`
	State               string     `json:"state"`
	Token               uint64     `json:"token"`
	Holder              *holderOut `json:"holder"`
	Since               string     `json:"since"`
	HeartbeatAgeSeconds *float64   `json:"heartbeat_age_seconds"`
	Error               string     `json:"error"`
}

type holderOut struct {
	User string `json:"user"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
	App  string `json:"app"`
}

// statusOfJSON runs `status --json paths...` and decodes its output both into
// statusOut values and into raw key maps (to check the field names).
func statusOfJSON(t *testing.T, paths ...string) ([]statusOut, []map[string]json.RawMessage, result) {
	t.Helper()
	r := runCLI(t, append([]string{"status", "--json"}, paths...)...)
	var out []statusOut
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("status --json output is not a JSON array of objects: %v\n%v", err, r)
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(paths) {
		t.Fatalf("status --json gave %d objects for %d paths\n%v", len(out), len(paths), r)
	}
	return out, raw, r
}

// status1 returns the status of one lock, failing the test on an error.
func status1(t *testing.T, db string) statusOut {
	t.Helper()
	out, _, r := statusOfJSON(t, db)
	if r.code != 0 {
		t.Fatalf("status --json %s failed\n%v", db, r)
	}
	return out[0]
}

// waitHeld polls status until db is held and returns that status. It fails
// the test if holder (the process expected to take the lock) ends first.
func waitHeld(t *testing.T, db string, holder *bgProc) statusOut {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := status1(t, db)
		if st.State == "held" {
			return st
		}
		if holder != nil && holder.exited() {
			t.Fatalf("holder ended before the lock showed held\n%v", holder.res)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed held; last status %+v", db, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func atoiT(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

func newDB(t *testing.T) string {
	return filepath.Join(t.TempDir(), "data.db")
}

func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

// 1. The command gets the token and path, and its exit status comes back.
func TestRunPassesTokenPathAndExitStatus(t *testing.T) {
	db := newDB(t)
	r := runCLI(t, "run", db, "--", "sh", "-c", `echo "$SHARELOCK_TOKEN" "$SHARELOCK_PATH"; exit 3`)
	if r.code != 3 {
		t.Fatalf("want exit 3 (the command's)\n%v", r)
	}
	if want := "1 " + db + "\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	// Released afterwards; a second run gets the next token.
	r = runCLI(t, "run", db, "--", "sh", "-c", `echo "$SHARELOCK_TOKEN"`)
	if r.code != 0 || r.stdout != "2\n" {
		t.Fatalf("second run: want exit 0 and token 2\n%v", r)
	}
	if st := status1(t, db); st.State != "free" || st.Token != 2 {
		t.Errorf("after both runs: %+v, want free with token 2", st)
	}
}

func TestRunChildKilledBySignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM, syscall.SIGUSR1} {
		t.Run(sig.String(), func(t *testing.T) {
			db := newDB(t)
			r := runCLI(t, "run", db, "--", "sh", "-c", fmt.Sprintf("kill -%d $$", int(sig)))
			if want := 128 + int(sig); r.code != want {
				t.Fatalf("want exit %d\n%v", want, r)
			}
			if st := status1(t, db); st.State != "free" {
				t.Errorf("lock not released: %+v", st)
			}
		})
	}
}

// 2. A second run while the lock is held.
func TestRunLockedByOther(t *testing.T) {
	db := newDB(t)
	holder := startCLI(t, "run", db, "--", "sleep", "30")
	st := waitHeld(t, db, holder)
	if st.Holder == nil {
		t.Fatalf("held status has no holder: %+v", st)
	}

	r := runCLI(t, "run", db, "--", "true")
	if r.code != exitLocked {
		t.Fatalf("want exit %d\n%v", exitLocked, r)
	}
	mustContain(t, "stderr", r.stderr, db+" is in use by", st.Holder.User, st.Holder.Host, "(sleep)",
		"sharelock break", "--wait")
	if r.stdout != "" {
		t.Errorf("the command ran although the lock was held: stdout %q", r.stdout)
	}

	t.Run("wait-300ms", func(t *testing.T) {
		r := runCLI(t, "run", "--wait", "300ms", db, "--", "echo", "ran")
		if r.code != exitLocked {
			t.Fatalf("want exit %d\n%v", exitLocked, r)
		}
		if r.elapsed < 300*time.Millisecond || r.elapsed > 15*time.Second {
			t.Errorf("gave up after %v, want about 300ms", r.elapsed)
		}
		mustContain(t, "stderr", r.stderr, "is in use by", "(sleep)")
		if strings.Contains(r.stdout, "ran") {
			t.Error("the command ran although the lock was held")
		}
	})

	if holder.exited() {
		t.Fatalf("holder ended early\n%v", holder.res)
	}
	if st2 := status1(t, db); st2.State != "held" || st2.Token != st.Token {
		t.Errorf("the lock changed hands: %+v, was %+v", st2, st)
	}
}

func TestRunWaitsForHolder(t *testing.T) {
	db := newDB(t)
	holder := startCLI(t, "run", db, "--", "sleep", "2")
	waitHeld(t, db, holder)
	r := runCLI(t, "run", "--wait", "10s", db, "--", "sh", "-c", `echo "$SHARELOCK_TOKEN"`)
	if r.code != 0 || r.stdout != "2\n" {
		t.Fatalf("waiter: want exit 0 and token 2\n%v", r)
	}
	if hr := holder.wait(10 * time.Second); hr.code != 0 {
		t.Errorf("holder: want exit 0\n%v", hr)
	}
}

// 3. status.
func TestStatusJSON(t *testing.T) {
	db := newDB(t)

	// Never locked.
	out, raw, _ := statusOfJSON(t, db)
	if out[0].State != "free" || out[0].Token != 0 || out[0].Path != db {
		t.Errorf("never-locked status %+v", out[0])
	}
	if _, ok := raw[0]["holder"]; ok {
		t.Errorf("free lock has a holder: %s", raw[0]["holder"])
	}

	holder := startCLI(t, "run", db, "--", "sleep", "30")
	waitHeld(t, db, holder)
	out, raw, r := statusOfJSON(t, db)
	st := out[0]
	keys := mapKeys(raw[0])
	if want := []string{"heartbeat_age_seconds", "holder", "path", "since", "state", "token"}; !slices.Equal(keys, want) {
		t.Errorf("held status keys %v, want %v\n%s", keys, want, r.stdout)
	}
	var hraw map[string]json.RawMessage
	if err := json.Unmarshal(raw[0]["holder"], &hraw); err != nil {
		t.Fatal(err)
	}
	if keys, want := mapKeys(hraw), []string{"app", "host", "pid", "user"}; !slices.Equal(keys, want) {
		t.Errorf("holder keys %v, want %v", keys, want)
	}
	if st.Path != db || st.State != "held" || st.Token != 1 {
		t.Errorf("held status %+v", st)
	}
	h := st.Holder
	if h.PID != holder.pid() || h.App != "sleep" {
		t.Errorf("holder %+v, want pid %d (the sharelock process) and app sleep", h, holder.pid())
	}
	if host, err := os.Hostname(); err == nil && h.Host != host {
		t.Errorf("holder host %q, want %q", h.Host, host)
	}
	if u, err := user.Current(); err == nil && h.User != u.Username {
		t.Errorf("holder user %q, want %q", h.User, u.Username)
	}
	since, err := time.Parse(time.RFC3339, st.Since)
	if err != nil {
		t.Errorf("since %q: %v", st.Since, err)
	} else if d := time.Since(since); d < -time.Minute || d > time.Minute {
		t.Errorf("since %v is not about now", since)
	}
	if st.HeartbeatAgeSeconds == nil || *st.HeartbeatAgeSeconds < 0 || *st.HeartbeatAgeSeconds > 60 {
		t.Errorf("heartbeat_age_seconds %v", st.HeartbeatAgeSeconds)
	}

	// Text output.
	tr := runCLI(t, "status", db)
	if tr.code != 0 {
		t.Fatalf("status\n%v", tr)
	}
	mustContain(t, "status text", tr.stdout, db, "held", "token 1", "(sleep)")

	// Several paths: one object each, in order.
	other := newDB(t)
	out, _, r = statusOfJSON(t, db, other)
	if r.code != 0 || out[0].Path != db || out[0].State != "held" || out[1].Path != other || out[1].State != "free" {
		t.Errorf("two paths: %+v\n%v", out, r)
	}

	// Released: free, holder gone, the token stays.
	if err := holder.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	holder.wait(10 * time.Second)
	out, raw, _ = statusOfJSON(t, db)
	if out[0].State != "free" || out[0].Token != 1 {
		t.Errorf("released status %+v", out[0])
	}
	if _, ok := raw[0]["holder"]; ok {
		t.Errorf("free lock has a holder: %s", raw[0]["holder"])
	}
	tr = runCLI(t, "status", db)
	mustContain(t, "status text", tr.stdout, "free")
}

func mapKeys(m map[string]json.RawMessage) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

func TestStatusMissingFolder(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-folder")
	db := filepath.Join(missing, "data.db")
	r := runCLI(t, "status", db)
	if r.code == 0 {
		t.Fatalf("status of a lock in a missing folder succeeded\n%v", r)
	}
	mustContain(t, "stderr", r.stderr, missing)

	good := newDB(t)
	out, _, r := statusOfJSON(t, good, db)
	if r.code == 0 {
		t.Errorf("status --json with a missing folder exited 0\n%v", r)
	}
	if out[0].State != "free" || out[1].Path != db || out[1].State != "error" || !strings.Contains(out[1].Error, missing) {
		t.Errorf("status --json: %+v", out)
	}
	if _, err := os.Lstat(missing); err == nil {
		t.Errorf("status created %s", missing)
	}
}

// 5. The lock is broken while the command runs.
func TestRunLostStopsChild(t *testing.T) {
	db := newDB(t)
	holder := startCLI(t, "run", "--lease", "2s", db, "--", "sh", "-c", "echo $$; exec sleep 30")
	out := holder.waitOutput("\n", 10*time.Second)
	childPID := atoiT(t, strings.TrimSpace(out))
	waitHeld(t, db, holder)

	br := runCLI(t, "break", "--force", "--reason", "test", db)
	if br.code != 0 {
		t.Fatalf("break --force\n%v", br)
	}
	mustContain(t, "break output", br.stdout, "broke the lock", "(sh)")

	r := holder.wait(10 * time.Second)
	if r.code != exitLost {
		t.Fatalf("holder: want exit %d\n%v", exitLost, r)
	}
	mustContain(t, "holder stderr", r.stderr, "lost", "taken over")
	if alive(childPID) {
		t.Errorf("child %d still runs after the holder exited", childPID)
	}
	if st := status1(t, db); st.State != "free" || st.Token != 2 {
		t.Errorf("after the break: %+v, want free with token 2", st)
	}
}

func TestRunLostSignalsChild(t *testing.T) {
	db := newDB(t)
	script := `trap 'echo got-usr1; exit 0' USR1; echo ready; while :; do sleep 0.1; done`
	holder := startCLI(t, "run", "--lease", "2s", "--on-lost", "signal:USR1", db, "--", "sh", "-c", script)
	holder.waitOutput("ready", 10*time.Second)
	waitHeld(t, db, holder)

	if br := runCLI(t, "break", "--force", "--reason", "test", db); br.code != 0 {
		t.Fatalf("break --force\n%v", br)
	}
	r := holder.wait(10 * time.Second)
	if r.code != exitLost {
		t.Fatalf("holder: want exit %d\n%v", exitLost, r)
	}
	mustContain(t, "holder stdout", r.stdout, "got-usr1")
	mustContain(t, "holder stderr", r.stderr, "lost", "user defined signal 1")
}

// 6. break.
func TestBreakLiveHolderNeedsForce(t *testing.T) {
	db := newDB(t)
	holder := startCLI(t, "run", "--lease", "2s", db, "--", "sleep", "30")
	st := waitHeld(t, db, holder)

	r := runCLI(t, "break", "--reason", "test", db)
	if r.code != exitLocked {
		t.Fatalf("break of a live holder without --force: want exit %d\n%v", exitLocked, r)
	}
	mustContain(t, "stderr", r.stderr, "still changing", "--force")

	r = runCLI(t, "break", db)
	if r.code != exitUsage {
		t.Fatalf("break without --reason: want exit %d\n%v", exitUsage, r)
	}
	mustContain(t, "stderr", r.stderr, "--reason")

	if holder.exited() {
		t.Fatalf("holder ended\n%v", holder.res)
	}
	if st2 := status1(t, db); st2.State != "held" || st2.Token != st.Token {
		t.Errorf("after the refused breaks: %+v, want still held with token %d", st2, st.Token)
	}
}

func TestBreakFree(t *testing.T) {
	db := newDB(t)
	r := runCLI(t, "break", "--reason", "test", db)
	if r.code != 0 {
		t.Fatalf("break of a never-locked file\n%v", r)
	}
	mustContain(t, "stdout", r.stdout, "nothing to break")

	if r := runCLI(t, "run", db, "--", "true"); r.code != 0 {
		t.Fatal(r)
	}
	r = runCLI(t, "break", "--force", "--reason", "test", db)
	if r.code != 0 {
		t.Fatalf("break of a released lock\n%v", r)
	}
	mustContain(t, "stdout", r.stdout, "nothing to break")
	if st := status1(t, db); st.State != "free" || st.Token != 1 {
		t.Errorf("a break of a free lock changed it: %+v", st)
	}
}

// 7. Usage errors.
func TestUsageErrors(t *testing.T) {
	db := newDB(t)
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"run"},
		{"run", db},
		{"run", db, "--"},
		{"run", db, "true"},
		{"run", db, "--wait", "1s", "--", "true"},
		{"run", "--on-lost", "bogus", db, "--", "true"},
		{"run", "--on-lost", "signal:NOSUCH", db, "--", "true"},
		{"run", "--wait", "soon", db, "--", "true"},
		{"run", "--no-such-flag", db, "--", "true"},
		{"status"},
		{"status", "--no-such-flag", db},
		{"break", "--reason", "x"},
		{"break", "--reason", "x", db, db},
	} {
		r := runCLI(t, args...)
		if r.code != exitUsage {
			t.Errorf("sharelock %q: want exit %d\n%v", args, exitUsage, r)
		}
		if r.stderr == "" {
			t.Errorf("sharelock %q: no message on stderr", args)
		}
	}
	if _, err := os.Lstat(db + ".lock"); err == nil {
		t.Errorf("a usage error took the lock (%s.lock exists)", db)
	}
	if r := runCLI(t, "help"); r.code != 0 || !strings.Contains(r.stdout, "Usage") {
		t.Errorf("help\n%v", r)
	}
}

// A command that cannot be started: 127 (not found) or 126 (not
// executable), as shells report, and the lock is released.
func TestRunCannotStart(t *testing.T) {
	db := newDB(t)
	notExec := filepath.Join(t.TempDir(), "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cmd  string
		code int
	}{
		{"sharelock-no-such-command", 127},
		{filepath.Join(t.TempDir(), "missing"), 127},
		{notExec, 126},
	} {
		r := runCLI(t, "run", db, "--", tc.cmd)
		if r.code != tc.code {
			t.Errorf("run -- %s: want exit %d\n%v", tc.cmd, tc.code, r)
		}
		mustContain(t, "stderr", r.stderr, "cannot start", filepath.Base(tc.cmd))
	}
	if st := status1(t, db); st.State != "free" || st.Token != 3 {
		t.Errorf("after three failed starts: %+v, want free with token 3", st)
	}
}

// 8. SIGTERM reaches the command; its status comes back; the lock is released.
func TestRunForwardsSIGTERM(t *testing.T) {
	db := newDB(t)
	script := `trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done`
	holder := startCLI(t, "run", db, "--", "sh", "-c", script)
	holder.waitOutput("ready", 10*time.Second)
	waitHeld(t, db, holder)
	if err := holder.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := holder.wait(10 * time.Second)
	if r.code != 7 {
		t.Fatalf("want exit 7 (the command's)\n%v", r)
	}
	mustContain(t, "stdout", r.stdout, "got-term")
	if st := status1(t, db); st.State != "free" || st.Token != 1 {
		t.Errorf("after SIGTERM: %+v, want free with token 1", st)
	}

	// A command that does not catch it dies of it: 128+15.
	holder = startCLI(t, "run", db, "--", "sleep", "30")
	waitHeld(t, db, holder)
	if err := holder.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := holder.wait(10 * time.Second); r.code != 128+int(syscall.SIGTERM) {
		t.Fatalf("want exit %d\n%v", 128+int(syscall.SIGTERM), r)
	}
	if st := status1(t, db); st.State != "free" || st.Token != 2 {
		t.Errorf("after SIGTERM: %+v, want free with token 2", st)
	}
}

// A signal while waiting for the lock ends the wait at once, like a 128+N
// exit, without taking the lock.
func TestRunSignalWhileWaiting(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			db := newDB(t)
			holder := startCLI(t, "run", db, "--", "sleep", "30")
			st := waitHeld(t, db, holder)
			waiter := startCLI(t, "run", "--wait", "60s", db, "--", "echo", "ran")
			time.Sleep(300 * time.Millisecond) // let it start waiting
			if err := waiter.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			r := waiter.wait(10 * time.Second)
			if r.code != 128+int(sig) {
				t.Errorf("waiter: want exit %d\n%v", 128+int(sig), r)
			}
			mustContain(t, "waiter stderr", r.stderr, "while waiting")
			if strings.Contains(r.stdout, "ran") {
				t.Error("the waiter's command ran")
			}
			if st2 := status1(t, db); st2.State != "held" || st2.Token != st.Token || st2.Holder.PID != holder.pid() {
				t.Errorf("after the waiter ended: %+v, want still held by %d", st2, holder.pid())
			}
		})
	}
}

// plantHolder writes generation 1 of db's lock by hand, as another machine
// following docs/protocol.md would: held by alice on FRONTDESK-PC, last
// written at "at" by its own clock, with the given lease.
func plantHolder(t *testing.T, db string, at time.Time, lease time.Duration) {
	t.Helper()
	gen := filepath.Join(db+".lock", fmt.Sprintf("%020d", 1))
	if err := os.MkdirAll(gen, 0o755); err != nil {
		t.Fatal(err)
	}
	rec := map[string]any{
		"token": 1, "kind": "acquire", "user": "alice", "host": "FRONTDESK-PC", "app": "wems.exe", "pid": 4242,
		"machine_id": "0123456789abcdef0123456789abcdef", "boot_id": "fedcba98-7654-3210-fedc-ba9876543210",
		"since": at.UTC().Format(time.RFC3339Nano), "lease_ms": lease.Milliseconds(), "heartbeat_ms": lease.Milliseconds() / 8,
		"nonce": "00112233445566778899aabb",
	}
	body, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	owner := fmt.Sprintf("sharelock-owner 1\nstate=%-8s beat=%020d at=%020d\n%s\n", "held", 7, at.UnixMilli(), body)
	if err := os.WriteFile(filepath.Join(gen, "owner"), []byte(owner), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A holder on another machine: refused at once, naming it.
func TestRunLockedByRemote(t *testing.T) {
	db := newDB(t)
	plantHolder(t, db, time.Now(), 40*time.Second)
	st := status1(t, db)
	if st.State != "held" || st.Holder == nil || st.Holder.User != "alice" || st.Holder.Host != "FRONTDESK-PC" || st.Holder.PID != 4242 || st.Holder.App != "wems.exe" {
		t.Fatalf("status of the planted holder: %+v", st)
	}
	r := runCLI(t, "run", db, "--", "echo", "ran")
	if r.code != exitLocked {
		t.Fatalf("want exit %d\n%v", exitLocked, r)
	}
	mustContain(t, "stderr", r.stderr, db+" is in use by alice on FRONTDESK-PC (wems.exe)", "Wait for alice", "sharelock break")
	if r.elapsed > 10*time.Second {
		t.Errorf("refusal took %v", r.elapsed)
	}
}

// Without --wait, a remote holder that looks dead (its last write is older
// than its lease) is watched before it is taken over. Ctrl+C must still end
// sharelock promptly.
func TestRunInterruptWhileWatchingSuspiciousHolder(t *testing.T) {
	db := newDB(t)
	plantHolder(t, db, time.Now().Add(-10*time.Minute), time.Minute)
	p := startCLI(t, "run", db, "--", "echo", "ran")
	time.Sleep(500 * time.Millisecond)
	if p.exited() {
		t.Skipf("sharelock did not watch the suspicious holder (no-wait acquire returned at once)\n%v", p.res)
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r := p.wait(10 * time.Second)
	if r.code != 128+int(syscall.SIGINT) {
		t.Errorf("want exit %d\n%v", 128+int(syscall.SIGINT), r)
	}
	if r.elapsed > 5*time.Second {
		t.Errorf("sharelock took %v to end after SIGINT", r.elapsed)
	}
	if strings.Contains(r.stdout, "ran") {
		t.Error("the command ran")
	}
	if st := status1(t, db); st.State != "held" || st.Token != 1 {
		t.Errorf("after the interrupted run: %+v, want still held by the planted holder", st)
	}
}
