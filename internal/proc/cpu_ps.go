package proc

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxTreeProcs bounds the processes CPUTime walks.
const maxTreeProcs = 4096

// treeCPU sums the CPU time of root and its descendants in the output of
// `ps -A -o pid=,ppid=,time=` (time as [[DD-]HH:]MM:SS[.ss]).
func treeCPU(ps []byte, root int) (time.Duration, error) {
	type row struct {
		ppid int
		cpu  time.Duration
	}
	rows := map[int]row{}
	kids := map[int][]int{}
	for _, line := range bytes.Split(ps, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) != 3 {
			continue
		}
		pid, err1 := strconv.Atoi(f[0])
		ppid, err2 := strconv.Atoi(f[1])
		cpu, err3 := parsePSTime(f[2])
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		rows[pid] = row{ppid, cpu}
		kids[ppid] = append(kids[ppid], pid)
	}
	if _, ok := rows[root]; !ok {
		return 0, fmt.Errorf("proc: process %d not in ps output", root)
	}
	var sum time.Duration
	seen := map[int]bool{}
	queue := []int{root}
	for len(queue) > 0 && len(seen) < maxTreeProcs {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		sum += rows[p].cpu
		queue = append(queue, kids[p]...)
	}
	return sum, nil
}

// parsePSTime parses ps's cumulative CPU time: "1:02.50", "00:01:02",
// "2-03:04:05".
func parsePSTime(s string) (time.Duration, error) {
	var days int
	if d, rest, ok := strings.Cut(s, "-"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, fmt.Errorf("bad ps time %q", s)
		}
		days, s = n, rest
	}
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("bad ps time %q", s)
	}
	secs, err := strconv.ParseFloat(parts[len(parts)-1], 64)
	if err != nil {
		return 0, fmt.Errorf("bad ps time %q", s)
	}
	total := secs
	mult := 60.0
	for i := len(parts) - 2; i >= 0; i-- {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return 0, fmt.Errorf("bad ps time %q", s)
		}
		total += float64(n) * mult
		mult *= 60
	}
	total += float64(days) * 86400
	return time.Duration(total * float64(time.Second)), nil
}
