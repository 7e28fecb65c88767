//go:build linux

package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
//	kill LIMIT        SIGKILL the next worker of this machine to acquire
//	                  the lock, while it holds it
//	stop NANOS LIMIT  SIGSTOP the next worker of this machine to acquire
//	                  the lock, while it holds it; SIGCONT it NANOS later
//	down NANOS LIMIT  the machine fails while one of its workers holds the
//	                  lock: SIGKILL every worker at once (power loss, or the
//	                  PC drops off the network), restart them NANOS later
//	                  (the reboot)
//
// LIMIT (ns) bounds the wait for one of this machine's workers to acquire.
//
// Aiming. Finding the holder from outside (inspecting the lock, reading
// the workers' logs) misses more often than not since the wait queue hands
// the lock over at every acquisition: by the time the signal is sent the
// holder has released. Instead each worker has a control socket to its
// agent (fd 3). For a command the agent arms its workers ("arm"); an armed
// worker reports "held TOK DUR" right after Acquire returned (DUR: how long
// its previous update, read to write_ok, took) and, after its update and
// Hold, waits for "go TOK" before it releases — it keeps holding the lock,
// heartbeats and all, like a longer Hold. The first armed worker to report
// is the victim: the agent disarms the others, waits a random delay in
// [0, 1.25·DUR] (at least 1 ms, at most a quarter lease), so that the fault
// lands at a random point of the update (on local disk the update takes
// less than the agent takes to react: there it lands in the Hold or the
// wait after it), and signals it. The victim holds the lock at
// that moment by construction: it cannot release before "go", which the
// agent sends only after the SIGSTOP (a stopped victim goes on and releases
// when it is continued; a killed one never gets it). Other armed workers
// get "go" at once.
//
// It answers each command with one line on standard output: "ok W INC TOK"
// naming the victim and its token, or "miss REASON". When standard input
// closes, it waits for its workers to finish (the driver has created the
// stop file) and exits.
//
// Agent log events: kill(w, inc, pid) just before SIGKILL, reaped(w, inc,
// pid) once the killed process is reaped, stop(w, inc, pid, d) at SIGSTOP,
// cont(w, inc, pid) at SIGCONT, exit(w, inc, err) when a worker it did not
// kill exits with an error. The kill and stop of an aimed victim carry its
// token (tok): the checker verifies that it held that token's lock then.
type agent struct {
	c   agentConf
	lg  *logger
	exe string
	rng *rand.Rand // under mu

	mu      sync.Mutex
	cur     map[int]*proc // worker number -> running incarnation
	stopped bool          // the stop file exists: no restarts
	// downUntil: the machine is "down" (every worker killed) until then;
	// no worker restarts before.
	downUntil time.Time
	// pending is the command waiting for a victim; nil: none.
	pending *request
	wg      sync.WaitGroup
}

type proc struct {
	w, inc int
	cmd    *exec.Cmd
	ctl    *os.File // control socket to the worker (writes under agent.mu)
	killed bool
	paused bool
	delay  time.Duration // before the restart after a kill
}

// request is a fault waiting for a victim.
type request struct {
	kind string        // kill, stop, down
	d    time.Duration // pause or down time
	done chan string   // the answer to the driver
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
	a := &agent{c: c, lg: lg, exe: exe, cur: map[int]*proc{},
		rng: rand.New(rand.NewSource(time.Now().UnixNano() + int64(c.M)))}
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
	wc.W, wc.Inc, wc.Ctl = w, inc, true
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
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		ef.Close()
		return fmt.Errorf("control socket for worker %d: %w", w, err)
	}
	ctl, theirs := os.NewFile(uintptr(fds[0]), "ctl"), os.NewFile(uintptr(fds[1]), "ctl-worker")
	cmd.ExtraFiles = []*os.File{theirs} // fd 3 in the worker
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		ef.Close()
		ctl.Close()
		return fmt.Errorf("starting worker %d: %w", w, err)
	}
	p := &proc{w: w, inc: inc, cmd: cmd, ctl: ctl}
	a.mu.Lock()
	a.cur[w] = p
	if a.pending != nil {
		fmt.Fprintln(p.ctl, "arm")
	}
	a.mu.Unlock()
	go a.listen(p)
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

// listen reads a worker's reports ("held TOK DUR") until it exits.
func (a *agent) listen(p *proc) {
	defer p.ctl.Close()
	sc := bufio.NewScanner(p.ctl)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "held" {
			continue
		}
		tok, err1 := strconv.ParseUint(f[1], 10, 64)
		dur, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		a.mu.Lock()
		req := a.pending
		if req == nil || p.paused || p.killed {
			fmt.Fprintf(p.ctl, "go %d\n", tok)
			a.mu.Unlock()
			continue
		}
		// The victim. It waits for "go" after its update: it holds the
		// lock until the fault.
		a.pending = nil
		a.disarm()
		bound := time.Duration(dur) * 5 / 4
		bound = min(max(bound, time.Millisecond), a.c.Worker.Lease/4)
		delay := time.Duration(a.rng.Int63n(int64(bound) + 1))
		a.mu.Unlock()
		go func() {
			time.Sleep(delay)
			req.done <- a.fire(req, p, tok)
		}()
	}
}

// disarm tells every worker to stop reporting. Called with mu held.
func (a *agent) disarm() {
	for _, q := range a.cur {
		fmt.Fprintln(q.ctl, "disarm")
	}
}

// fire performs the fault of req on p, which holds the lock with token tok.
func (a *agent) fire(req *request, p *proc, tok uint64) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p.killed || p.paused {
		fmt.Fprintf(p.ctl, "go %d\n", tok)
		return "miss the victim was killed or paused meanwhile"
	}
	pid := p.cmd.Process.Pid
	switch req.kind {
	case "down":
		t := now()
		a.downUntil = time.Now().Add(req.d)
		// Power goes for every worker at the same instant: stop them all
		// first, then kill. Killed one by one, a waiter of this machine
		// that outlived the holder by a moment saw it die (wake-ups come
		// at once), claimed the next generation and was killed between
		// its mkdir and its owner file: the others then waited out the
		// claim window (10 s) — a fault no machine failure produces.
		for _, q := range a.cur {
			if !q.killed {
				q.cmd.Process.Signal(syscall.SIGSTOP)
			}
		}
		for _, q := range a.cur {
			if q.killed {
				continue
			}
			q.killed, q.delay = true, req.d
			if q.cmd.Process.Signal(syscall.SIGKILL) == nil {
				e := event{E: "kill", T: t, W: q.w, Inc: q.inc, PID: q.cmd.Process.Pid, D: req.d.Nanoseconds()}
				if q == p {
					e.Tok = tok
				}
				a.lg.log(e)
			} else {
				q.cmd.Process.Signal(syscall.SIGCONT) // never leave one stopped
			}
		}
	case "kill":
		p.killed = true
		t := now()
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			return "miss " + err.Error()
		}
		a.lg.log(event{E: "kill", T: t, W: p.w, Inc: p.inc, PID: pid, Tok: tok})
	case "stop":
		p.paused = true
		t := now()
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			p.paused = false
			fmt.Fprintf(p.ctl, "go %d\n", tok)
			return "miss " + err.Error()
		}
		a.lg.log(event{E: "stop", T: t, W: p.w, Inc: p.inc, PID: pid, D: req.d.Nanoseconds(), Tok: tok})
		// Read when it is continued: it then goes on to release.
		fmt.Fprintf(p.ctl, "go %d\n", tok)
		go func() {
			time.Sleep(req.d)
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
	}
	return fmt.Sprintf("ok %d %d %d", p.w, p.inc, tok)
}

// command performs one driver command: it waits (up to its LIMIT) for one
// of the machine's workers to acquire the lock and faults it.
func (a *agent) command(f []string) string {
	req := &request{done: make(chan string, 1)}
	var nums []int64
	for _, s := range f[min(1, len(f)):] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return "miss bad number " + s
		}
		nums = append(nums, n)
	}
	switch {
	case len(f) == 2 && f[0] == "kill":
	case len(f) == 3 && (f[0] == "stop" || f[0] == "down"):
		req.d = time.Duration(nums[0])
	default:
		return "miss bad command"
	}
	req.kind = f[0]
	limit := time.Duration(nums[len(nums)-1])
	a.mu.Lock()
	if a.pending != nil {
		a.mu.Unlock()
		return "miss busy"
	}
	a.pending = req
	for _, p := range a.cur {
		fmt.Fprintln(p.ctl, "arm")
	}
	a.mu.Unlock()
	select {
	case r := <-req.done:
		return r
	case <-time.After(limit):
	}
	a.mu.Lock()
	if a.pending == req {
		a.pending = nil
		a.disarm()
		a.mu.Unlock()
		return fmt.Sprintf("miss no worker of this machine acquired the lock within %v", limit)
	}
	a.mu.Unlock()
	return <-req.done // a victim was found just now
}
