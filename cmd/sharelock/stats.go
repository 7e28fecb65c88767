package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"sharelock"
	"sharelock/internal/stats"
)

// statsOut is the documented JSON shape of `sharelock stats --json`:
// stats.Summary with the path.
type statsOut struct {
	Path string `json:"path"`
	stats.Summary
}

// cmdStats prints the statistics of one lock from its history:
//
//	sharelock stats [--json] [--days N] PATH
func cmdStats(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	days := fs.Int("days", 14, "days covered by the per-day counts")
	timeout := fs.Duration("timeout", 30*time.Second, "give up reading the history after this long")
	storeURL := storeFlag(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 || *days < 1 {
		fmt.Fprintln(stderr, "sharelock stats: need exactly one PATH (and --days >= 1)")
		return exitUsage
	}
	store, code := setupStore("stats", args, *storeURL, stderr)
	if code >= 0 {
		return code
	}
	defer store.close(stderr)
	p := fs.Arg(0)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	events, err := sharelock.History(ctx, p, store.opts()...)
	if err != nil {
		fmt.Fprintf(stderr, "sharelock stats: reading the history of %s: %s\n", p, errText(err))
		return exitError
	}
	s := stats.Compute(events, *days, time.Now(), time.Local)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(statsOut{Path: p, Summary: s}); err != nil {
			fmt.Fprintf(stderr, "sharelock stats: %v\n", err)
			return exitError
		}
		return 0
	}
	fmt.Fprint(stdout, statsText(p, s))
	return 0
}

// statsText renders a Summary for people.
func statsText(path string, s stats.Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d acquisitions in %d recorded transitions", path, s.Acquisitions, s.Events)
	if !s.First.IsZero() {
		fmt.Fprintf(&b, " (%s to %s)", s.First.Local().Format("2006-01-02 15:04"), s.Last.Local().Format("2006-01-02 15:04"))
	}
	b.WriteString("\n")
	if s.KnownHolds > 0 {
		fmt.Fprintf(&b, "  hold: median %s, longest %s (%d holds released by their holder)\n",
			humanDur(s.MedianHoldSeconds), humanDur(s.LongestHoldSeconds), s.KnownHolds)
	} else {
		b.WriteString("  hold: no released hold recorded yet\n")
	}
	fmt.Fprintf(&b, "  crashes recovered (takeovers): %d\n  forced releases (breaks): %d\n", s.CrashesRecovered, s.ForcedReleases)
	if len(s.Busiest) > 0 {
		var us []string
		for _, u := range s.Busiest {
			us = append(us, fmt.Sprintf("%s %d", u.User, u.Acquisitions))
		}
		fmt.Fprintf(&b, "  busiest users: %s\n", strings.Join(us, ", "))
	}
	fmt.Fprintf(&b, "  acquisitions per day (last %d days):\n", len(s.PerDay))
	top := 1
	for _, d := range s.PerDay {
		top = max(top, d.Acquisitions)
	}
	for _, d := range s.PerDay {
		bar := strings.Repeat("#", (d.Acquisitions*40+top-1)/top)
		fmt.Fprintf(&b, "    %s %4d %s\n", d.Date, d.Acquisitions, bar)
	}
	return b.String()
}

func humanDur(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return d.Round(time.Minute).String()
	}
}
