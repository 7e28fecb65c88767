package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sharelock"
	"sharelock/internal/proc"
)

// stopGrace is how long a child gets between the stop request and the kill.
const stopGrace = 10 * time.Second

func cmdRun(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("run", flag.ContinueOnError)
	flags.SetOutput(stderr)
	wait := flags.Duration("wait", 0, "how long to wait for the lock (0: do not wait)")
	lease := flags.Duration("lease", sharelock.DefaultLease, "lease: others take over after this long without a heartbeat")
	app := flags.String("app", "", "application name shown to others (default: COMMAND's name)")
	onLost := flags.String("on-lost", "stop", "when the lock is lost: stop (SIGTERM, then kill after 10s) or signal:NAME (e.g. signal:HUP)")
	if err := flags.Parse(args); err != nil {
		return exitUsage
	}
	rest := flags.Args()
	// The "--" is required: without it, a flag written after PATH
	// ("run db --wait 5s -- cmd") would be run as the command.
	if len(rest) < 2 || rest[1] != "--" {
		fmt.Fprintln(stderr, "sharelock run: need [FLAGS] PATH -- COMMAND [ARGS...] (flags go before PATH)")
		return exitUsage
	}
	path, cmdArgs := rest[0], rest[2:]
	if len(cmdArgs) == 0 {
		fmt.Fprintln(stderr, "sharelock run: missing COMMAND after --")
		return exitUsage
	}
	lostSig, err := parseOnLost(*onLost)
	if err != nil {
		fmt.Fprintf(stderr, "sharelock run: %v\n", err)
		return exitUsage
	}
	name := *app
	if name == "" {
		name = baseName(cmdArgs[0])
	}

	// Take over the signals that would kill us before taking the lock, so
	// that from then on no signal ends sharelock between acquiring and
	// releasing it: we pass them on and release the lock after the child
	// ends. A signal that was ignored when we started (nohup, a background
	// job) stays ignored, for us and for the child.
	sigs := make(chan os.Signal, 4)
	notify(sigs, forwardedSignals)
	defer signal.Stop(sigs)
	caught := make(chan os.Signal, 4)
	notify(caught, caughtSignals)
	defer signal.Stop(caught)

	opts := []sharelock.Option{sharelock.WithApp(name), sharelock.WithLease(*lease)}
	lock, sig, err := acquireLock(path, *wait, opts, sigs, caught)
	if sig != nil {
		fmt.Fprintf(stderr, "sharelock: %v while waiting for the lock on %s; %s not started\n", sig, path, name)
		return signalStatus(sig)
	}
	if err != nil {
		var le *sharelock.LockedError
		if errors.As(err, &le) {
			fmt.Fprintf(stderr, "sharelock: %s.\n", le.Error())
			for _, s := range le.Solutions {
				fmt.Fprintf(stderr, "  - %s\n", s)
			}
			return exitLocked
		}
		fmt.Fprintf(stderr, "sharelock: %s\n", errText(err))
		return exitError
	}

	cmd := exec.Command(cmdArgs[0], cmdArgs[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.Env = append(os.Environ(),
		"SHARELOCK_TOKEN="+strconv.FormatUint(lock.Token(), 10),
		"SHARELOCK_PATH="+path)
	child, err := proc.Start(cmd)
	if err != nil {
		if relErr := lock.Release(); relErr != nil {
			fmt.Fprintf(stderr, "sharelock: %s\n", errText(relErr))
		}
		fmt.Fprintf(stderr, "sharelock: cannot start %s: %v\n", cmdArgs[0], err)
		// As shells do: 127 not found, 126 found but not executable.
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return 127
		}
		return 126
	}
	waited := make(chan error, 1)
	go func() { waited <- child.Wait() }()

	lost := false
	lostCh := lock.Lost()
	var werr error
loop:
	for {
		select {
		case werr = <-waited:
			break loop
		case s := <-sigs:
			_ = child.Signal(s)
		case <-caught:
		case <-lostCh:
			// A closed channel is always ready: stop selecting on it.
			lostCh = nil
			lost = true
			fmt.Fprintf(stderr, "sharelock: %v\n", lock.Err())
			if lostSig == nil {
				fmt.Fprintf(stderr, "sharelock: stopping %s (the lock no longer protects it)\n", name)
				go child.Stop(stopGrace)
			} else {
				fmt.Fprintf(stderr, "sharelock: sending %v to %s\n", lostSig, name)
				_ = child.Signal(lostSig)
			}
		}
	}
	relErr := lock.Release()
	code := exitCode(werr)
	if lost || errors.Is(relErr, sharelock.ErrLost) {
		if !lost {
			fmt.Fprintf(stderr, "sharelock: %s\n", errText(relErr))
		}
		return exitLost
	}
	if relErr != nil {
		fmt.Fprintf(stderr, "sharelock: %s\n", errText(relErr))
		if code == 0 {
			code = exitError
		}
	}
	return code
}

// acquireLock takes the lock for path, waiting up to wait (not at all if
// wait <= 0). A signal on sigs or caught ends the wait: acquireLock then
// returns that signal and holds no lock.
func acquireLock(path string, wait time.Duration, opts []sharelock.Option, sigs, caught <-chan os.Signal) (*sharelock.Lock, os.Signal, error) {
	type result struct {
		lock *sharelock.Lock
		err  error
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result, 1)
	go func() {
		var r result
		if wait > 0 {
			wctx, wcancel := context.WithTimeout(ctx, wait)
			r.lock, r.err = sharelock.Acquire(wctx, path, opts...)
			wcancel()
		} else {
			r.lock, r.err = sharelock.TryAcquire(ctx, path, opts...)
		}
		done <- r
	}()
	var sig os.Signal
	select {
	case r := <-done:
		return r.lock, nil, r.err
	case sig = <-sigs:
	case sig = <-caught:
	}
	// Cancelled, the library returns promptly (each filesystem call is
	// bounded); a lock it claimed meanwhile is released.
	cancel()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case r := <-done:
		if r.lock != nil {
			_ = r.lock.Release()
		}
	case <-t.C:
	}
	return nil, sig, nil
}

// notify relays the signals in sigs to c, except those that were ignored
// when sharelock started: those stay ignored, and so the child inherits
// them ignored (nohup). signal.Notify with no signals would relay all.
func notify(c chan<- os.Signal, sigs []os.Signal) {
	for _, s := range sigs {
		if !signal.Ignored(s) {
			signal.Notify(c, s)
		}
	}
}

// signalStatus is the exit status for ending because of sig: 128+N, as
// shells report a process killed by signal N.
func signalStatus(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return exitError
}

// errText renders err for a "sharelock: " line without repeating the
// prefix that the library's own errors carry.
func errText(err error) string {
	return strings.TrimPrefix(err.Error(), "sharelock: ")
}

func parseOnLost(s string) (os.Signal, error) {
	if s == "stop" {
		return nil, nil
	}
	if name, ok := strings.CutPrefix(s, "signal:"); ok {
		if sig := signalByName(name); sig != nil {
			return sig, nil
		}
		return nil, fmt.Errorf("unknown signal %q in --on-lost", name)
	}
	return nil, fmt.Errorf("--on-lost must be stop or signal:NAME, not %q", s)
}

// exitCode maps the child's end to our exit status (128+N for a signal, as shells do).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if c := signalExitCode(ee); c >= 0 {
			return c
		}
		return ee.ExitCode()
	}
	return exitError
}

func baseName(p string) string {
	i := strings.LastIndexAny(p, `/\`)
	return p[i+1:]
}
