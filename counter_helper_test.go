package sharelock_test

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"sharelock"
)

// runCounter is the "counter" helper role of the multi-process tests on
// every OS (TestManyProcessesCounter, the Windows and mixed-OS tests). It
// prints "ready", waits for a line on standard input, then n times:
// acquires the lock, increments the number in the counter file, and logs
// "TOKEN START END" (wall-clock nanoseconds after acquiring and before
// releasing) to its log file. It prints "done" at the end, or "error ..."
// and exits 1. With -inside it also creates a
// marker file exclusively while holding (an overlap with any other holder,
// whatever its OS, fails that create); -gap pauses after each release.
func runCounter(args []string) int {
	fs := flag.NewFlagSet("counter", flag.ContinueOnError)
	path := fs.String("path", "", "protected path")
	counter := fs.String("counter", "", "counter file")
	logName := fs.String("log", "", "hold log")
	n := fs.Int("n", 0, "acquisitions")
	lease := fs.Duration("lease", 2*time.Second, "lease")
	gap := fs.Duration("gap", 0, "pause after each release (lets other waiters in)")
	inside := fs.String("inside", "", "marker file created exclusively while holding (overlap check)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(format string, args ...any) int {
		fmt.Printf("error "+format+"\n", args...)
		return 1
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fail("no go signal: %v", err)
	}
	var log bytes.Buffer
	for i := 0; i < *n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		l, err := sharelock.Acquire(ctx, *path, sharelock.WithLease(*lease))
		cancel()
		if err != nil {
			return fail("acquire %d: %v", i, err)
		}
		start := time.Now().UnixNano()
		if err := l.Check(); err != nil {
			return fail("check after acquire: %v", err)
		}
		if *inside != "" {
			f, err := os.OpenFile(*inside, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
			if err != nil {
				return fail("OVERLAP: another holder is inside (token %d): %v", l.Token(), err)
			}
			fmt.Fprintf(f, "%s %d\n", runtime.GOOS, l.Token())
			f.Close()
		}
		b, err := os.ReadFile(*counter)
		if err != nil {
			return fail("%v", err)
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return fail("counter file %q: %v", b, err)
		}
		if err := os.WriteFile(*counter, []byte(strconv.Itoa(v+1)), 0o666); err != nil {
			return fail("%v", err)
		}
		if err := l.Check(); err != nil {
			return fail("check before release: %v", err)
		}
		if *inside != "" {
			if err := os.Remove(*inside); err != nil {
				return fail("removing the marker: %v", err)
			}
		}
		end := time.Now().UnixNano()
		fmt.Fprintf(&log, "%d %d %d\n", l.Token(), start, end)
		if err := l.Release(); err != nil {
			return fail("release: %v", err)
		}
		time.Sleep(*gap)
	}
	if err := os.WriteFile(*logName, log.Bytes(), 0o666); err != nil {
		return fail("%v", err)
	}
	fmt.Println("done")
	return 0
}
