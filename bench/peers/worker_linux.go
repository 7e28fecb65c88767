//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/sys/unix"

	"sharelock"
)

// monoNow reads CLOCK_MONOTONIC in nanoseconds: the clock every contender
// (Go and Node alike) stamps its log with, so that the driver can merge the
// logs of separate processes.
func monoNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(fmt.Sprintf("clock_gettime(CLOCK_MONOTONIC): %v", err))
	}
	return ts.Nano()
}

// sleepUntil sleeps until the monotonic clock reads t.
func sleepUntil(t int64) {
	if d := time.Duration(t - monoNow()); d > 0 {
		time.Sleep(d)
	}
}

// goLocker is a Go contender's lock: acquire waits until it holds (or ctx
// ends); wait=false gives up at once when the lock is held.
type goLocker interface {
	acquire(ctx context.Context, wait bool) (release func() error, err error)
}

// sharelockLocker uses the public API as an application would (the default
// store, default lease and heartbeat).
type sharelockLocker struct{ path string }

func (s sharelockLocker) acquire(ctx context.Context, wait bool) (func() error, error) {
	var l *sharelock.Lock
	var err error
	if wait {
		l, err = sharelock.Acquire(ctx, s.path)
	} else {
		l, err = sharelock.TryAcquire(ctx, s.path)
	}
	if err != nil {
		return nil, fmt.Errorf("sharelock: %w", err)
	}
	return l.Release, nil
}

// flockLocker uses gofrs/flock: flock(2) LOCK_EX on PATH.lock, a blocking
// lock for waiters (the kernel queues them).
type flockLocker struct{ path string }

func (f flockLocker) acquire(ctx context.Context, wait bool) (func() error, error) {
	l := flock.New(f.path + ".lock")
	if wait {
		if err := l.Lock(); err != nil {
			return nil, fmt.Errorf("gofrs/flock: lock %s: %w", l.Path(), err)
		}
	} else {
		ok, err := l.TryLock()
		if err != nil {
			return nil, fmt.Errorf("gofrs/flock: trylock %s: %w", l.Path(), err)
		}
		if !ok {
			return nil, fmt.Errorf("gofrs/flock: %s is locked", l.Path())
		}
	}
	return l.Unlock, nil
}

func newGoLocker(tool, path string) (goLocker, error) {
	switch tool {
	case toolSharelock:
		return sharelockLocker{path}, nil
	case toolFlock:
		return flockLocker{path}, nil
	}
	return nil, fmt.Errorf("no Go contender for tool %q", tool)
}

// heldLock keeps a "hold" worker's lock reachable until it is killed.
var heldLock func() error

// workerMain runs one Go contender process (the driver re-executed with
// -worker): the same modes and output as node/contender.js.
//
//	contend PATH START_NS END_NS HOLD_MS   one line per hold: "want got release"
//	cycle PATH SECONDS                     "ops total_ns"
//	hold PATH                              "held NS", then holds until killed
//	wait PATH                              "waiting", then "got NS"
//	step PATH                              stdin: acquire | release | quit; answers "ok"
func workerMain(tool string, args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("worker: want MODE PATH [ARGS], got %q", args)
	}
	mode, path := args[0], args[1]
	lk, err := newGoLocker(tool, path)
	if err != nil {
		return err
	}
	ctx := context.Background()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	switch mode {
	case "contend":
		if len(args) != 5 {
			return fmt.Errorf("worker contend: want PATH START_NS END_NS HOLD_MS")
		}
		start, err1 := strconv.ParseInt(args[2], 10, 64)
		end, err2 := strconv.ParseInt(args[3], 10, 64)
		holdMS, err3 := strconv.ParseFloat(args[4], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return fmt.Errorf("worker contend: bad arguments %q", args[2:])
		}
		hold := time.Duration(holdMS * float64(time.Millisecond))
		sleepUntil(start)
		var lines []string
		for monoNow() < end {
			want := monoNow()
			actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			release, err := lk.acquire(actx, true)
			cancel()
			if err != nil {
				return fmt.Errorf("contend: acquire: %w", err)
			}
			got := monoNow()
			time.Sleep(hold)
			rel := monoNow()
			if err := release(); err != nil {
				return fmt.Errorf("contend: release: %w", err)
			}
			lines = append(lines, fmt.Sprintf("%d %d %d", want, got, rel))
		}
		for _, l := range lines {
			fmt.Fprintln(out, l)
		}
	case "cycle":
		if len(args) != 3 {
			return fmt.Errorf("worker cycle: want PATH SECONDS")
		}
		secs, err := strconv.ParseFloat(args[2], 64)
		if err != nil {
			return fmt.Errorf("worker cycle: bad seconds %q: %w", args[2], err)
		}
		begin := monoNow()
		end := begin + int64(secs*1e9)
		ops := 0
		for monoNow() < end {
			release, err := lk.acquire(ctx, false)
			if err != nil {
				return fmt.Errorf("cycle: acquire: %w", err)
			}
			if err := release(); err != nil {
				return fmt.Errorf("cycle: release: %w", err)
			}
			ops++
		}
		fmt.Fprintf(out, "%d %d\n", ops, monoNow()-begin)
	case "hold":
		release, err := lk.acquire(ctx, true)
		if err != nil {
			return fmt.Errorf("hold: %w", err)
		}
		// Keep the lock reachable: gofrs/flock's *os.File, once garbage,
		// is closed by its cleanup, which would drop the flock.
		heldLock = release
		fmt.Fprintf(out, "held %d\n", monoNow())
		out.Flush()
		// Until killed. Not select {}: in a static (CGO_ENABLED=0) build a
		// process whose only goroutine blocks forever without a timer
		// dies of "all goroutines are asleep - deadlock!", which dropped
		// gofrs/flock's lock at once (its waiter then "got" it 300 ms
		// before the kill: negative takeover times).
		for {
			time.Sleep(time.Hour)
		}
	case "wait":
		fmt.Fprintln(out, "waiting")
		out.Flush()
		actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		release, err := lk.acquire(actx, true)
		cancel()
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		fmt.Fprintf(out, "got %d\n", monoNow())
		out.Flush()
		if err := release(); err != nil {
			return fmt.Errorf("wait: release: %w", err)
		}
	case "step":
		in := bufio.NewScanner(os.Stdin)
		var release func() error
		for in.Scan() {
			switch cmd := strings.TrimSpace(in.Text()); cmd {
			case "acquire":
				if release, err = lk.acquire(ctx, false); err != nil {
					return fmt.Errorf("step: acquire: %w", err)
				}
			case "release":
				if release == nil {
					return fmt.Errorf("step: release without a hold")
				}
				if err := release(); err != nil {
					return fmt.Errorf("step: release: %w", err)
				}
				release = nil
			case "quit":
				return nil
			default:
				return fmt.Errorf("step: unknown command %q", cmd)
			}
			fmt.Fprintln(out, "ok")
			out.Flush()
		}
		return in.Err()
	default:
		return fmt.Errorf("worker: unknown mode %q", mode)
	}
	return nil
}
