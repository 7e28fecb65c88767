//go:build linux

package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// agentConf is a machine agent's configuration (JSON in confEnv).
type agentConf struct {
	M       int   // machine number
	Workers []int // global worker numbers on this machine
	Worker  workerConf
}

// agent is PID 1 of one simulated machine. It starts the machine's workers,
// restarts a worker it killed (a new incarnation, a new PID), and obeys the
// driver's commands on standard input, one per line:
//
//	kill PID        SIGKILL the worker with that PID (in this namespace)
//	stop PID NANOS  SIGSTOP it, SIGCONT it NANOS later
//
//	down NANOS      the machine fails: SIGKILL every worker at once (power
//	                loss, or the PC drops off the network), restart them
//	                NANOS later (the reboot)
//
// PID may be "holder": the worker of this machine whose log says it holds
// the lock at this moment (the driver's view of the holder is a few
// milliseconds old, and on a fast disk holders change faster).
//
// It answers each with one line on standard output: "ok W INC" naming the
// worker, or "miss REASON". When standard input closes, it waits for its
// workers to finish (the driver has created the stop file) and exits.
//
// Agent log events: kill(w, inc, pid) just before SIGKILL, reaped(w, inc,
// pid) once the killed process is reaped, stop(w, inc, pid, d) at SIGSTOP,
// cont(w, inc, pid) at SIGCONT, exit(w, inc, err) when a worker it did not
// kill exits with an error.
type agent struct {
	c   agentConf
	lg  *logger
	exe string

	mu      sync.Mutex
	cur     map[int]*proc // worker number -> running incarnation
	stopped bool          // the stop file exists: no restarts
	// downUntil: the machine is "down" (every worker killed) until then;
	// no worker restarts before.
	downUntil time.Time
	wg        sync.WaitGroup
}

type proc struct {
	w, inc int
	cmd    *exec.Cmd
	killed bool
	paused bool
	delay  time.Duration // before the restart after a kill
}

func agentMain() int {
	var c agentConf
	if err := getConf(&c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos agent:", err)
		return 2
	}
	lg, err := openLog(agentLog(c.Worker.Out, c.M))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	a := &agent{c: c, lg: lg, exe: exe, cur: map[int]*proc{}}
	for _, w := range c.Workers {
		if err := a.start(w, 0); err != nil {
			fmt.Fprintln(os.Stderr, "chaos agent:", err)
			return 2
		}
	}
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		fmt.Fprintln(out, a.command(strings.Fields(in.Text())))
		out.Flush()
	}
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	a.wg.Wait()
	lg.close()
	return 0
}

func (a *agent) start(w, inc int) error {
	wc := a.c.Worker
	wc.W, wc.Inc = w, inc
	conf, _ := json.Marshal(wc)
	cmd := exec.Command(a.exe)
	cmd.Env = append(os.Environ(), RoleEnv+"=worker", confEnv+"="+string(conf))
	errPath := fmt.Sprintf("%s/worker-%03d-%02d.stderr", wc.Out, w, inc)
	ef, err := os.Create(errPath)
	if err != nil {
		return err
	}
	cmd.Stderr = ef
	cmd.Stdout = ef
	if err := cmd.Start(); err != nil {
		ef.Close()
		return fmt.Errorf("starting worker %d: %w", w, err)
	}
	p := &proc{w: w, inc: inc, cmd: cmd}
	a.mu.Lock()
	a.cur[w] = p
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		err := cmd.Wait()
		reaped := now()
		ef.Close()
		a.mu.Lock()
		killed, stopped := p.killed, a.stopped
		if a.cur[w] == p {
			delete(a.cur, w)
		}
		a.mu.Unlock()
		if killed {
			// The process is certainly dead now: the crash happened
			// between the kill event and this one.
			a.lg.log(event{E: "reaped", T: reaped, W: w, Inc: inc, PID: cmd.Process.Pid})
		}
		if !killed && err != nil {
			a.lg.log(event{E: "exit", W: w, Inc: inc, PID: cmd.Process.Pid, Err: err.Error()})
		}
		if !killed {
			return // finished (stop file) or failed: not restarted
		}
		time.Sleep(20*time.Millisecond + p.delay)
		a.mu.Lock()
		wait := time.Until(a.downUntil)
		a.mu.Unlock()
		if wait > 0 {
			time.Sleep(wait)
		}
		if _, err := os.Stat(filepath.Join(wc.Out, stopName)); err == nil || stopped {
			return
		}
		if err := a.start(w, inc+1); err != nil {
			a.lg.log(event{E: "exit", W: w, Inc: inc + 1, Err: err.Error()})
		}
	}()
	return nil
}

func (a *agent) find(pid int) *proc {
	for _, p := range a.cur {
		if p.cmd.Process.Pid == pid {
			return p
		}
	}
	return nil
}

// holder returns the running worker whose last logged event is inside a
// hold (after acq_ok, before rel), or nil.
func (a *agent) holder() *proc {
	for _, p := range a.cur {
		if p.paused || p.killed {
			continue
		}
		if e, ok := lastEvent(workerLog(a.c.Worker.Out, p.w, p.inc)); ok {
			switch e.E {
			case "acq_ok", "read", "read_ok", "read_err", "skip", "write", "write_ok", "write_err":
				return p
			}
		}
	}
	return nil
}

// lastEvent reads the last complete line of a log.
func lastEvent(path string) (event, bool) {
	f, err := os.Open(path)
	if err != nil {
		return event{}, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return event{}, false
	}
	off := max(fi.Size()-512, 0)
	buf := make([]byte, fi.Size()-off)
	n, _ := f.ReadAt(buf, off)
	lines := strings.Split(strings.TrimRight(string(buf[:n]), "\n"), "\n")
	var e event
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &e); err != nil {
		return event{}, false
	}
	return e, true
}

func (a *agent) command(f []string) string {
	if len(f) < 2 {
		return "miss bad command"
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if f[0] == "down" {
		d, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return "miss bad duration"
		}
		if a.holder() == nil {
			return "miss no worker of this machine holds the lock"
		}
		t := now()
		n := 0
		a.downUntil = time.Now().Add(time.Duration(d))
		for _, p := range a.cur {
			if p.killed {
				continue
			}
			p.killed, p.delay = true, time.Duration(d)
			if p.cmd.Process.Signal(syscall.SIGKILL) == nil {
				a.lg.log(event{E: "kill", T: t, W: p.w, Inc: p.inc, PID: p.cmd.Process.Pid, D: d})
				n++
			}
		}
		return fmt.Sprintf("ok %d workers", n)
	}
	var p *proc
	if f[1] == "holder" {
		if p = a.holder(); p == nil {
			return "miss no worker of this machine holds the lock"
		}
	} else {
		pid, err := strconv.Atoi(f[1])
		if err != nil {
			return "miss bad pid"
		}
		if p = a.find(pid); p == nil {
			return "miss no worker has pid " + f[1]
		}
	}
	pid := p.cmd.Process.Pid
	if p.paused || p.killed {
		return "miss busy"
	}
	switch f[0] {
	case "kill":
		p.killed = true
		t := now()
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			return "miss " + err.Error()
		}
		a.lg.log(event{E: "kill", T: t, W: p.w, Inc: p.inc, PID: pid})
	case "stop":
		if len(f) < 3 {
			return "miss bad command"
		}
		d, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return "miss bad duration"
		}
		p.paused = true
		t := now()
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			p.paused = false
			return "miss " + err.Error()
		}
		a.lg.log(event{E: "stop", T: t, W: p.w, Inc: p.inc, PID: pid, D: d})
		go func() {
			time.Sleep(time.Duration(d))
			a.mu.Lock()
			defer a.mu.Unlock()
			p.paused = false
			if p.killed {
				return // killed while paused (its machine went down)
			}
			t := now()
			p.cmd.Process.Signal(syscall.SIGCONT)
			a.lg.log(event{E: "cont", T: t, W: p.w, Inc: p.inc, PID: pid})
		}()
	default:
		return "miss unknown command " + f[0]
	}
	return fmt.Sprintf("ok %d %d", p.w, p.inc)
}
