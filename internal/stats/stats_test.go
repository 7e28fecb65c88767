package stats

import (
	"testing"
	"time"

	"sharelock/internal/core"
)

func ev(tok uint64, kind, state, user string, since time.Time, held time.Duration) core.Event {
	return core.Event{Token: tok, Kind: kind, State: state,
		Holder: &core.Holder{User: user, Since: since}, At: since.Add(held)}
}

func TestCompute(t *testing.T) {
	loc := time.UTC
	now := time.Date(2026, 11, 27, 15, 0, 0, 0, loc)
	d0 := time.Date(2026, 11, 27, 9, 0, 0, 0, loc)
	d1 := d0.AddDate(0, 0, -1)
	events := []core.Event{
		ev(1, "acquire", "released", "alice", d1, 10*time.Minute),
		ev(2, "acquire", "released", "bob", d1.Add(time.Hour), 30*time.Minute),
		ev(3, "acquire", "lost", "alice", d1.Add(2*time.Hour), time.Minute), // lost: no duration
		ev(4, "takeover", "released", "bob", d0, 20*time.Minute),
		{Token: 5, Kind: "break", State: "released", Holder: &core.Holder{User: "root", Since: d0.Add(time.Hour)},
			Broke: &core.Holder{User: "bob"}, At: d0.Add(time.Hour)},
		ev(6, "acquire", "held", "alice", d0.Add(2*time.Hour), 0),
		ev(7, "acquire", "released", "carol", d0.AddDate(0, 0, -30), time.Hour), // outside the window
		{Token: 8, Kind: "void", State: "released", At: d0},
	}
	s := Compute(events, 7, now, loc)
	if s.Events != 8 || s.Acquisitions != 6 || s.CrashesRecovered != 1 || s.ForcedReleases != 1 {
		t.Fatalf("counts: %+v", s)
	}
	// Known holds: 10, 30, 20, 60 min → median 25 min, longest 60 min.
	if s.KnownHolds != 4 || s.MedianHoldSeconds != 25*60 || s.LongestHoldSeconds != 3600 {
		t.Fatalf("holds: known %d median %v longest %v", s.KnownHolds, s.MedianHoldSeconds, s.LongestHoldSeconds)
	}
	if len(s.PerDay) != 7 || s.PerDay[6].Date != "2026-11-27" || s.PerDay[6].Acquisitions != 2 ||
		s.PerDay[5].Date != "2026-11-26" || s.PerDay[5].Acquisitions != 3 || s.PerDay[0].Acquisitions != 0 {
		t.Fatalf("per day: %+v", s.PerDay)
	}
	if len(s.Busiest) != 3 || s.Busiest[0].User != "alice" || s.Busiest[0].Acquisitions != 3 ||
		s.Busiest[1].User != "bob" || s.Busiest[1].HeldSeconds != 50*60 || s.Busiest[2].User != "carol" {
		t.Fatalf("busiest: %+v", s.Busiest)
	}
	if !s.First.Equal(d0.AddDate(0, 0, -30).Add(time.Hour)) || !s.Last.Equal(d0.Add(2*time.Hour)) {
		t.Fatalf("first/last: %v %v", s.First, s.Last)
	}
}

func TestComputeEmptyAndOddMedian(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)
	s := Compute(nil, 0, now, time.UTC)
	if len(s.PerDay) != 14 || s.Acquisitions != 0 || s.MedianHoldSeconds != 0 || len(s.Busiest) != 0 {
		t.Fatalf("empty: %+v", s)
	}
	if s.PerDay[0].Date != "2025-12-19" || s.PerDay[13].Date != "2026-01-01" {
		t.Fatalf("window: %s..%s", s.PerDay[0].Date, s.PerDay[13].Date)
	}
	base := now.Add(-10 * time.Minute)
	s = Compute([]core.Event{
		ev(1, "acquire", "released", "a", base, 3*time.Second),
		ev(2, "acquire", "released", "b", base, time.Second),
		ev(3, "acquire", "released", "c", base, 2*time.Second),
		// clock went backwards between acquire and release: no duration
		ev(4, "acquire", "released", "d", base, -time.Second),
	}, 1, now, time.UTC)
	if s.KnownHolds != 3 || s.MedianHoldSeconds != 2 || s.LongestHoldSeconds != 3 || s.PerDay[0].Acquisitions != 4 {
		t.Fatalf("odd median: %+v", s)
	}
}

func TestBusiestIsCapped(t *testing.T) {
	now := time.Now()
	var events []core.Event
	for i, u := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		for j := 0; j <= i; j++ {
			events = append(events, ev(uint64(len(events)+1), "acquire", "released", u, now.Add(-time.Hour), time.Minute))
		}
	}
	s := Compute(events, 3, now, time.Local)
	if len(s.Busiest) != MaxBusiest || s.Busiest[0].User != "g" || s.Busiest[4].User != "c" {
		t.Fatalf("busiest: %+v", s.Busiest)
	}
}
