package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"sharelock"
	"sharelock/internal/core"
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
	Waiting             []waitJSON  `json:"waiting,omitempty"`
	Warnings            []string    `json:"warnings,omitempty"`
	Error               string      `json:"error,omitempty"`
}

// waitJSON is one process waiting in line (first in line first).
type waitJSON struct {
	User  string `json:"user"`
	Host  string `json:"host"`
	PID   int    `json:"pid"`
	App   string `json:"app"`
	Since string `json:"since,omitempty"` // when it took its ticket (its clock)
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
	observe := fs.Duration("observe", 0, "watch a holder's heartbeat for up to this long to tell live from stale (no effect with an etcd store: it has no stale state)")
	storeURL := storeFlag(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "sharelock status: need at least one PATH")
		return exitUsage
	}
	store, code := setupStore("status", args, *storeURL, stderr)
	if code >= 0 {
		return code
	}
	defer store.close(stderr)
	opts := append(store.opts(), sharelock.WithObserve(*observe))
	code = 0
	var out []statusJSON
	for _, p := range fs.Args() {
		info, err := sharelock.Inspect(context.Background(), p, opts...)
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
			j := toJSON(info)
			if store.etcd() {
				// A live etcd lease, not a heartbeat this observer watched.
				j.HeartbeatAgeSeconds = nil
			}
			out = append(out, j)
			continue
		}
		fmt.Fprintln(stdout, describe(info))
		if line := describeWaiting(info.Waiting, time.Now()); line != "" {
			fmt.Fprintf(stdout, "  %s\n", line)
		}
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
	for _, w := range info.Waiting {
		wj := waitJSON{User: w.User, Host: w.Host, PID: w.PID, App: w.App}
		if !w.Since.IsZero() {
			wj.Since = w.Since.UTC().Format(time.RFC3339)
		}
		j.Waiting = append(j.Waiting, wj)
	}
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
	force := fs.Bool("force", false, "break even if the holder is alive (with an etcd store every holder is: it keeps its lease alive)")
	storeURL := storeFlag(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 || *reason == "" {
		fmt.Fprintln(stderr, "sharelock break: need --reason TEXT and exactly one PATH")
		return exitUsage
	}
	store, code := setupStore("break", args, *storeURL, stderr)
	if code >= 0 {
		return code
	}
	defer store.close(stderr)
	p := fs.Arg(0)
	if !*force && !store.etcd() {
		fmt.Fprintf(stderr, "sharelock: checking that the holder of %s is gone (up to one lease)...\n", p)
	}
	info, err := sharelock.Break(context.Background(), p, *reason, *force, store.opts()...)
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

// describeWaiting renders the wait queue as "2 waiting: bob on PC-3 for
// 4 min, carol on PC-7 for 1 min" (first in line first), or "" if nobody
// waits. Durations come from each waiter's own clock (display only).
func describeWaiting(ws []sharelock.Holder, now time.Time) string {
	if len(ws) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d waiting: ", len(ws))
	for i, w := range ws {
		if i > 0 {
			b.WriteString(", ")
		}
		user := w.User
		if user == "" {
			user = "an unknown user"
		}
		b.WriteString(user)
		if w.Host != "" {
			b.WriteString(" on " + w.Host)
		}
		if !w.Since.IsZero() {
			b.WriteString(" for " + core.AgeText(now.Sub(w.Since)))
		}
	}
	return b.String()
}
