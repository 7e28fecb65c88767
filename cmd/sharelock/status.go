package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"sharelock"
)

// statusJSON is the documented JSON shape of `sharelock status --json`.
type statusJSON struct {
	Path                string      `json:"path"`
	State               string      `json:"state"`
	Token               uint64      `json:"token"`
	Holder              *holderJSON `json:"holder,omitempty"`
	Since               string      `json:"since,omitempty"`
	HeartbeatAgeSeconds *float64    `json:"heartbeat_age_seconds,omitempty"`
	DeadProcess         bool        `json:"dead_process,omitempty"`
	Warnings            []string    `json:"warnings,omitempty"`
	Error               string      `json:"error,omitempty"`
}

type holderJSON struct {
	User string `json:"user"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
	App  string `json:"app"`
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON (an array, one object per PATH)")
	observe := fs.Duration("observe", 0, "watch a holder's heartbeat for up to this long to tell live from stale")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "sharelock status: need at least one PATH")
		return exitUsage
	}
	code := 0
	var out []statusJSON
	for _, p := range fs.Args() {
		info, err := sharelock.Inspect(context.Background(), p, sharelock.WithObserve(*observe))
		if err != nil {
			code = exitError
			if *asJSON {
				out = append(out, statusJSON{Path: p, State: "error", Error: errText(err)})
			} else {
				fmt.Fprintf(stderr, "%s: %s\n", p, errText(err))
			}
			continue
		}
		if *asJSON {
			out = append(out, toJSON(info))
			continue
		}
		fmt.Fprintln(stdout, describe(info))
		for _, w := range info.Warnings {
			fmt.Fprintf(stdout, "  warning: %s\n", w)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "sharelock status: %v\n", err)
			return exitError
		}
	}
	return code
}

func toJSON(info sharelock.Info) statusJSON {
	j := statusJSON{Path: info.Path, State: string(info.State), Token: info.Token, Warnings: info.Warnings, DeadProcess: info.DeadProcess}
	if info.State != sharelock.Free && info.Holder != nil {
		h := info.Holder
		j.Holder = &holderJSON{User: h.User, Host: h.Host, PID: h.PID, App: h.App}
		if !h.Since.IsZero() {
			j.Since = h.Since.UTC().Format(time.RFC3339)
		}
		age := info.HeartbeatAge.Seconds()
		j.HeartbeatAgeSeconds = &age
	}
	return j
}

func describe(info sharelock.Info) string {
	switch info.State {
	case sharelock.Free:
		if info.Token == 0 {
			return fmt.Sprintf("%s: free (never locked)", info.Path)
		}
		return fmt.Sprintf("%s: free (last token %d)", info.Path, info.Token)
	case sharelock.Stale:
		why := "no heartbeat for a whole lease"
		if info.DeadProcess {
			why = fmt.Sprintf("process %d is gone", info.Holder.PID)
		}
		return fmt.Sprintf("%s: stale, was held by %s (token %d, %s); the next user takes it over",
			info.Path, info.Holder.Who(), info.Token, why)
	}
	le := &sharelock.LockedError{Path: info.Path, Holder: info.Holder, LastSeen: info.HeartbeatAge}
	return fmt.Sprintf("%s: held (token %d) — %s", info.Path, info.Token, le.Error()[len(info.Path)+1:])
}

func cmdBreak(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("break", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reason := fs.String("reason", "", "why the lock is broken (required; recorded)")
	force := fs.Bool("force", false, "break even if the holder is alive")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 || *reason == "" {
		fmt.Fprintln(stderr, "sharelock break: need --reason TEXT and exactly one PATH")
		return exitUsage
	}
	p := fs.Arg(0)
	if !*force {
		fmt.Fprintf(stderr, "sharelock: checking that the holder of %s is gone (up to one lease)...\n", p)
	}
	info, err := sharelock.Break(context.Background(), p, *reason, *force)
	switch {
	case errors.Is(err, sharelock.ErrNotHeld):
		fmt.Fprintf(stdout, "%s: free, nothing to break\n", p)
		return 0
	case errors.Is(err, sharelock.ErrLive):
		fmt.Fprintf(stderr, "sharelock: %s\n", errText(err))
		return exitLocked
	case err != nil:
		fmt.Fprintf(stderr, "sharelock: %s\n", errText(err))
		return exitError
	}
	who := "an unknown holder"
	if info.Holder != nil {
		who = info.Holder.Who()
	}
	user := os.Getenv("USER")
	if user == "" {
		user = "you"
	}
	fmt.Fprintf(stdout, "%s: broke the lock held by %s; recorded as token %d with reason %q (by %s)\n", p, who, info.Token, *reason, user)
	return 0
}
