// Mixed offices: a Windows process (the Windows build of this test binary,
// run under wine64) and Linux processes contend for the same lock directory
// on one shared folder. Needs wine64 (and mingw-w64 for the first prefix
// setup: scripts/wine/setup.sh); skipped with a message without them, a
// failure when CI=true.

package sharelock_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sharelock"
	"sharelock/internal/ident"
)

// wineRig is what the mixed tests need to run Windows processes.
type wineRig struct {
	wine   string   // the wine64 program
	exe    string   // the Windows build of this package's test binary
	env    []string // environment for Windows helpers (prefix, no debug output)
	prefix string
}

// requireWine prepares the Wine prefix and builds the Windows test binary
// into a directory removed when t ends. Without Wine the test is skipped,
// or fails when CI=true.
func requireWine(t *testing.T) *wineRig {
	t.Helper()
	w, skip, err := setupWine(t.TempDir())
	if skip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the mixed Linux+Windows tests cannot run: %s", skip)
		}
		t.Skip(skip)
	}
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func setupWine(dir string) (*wineRig, string, error) {
	wine, err := exec.LookPath("wine64")
	if err != nil {
		wine = "/usr/lib/wine/wine64"
		if _, err := os.Stat(wine); err != nil {
			return nil, "wine64 not installed (make deps as root installs it)", nil
		}
	}
	prefix := os.Getenv("SHARELOCK_WINEPREFIX")
	if prefix == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, "", fmt.Errorf("no SHARELOCK_WINEPREFIX and no home directory: %w", err)
		}
		prefix = filepath.Join(home, ".cache", "sharelock", "wine") // as the Makefile's WINEPREFIX_DIR
	}
	setup := exec.Command("scripts/wine/setup.sh", prefix)
	if out, err := setup.CombinedOutput(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 3 {
			return nil, "Wine prefix cannot be set up: " + strings.TrimSpace(string(out)), nil
		}
		return nil, "", fmt.Errorf("scripts/wine/setup.sh %s: %v\n%s", prefix, err, out)
	}
	exe := filepath.Join(dir, "sharelock.test.exe")
	gocmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := exec.Command(gocmd, "test", "-c", "-o", exe, ".")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("building the Windows test binary: %v\n%s", err, out)
	}
	env := append(os.Environ(), "WINEPREFIX="+prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree=;mshtml=")
	// Start the prefix's wineserver (kept for a minute after its last
	// client) and system processes with no standard streams of ours: Wine
	// processes inherit the Unix stdout of whichever program started them,
	// and reading a helper's output to its end would otherwise wait for the
	// last Wine process of the prefix.
	server := exec.Command(filepath.Join(filepath.Dir(wine), "wineserver"), "-p60")
	if _, err := os.Stat(server.Path); err != nil {
		server = exec.Command("wineserver", "-p60")
	}
	server.Env = env
	_ = server.Run()                       // fails harmlessly if one is running already
	boot := exec.Command(wine, "wineboot") // standard streams: /dev/null
	boot.Env = env
	if err := boot.Run(); err != nil {
		return nil, "", fmt.Errorf("wine64 wineboot in %s: %v", prefix, err)
	}
	return &wineRig{wine: wine, exe: exe, env: env, prefix: prefix}, "", nil
}

// winPath is how a Windows process under Wine names a Linux path (drive Z:
// is the Linux root).
func winPath(p string) string { return `Z:` + strings.ReplaceAll(p, "/", `\`) }

// start starts the Windows test binary under Wine in helper role with args.
func (w *wineRig) start(t *testing.T, name, role string, args ...string) *helper {
	t.Helper()
	cmd := exec.Command(w.wine, append([]string{w.exe}, args...)...)
	cmd.Env = append(slices.Clone(w.env), helperEnv+"="+role)
	return startCmd(t, name, cmd)
}

// TestMixedOS runs the mixed-office tests with one Wine setup.
func TestMixedOS(t *testing.T) {
	w := requireWine(t)
	t.Run("Counter", func(t *testing.T) { testMixedOSCounter(t, w) })
	t.Run("WindowsHolderNotJudgedByPID", func(t *testing.T) { testMixedOSWindowsHolderNotJudgedByPID(t, w) })
}

// testMixedOSCounter: Windows processes (under Wine) and a Linux process
// increment one counter under one lock, on one folder. Every hold checks
// mutual exclusion directly: it creates a marker file exclusively after
// acquiring and removes it before releasing, so an overlapping hold of
// either OS finds the marker (no clocks are compared across the two). No
// increment may be lost; tokens are unique; the lock passes between the
// OSes many times.
func testMixedOSCounter(t *testing.T, w *wineRig) {
	const winProcs, linuxWorkers, n = 2, 2, 40
	dir := t.TempDir()
	path := filepath.Join(dir, "wems.db")
	counter := filepath.Join(dir, "counter")
	inside := filepath.Join(dir, "inside")
	if err := os.WriteFile(counter, []byte("0"), 0o666); err != nil {
		t.Fatal(err)
	}
	var wins []*helper
	for i := 0; i < winProcs; i++ {
		wins = append(wins, w.start(t, describe("win", i), "counter", "-path", winPath(path),
			"-counter", winPath(counter), "-inside", winPath(inside),
			"-log", winPath(filepath.Join(dir, describe("win", i))), "-n", strconv.Itoa(n),
			"-lease", "2s", "-gap", "2ms"))
	}
	for _, h := range wins {
		h.expect("ready", 60*time.Second)
	}
	begin := time.Now()
	for _, h := range wins {
		h.send("go")
	}
	// The Linux side: workers in this process, the same loop as the
	// Windows counter helper.
	var wg sync.WaitGroup
	linuxTokens := make([][]uint64, linuxWorkers)
	for i := 0; i < linuxWorkers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for k := 0; k < n; k++ {
				tok, err := markedIncrement(path, counter, inside)
				if err != nil {
					t.Errorf("linux worker %d, hold %d: %v", i, k, err)
					return
				}
				linuxTokens[i] = append(linuxTokens[i], tok)
				time.Sleep(2 * time.Millisecond)
			}
		}(i)
	}
	wg.Wait()
	for _, h := range wins {
		h.expect("done", 120*time.Second)
	}
	elapsed := time.Since(begin)

	total := (winProcs + linuxWorkers) * n
	if got := readCounter(t, counter); got != total {
		t.Errorf("counter = %d, want %d: increments were lost", got, total)
	}
	owner := map[int64]string{} // token -> "win" or "linux"
	var tokens []int64
	add := func(who string, tok int64) {
		if prev, dup := owner[tok]; dup {
			t.Errorf("token %d handed out twice (%s and %s)", tok, prev, who)
		}
		owner[tok] = who
		tokens = append(tokens, tok)
	}
	for i := 0; i < winProcs; i++ {
		for _, h := range readHolds(t, describe("win", i), filepath.Join(dir, describe("win", i))) {
			add("win", h.token)
		}
	}
	for _, ts := range linuxTokens {
		for _, tok := range ts {
			add("linux", int64(tok))
		}
	}
	if len(tokens) != total {
		t.Fatalf("%d holds logged, want %d", len(tokens), total)
	}
	slices.Sort(tokens)
	crossings := 0
	for i := 1; i < len(tokens); i++ {
		if owner[tokens[i]] != owner[tokens[i-1]] {
			crossings++
		}
	}
	if crossings < 5 {
		t.Errorf("the lock passed between Windows and Linux only %d times: too little mixed contention", crossings)
	}
	t.Logf("%d holds (%d Windows processes under Wine, %d Linux workers) in %v (%v each); the lock passed between the OSes %d times",
		total, winProcs, linuxWorkers, elapsed.Round(time.Millisecond), (elapsed / time.Duration(total)).Round(time.Microsecond), crossings)
}

// markedIncrement acquires path, creates the marker inside exclusively
// (failing if another holder is inside), increments counter, removes the
// marker and releases. It returns the hold's token.
func markedIncrement(path, counter, inside string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	l, err := sharelock.Acquire(ctx, path, sharelock.WithLease(2*time.Second))
	cancel()
	if err != nil {
		return 0, err
	}
	defer l.Release()
	f, err := os.OpenFile(inside, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
	if err != nil {
		return 0, fmt.Errorf("OVERLAP: another holder is inside (token %d): %w", l.Token(), err)
	}
	fmt.Fprintf(f, "linux %d\n", l.Token())
	f.Close()
	b, err := os.ReadFile(counter)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("counter file %q: %w", b, err)
	}
	if err := os.WriteFile(counter, []byte(strconv.Itoa(v+1)), 0o666); err != nil {
		return 0, err
	}
	if err := l.Check(); err != nil {
		return 0, fmt.Errorf("lost while inside: %w", err)
	}
	if err := os.Remove(inside); err != nil {
		return 0, err
	}
	return l.Token(), l.Release()
}

// testMixedOSWindowsHolderNotJudgedByPID: a lock held by a Windows process
// is refused to Linux with the Windows DOMAIN\user named; Linux never
// judges the Windows PID by its own process table (other machine ID), so
// even after the Windows holder is killed, Linux must wait out its lease.
func testMixedOSWindowsHolderNotJudgedByPID(t *testing.T, w *wineRig) {
	path := filepath.Join(t.TempDir(), "wems.db")
	h := w.start(t, "win", "hold", "-path", winPath(path), "-lease", "60s")
	f := h.expect("held", 60*time.Second)
	winPID, _ := strconv.Atoi(f[2])

	_, err := sharelock.TryAcquire(context.Background(), path)
	var le *sharelock.LockedError
	if !errors.As(err, &le) || le.Holder == nil {
		t.Fatalf("Linux TryAcquire while Windows holds: %v, want a *LockedError", err)
	}
	if !strings.Contains(le.Holder.User, `\`) || le.Holder.PID != winPID || le.Holder.MachineID == ident.Self().MachineID {
		t.Errorf("holder as Linux sees it: %+v; want a DOMAIN\\user, PID %d and a machine ID other than %q",
			le.Holder, winPID, ident.Self().MachineID)
	}
	t.Logf("Linux refused: %v", err)

	h.cmd.Process.Kill() // the Windows process is the wine64 Unix process
	<-h.exited
	info, err := sharelock.Inspect(context.Background(), path, sharelock.WithObserve(500*time.Millisecond))
	if err != nil || info.State != sharelock.Held || info.DeadProcess {
		t.Errorf("Linux Inspect after the Windows holder died: %+v, %v; want held, not proven dead (only the lease can end it)", info, err)
	}
	if _, err := sharelock.TryAcquire(context.Background(), path); !errors.Is(err, sharelock.ErrLocked) {
		t.Errorf("Linux TryAcquire after the Windows holder died: %v, want ErrLocked until its lease ends", err)
	}
}
