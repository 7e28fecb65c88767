//go:build unix

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needTools skips the test when a program it needs is missing, or fails it
// when CI=true (scripts/deps.sh installs them there).
func needTools(t *testing.T, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("missing %s (scripts/deps.sh installs them as root)", strings.Join(missing, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// tmuxPane is a private tmux server with one pane running a shell script:
// a real terminal whose screen the test can read.
type tmuxPane struct {
	t    *testing.T
	sock string
}

// startTmux runs script (sh) in a new 120×20 pane of a private tmux server,
// which the test's end kills.
func startTmux(t *testing.T, script string) *tmuxPane {
	t.Helper()
	needTools(t, "tmux")
	dir := t.TempDir()
	file := filepath.Join(dir, "pane.sh")
	if err := os.WriteFile(file, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	p := &tmuxPane{t: t, sock: fmt.Sprintf("sharelock-test-%d-%d", os.Getpid(), time.Now().UnixNano())}
	// -u: UTF-8 whatever the locale ("—" and "…" in the line).
	if out, err := exec.Command("tmux", "-u", "-L", p.sock, "-f", "/dev/null",
		"new-session", "-d", "-x", "120", "-y", "20", "-s", "t", "sh "+file).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", p.sock, "kill-server").Run() })
	return p
}

// screen returns the pane's visible text, trailing blanks removed per line.
func (p *tmuxPane) screen() string {
	p.t.Helper()
	out, err := exec.Command("tmux", "-u", "-L", p.sock, "capture-pane", "-p", "-t", "t").Output()
	if err != nil {
		p.t.Fatalf("tmux capture-pane: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// watch captures the screen every 100 ms until it shows "exit=" (the script
// prints sharelock's exit status) or d passes, and returns every capture.
func (p *tmuxPane) watch(d time.Duration) []string {
	p.t.Helper()
	var caps []string
	deadline := time.Now().Add(d)
	for {
		s := p.screen()
		caps = append(caps, s)
		if strings.Contains(s, "exit=") {
			return caps
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the pane never showed exit= within %v; last screen:\n%s", d, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// paneScript runs sharelock with args in the pane (stderr redirected if
// redirect is not ""), then prints its exit status and keeps the pane open.
func paneScript(redirect string, args ...string) string {
	q := []string{shQuote(slBin)}
	for _, a := range args {
		q = append(q, shQuote(a))
	}
	return strings.Join(q, " ") + " " + redirect + "\necho \"exit=$?\"\nsleep 120\n"
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

var progressRE = regexp.MustCompile(`^sharelock: waiting for (.+) — (\d+) s of (\d+ s)…$`)

// progressLines returns the progress lines on a screen.
func progressLines(screen string) []string {
	var out []string
	for _, l := range strings.Split(screen, "\n") {
		if strings.Contains(l, "waiting for") {
			out = append(out, l)
		}
	}
	return out
}

// On a terminal, run --wait shows one line, updated in place every second,
// naming the holder; it is gone when the wait ends.
func TestRunWaitProgressOnTerminal(t *testing.T) {
	db := newDB(t)
	plantHolder(t, db, time.Now(), 40*time.Second)
	pane := startTmux(t, paneScript("", "run", "--wait", "5s", db, "--", "echo", "ran"))
	caps := pane.watch(30 * time.Second)

	var secs []int
	for _, c := range caps {
		lines := progressLines(c)
		if len(lines) > 1 {
			t.Fatalf("more than one progress line on the screen:\n%s", c)
		}
		if len(lines) == 0 {
			continue
		}
		m := progressRE.FindStringSubmatch(lines[0])
		if m == nil {
			t.Fatalf("progress line %q does not read like %q", lines[0], progressRE)
		}
		if m[1] != "alice on FRONTDESK-PC (wems.exe)" || m[3] != "5 s" {
			t.Errorf("progress line %q: want alice on FRONTDESK-PC (wems.exe) and of 5 s", lines[0])
		}
		n, _ := strconv.Atoi(m[2])
		if len(secs) == 0 || secs[len(secs)-1] != n {
			secs = append(secs, n)
		}
		// It stays on the first row: rewritten in place, not scrolled.
		if first := strings.SplitN(c, "\n", 2)[0]; first != lines[0] {
			t.Errorf("progress line not on the first row:\n%s", c)
		}
	}
	if len(secs) < 3 {
		t.Fatalf("saw the progress line with seconds %v; want at least 3 updates. Captures:\n%s", secs, strings.Join(caps, "\n---\n"))
	}
	for i := 1; i < len(secs); i++ {
		if secs[i] != secs[i-1]+1 {
			t.Errorf("seconds went %v, want counting up by one", secs)
			break
		}
	}
	if secs[0] < 1 || secs[len(secs)-1] > 5 {
		t.Errorf("seconds %v out of 1..5", secs)
	}

	final := caps[len(caps)-1]
	if lines := progressLines(final); len(lines) != 0 {
		t.Errorf("the progress line was not cleared:\n%s", final)
	}
	// The refusal starts at the beginning of the row the line was on.
	if first := strings.SplitN(final, "\n", 2)[0]; !strings.HasPrefix(first, "sharelock: "+db+" is in use by alice on FRONTDESK-PC") {
		t.Errorf("first row after the wait: %q", first)
	}
	mustContain(t, "final screen", final, "exit=75")
	if strings.Contains(final, "ran") {
		t.Errorf("the command ran:\n%s", final)
	}
}

// When the lock comes free, the line is cleared before the command runs.
func TestRunWaitProgressClearedWhenTaken(t *testing.T) {
	db := newDB(t)
	holder := startCLI(t, "run", db, "--", "sleep", "3")
	waitHeld(t, db, holder)
	pane := startTmux(t, paneScript("", "run", "--wait", "30s", db, "--", "echo", "ran"))
	caps := pane.watch(40 * time.Second)
	saw := false
	for _, c := range caps {
		for _, l := range progressLines(c) {
			saw = true
			m := progressRE.FindStringSubmatch(l)
			if m == nil || !strings.HasSuffix(m[1], "(sleep)") || m[3] != "30 s" {
				t.Errorf("progress line %q: want the sleep holder and of 30 s", l)
			}
		}
	}
	if !saw {
		t.Errorf("never saw the progress line. Captures:\n%s", strings.Join(caps, "\n---\n"))
	}
	final := caps[len(caps)-1]
	if want := "ran\nexit=0"; !strings.HasPrefix(final, want) {
		t.Errorf("final screen:\n%s\nwant it to start with %q (the line cleared, then the command's output)", final, want)
	}
}

// With stderr not a terminal, nothing of the progress line is written: not
// to a file while stdout is a terminal, not to a pipe.
func TestRunWaitNoProgressWithoutTerminal(t *testing.T) {
	db := newDB(t)
	plantHolder(t, db, time.Now(), 40*time.Second)
	errFile := filepath.Join(t.TempDir(), "stderr")
	pane := startTmux(t, paneScript("2>"+shQuote(errFile), "run", "--wait", "2500ms", db, "--", "echo", "ran"))
	caps := pane.watch(30 * time.Second)
	if final := caps[len(caps)-1]; !strings.Contains(final, "exit=75") {
		t.Fatalf("final screen:\n%s", final)
	}
	for _, c := range caps {
		if len(progressLines(c)) > 0 {
			t.Fatalf("progress on the terminal although stderr is a file:\n%s", c)
		}
	}
	b, err := os.ReadFile(errFile)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); strings.Contains(s, "waiting for") || strings.Contains(s, "\r") || !strings.HasPrefix(s, "sharelock: "+db+" is in use by alice") {
		t.Errorf("stderr to a file:\n%q", s)
	}

	r := runCLI(t, "run", "--wait", "2500ms", db, "--", "echo", "ran")
	if r.code != exitLocked {
		t.Fatalf("want exit %d\n%v", exitLocked, r)
	}
	if strings.Contains(r.stderr, "waiting for") || strings.Contains(r.stderr, "\r") || !strings.HasPrefix(r.stderr, "sharelock: "+db+" is in use by alice") {
		t.Errorf("stderr to a pipe:\n%q", r.stderr)
	}
}
