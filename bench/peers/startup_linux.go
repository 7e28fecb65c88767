//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The start-up benchmark (-startup) times one invocation of each command
// below, from fork to reaped, all of them in turn (alternating, so that
// drifting load hits every command alike), and reports the median of each
// and the differences that break a `sharelock run` down:
//
//	go run ./bench/peers -startup -runs 500
//	go run ./bench/peers -startup -runs 500 -compare /tmp/old-sharelock   # before/after in one run
//
// sharelock is built as `make build` builds it (CGO_ENABLED=0); so are the
// two Go floors, written out and built by the driver: an empty main, and a
// program that only runs `true` with syscall.ForkExec and waits for it. Every
// command gets /dev/null for stdin, stdout and stderr (a failing one is run
// again to show its error) and runs on tmpfs (/dev/shm) unless -startup-dir.

// startupCmd is one command of the start-up benchmark.
type startupCmd struct {
	Name string   `json:"name"`
	Argv []string `json:"argv"`
	ms   []float64
}

// StartupRow is the result of one command.
type StartupRow struct {
	Name     string   `json:"name"`
	Argv     []string `json:"argv"`
	MedianMS float64  `json:"median_ms"`
	P25MS    float64  `json:"p25_ms"`
	P75MS    float64  `json:"p75_ms"`
	// Ratio is the median ÷ flock(1)'s median.
	Ratio float64 `json:"ratio_to_flock1"`
}

// StartupReport is the result of -startup.
type StartupReport struct {
	Started    time.Time    `json:"started"`
	Runs       int          `json:"runs"`
	CPUs       int          `json:"cpus"`
	LoadBefore string       `json:"loadavg_before"`
	LoadAfter  string       `json:"loadavg_after"`
	Dir        string       `json:"dir"`
	Rows       []StartupRow `json:"rows"`
}

// Names of the commands every breakdown refers to.
const (
	suTrue      = "true"
	suEmpty     = "Go: empty main"
	suForkExec  = "Go: syscall.ForkExec(true) + wait"
	suFlock     = "flock PATH true"
	suHelp      = "sharelock help (start, init, exit)"
	suRun       = "sharelock run PATH -- true"
	compareRun  = "%s run PATH -- true"
	compareHelp = "%s help"
)

// floorEmpty and floorForkExec are the Go floors: what any Go program pays
// to start and exit, and to also run a child and wait for it.
const floorEmpty = `package main

func main() {}
`

const floorForkExec = `package main

import (
	"os"
	"syscall"
)

func main() {
	pid, err := syscall.ForkExec(os.Args[1], os.Args[1:], &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		os.Exit(127)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		os.Exit(1)
	}
	os.Exit(ws.ExitStatus())
}
`

// startupBench runs the start-up benchmark: runs timed rounds (after a few
// warm-up rounds) over dir (default: a new folder in /dev/shm), also timing
// each binary in compare as a sharelock.
func startupBench(runs int, dir string, compare []string, jsonPath string) error {
	goCmd := "go"
	if g := os.Getenv("GO"); g != "" {
		goCmd = g
	}
	_, src, _, ok := runtime.Caller(0)
	if !ok {
		return errors.New("cannot locate the driver's source directory")
	}
	srcDir := filepath.Dir(src)
	if d := os.Getenv("SHARELOCK_PEERS_SRC"); d != "" {
		srcDir = d
	}
	tmp, err := os.MkdirTemp("", "sharelock-startup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	flock1, err := exec.LookPath("flock")
	if err != nil {
		return fmt.Errorf("flock(1) (util-linux) is needed: %w", err)
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		return fmt.Errorf("true(1) is needed: %w", err)
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("/dev/shm", "sharelock-startup-"); err != nil {
			return fmt.Errorf("tmpfs: %w", err)
		}
		defer os.RemoveAll(dir)
	}

	// Static, as make build builds it.
	build := func(out, pkg, wd string) error {
		c := exec.Command(goCmd, "build", "-o", out, pkg)
		c.Dir = wd
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
		}
		return nil
	}
	shl := filepath.Join(tmp, "sharelock")
	logf("building cmd/sharelock (CGO_ENABLED=0)")
	if err := build(shl, "sharelock/cmd/sharelock", srcDir); err != nil {
		return err
	}
	floors := filepath.Join(tmp, "floors")
	for name, text := range map[string]string{"empty": floorEmpty, "forkexec": floorForkExec} {
		d := filepath.Join(floors, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, "go.mod"), []byte("module "+name+"\n\ngo 1.22\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, "main.go"), []byte(text), 0o644); err != nil {
			return err
		}
		if err := build(filepath.Join(tmp, name), ".", d); err != nil {
			return err
		}
	}

	cmds := []*startupCmd{
		{Name: suTrue, Argv: []string{truePath}},
		{Name: suEmpty, Argv: []string{filepath.Join(tmp, "empty")}},
		{Name: suForkExec, Argv: []string{filepath.Join(tmp, "forkexec"), truePath}},
		{Name: suFlock, Argv: []string{flock1, filepath.Join(dir, "flock.db"), truePath}},
		{Name: suHelp, Argv: []string{shl, "help"}},
		{Name: suRun, Argv: []string{shl, "run", filepath.Join(dir, "data.db"), "--", truePath}},
	}
	for i, bin := range compare {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return err
		}
		cmds = append(cmds,
			&startupCmd{Name: fmt.Sprintf(compareHelp, bin), Argv: []string{abs, "help"}},
			&startupCmd{Name: fmt.Sprintf(compareRun, bin), Argv: []string{abs, "run", filepath.Join(dir, fmt.Sprintf("data%d.db", i+1)), "--", truePath}})
	}

	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	attr := &syscall.ProcAttr{Dir: tmp, Env: os.Environ(), Files: []uintptr{devnull.Fd(), devnull.Fd(), devnull.Fd()}}
	once := func(c *startupCmd) (float64, error) {
		t := monoNow()
		pid, err := syscall.ForkExec(c.Argv[0], c.Argv, attr)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", c.Name, err)
		}
		var ws syscall.WaitStatus
		for {
			_, err = syscall.Wait4(pid, &ws, 0, nil)
			if err != syscall.EINTR {
				break
			}
		}
		el := ms(monoNow() - t)
		if err != nil {
			return 0, fmt.Errorf("%s: wait: %w", c.Name, err)
		}
		if !ws.Exited() || ws.ExitStatus() != 0 {
			out, _ := exec.Command(c.Argv[0], c.Argv[1:]...).CombinedOutput()
			return 0, fmt.Errorf("%s: %v: %s", strings.Join(c.Argv, " "), ws, out)
		}
		return el, nil
	}

	rep := &StartupReport{Started: time.Now().UTC(), Runs: runs, CPUs: runtime.NumCPU(), LoadBefore: loadavg(), Dir: dir}
	const warmup = 5
	logf("start-up: %d rounds of %d commands in %s", runs, len(cmds), dir)
	for i := range warmup + runs {
		// Rotate the order every round, so that no command always follows
		// the same one.
		for j := range cmds {
			c := cmds[(i+j)%len(cmds)]
			el, err := once(c)
			if err != nil {
				return err
			}
			if i >= warmup {
				c.ms = append(c.ms, el)
			}
		}
	}
	rep.LoadAfter = loadavg()

	med := map[string]float64{}
	for _, c := range cmds {
		med[c.Name] = median(c.ms)
	}
	for _, c := range cmds {
		s := slices.Sorted(slices.Values(c.ms))
		rep.Rows = append(rep.Rows, StartupRow{
			Name: c.Name, Argv: c.Argv, MedianMS: med[c.Name],
			P25MS: s[len(s)/4], P75MS: s[len(s)*3/4], Ratio: med[c.Name] / med[suFlock],
		})
	}
	fmt.Print(startupMarkdown(rep, med, compare))
	if jsonPath != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(jsonPath, append(data, '\n'), 0o644)
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", jsonPath, err)
		}
	}
	return nil
}

func startupMarkdown(rep *StartupReport, med map[string]float64, compare []string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## `sharelock run` start-up\n\n")
	p("`go run ./bench/peers %s` — %s, %d CPUs, load average %s before / %s after; %d rounds (after 5 warm-up rounds), every command once per round in rotating order, in `%s`. Wall time from fork to reaped.\n\n",
		strings.Join(os.Args[1:], " "), rep.Started.Format("2006-01-02 15:04 UTC"), rep.CPUs, rep.LoadBefore, rep.LoadAfter, rep.Runs, rep.Dir)
	p("| command | median | p25 – p75 | ÷ flock(1) |\n|---|---|---|---|\n")
	for _, r := range rep.Rows {
		p("| %s | %.3f ms | %.3f – %.3f | %.2f× |\n", r.Name, r.MedianMS, r.P25MS, r.P75MS, r.Ratio)
	}
	p("\nBreakdown of `sharelock run PATH -- true` (differences of medians):\n\n")
	p("| part | ms |\n|---|---|\n")
	breakdown := func(label, run, help string) {
		p("| %s: process floor (`true`) | %.3f |\n", label, med[suTrue])
		p("| %s: Go runtime start + exit (empty main − true) | %.3f |\n", label, med[suEmpty]-med[suTrue])
		p("| %s: sharelock binary + package init (help − empty main) | %.3f |\n", label, med[help]-med[suEmpty])
		p("| %s: a bare Go fork-exec + wait of true (ForkExec − empty main) | %.3f |\n", label, med[suForkExec]-med[suEmpty])
		p("| %s: the rest of run: signals, acquire, child supervision, release (run − help − bare fork-exec) | %.3f |\n", label, med[run]-med[help]-(med[suForkExec]-med[suEmpty]))
		p("| %s: **total** | **%.3f** (%.2f× flock(1); the Go fork-exec floor is %.2f×) |\n", label, med[run], med[run]/med[suFlock], med[suForkExec]/med[suFlock])
	}
	breakdown("this tree", suRun, suHelp)
	for _, bin := range compare {
		breakdown(bin, fmt.Sprintf(compareRun, bin), fmt.Sprintf(compareHelp, bin))
	}
	return b.String()
}
