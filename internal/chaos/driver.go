//go:build linux

package chaos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"sharelock/internal/faultfs"
)

// Config is one chaos run.
type Config struct {
	// Name labels the share in the report ("sftp", "smb", "local", ...).
	Name string
	// Mounts is the shared folder as each machine mounts it: machine i uses
	// Mounts[i % len(Mounts)]. Give each machine its own client mount where
	// the share allows it. With Store set, it holds only the shared record.
	Mounts []string
	// Store, if set, is an etcd store URL (etcd://HOST:PORT[/PREFIX], see
	// package etcdstore): the workers lock through it (one store per worker
	// process, opened at its start, closed at its clean exit; a killed
	// worker's lease expires server-side), under the logical lock name
	// "chaos/chaos.db".
	// Default: the shared-folder store, locking Mounts[i]/chaos.db.
	Store string
	// Machines and Workers: Machines simulated machines with Workers worker
	// processes each.
	Machines, Workers int
	// Acquisitions: the run ends once workers have logged this many
	// successful acquisitions.
	Acquisitions int
	// Kills and Pauses: how many holders to SIGKILL, and to SIGSTOP for
	// PauseFor (default 1.5 × Lease + 500 ms) and then SIGCONT, spread
	// evenly over the run. Each lands on a worker while it holds the lock,
	// at a random point of its update (see agent).
	Kills, Pauses int
	PauseFor      time.Duration
	// Downs: how many times the holder's whole machine fails (every worker
	// on it killed at once, restarted DownFor later, default 2 × Lease):
	// the lock must then be taken over by another machine.
	Downs   int
	DownFor time.Duration
	// Fault, if set, is the fault-injecting share the Mounts lead to;
	// Faults episodes are injected on it, spread over the run, cycling
	// through: EIO on writes and creates, ENOSPC on writes, a stall of every
	// call for Stall (default 2 s), added latency of 5 ms on every call.
	// Each episode lasts FaultFor (default 300 ms; a stall lasts Stall).
	Fault    *faultfs.FS
	Faults   int
	FaultFor time.Duration
	Stall    time.Duration
	// Lease and Beat of every worker's lock; Hold is extra time a worker
	// keeps the lock after its update (default 0).
	Lease, Beat, Hold time.Duration
	// Out is the directory for the logs and the report (local disk, not the
	// share). It must be empty or missing.
	Out string
	// Seed makes the choice of victims repeatable (0: from the clock).
	Seed int64
	// Timeout bounds the whole run (default 20 min).
	Timeout time.Duration
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
}

func (c *Config) defaults() error {
	if len(c.Mounts) == 0 || c.Machines < 1 || c.Workers < 1 || c.Acquisitions < 1 || c.Out == "" {
		return errors.New("chaos: Config needs Mounts, Machines, Workers, Acquisitions and Out")
	}
	if c.Lease <= 0 {
		c.Lease = 3 * time.Second
	}
	if c.Beat <= 0 {
		c.Beat = c.Lease / 6
	}
	if c.PauseFor <= 0 {
		c.PauseFor = c.Lease*3/2 + 500*time.Millisecond
	}
	if c.DownFor <= 0 {
		c.DownFor = 2 * c.Lease
	}
	if c.FaultFor <= 0 {
		c.FaultFor = 300 * time.Millisecond
	}
	if c.Stall <= 0 {
		c.Stall = 2 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 20 * time.Minute
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano()
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.Fault == nil {
		c.Faults = 0
	}
	return nil
}

type machine struct {
	m         int
	host      string
	downUntil time.Time // its workers are down (and restart) until then
	cmd       *exec.Cmd
	in        io.WriteCloser
	out       *bufio.Reader
	stder     bytes.Buffer
}

func (m *machine) send(line string) (string, error) {
	if _, err := io.WriteString(m.in, line+"\n"); err != nil {
		return "", err
	}
	reply, err := m.out.ReadString('\n')
	return strings.TrimSpace(reply), err
}

// Run performs one chaos run and checks its history. It returns the report
// (also written to Out/report.txt and Out/report.json) and an error when the
// run could not be done or the check found a violation (then
// Out/porcupine.html shows porcupine's view when porcupine found it).
func Run(c Config) (*Report, error) {
	if err := c.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	if ents, _ := os.ReadDir(c.Out); len(ents) > 0 {
		return nil, fmt.Errorf("chaos: output directory %s is not empty; give a new one", c.Out)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return nil, errors.New("chaos: unshare(1) is not on PATH (Debian package util-linux)")
	}
	rec := filepath.Join(c.Mounts[0], recordName)
	if err := os.WriteFile(rec, []byte("0 0\n"), 0o644); err != nil {
		return nil, fmt.Errorf("chaos: creating the record: %w", err)
	}
	start := now()
	deadline := time.Now().Add(c.Timeout)
	rng := rand.New(rand.NewSource(c.Seed))

	var ms []*machine
	stopAll := func() {
		os.WriteFile(filepath.Join(c.Out, stopName), nil, 0o644)
		for _, m := range ms {
			m.in.Close()
		}
		done := make(chan struct{})
		go func() {
			for _, m := range ms {
				m.cmd.Wait()
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(2*c.PauseFor + 2*c.Lease + 30*time.Second):
			for _, m := range ms {
				m.cmd.Process.Kill() // unshare --kill-child takes the namespace down
			}
			<-done
		}
	}
	for i := 0; i < c.Machines; i++ {
		m := &machine{m: i, host: fmt.Sprintf("chaos-m%d", i+1)}
		ac := agentConf{M: i, Worker: workerConf{
			Dir: c.Mounts[i%len(c.Mounts)], Store: c.Store, Out: c.Out, Lease: c.Lease, Beat: c.Beat, Hold: c.Hold,
			Timeout: 4*c.Lease + 30*time.Second,
		}}
		for w := 0; w < c.Workers; w++ {
			ac.Workers = append(ac.Workers, i*c.Workers+w)
		}
		conf, _ := json.Marshal(ac)
		// --propagation slave: unmounts of the shares after the run reach
		// the machine's mount namespace, which would otherwise keep the
		// FUSE connections (and their daemons) alive.
		m.cmd = exec.Command("unshare", "--uts", "--pid", "--fork", "--mount-proc", "--propagation", "slave", "--kill-child",
			"sh", "-c", `hostname "$1" && exec "$2"`, "chaos", m.host, exe)
		m.cmd.Env = append(os.Environ(), RoleEnv+"=agent", confEnv+"="+string(conf))
		m.cmd.Stderr = &m.stder
		m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if m.in, err = m.cmd.StdinPipe(); err != nil {
			return nil, err
		}
		stdout, err := m.cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		m.out = bufio.NewReader(stdout)
		if err := m.cmd.Start(); err != nil {
			stopAll()
			return nil, fmt.Errorf("chaos: starting machine %s: %w", m.host, err)
		}
		ms = append(ms, m)
	}
	where := strings.Join(c.Mounts, ", ")
	if c.Store != "" {
		where = "lock in " + c.Store + ", record in " + where
	}
	c.Logf("chaos: %d machines × %d workers on %s (%s), lease %v, heartbeat %v; target %d acquisitions, %d kills, %d pauses, %d machine failures, %d faults",
		c.Machines, c.Workers, c.Name, where, c.Lease, c.Beat, c.Acquisitions, c.Kills, c.Pauses, c.Downs, c.Faults)

	// The schedule: injection k of a kind happens at acquisition
	// (k+1)·N/(n+1), with a little jitter.
	type shot struct {
		at   int
		kind string
		n    int
	}
	var plan []shot
	add := func(kind string, n int) {
		for k := 0; k < n; k++ {
			at := (k + 1) * c.Acquisitions / (n + 1)
			at += rng.Intn(c.Acquisitions/(4*(n+1)) + 1)
			plan = append(plan, shot{at, kind, k})
		}
	}
	add("kill", c.Kills)
	add("pause", c.Pauses)
	add("down", c.Downs)
	add("fault", c.Faults)
	sort.SliceStable(plan, func(i, j int) bool { return plan[i].at < plan[j].at })

	counter := &acqCounter{dir: c.Out, off: map[string]int64{}}
	var trying time.Time // when the first try of plan[0] failed
	var injected []string
	lastProgress := time.Now()
	var runErr error
	for {
		n := counter.count()
		if n >= c.Acquisitions {
			break
		}
		if time.Now().After(deadline) {
			runErr = fmt.Errorf("chaos: the run timed out after %v with %d of %d acquisitions", c.Timeout, n, c.Acquisitions)
			break
		}
		if time.Since(lastProgress) > 10*time.Second {
			c.Logf("chaos: %d/%d acquisitions, %d injected, %d to go", n, c.Acquisitions, len(injected), len(plan))
			lastProgress = time.Now()
		}
		if len(plan) > 0 && n >= plan[0].at {
			s := plan[0]
			what, err := inject(&c, ms, s.kind, s.n, rng)
			switch {
			case err == nil:
				injected = append(injected, what)
				c.Logf("chaos: at %d acquisitions: %s", n, what)
				plan, trying = plan[1:], time.Time{}
			case trying.IsZero():
				trying = time.Now()
			case time.Since(trying) > giveUp:
				c.Logf("chaos: giving up on %s %d after %v of tries: %v", s.kind, s.n, giveUp, err)
				plan, trying = plan[1:], time.Time{}
			}
			if err != nil {
				time.Sleep(time.Duration(5+rng.Intn(20)) * time.Millisecond)
				continue
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopAll()
	if c.Fault != nil {
		c.Fault.Clear()
	}
	end := now()
	for _, m := range ms {
		if s := strings.TrimSpace(m.stder.String()); s != "" {
			c.Logf("chaos: machine %s said: %s", m.host, s)
		}
	}
	params := CheckParams{Name: c.Name, Lease: c.Lease, Beat: c.Beat, RecordPath: rec,
		Machines: c.Machines, Workers: c.Workers, Start: start, End: end, Injected: injected}
	if v, tok, err := readRecord(rec); err == nil {
		params.FinalValue, params.FinalToken = &v, tok
	}
	if js, err := json.MarshalIndent(params, "", "  "); err == nil {
		os.WriteFile(filepath.Join(c.Out, "run.json"), js, 0o644)
	}
	rep, err := Check(c.Out, params)
	if err != nil {
		return rep, errors.Join(runErr, err)
	}
	return rep, runErr
}

// Waiting for a victim: an agent waits up to aimLimit for one of its
// workers to acquire the lock (with the wait queue every machine's turn
// comes within a few handoffs: well under a second on local disk, a few
// seconds on the slower shares); the driver tries other machines for up to
// giveUp, then gives the fault up (and the tests fail).
const (
	aimLimit = 15 * time.Second
	giveUp   = 60 * time.Second
)

// inject performs one fault of the given kind. A kill, pause or machine
// failure is aimed at a random machine that is up: its agent faults the
// next of its workers to acquire the lock, while that worker holds it.
func inject(c *Config, ms []*machine, kind string, k int, rng *rand.Rand) (string, error) {
	switch kind {
	case "kill", "pause", "down":
		var up []*machine
		for _, m := range ms {
			if time.Now().After(m.downUntil) {
				up = append(up, m)
			}
		}
		if len(up) == 0 {
			return "", errors.New("every machine is down")
		}
		target := up[rng.Intn(len(up))]
		cmd := fmt.Sprintf("kill %d", aimLimit.Nanoseconds())
		switch kind {
		case "pause":
			cmd = fmt.Sprintf("stop %d %d", c.PauseFor.Nanoseconds(), aimLimit.Nanoseconds())
		case "down":
			cmd = fmt.Sprintf("down %d %d", c.DownFor.Nanoseconds(), aimLimit.Nanoseconds())
		}
		reply, err := target.send(cmd)
		if err != nil {
			return "", fmt.Errorf("machine %s: %w", target.host, err)
		}
		var w, inc int
		var tok uint64
		if _, err := fmt.Sscanf(reply, "ok %d %d %d", &w, &inc, &tok); err != nil {
			return "", fmt.Errorf("machine %s: %s", target.host, reply)
		}
		if kind == "down" {
			// Restarted DownFor after the kill (plus a little).
			target.downUntil = time.Now().Add(c.DownFor + time.Second)
		}
		return fmt.Sprintf("%s of the holder on %s (worker %d, incarnation %d, token %d)", kind, target.host, w, inc, tok), nil
	case "fault":
		f := c.Fault
		switch k % 4 {
		case 0:
			f.FailOps(syscall.EIO, faultfs.OpWrite, faultfs.OpCreate)
			time.AfterFunc(c.FaultFor, f.Clear)
			return fmt.Sprintf("EIO on write and create for %v", c.FaultFor), nil
		case 1:
			f.FailOps(syscall.ENOSPC, faultfs.OpWrite)
			time.AfterFunc(c.FaultFor, f.Clear)
			return fmt.Sprintf("ENOSPC on write for %v", c.FaultFor), nil
		case 2:
			f.Hang()
			time.AfterFunc(c.Stall, f.Unhang)
			return fmt.Sprintf("stall of every call for %v", c.Stall), nil
		default:
			for _, op := range faultfs.Ops() {
				f.SetLatency(op, 5*time.Millisecond)
			}
			time.AfterFunc(c.FaultFor, f.Clear)
			return fmt.Sprintf("5 ms latency on every call for %v", c.FaultFor), nil
		}
	}
	return "", fmt.Errorf("unknown fault kind %q", kind)
}

// acqCounter counts acq_ok events in the worker logs, reading only what was
// appended since the last count.
type acqCounter struct {
	dir string
	off map[string]int64
	n   int
}

func (a *acqCounter) count() int {
	files, _ := filepath.Glob(filepath.Join(a.dir, "worker-*.log"))
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		f.Seek(a.off[p], io.SeekStart)
		b, _ := io.ReadAll(f)
		f.Close()
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			b = b[:i+1]
			a.off[p] += int64(len(b))
			a.n += bytes.Count(b, []byte(`"e":"acq_ok"`))
		}
	}
	return a.n
}
