package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// hold is one acquisition by one contender, in CLOCK_MONOTONIC nanoseconds:
// want (acquire called), got (acquire returned), rel (release called).
type hold struct {
	worker         int
	want, got, rel int64
}

// parseHolds reads a contender's log: one "want got rel" line per hold.
func parseHolds(worker int, out string) ([]hold, error) {
	var hs []hold
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("contender %d, line %d: want 3 fields, got %q", worker, i+1, line)
		}
		var v [3]int64
		for j := range f {
			n, err := strconv.ParseInt(f[j], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("contender %d, line %d: %w", worker, i+1, err)
			}
			v[j] = n
		}
		hs = append(hs, hold{worker, v[0], v[1], v[2]})
	}
	return hs, nil
}

// Contention is what the driver computes from the merged logs of the
// contenders of one tool on one filesystem.
type Contention struct {
	Contenders   int     `json:"contenders"`
	Holds        int     `json:"holds"`
	PerContender []int   `json:"per_contender"`
	HandoffP50MS float64 `json:"handoff_p50_ms"`
	HandoffP99MS float64 `json:"handoff_p99_ms"`
	WorstWaitMS  float64 `json:"worst_wait_ms"`
	// SameHolder is the share of handoffs in which the releaser itself got
	// the lock again at once.
	SameHolder float64 `json:"same_holder"`
	// Jain is Jain's fairness index over acquisitions per contender:
	// (Σx)² / (n·Σx²), 1 when all got the same number, 1/n when one got all.
	Jain float64 `json:"jain"`
	// Overlaps counts holds that began before the previous one was
	// released: exclusion failures (must be 0).
	Overlaps int `json:"overlaps"`
}

// contention merges the holds of n contenders.
func contention(n int, all []hold) Contention {
	c := Contention{Contenders: n, Holds: len(all), PerContender: make([]int, n)}
	for _, h := range all {
		c.PerContender[h.worker]++
	}
	c.Jain = jain(c.PerContender)
	if len(all) < 2 {
		return c
	}
	slices.SortFunc(all, func(x, y hold) int { return cmpInt64(x.got, y.got) })
	var handoffs []int64
	same := 0
	var worst int64
	for i, h := range all {
		worst = max(worst, h.got-h.want)
		if i == 0 {
			continue
		}
		p := all[i-1]
		if h.got < p.rel {
			c.Overlaps++
		}
		handoffs = append(handoffs, h.got-p.rel)
		if h.worker == p.worker {
			same++
		}
	}
	slices.Sort(handoffs)
	c.HandoffP50MS = ms(quantile(handoffs, 0.50))
	c.HandoffP99MS = ms(quantile(handoffs, 0.99))
	c.WorstWaitMS = ms(worst)
	c.SameHolder = float64(same) / float64(len(handoffs))
	return c
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// quantile of sorted values (nearest rank below).
func quantile(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))]
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// jain is Jain's fairness index of xs.
func jain(xs []int) float64 {
	var sum, sq float64
	for _, x := range xs {
		sum += float64(x)
		sq += float64(x) * float64(x)
	}
	if sq == 0 {
		return 0
	}
	return sum * sum / (float64(len(xs)) * sq)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
