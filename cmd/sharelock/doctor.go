package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"sharelock"
	"sharelock/internal/doctor"
)

// cmdDoctor is `sharelock doctor [--json] [--lease DURATION] [--peer DIR]
// [--rounds N] DIR`: it checks whether DIR can hold a safe lock (package
// internal/doctor) and prints the report. Exit status: 0 when it can
// (warnings allowed), 1 when it cannot (a ✘ check) or DIR cannot be checked
// (missing, not a folder, not writable), 64 on a usage error, 130 when
// interrupted (Ctrl+C).
func cmdDoctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	lease := fs.Duration("lease", sharelock.DefaultLease, "the lease to judge (as given to run --lease)")
	peer := fs.String("peer", "", "the same folder through another client mount: race and measure across two clients")
	rounds := fs.Int("rounds", doctor.DefaultRounds, "races per creation primitive")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "sharelock doctor: need exactly one DIR (flags go before it)")
		return exitUsage
	}
	if *lease < doctor.MinLease || *lease > doctor.MaxLease {
		fmt.Fprintf(stderr, "sharelock doctor: --lease %v is outside %v..%v\n", *lease, doctor.MinLease, doctor.MaxLease)
		return exitUsage
	}
	if *rounds < 1 || *rounds > 10000 {
		fmt.Fprintf(stderr, "sharelock doctor: --rounds %d is outside 1..10000\n", *rounds)
		return exitUsage
	}
	dir := fs.Arg(0)
	// Ctrl+C ends the checks early: Run stops at its next step and removes
	// its scratch folder. A call stuck on a stalled share cannot be
	// interrupted, so after a grace period (or a second Ctrl+C) we leave.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	type outcome struct {
		rep *doctor.Report
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		rep, err := doctor.Run(ctx, dir, doctor.Options{Lease: *lease, Peer: *peer, Rounds: *rounds})
		done <- outcome{rep, err}
	}()
	var res outcome
	select {
	case res = <-done:
	case <-sigs:
		cancel()
		select {
		case res = <-done:
		case <-sigs:
		case <-time.After(10 * time.Second):
		}
		if res.rep == nil && res.err == nil {
			fmt.Fprintf(stderr, "sharelock doctor: interrupted while a call on the share was still running; a scratch folder %s* may be left in %s (delete it by hand)\n", ".sharelock-doctor-", dir)
			return exitDoctorInterrupted
		}
	}
	rep, err := res.rep, res.err
	if err != nil {
		msg := err.Error()
		var ie *doctor.InputError
		if errors.As(err, &ie) {
			msg = fmt.Sprintf("cannot check %s: %v", ie.Path, ie.Err)
			if ie.Fix != "" {
				msg += "\n  - " + ie.Fix
			}
		} else if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "sharelock doctor: interrupted")
			return exitDoctorInterrupted
		}
		if *asJSON {
			writeJSON(stdout, map[string]any{"dir": dir, "ok": false, "verdict": "error", "error": err.Error()})
		}
		fmt.Fprintf(stderr, "sharelock doctor: %s\n", msg)
		return exitError
	}
	if *asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			fmt.Fprintf(stderr, "sharelock doctor: %v\n", err)
			return exitError
		}
	} else if err := rep.WriteText(stdout); err != nil {
		fmt.Fprintf(stderr, "sharelock doctor: %v\n", err)
		return exitError
	}
	if !rep.OK {
		return exitError
	}
	return 0
}

// exitDoctorInterrupted is the status after Ctrl+C (128+SIGINT, as shells report).
const exitDoctorInterrupted = 130

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
