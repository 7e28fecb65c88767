// Package stats computes lock statistics from a lock's history (the events
// returned by sharelock.History): acquisitions per day, median and longest
// hold, crashes recovered, forced releases and the busiest users. Both
// `sharelock stats` and the dashboard (`sharelock ui`) use it, so they agree.
//
// Definitions (each event is one generation, see docs/protocol.md):
//   - an acquisition is an event of kind "acquire" or "takeover";
//   - a crash recovered is a "takeover" (a dead or stale holder taken over);
//   - a forced release is a "break" (an administrator released the lock);
//   - a hold's duration is known only for a claim its holder released
//     itself (state "released"): At − Holder.Since, both on the holder's
//     clock. Lost or still-running holds have no duration;
//   - days are calendar days in the location passed to Compute, by the
//     holder's acquisition time (Holder.Since; At when Since is missing).
package stats

import (
	"cmp"
	"slices"
	"time"

	"sharelock/internal/core"
)

// Day is the number of acquisitions that started on one calendar day.
type Day struct {
	Date         string `json:"date"` // YYYY-MM-DD in the location of Compute
	Acquisitions int    `json:"acquisitions"`
}

// User is one user's share of the acquisitions.
type User struct {
	User         string  `json:"user"`
	Acquisitions int     `json:"acquisitions"`
	HeldSeconds  float64 `json:"held_seconds"` // total of their holds with a known duration
}

// Summary is the statistics of one lock.
type Summary struct {
	Events           int `json:"events"` // transitions known (history), all kinds
	Acquisitions     int `json:"acquisitions"`
	CrashesRecovered int `json:"crashes_recovered"`
	ForcedReleases   int `json:"forced_releases"`
	// Holds with a known duration, and their median and longest, in
	// seconds (0 when none is known).
	KnownHolds         int     `json:"known_holds"`
	MedianHoldSeconds  float64 `json:"median_hold_seconds"`
	LongestHoldSeconds float64 `json:"longest_hold_seconds"`
	// First and Last are the oldest and newest event times (zero if none).
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// PerDay covers the Days calendar days ending today, oldest first,
	// including days without acquisitions.
	PerDay []Day `json:"per_day"`
	// Busiest lists users by acquisitions, most first (at most 5).
	Busiest []User `json:"busiest_users"`
}

// MaxBusiest is how many users Summary.Busiest lists at most.
const MaxBusiest = 5

// Compute summarises events (any order) over the days calendar days ending
// on now's day in loc (days < 1 means 14). Events outside that window still
// count in the totals, medians and users; only PerDay is windowed.
func Compute(events []core.Event, days int, now time.Time, loc *time.Location) Summary {
	if days < 1 {
		days = 14
	}
	if loc == nil {
		loc = time.Local
	}
	s := Summary{Events: len(events)}
	today := dayStart(now.In(loc))
	first := today.AddDate(0, 0, -(days - 1))
	s.PerDay = make([]Day, days)
	index := make(map[string]int, days)
	for i := range s.PerDay {
		d := first.AddDate(0, 0, i).Format(time.DateOnly)
		s.PerDay[i].Date = d
		index[d] = i
	}
	users := map[string]*User{}
	var holds []time.Duration
	for _, e := range events {
		if !e.At.IsZero() {
			if s.First.IsZero() || e.At.Before(s.First) {
				s.First = e.At
			}
			if e.At.After(s.Last) {
				s.Last = e.At
			}
		}
		switch e.Kind {
		case "break":
			s.ForcedReleases++
			continue
		case "takeover":
			s.CrashesRecovered++
		case "acquire":
		default:
			continue
		}
		s.Acquisitions++
		start := e.At
		name := "(unknown)"
		if e.Holder != nil {
			if !e.Holder.Since.IsZero() {
				start = e.Holder.Since
			}
			if e.Holder.User != "" {
				name = e.Holder.User
			}
		}
		if !start.IsZero() {
			if i, ok := index[start.In(loc).Format(time.DateOnly)]; ok {
				s.PerDay[i].Acquisitions++
			}
		}
		u := users[name]
		if u == nil {
			u = &User{User: name}
			users[name] = u
		}
		u.Acquisitions++
		if d, ok := HoldDuration(e); ok {
			holds = append(holds, d)
			u.HeldSeconds += d.Seconds()
		}
	}
	s.KnownHolds = len(holds)
	if len(holds) > 0 {
		slices.Sort(holds)
		s.LongestHoldSeconds = holds[len(holds)-1].Seconds()
		mid := len(holds) / 2
		if len(holds)%2 == 1 {
			s.MedianHoldSeconds = holds[mid].Seconds()
		} else {
			s.MedianHoldSeconds = (holds[mid-1] + holds[mid]).Seconds() / 2
		}
	}
	for _, u := range users {
		s.Busiest = append(s.Busiest, *u)
	}
	slices.SortFunc(s.Busiest, func(a, b User) int {
		if c := cmp.Compare(b.Acquisitions, a.Acquisitions); c != 0 {
			return c
		}
		return cmp.Compare(a.User, b.User)
	})
	if len(s.Busiest) > MaxBusiest {
		s.Busiest = s.Busiest[:MaxBusiest]
	}
	return s
}

// HoldDuration returns how long the claim of e was held, when that is known:
// e is an acquire or takeover its holder released itself, with both times
// present and At not before Since.
func HoldDuration(e core.Event) (time.Duration, bool) {
	if (e.Kind != "acquire" && e.Kind != "takeover") || e.State != "released" || e.Holder == nil ||
		e.Holder.Since.IsZero() || e.At.IsZero() || e.At.Before(e.Holder.Since) {
		return 0, false
	}
	return e.At.Sub(e.Holder.Since), true
}

func dayStart(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}
