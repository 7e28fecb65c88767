package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"sharelock"
	"sharelock/internal/proc"
)

// stopGrace is how long a child gets between the stop request and the kill.
const stopGrace = 10 * time.Second

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	wait := fs.Duration("wait", 0, "how long to wait for the lock (0: do not wait)")
	lease := fs.Duration("lease", sharelock.DefaultLease, "lease: others take over after this long without a heartbeat")
	app := fs.String("app", "", "application name shown to others (default: COMMAND's name)")
	onLost := fs.String("on-lost", "stop", "when the lock is lost: stop (SIGTERM, then kill after 10s) or signal:NAME (e.g. signal:HUP)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) < 2 {
		fmt.Fprintln(stderr, "sharelock run: need PATH -- COMMAND [ARGS...]")
		return exitUsage
	}
	path, cmdArgs := rest[0], rest[1:]
	if cmdArgs[0] == "--" {
		cmdArgs = cmdArgs[1:]
	}
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

	opts := []sharelock.Option{sharelock.WithApp(name), sharelock.WithLease(*lease)}
	var lock *sharelock.Lock
	if *wait > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), *wait)
		lock, err = sharelock.Acquire(ctx, path, opts...)
		cancel()
	} else {
		lock, err = sharelock.TryAcquire(path, opts...)
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
		fmt.Fprintf(stderr, "sharelock: %v\n", err)
		return exitError
	}

	cmd := exec.Command(cmdArgs[0], cmdArgs[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.Env = append(os.Environ(),
		"SHARELOCK_TOKEN="+strconv.FormatUint(lock.Token(), 10),
		"SHARELOCK_PATH="+path)
	// Take over the signals that would kill us, so we can pass them on and
	// release the lock after the child ends.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, forwardedSignals...)
	defer signal.Stop(sigs)
	caught := make(chan os.Signal, 4)
	signal.Notify(caught, caughtSignals...)
	defer signal.Stop(caught)

	child, err := proc.Start(cmd)
	if err != nil {
		lock.Release()
		fmt.Fprintf(stderr, "sharelock: cannot start %s: %v\n", cmdArgs[0], err)
		return 127
	}
	waited := make(chan error, 1)
	go func() { waited <- child.Wait() }()

	lost := false
	var werr error
loop:
	for {
		select {
		case werr = <-waited:
			break loop
		case s := <-sigs:
			_ = child.Signal(s)
		case <-caught:
		case <-lock.Lost():
			if lost {
				continue
			}
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
			fmt.Fprintf(stderr, "sharelock: %v\n", relErr)
		}
		return exitLost
	}
	if relErr != nil {
		fmt.Fprintf(stderr, "sharelock: %v\n", relErr)
		if code == 0 {
			code = exitError
		}
	}
	return code
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
