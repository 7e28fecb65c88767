//go:build linux

// Command peers runs sharelock side by side with its peers — gofrs/flock
// (flock(2) from Go), proper-lockfile (npm) and, for `sharelock run`,
// flock(1) — on the same machine in one run, on tmpfs, ext4 and an SFTP
// share, and prints a markdown table (and, with -json, a JSON report):
//
//	go run ./bench/peers            # full run, about 5 minutes
//	go run ./bench/peers -quick     # smoke test: tmpfs only, short windows
//	go run ./bench/peers -run-only -fs tmpfs -runs 500   # only `sharelock run` vs flock(1)
//	go run ./bench/peers -startup -runs 500   # `sharelock run` start-up, broken down (startup_linux.go)
//
// Every contender is a separate process (the driver runs itself again with
// -worker, or node/contender.js) that stamps its log with CLOCK_MONOTONIC,
// so the driver can merge the logs of all processes. Measured per tool and
// filesystem: the uncontended acquire+release cycle (one process); 8
// contenders each looping acquire → hold 1 ms → release for a fixed time
// (handoff latency p50/p99 from one release to the next acquisition, worst
// wait, share of handoffs the releaser wins itself, Jain's fairness index
// over acquisitions per contender, overlapping holds); crash takeover (kill
// -9 of a holder while a contender waits: time until the waiter holds); the
// cycle of `sharelock run PATH -- true` against `flock PATH true`; and the
// FUSE requests (round trips on an uncached network client) per acquire and
// per release through the counting share of internal/faultfs.
//
// The SFTP share is the test rig's (internal/sharetest: a private sshd on
// 127.0.0.1 mounted with sshfs); it and the counting FUSE share need root.
// proper-lockfile is installed into node/ with `npm ci` when node_modules is
// missing (needs node and npm: scripts/deps.sh).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"sharelock/internal/faultfs"
	"sharelock/internal/nstest"
	"sharelock/internal/sharetest"
)

// The tools compared. sharelock is the reference of every ratio.
const (
	toolSharelock = "sharelock"
	toolFlock     = "gofrs/flock"
	toolPL        = "proper-lockfile"
)

var allTools = []string{toolSharelock, toolFlock, toolPL}

// Filesystems.
const (
	fsTmpfs = "tmpfs"
	fsExt4  = "ext4"
	fsSFTP  = "sftp"
)

type config struct {
	quick       bool
	filesystems []string
	contenders  int
	hold        time.Duration
	handoffDur  time.Duration
	cycleDur    time.Duration
	cycleReps   int
	takeovers   int
	plTakeover  int // takeovers of proper-lockfile (each waits out its stale threshold)
	runs        int
	runOnly     bool // only the `sharelock run` vs flock(1) row
	roundTrips  bool
	ext4Dir     string
	jsonPath    string
}

type driver struct {
	cfg      config
	self     string // this executable, for -worker
	node     string
	script   string // node/contender.js
	shlBin   string // built cmd/sharelock
	flock1   string // flock(1)
	truePath string
	tmp      string
}

func main() {
	worker := flag.String("worker", "", "internal: run as a contender of this tool")
	quick := flag.Bool("quick", false, "smoke test: tmpfs only (unless -fs), short windows, one takeover each")
	fsList := flag.String("fs", "", "comma-separated filesystems: tmpfs, ext4, sftp (default all; with -quick tmpfs)")
	contenders := flag.Int("contenders", 8, "contending processes per tool")
	holdFor := flag.Duration("hold", time.Millisecond, "how long each contender holds the lock")
	dur := flag.Duration("dur", 0, "how long the contenders loop (default 5s; -quick 1s)")
	ext4Dir := flag.String("ext4-dir", "/var/tmp", "a directory on ext4 (a local disk)")
	rt := flag.Bool("roundtrips", true, "count FUSE requests per operation through faultfs (needs root and /dev/fuse)")
	jsonPath := flag.String("json", "", "also write the report as JSON to this file")
	runs := flag.Int("runs", 0, "invocations of each command for the `sharelock run` vs flock(1) row (default 100; -quick 10)")
	runOnly := flag.Bool("run-only", false, "measure only the `sharelock run` vs flock(1) row (no contenders, no Node, no round trips)")
	startup := flag.Bool("startup", false, "only the start-up benchmark: `sharelock run PATH -- true` against flock(1), true(1) and Go floors, alternating, with a breakdown (-runs rounds, default 300)")
	startupDir := flag.String("startup-dir", "", "with -startup: the folder for the locks (default: a new folder in /dev/shm)")
	compare := flag.String("compare", "", "with -startup: comma-separated other sharelock binaries to time in the same rounds (e.g. a build from before a change)")
	flag.Parse()

	if *worker != "" {
		if err := workerMain(*worker, flag.Args()); err != nil {
			fmt.Fprintf(os.Stderr, "peers worker %s: %v\n", *worker, err)
			os.Exit(1)
		}
		return
	}
	if *startup {
		n := *runs
		if n <= 0 {
			n = 300
		}
		var bins []string
		if *compare != "" {
			bins = strings.Split(*compare, ",")
		}
		if err := startupBench(n, *startupDir, bins, *jsonPath); err != nil {
			fmt.Fprintf(os.Stderr, "peers: %v\n", err)
			os.Exit(1)
		}
		return
	}
	cfg := config{
		quick: *quick, contenders: *contenders, hold: *holdFor, handoffDur: 5 * time.Second,
		cycleDur: time.Second, cycleReps: 3, takeovers: 5, plTakeover: 3, runs: 100,
		roundTrips: *rt, ext4Dir: *ext4Dir, jsonPath: *jsonPath,
		filesystems: []string{fsTmpfs, fsExt4, fsSFTP},
	}
	if cfg.quick {
		cfg.handoffDur, cfg.cycleDur, cfg.cycleReps, cfg.takeovers, cfg.plTakeover, cfg.runs = time.Second, 300*time.Millisecond, 1, 1, 1, 10
		cfg.filesystems = []string{fsTmpfs}
	}
	if *dur > 0 {
		cfg.handoffDur = *dur
	}
	if *runs > 0 {
		cfg.runs = *runs
	}
	if *runOnly {
		cfg.runOnly, cfg.roundTrips = true, false
	}
	if *fsList != "" {
		cfg.filesystems = strings.Split(*fsList, ",")
	}
	rep, err := run(cfg)
	if rep != nil {
		fmt.Print(markdown(rep))
		if cfg.jsonPath != "" {
			data, jerr := json.MarshalIndent(rep, "", "  ")
			if jerr == nil {
				jerr = os.WriteFile(cfg.jsonPath, append(data, '\n'), 0o644)
			}
			if jerr != nil {
				err = errors.Join(err, fmt.Errorf("writing %s: %w", cfg.jsonPath, jerr))
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "peers: %v\n", err)
		os.Exit(1)
	}
}

// Report is the whole run.
type Report struct {
	Started    time.Time    `json:"started"`
	Seconds    float64      `json:"seconds"`
	Quick      bool         `json:"quick"`
	Command    string       `json:"command"`
	CPUs       int          `json:"cpus"`
	LoadBefore string       `json:"loadavg_before"`
	LoadAfter  string       `json:"loadavg_after"`
	Contenders int          `json:"contenders"`
	HoldMS     float64      `json:"hold_ms"`
	HandoffS   float64      `json:"handoff_seconds"`
	FS         []*FSResult  `json:"filesystems"`
	RoundTrips []*RoundTrip `json:"round_trips,omitempty"`
	Errors     []string     `json:"errors,omitempty"`
}

// FSResult holds every figure of one filesystem.
type FSResult struct {
	Name string `json:"name"`
	Dir  string `json:"dir"`
	Type string `json:"type"`
	// CycleUS: mean uncontended acquire+release, µs (median over reps).
	CycleUS  map[string]float64     `json:"cycle_us"`
	Handoff  map[string]*Contention `json:"handoff"`
	Takeover map[string][]float64   `json:"takeover_ms"`
	Run      *RunCycle              `json:"run_cycle,omitempty"`
}

// RunCycle compares `sharelock run PATH -- true` with `flock PATH true`.
type RunCycle struct {
	Runs        int     `json:"runs"`
	SharelockMS float64 `json:"sharelock_run_median_ms"`
	Flock1MS    float64 `json:"flock1_median_ms"`
	Ratio       float64 `json:"ratio"`
}

// RoundTrip is the FUSE requests of one tool's operations through faultfs.
type RoundTrip struct {
	Tool       string `json:"tool"`
	First      int64  `json:"first_acquire"`
	Acquire    int64  `json:"acquire"`
	Release    int64  `json:"release"`
	AcquireOps string `json:"acquire_ops"`
	ReleaseOps string `json:"release_ops"`
}

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func run(cfg config) (*Report, error) {
	rep := &Report{
		Started: time.Now().UTC(), Quick: cfg.quick, Command: "go run ./bench/peers " + strings.Join(os.Args[1:], " "),
		CPUs: runtime.NumCPU(), LoadBefore: loadavg(), Contenders: cfg.contenders,
		HoldMS: ms(cfg.hold.Nanoseconds()), HandoffS: cfg.handoffDur.Seconds(),
	}
	if len(os.Args) == 1 {
		rep.Command = "go run ./bench/peers"
	}
	d, err := setup(cfg)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(d.tmp)
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
			rep.Errors = append(rep.Errors, err.Error())
			logf("error: %v", err)
		}
	}
	for _, name := range cfg.filesystems {
		res, err := d.filesystem(name)
		if res != nil {
			rep.FS = append(rep.FS, res)
		}
		note(err)
	}
	if cfg.roundTrips {
		rts, err := d.roundTrips()
		rep.RoundTrips = rts
		note(err)
	}
	rep.LoadAfter = loadavg()
	rep.Seconds = time.Since(rep.Started).Seconds()
	return rep, errors.Join(errs...)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "peers: "+format+"\n", args...)
}

// setup finds the tools, installs proper-lockfile if needed and builds
// cmd/sharelock.
func setup(cfg config) (*driver, error) {
	d := &driver{cfg: cfg}
	var err error
	if d.self, err = os.Executable(); err != nil {
		return nil, fmt.Errorf("finding this executable: %w", err)
	}
	_, src, _, ok := runtime.Caller(0)
	if !ok {
		return nil, errors.New("cannot locate the driver's source directory")
	}
	srcDir := filepath.Dir(src)
	if dir := os.Getenv("SHARELOCK_PEERS_SRC"); dir != "" {
		srcDir = dir
	}
	if err := d.findCommands(); err != nil {
		return nil, err
	}
	if !cfg.runOnly {
		if err := d.setupNode(srcDir); err != nil {
			return nil, err
		}
	}
	if d.tmp, err = os.MkdirTemp("", "sharelock-peers-"); err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	d.shlBin = filepath.Join(d.tmp, "sharelock")
	goCmd := "go"
	if g := os.Getenv("GO"); g != "" {
		goCmd = g
	}
	// Built as `go build` does by default; CGO_ENABLED and the other go
	// environment variables of the driver apply (CGO_ENABLED=0 go run
	// ./bench/peers measures a static, cgo-free binary).
	cgo := os.Getenv("CGO_ENABLED")
	if cgo == "" {
		cgo = "go's default"
	}
	logf("building cmd/sharelock (CGO_ENABLED: %s)", cgo)
	c := exec.Command(goCmd, "build", "-o", d.shlBin, "sharelock/cmd/sharelock")
	c.Dir = srcDir
	if out, err := c.CombinedOutput(); err != nil {
		os.RemoveAll(d.tmp)
		return nil, fmt.Errorf("go build sharelock/cmd/sharelock: %w\n%s", err, out)
	}
	return d, nil
}

// setupNode finds node and installs proper-lockfile if needed.
func (d *driver) setupNode(srcDir string) error {
	var err error
	nodeDir := filepath.Join(srcDir, "node")
	d.script = filepath.Join(nodeDir, "contender.js")
	if _, err := os.Stat(d.script); err != nil {
		return fmt.Errorf("the Node contender: %w (set SHARELOCK_PEERS_SRC to bench/peers)", err)
	}
	if d.node, err = exec.LookPath("node"); err != nil {
		return fmt.Errorf("node is needed for proper-lockfile (Debian: apt-get install nodejs npm, or scripts/deps.sh): %w", err)
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "proper-lockfile")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			return fmt.Errorf("npm is needed to install proper-lockfile (Debian: apt-get install npm, or scripts/deps.sh): %w", err)
		}
		logf("installing proper-lockfile: npm ci in %s", nodeDir)
		c := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		c.Dir = nodeDir
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("npm ci in %s: %w\n%s", nodeDir, err, out)
		}
	}
	return nil
}

// findCommands finds flock(1) and true(1).
func (d *driver) findCommands() error {
	var err error
	if d.flock1, err = exec.LookPath("flock"); err != nil {
		return fmt.Errorf("flock(1) (util-linux) is needed: %w", err)
	}
	if d.truePath, err = exec.LookPath("true"); err != nil {
		return fmt.Errorf("true(1) is needed: %w", err)
	}
	return nil
}

// command starts a contender of tool.
func (d *driver) command(tool string, args ...string) *exec.Cmd {
	var c *exec.Cmd
	if tool == toolPL {
		c = exec.Command(d.node, append([]string{d.script}, args...)...)
	} else {
		c = exec.Command(d.self, append([]string{"-worker", tool}, args...)...)
	}
	c.Dir = d.tmp
	c.Stderr = &limitedBuffer{max: 16 << 10}
	return c
}

// limitedBuffer keeps the first max bytes written (a contender's stderr).
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func stderrOf(c *exec.Cmd) string {
	if b, ok := c.Stderr.(*limitedBuffer); ok {
		return strings.TrimSpace(b.String())
	}
	return ""
}

// filesystem runs every measurement on one filesystem.
func (d *driver) filesystem(name string) (*FSResult, error) {
	var base string
	var cleanup func() error
	switch name {
	case fsTmpfs:
		dir, err := os.MkdirTemp("/dev/shm", "sharelock-peers-")
		if err != nil {
			return nil, fmt.Errorf("tmpfs: %w", err)
		}
		base, cleanup = dir, func() error { return os.RemoveAll(dir) }
	case fsExt4:
		dir, err := os.MkdirTemp(d.cfg.ext4Dir, "sharelock-peers-")
		if err != nil {
			return nil, fmt.Errorf("ext4: %w", err)
		}
		base, cleanup = dir, func() error { return os.RemoveAll(dir) }
	case fsSFTP:
		rig, err := os.MkdirTemp("", "slp-")
		if err != nil {
			return nil, fmt.Errorf("sftp: %w", err)
		}
		logf("starting the SFTP share (sshd + sshfs) in %s", rig)
		sh, err := sharetest.Launch(sharetest.SFTP, rig)
		if err != nil {
			os.RemoveAll(rig)
			return nil, fmt.Errorf("starting the SFTP share: %w", err)
		}
		base = filepath.Join(sh.Mounts[0], "bench")
		if err := os.Mkdir(base, 0o755); err != nil {
			sh.Close()
			return nil, fmt.Errorf("sftp: %w", err)
		}
		cleanup = func() error {
			err := sh.Close()
			if err == nil {
				err = os.RemoveAll(rig)
			}
			return err
		}
	default:
		return nil, fmt.Errorf("unknown filesystem %q (want tmpfs, ext4 or sftp)", name)
	}
	res := &FSResult{
		Name: name, Dir: base, Type: nstest.FSType(base),
		CycleUS: map[string]float64{}, Handoff: map[string]*Contention{}, Takeover: map[string][]float64{},
	}
	logf("%s: %s (%s)", name, base, res.Type)
	var errs []error
	for _, tool := range allTools {
		if d.cfg.runOnly {
			break
		}
		if err := d.tool(res, base, tool); err != nil {
			errs = append(errs, fmt.Errorf("%s, %s: %w", name, tool, err))
		}
	}
	rc, err := d.runCycle(base)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s, run cycle: %w", name, err))
	}
	res.Run = rc
	if err := cleanup(); err != nil {
		errs = append(errs, fmt.Errorf("%s: cleaning up: %w", name, err))
	}
	return res, errors.Join(errs...)
}

// slug names a tool's directory.
func slug(tool string) string { return strings.ReplaceAll(tool, "/", "-") }

// tool measures one tool on one filesystem: cycle, contention, takeover,
// each in its own directory.
func (d *driver) tool(res *FSResult, base, tool string) error {
	dir := filepath.Join(base, slug(tool))
	for _, sub := range []string{"cycle", "handoff", "takeover"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	var reps []float64
	for range d.cfg.cycleReps {
		us, err := d.cycle(tool, filepath.Join(dir, "cycle", "data.db"))
		if err != nil {
			return fmt.Errorf("uncontended cycle: %w", err)
		}
		reps = append(reps, us)
	}
	res.CycleUS[tool] = median(reps)
	logf("%s %s: uncontended cycle %.1f µs", res.Name, tool, res.CycleUS[tool])

	c, err := d.contend(tool, filepath.Join(dir, "handoff", "data.db"))
	if err != nil {
		return fmt.Errorf("contention: %w", err)
	}
	res.Handoff[tool] = c
	logf("%s %s: %d holds, handoff p50 %.3f ms p99 %.3f ms, worst wait %.1f ms, same holder %.0f%%, Jain %.3f, overlaps %d",
		res.Name, tool, c.Holds, c.HandoffP50MS, c.HandoffP99MS, c.WorstWaitMS, 100*c.SameHolder, c.Jain, c.Overlaps)

	n := d.cfg.takeovers
	if tool == toolPL {
		n = d.cfg.plTakeover
	}
	for i := range n {
		t, err := d.takeover(tool, filepath.Join(dir, "takeover", "data.db"))
		if err != nil {
			return fmt.Errorf("crash takeover %d: %w", i+1, err)
		}
		res.Takeover[tool] = append(res.Takeover[tool], t)
	}
	logf("%s %s: crash takeover %v ms", res.Name, tool, res.Takeover[tool])
	return nil
}

// cycle runs one uncontended cycle window and returns µs per acquire+release.
func (d *driver) cycle(tool, path string) (float64, error) {
	c := d.command(tool, "cycle", path, strconv.FormatFloat(d.cfg.cycleDur.Seconds(), 'f', 3, 64))
	out, err := c.Output()
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, stderrOf(c))
	}
	var ops, ns int64
	if _, err := fmt.Sscanf(string(out), "%d %d", &ops, &ns); err != nil || ops == 0 {
		return 0, fmt.Errorf("cycle output %q: %v", out, err)
	}
	return float64(ns) / float64(ops) / 1e3, nil
}

// contend runs the contenders for handoffDur and merges their logs.
func (d *driver) contend(tool, path string) (*Contention, error) {
	n := d.cfg.contenders
	start := monoNow() + int64(time.Second) // time for every process (node too) to start
	end := start + d.cfg.handoffDur.Nanoseconds()
	holdMS := strconv.FormatFloat(ms(d.cfg.hold.Nanoseconds()), 'f', 3, 64)
	cmds := make([]*exec.Cmd, n)
	outs := make([]*bytes.Buffer, n)
	for i := range cmds {
		cmds[i] = d.command(tool, "contend", path, strconv.FormatInt(start, 10), strconv.FormatInt(end, 10), holdMS)
		outs[i] = &bytes.Buffer{}
		cmds[i].Stdout = outs[i]
		if err := cmds[i].Start(); err != nil {
			killAll(cmds[:i])
			return nil, fmt.Errorf("starting contender %d: %w", i, err)
		}
	}
	done := make(chan error, n)
	for i, c := range cmds {
		go func() {
			err := c.Wait()
			if err != nil {
				err = fmt.Errorf("contender %d: %w: %s", i, err, stderrOf(c))
			}
			done <- err
		}()
	}
	timeout := time.After(time.Duration(end-monoNow()) + 3*time.Minute)
	var errs []error
	for range n {
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, err)
			}
		case <-timeout:
			killAll(cmds)
			return nil, errors.New("contenders did not finish within 3 minutes of the end")
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var all []hold
	for i, out := range outs {
		hs, err := parseHolds(i, out.String())
		if err != nil {
			return nil, err
		}
		all = append(all, hs...)
	}
	c := contention(n, all)
	return &c, nil
}

// killAll kills (SIGKILL) the started processes among cmds and reaps them.
func killAll(cmds []*exec.Cmd) {
	for _, c := range cmds {
		if c != nil && c.Process != nil && c.ProcessState == nil {
			c.Process.Kill()
		}
	}
}

// lineReader delivers a process's stdout line by line.
type lineReader struct{ lines chan string }

func readLines(r io.Reader) *lineReader {
	lr := &lineReader{lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lr.lines <- sc.Text()
		}
		close(lr.lines)
	}()
	return lr
}

func (lr *lineReader) next(timeout time.Duration) (string, error) {
	select {
	case l, ok := <-lr.lines:
		if !ok {
			return "", io.EOF
		}
		return l, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("no answer within %v", timeout)
	}
}

// startLines starts c and reads its stdout by lines.
func startLines(c *exec.Cmd) (*lineReader, error) {
	out, err := c.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	return readLines(out), nil
}

// takeover: a holder holds, a waiter waits; the holder is killed with
// SIGKILL; the time until the waiter holds, in ms.
func (d *driver) takeover(tool, path string) (float64, error) {
	holder := d.command(tool, "hold", path)
	hl, err := startLines(holder)
	if err != nil {
		return 0, fmt.Errorf("starting the holder: %w", err)
	}
	defer func() { killAll([]*exec.Cmd{holder}); holder.Wait() }()
	if l, err := hl.next(time.Minute); err != nil || !strings.HasPrefix(l, "held ") {
		killAll([]*exec.Cmd{holder})
		holder.Wait()
		return 0, fmt.Errorf("holder: %q, %v: %s", l, err, stderrOf(holder))
	}
	waiter := d.command(tool, "wait", path)
	wl, err := startLines(waiter)
	if err != nil {
		return 0, fmt.Errorf("starting the waiter: %w", err)
	}
	defer func() { killAll([]*exec.Cmd{waiter}); waiter.Wait() }()
	if l, err := wl.next(time.Minute); err != nil || l != "waiting" {
		return 0, fmt.Errorf("waiter: %q, %v: %s", l, err, stderrOf(waiter))
	}
	time.Sleep(300 * time.Millisecond) // the waiter is polling (or blocked in flock)
	t0 := monoNow()
	if err := holder.Process.Kill(); err != nil {
		return 0, fmt.Errorf("killing the holder (pid %d): %w", holder.Process.Pid, err)
	}
	l, err := wl.next(2 * time.Minute)
	if err != nil {
		return 0, fmt.Errorf("waiter after the kill: %w: %s", err, stderrOf(waiter))
	}
	ns, err := strconv.ParseInt(strings.TrimPrefix(l, "got "), 10, 64)
	if err != nil || !strings.HasPrefix(l, "got ") {
		return 0, fmt.Errorf("waiter said %q", l)
	}
	if err := waiter.Wait(); err != nil {
		return 0, fmt.Errorf("waiter: %w: %s", err, stderrOf(waiter))
	}
	return ms(ns - t0), nil
}

// runCycle times `sharelock run PATH -- true` and `flock PATH true`,
// alternating, and compares the medians.
func (d *driver) runCycle(base string) (*RunCycle, error) {
	dir := filepath.Join(base, "run")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	shl := []string{d.shlBin, "run", filepath.Join(dir, "data.db"), "--", d.truePath}
	fl := []string{d.flock1, filepath.Join(dir, "data.db.flock"), d.truePath}
	var a, b []float64
	for i := range d.cfg.runs + 1 {
		for _, argv := range [][]string{shl, fl} {
			c := exec.Command(argv[0], argv[1:]...)
			c.Dir = d.tmp
			t := monoNow()
			out, err := c.CombinedOutput()
			el := ms(monoNow() - t)
			if err != nil {
				return nil, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
			}
			if i == 0 {
				continue // warm-up: page cache, first lock folder
			}
			if argv[0] == d.shlBin {
				a = append(a, el)
			} else {
				b = append(b, el)
			}
		}
	}
	rc := &RunCycle{Runs: d.cfg.runs, SharelockMS: median(a), Flock1MS: median(b)}
	rc.Ratio = rc.SharelockMS / rc.Flock1MS
	logf("run cycle in %s: sharelock run %.2f ms, flock(1) %.2f ms (%.2f×)", base, rc.SharelockMS, rc.Flock1MS, rc.Ratio)
	return rc, nil
}

// roundTrips counts the FUSE requests of acquire and release for each tool
// through faultfs (no kernel caches: every lookup and stat is a request).
func (d *driver) roundTrips() ([]*RoundTrip, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("round trips: mounting faultfs needs root (-roundtrips=false to skip)")
	}
	backing, err := os.MkdirTemp("/dev/shm", "sharelock-peers-rt-")
	if err != nil {
		return nil, fmt.Errorf("round trips: %w", err)
	}
	defer os.RemoveAll(backing)
	mnt := filepath.Join(d.tmp, "faultfs")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return nil, fmt.Errorf("round trips: %w", err)
	}
	fsys, err := faultfs.MountAt(backing, mnt)
	if err != nil {
		return nil, fmt.Errorf("round trips: %w", err)
	}
	defer func() {
		if err := fsys.Unmount(); err != nil {
			logf("unmounting faultfs: %v", err)
		}
	}()
	var out []*RoundTrip
	var errs []error
	for _, tool := range allTools {
		rt, err := d.roundTrip(fsys, tool)
		if err != nil {
			errs = append(errs, fmt.Errorf("round trips of %s: %w", tool, err))
			continue
		}
		logf("FUSE requests, %s: first acquire %d, acquire %d (%s), release %d (%s)",
			tool, rt.First, rt.Acquire, rt.AcquireOps, rt.Release, rt.ReleaseOps)
		out = append(out, rt)
	}
	return out, errors.Join(errs...)
}

func (d *driver) roundTrip(fsys *faultfs.FS, tool string) (*RoundTrip, error) {
	dir := filepath.Join(fsys.Dir(), slug(tool))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	c := d.command(tool, "step", filepath.Join(dir, "data.db"))
	in, err := c.StdinPipe()
	if err != nil {
		return nil, err
	}
	lr, err := startLines(c)
	if err != nil {
		return nil, err
	}
	defer func() { killAll([]*exec.Cmd{c}); c.Wait() }()
	step := func(cmd string) (map[faultfs.Op]int64, error) {
		time.Sleep(20 * time.Millisecond) // late RELEASE requests of the last step
		fsys.ResetCounts()
		if _, err := fmt.Fprintln(in, cmd); err != nil {
			return nil, err
		}
		l, err := lr.next(30 * time.Second)
		if err != nil || l != "ok" {
			return nil, fmt.Errorf("%s: %q, %v: %s", cmd, l, err, stderrOf(c))
		}
		time.Sleep(20 * time.Millisecond) // RELEASE is sent after close returns
		return fsys.Counts(), nil
	}
	rt := &RoundTrip{Tool: tool}
	var acq, rel []float64
	var lastAcq, lastRel map[faultfs.Op]int64
	for i := range 6 {
		a, err := step("acquire")
		if err != nil {
			return nil, err
		}
		r, err := step("release")
		if err != nil {
			return nil, err
		}
		if i == 0 {
			rt.First = faultfs.Total(a)
		} else {
			acq = append(acq, float64(faultfs.Total(a)))
			lastAcq = a
		}
		rel = append(rel, float64(faultfs.Total(r)))
		lastRel = r
	}
	fmt.Fprintln(in, "quit")
	rt.Acquire, rt.Release = int64(median(acq)), int64(median(rel))
	rt.AcquireOps, rt.ReleaseOps = faultfs.FormatCounts(lastAcq), faultfs.FormatCounts(lastRel)
	return rt, nil
}

// ---- report ----

func fmtDur(msv float64) string {
	switch {
	case msv == 0:
		return "0"
	case msv < 1:
		return fmt.Sprintf("%.0f µs", msv*1e3)
	case msv < 10:
		return fmt.Sprintf("%.2f ms", msv)
	case msv < 1000:
		return fmt.Sprintf("%.0f ms", msv)
	}
	return fmt.Sprintf("%.2f s", msv/1e3)
}

func fmtUS(us float64) string {
	if us < 1000 {
		return fmt.Sprintf("%.1f µs", us)
	}
	return fmtDur(us / 1e3)
}

// ratio formats sharelock's figure divided by the peer's.
func ratio(shl, peer float64) string {
	if peer == 0 {
		return "—"
	}
	r := shl / peer
	switch {
	case r < 0.01:
		return fmt.Sprintf("1/%.0f×", 1/r)
	case r >= 10:
		return fmt.Sprintf("%.0f×", r)
	case r >= 0.1:
		return fmt.Sprintf("%.2g×", r)
	}
	return fmt.Sprintf("%.2f×", r)
}

func takeoverStats(v []float64) (med, lo, hi float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	return median(v), slices.Min(v), slices.Max(v)
}

func markdown(rep *Report) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	load := ""
	if l, err := strconv.ParseFloat(strings.Fields(rep.LoadBefore + " 0")[0], 64); err == nil && l > float64(rep.CPUs)/2 {
		load = " — **measured under load**"
	}
	p("## sharelock and its peers, side by side\n\n")
	p("`%s` — %s, %d CPUs, load average %s before / %s after%s; %.0f s. %d contender processes per tool, %s holds, %.0f s of contention each.\n\n",
		rep.Command, rep.Started.Format("2006-01-02 15:04 UTC"), rep.CPUs, rep.LoadBefore, rep.LoadAfter, load, rep.Seconds,
		rep.Contenders, fmtDur(rep.HoldMS), rep.HandoffS)
	p("A ratio is sharelock's figure ÷ the peer's (above 1: sharelock's is larger).\n\n")
	peers := []string{toolFlock, toolPL}
	for _, fs := range rep.FS {
		if len(fs.CycleUS) == 0 && len(fs.Handoff) == 0 && len(fs.Takeover) == 0 {
			continue // -run-only
		}
		p("### %s (`%s`, %s)\n\n", fs.Name, fs.Dir, fs.Type)
		p("| figure | sharelock | gofrs/flock | proper-lockfile | goal (issue 6) |\n|---|---|---|---|---|\n")
		row := func(name, goal string, cell func(tool string) (string, float64, bool)) {
			if fs.Name == fsSFTP && goal != "0" {
				goal = "— (bar: tmpfs, ext4)"
			}
			p("| %s |", name)
			shl, shv, shok := cell(toolSharelock)
			p(" %s |", shl)
			for _, t := range peers {
				s, v, ok := cell(t)
				if ok && shok && s != "—" {
					s += " (" + ratio(shv, v) + ")"
				}
				p(" %s |", s)
			}
			p(" %s |\n", goal)
		}
		row("uncontended acquire + release", "≤ 50 µs (tmpfs)", func(t string) (string, float64, bool) {
			v, ok := fs.CycleUS[t]
			if !ok {
				return "—", 0, false
			}
			return fmtUS(v), v, true
		})
		hrow := func(name, goal string, f func(c *Contention) (string, float64)) {
			row(name, goal, func(t string) (string, float64, bool) {
				c := fs.Handoff[t]
				if c == nil {
					return "—", 0, false
				}
				s, v := f(c)
				return s, v, v != 0
			})
		}
		hrow("handoff p50", "≤ 0.3 ms", func(c *Contention) (string, float64) { return fmtDur(c.HandoffP50MS), c.HandoffP50MS })
		hrow("handoff p99", "≤ 2 ms", func(c *Contention) (string, float64) { return fmtDur(c.HandoffP99MS), c.HandoffP99MS })
		hrow("worst wait of any contender", "≤ 50 ms", func(c *Contention) (string, float64) { return fmtDur(c.WorstWaitMS), c.WorstWaitMS })
		hrow("releaser re-acquires at once", "≤ 15 %", func(c *Contention) (string, float64) {
			return fmt.Sprintf("%.0f %%", 100*c.SameHolder), c.SameHolder
		})
		hrow("Jain's fairness index (1 = fair, 0.125 = one of 8 gets all)", "—", func(c *Contention) (string, float64) {
			return fmt.Sprintf("%.3f", c.Jain), c.Jain
		})
		hrow("acquisitions (fewest–most per contender)", "—", func(c *Contention) (string, float64) {
			return fmt.Sprintf("%d (%d–%d)", c.Holds, slices.Min(c.PerContender), slices.Max(c.PerContender)), 0
		})
		row("overlapping holds", "0", func(t string) (string, float64, bool) {
			c := fs.Handoff[t]
			if c == nil {
				return "—", 0, false
			}
			return strconv.Itoa(c.Overlaps), 0, false
		})
		row("crash takeover (kill -9), median (min–max, n)", "≤ 50 ms", func(t string) (string, float64, bool) {
			v := fs.Takeover[t]
			if len(v) == 0 {
				return "—", 0, false
			}
			med, lo, hi := takeoverStats(v)
			if len(v) == 1 {
				return fmtDur(med), med, true
			}
			return fmt.Sprintf("%s (%s–%s, n=%d)", fmtDur(med), fmtDur(lo), fmtDur(hi), len(v)), med, true
		})
		p("\n")
		if fs.Name == fsSFTP {
			p("On SFTP every process uses the same sshfs mount. flock(2) there (gofrs/flock, flock(1)) is the kernel's local lock of that one mount: it gives **no exclusion against another mount or machine**; sharelock and proper-lockfile exclude across machines.\n\n")
		}
	}
	p("### `sharelock run` vs `flock(1)`, wrapping `true` (median wall time per invocation)\n\n")
	p("| filesystem | `sharelock run PATH -- true` | `flock PATH true` | ratio | goal |\n|---|---|---|---|---|\n")
	for _, fs := range rep.FS {
		if fs.Run == nil {
			continue
		}
		p("| %s | %s | %s | %.2f× | ≤ 1.2× |\n", fs.Name, fmtDur(fs.Run.SharelockMS), fmtDur(fs.Run.Flock1MS), fs.Run.Ratio)
	}
	p("\n")
	if len(rep.RoundTrips) > 0 {
		p("### Round trips: FUSE requests per operation (internal/faultfs counting share, no client caches)\n\n")
		p("| operation | sharelock | gofrs/flock | proper-lockfile | goal (SFTP) |\n|---|---|---|---|---|\n")
		by := map[string]*RoundTrip{}
		for _, rt := range rep.RoundTrips {
			by[rt.Tool] = rt
		}
		rrow := func(name, goal string, f func(rt *RoundTrip) int64) {
			p("| %s |", name)
			shl := by[toolSharelock]
			for _, t := range allTools {
				rt := by[t]
				if rt == nil {
					p(" — |")
					continue
				}
				s := strconv.FormatInt(f(rt), 10)
				if t != toolSharelock && shl != nil && f(rt) > 0 {
					s += " (" + ratio(float64(f(shl)), float64(f(rt))) + ")"
				}
				p(" %s |", s)
			}
			p(" %s |\n", goal)
		}
		rrow("first acquire (no lock file yet)", "—", func(rt *RoundTrip) int64 { return rt.First })
		rrow("acquire (median of 5)", "≤ 3", func(rt *RoundTrip) int64 { return rt.Acquire })
		rrow("release (median of 6)", "≤ 2", func(rt *RoundTrip) int64 { return rt.Release })
		p("\n")
		for _, t := range allTools {
			if rt := by[t]; rt != nil {
				p("- %s: acquire %s; release %s\n", t, rt.AcquireOps, rt.ReleaseOps)
			}
		}
		p("\n")
	}
	if len(rep.Errors) > 0 {
		p("### Errors\n\n")
		for _, e := range rep.Errors {
			p("- %s\n", strings.ReplaceAll(e, "\n", " "))
		}
		p("\n")
	}
	return b.String()
}
