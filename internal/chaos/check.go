//go:build linux

package chaos

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// CheckParams describes a finished run to Check.
type CheckParams struct {
	Name              string
	Lease, Beat       time.Duration
	RecordPath        string // the shared record, read for its final value
	Machines, Workers int
	Start, End        int64    // now() at the run's start and end
	Injected          []string // what the driver injected, for the report
	// FinalToken is the token stored in the final record (with FinalValue).
	FinalToken uint64
	// FinalValue, if set, is the record's value at the end (instead of
	// reading RecordPath, which is gone once the share is).
	FinalValue *int64
	// PorcupineTimeout bounds the linearizability check (default 2 min).
	PorcupineTimeout time.Duration
}

// Report is the outcome of a chaos run.
type Report struct {
	Name              string        `json:"name"`
	Machines          int           `json:"machines"`
	Workers           int           `json:"workers_per_machine"`
	Lease             time.Duration `json:"lease_ns"`
	Duration          time.Duration `json:"duration_ns"`
	Acquisitions      int           `json:"acquisitions"`
	AcquireErrors     int           `json:"acquire_errors"`
	Updates           int           `json:"updates"`               // writes that returned success
	UncertainUpdates  int           `json:"uncertain_updates"`     // writes cut by a kill or an I/O error
	SkippedFenced     int           `json:"skipped_fenced"`        // record carried a newer token
	SkippedLost       int           `json:"skipped_lost"`          // Lock.Check failed before the write
	ReadErrors        int           `json:"read_errors"`           // reading the record failed
	ReleasedLost      int           `json:"released_lost"`         // Release reported the lock lost
	ReleaseErrors     int           `json:"release_errors"`        // Release failed otherwise
	Kills             int           `json:"kills"`                 // SIGKILLs sent
	KillsHolding      int           `json:"kills_while_holding"`   // ... to a process holding the lock
	Pauses            int           `json:"pauses"`                // SIGSTOP/SIGCONTs
	PausesHolding     int           `json:"pauses_while_holding"`  // ... of a process holding the lock
	Downs             int           `json:"machine_failures"`      // whole machines killed
	AimedKills        int           `json:"aimed_kills"`           // kills aimed at a holder (kills and machine failures)
	AimedKillsHit     int           `json:"aimed_kills_hit"`       // ... that landed inside that holder's hold
	AimedPauses       int           `json:"aimed_pauses"`          // pauses aimed at a holder
	AimedPausesHit    int           `json:"aimed_pauses_hit"`      // ... that landed inside that holder's hold
	Faults            int           `json:"faults"`                // fault-share episodes
	FinalValue        int64         `json:"final_value"`           // the record at the end
	Overlaps          int           `json:"overlaps"`              // two holds at once
	LostUpdates       int           `json:"lost_updates"`          // two writes based on one value
	LateWrites        int           `json:"late_writes"`           // of a holder paused between check and write
	Overwritten       int           `json:"overwritten_updates"`   // successful updates lost to late writes
	TokenOrder        int           `json:"token_order_errors"`    // tokens not growing with time
	RecoveryMisses    int           `json:"recovery_misses"`       // crash not recovered within bound
	RecoveryBound     time.Duration `json:"recovery_bound_ns"`     //
	TakeoverSame      []int64       `json:"takeover_same_ns"`      // kill → next acquisition, same machine
	TakeoverOther     []int64       `json:"takeover_other_ns"`     // kill → next acquisition, other machine
	PauseRecovery     []int64       `json:"pause_recovery_ns"`     // SIGSTOP → next acquisition
	Porcupine         string        `json:"porcupine"`             // Ok, Illegal or Unknown
	PorcupineOps      int           `json:"porcupine_operations"`  //
	PorcupineDuration time.Duration `json:"porcupine_duration_ns"` //
	Injected          []string      `json:"injected"`
	Violations        []string      `json:"violations"`
	Notes             []string      `json:"notes"`
}

// hold is one acquisition by one incarnation, with what followed it.
type hold struct {
	c, w, inc, m     int
	tok              uint64
	acqCall, acqRet  int64
	readCall, readOK int64
	v                int64  // value read
	vt               uint64 // token stored with the value read
	skip             string // why no write
	writeCall        int64
	writeRet         int64  // 0: no return logged
	writeRes         string // "ok", "err", "" (none or cut by a kill)
	relCall, relRet  int64
	relRes           string // "ok", "lost", "err", "" (none logged)
}

type incarnation struct {
	c, w, inc, m int
	holds        []*hold
	pendingAcq   int64 // an acq with no result (killed while acquiring)
	acqErrs      int
	killed       int64 // 0 if not killed; else when SIGKILL was sent
	reaped       int64 // when the killed process was certainly dead
	pauses       [][2]int64
	// killTok, pauseToks: the token of the hold a kill or pause (by
	// index) was aimed at; 0: not aimed (another worker of a machine that
	// went down).
	killTok   uint64
	pauseToks []uint64
}

// Recheck checks the logs of an earlier run again (from its run.json).
func Recheck(dir string) (*Report, error) {
	js, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		return nil, fmt.Errorf("chaos: %s is not the output of a finished run: %w", dir, err)
	}
	var p CheckParams
	if err := json.Unmarshal(js, &p); err != nil {
		return nil, fmt.Errorf("chaos: %s: %w", filepath.Join(dir, "run.json"), err)
	}
	return Check(dir, p)
}

// Check reads the logs in dir and checks the history. It writes
// report.txt and report.json (and porcupine.html when porcupine finds the
// history illegal) into dir. The error lists the violations.
func Check(dir string, p CheckParams) (*Report, error) {
	if p.PorcupineTimeout <= 0 {
		p.PorcupineTimeout = 2 * time.Minute
	}
	r := &Report{Name: p.Name, Machines: p.Machines, Workers: p.Workers, Lease: p.Lease,
		Duration: time.Duration(p.End - p.Start), Injected: p.Injected}
	r.RecoveryBound = p.Lease*3/2 + 2*time.Second
	incs, err := readLogs(dir, p)
	if err != nil {
		return r, err
	}
	finalTok := p.FinalToken
	if p.FinalValue != nil {
		r.FinalValue = *p.FinalValue
	} else if p.RecordPath != "" {
		v, tok, err := readRecord(p.RecordPath)
		if err != nil {
			r.Violations = append(r.Violations, fmt.Sprintf("the record cannot be read at the end: %v", err))
		}
		r.FinalValue, finalTok = v, tok
	}
	var holds []*hold
	for _, in := range incs {
		holds = append(holds, in.holds...)
		if in.killed != 0 {
			r.Kills++
		}
		r.Pauses += len(in.pauses)
		r.AcquireErrors += in.acqErrs
	}
	for _, s := range p.Injected {
		switch {
		case strings.HasPrefix(s, "down"):
			r.Downs++
		case !strings.HasPrefix(s, "kill") && !strings.HasPrefix(s, "pause"):
			r.Faults++
		}
	}
	for _, h := range holds {
		r.Acquisitions++
		switch h.writeRes {
		case "ok":
			r.Updates++
		case "err":
			r.UncertainUpdates++
		case "":
			if h.writeCall != 0 {
				r.UncertainUpdates++
			}
		}
		switch {
		case h.skip == "fenced":
			r.SkippedFenced++
		case strings.HasPrefix(h.skip, "lost"):
			r.SkippedLost++
		case strings.HasPrefix(h.skip, "read"):
			r.ReadErrors++
		}
		switch h.relRes {
		case "lost":
			r.ReleasedLost++
		case "err":
			r.ReleaseErrors++
		}
	}
	checkOverlaps(r, incs)
	checkUpdates(r, incs, holds, finalTok)
	checkRecovery(r, incs, holds)
	checkAimed(r, incs)
	checkLinearizable(r, dir, incs, p)
	if err := r.write(dir); err != nil {
		return r, err
	}
	if len(r.Violations) > 0 {
		return r, fmt.Errorf("chaos: %d violation(s) on %s (report in %s):\n  %s", len(r.Violations), p.Name,
			filepath.Join(dir, "report.txt"), strings.Join(r.Violations, "\n  "))
	}
	return r, nil
}

func readLogs(dir string, p CheckParams) ([]*incarnation, error) {
	files, err := filepath.Glob(filepath.Join(dir, "worker-*.log"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	byKey := map[[2]int]*incarnation{}
	var incs []*incarnation
	for _, f := range files {
		var w, inc int
		if _, err := fmt.Sscanf(filepath.Base(f), "worker-%d-%d.log", &w, &inc); err != nil {
			return nil, fmt.Errorf("chaos: unexpected log name %s", f)
		}
		in := &incarnation{c: len(incs), w: w, inc: inc, m: w / max(p.Workers, 1)}
		evs, err := readEvents(f)
		if err != nil {
			return nil, err
		}
		var h *hold
		for _, e := range evs {
			switch e.E {
			case "acq":
				in.pendingAcq = e.T
			case "acq_ok":
				h = &hold{c: in.c, w: w, inc: inc, m: in.m, tok: e.Tok, acqCall: in.pendingAcq, acqRet: e.T}
				in.holds = append(in.holds, h)
				in.pendingAcq = 0
			case "acq_err":
				in.pendingAcq = 0
				in.acqErrs++
			case "read":
				h.readCall = e.T
			case "read_ok":
				h.readOK, h.v, h.vt = e.T, e.V, e.VT
			case "read_err":
				h.skip = "read: " + e.Err
			case "skip":
				h.skip = e.Err
			case "write":
				h.writeCall = e.T
			case "write_ok":
				h.writeRet, h.writeRes = e.T, "ok"
			case "write_err":
				h.writeRet, h.writeRes = e.T, "err"
			case "unpublished":
				h.writeCall, h.skip = 0, "lost before publishing"
			case "rel":
				h.relCall = e.T
			case "rel_ok", "rel_lost", "rel_err":
				h.relRet, h.relRes = e.T, strings.TrimPrefix(e.E, "rel_")
				h = nil
			}
		}
		byKey[[2]int{w, inc}] = in
		incs = append(incs, in)
	}
	agents, _ := filepath.Glob(filepath.Join(dir, "agent-*.log"))
	var exits []string
	for _, f := range agents {
		evs, err := readEvents(f)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			in := byKey[[2]int{e.W, e.Inc}]
			switch e.E {
			case "kill":
				if in != nil {
					in.killed, in.killTok = e.T, e.Tok
				}
			case "reaped":
				if in != nil {
					in.reaped = e.T
				}
			case "stop":
				if in != nil {
					in.pauses = append(in.pauses, [2]int64{e.T, e.T + e.D})
					in.pauseToks = append(in.pauseToks, e.Tok)
				}
			case "cont":
				if in != nil && len(in.pauses) > 0 {
					in.pauses[len(in.pauses)-1][1] = e.T
				}
			case "exit":
				exits = append(exits, fmt.Sprintf("worker %d/%d exited: %s", e.W, e.Inc, e.Err))
			}
		}
	}
	if len(exits) > 0 {
		return incs, fmt.Errorf("chaos: workers failed:\n  %s", strings.Join(exits, "\n  "))
	}
	return incs, nil
}

func readEvents(path string) ([]event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var evs []event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// The last line of a killed process cannot be torn (one
			// write(2) per line), so anything unparsable is an error.
			return nil, fmt.Errorf("chaos: %s: bad line %q: %w", path, sc.Text(), err)
		}
		evs = append(evs, e)
	}
	return evs, sc.Err()
}

// end returns when a hold provably ended for the overlap check, and whether
// it counts: a hold released cleanly ends at its release call, a hold of a
// killed process at the kill; a hold whose Release reported a loss (or
// failed) does not count: the protocol took it away and said so.
func (h *hold) end(in *incarnation) (int64, bool) {
	switch {
	case h.relRes == "ok":
		return h.relCall, true
	case h.relRes == "" && in.killed != 0:
		return in.frozen(), true
	}
	return 0, false
}

// frozen is when a killed process last ran: the kill, or the start of a
// pause it never woke from (its machine went down while it was paused).
func (in *incarnation) frozen() int64 {
	t := in.killed
	for _, p := range in.pauses {
		if p[0] < t && p[1] >= t {
			t = p[0]
		}
	}
	return t
}

func checkOverlaps(r *Report, incs []*incarnation) {
	type span struct {
		a, b int64
		h    *hold
	}
	var spans []span
	for _, in := range incs {
		for _, h := range in.holds {
			if e, ok := h.end(in); ok {
				spans = append(spans, span{h.acqRet, e, h})
			}
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].a < spans[j].a })
	var last *span
	for i := range spans {
		s := &spans[i]
		if last != nil && s.a < last.b {
			r.Overlaps++
			r.Violations = append(r.Violations, fmt.Sprintf(
				"overlap: worker %d/%d held token %d until %s while worker %d/%d acquired token %d at %s",
				last.h.w, last.h.inc, last.h.tok, ms(last.b), s.h.w, s.h.inc, s.h.tok, ms(s.a)))
		}
		if last != nil && s.h.tok <= last.h.tok {
			r.TokenOrder++
			r.Violations = append(r.Violations, fmt.Sprintf(
				"token order: token %d (worker %d/%d) acquired after token %d (worker %d/%d)",
				s.h.tok, s.h.w, s.h.inc, last.h.tok, last.h.w, last.h.inc))
		}
		if last == nil || s.b > last.b {
			last = s
		}
	}
}

func pausedBetween(in *incarnation, a, b int64) bool {
	for _, p := range in.pauses {
		if p[0] >= a && p[0] <= b {
			return true
		}
	}
	return false
}

// late reports whether the holder was paused (SIGSTOP) after it read the
// record and before its write returned: its write may land after its lock
// was lost, whatever the lock does.
func (h *hold) late(in *incarnation) bool {
	if h.writeCall == 0 {
		return false
	}
	end := h.writeRet
	if end == 0 {
		end = math.MaxInt64
	}
	return pausedBetween(in, h.readCall, end)
}

// checkUpdates checks the record's history. Every write names the token of
// the record it read (vt), so the writes form a tree rooted at token 0; in
// a correct history it is a single chain. A fork is two writes based on one
// record: unless one of them is a late write of a paused holder, that is a
// lost update. The chain from the final record back to the root must have
// one write per unit of the final value, and every successful write off
// that chain was overwritten.
func checkUpdates(r *Report, incs []*incarnation, holds []*hold, finalTok uint64) {
	byTok := map[uint64]*hold{}
	children := map[uint64][]*hold{}
	for _, h := range holds {
		if h.skip == "fenced" && h.relRes == "ok" {
			r.Violations = append(r.Violations, fmt.Sprintf(
				"worker %d/%d (token %d) found the record written by token %d, yet its lock was never reported lost",
				h.w, h.inc, h.tok, h.vt))
		}
		if h.writeCall == 0 {
			continue
		}
		byTok[h.tok] = h
		children[h.vt] = append(children[h.vt], h)
		if h.tok <= h.vt {
			r.TokenOrder++
			r.Violations = append(r.Violations, fmt.Sprintf(
				"update out of token order: worker %d/%d wrote with token %d over a record of token %d", h.w, h.inc, h.tok, h.vt))
		}
	}
	parents := make([]uint64, 0, len(children))
	for p := range children {
		parents = append(parents, p)
	}
	sort.Slice(parents, func(i, j int) bool { return parents[i] < parents[j] })
	for _, p := range parents {
		var landed []*hold
		for _, c := range children[p] {
			// A write that failed or was cut short counts only if someone
			// read it (or it is the final record).
			if c.writeRes == "ok" || len(children[c.tok]) > 0 || c.tok == finalTok {
				landed = append(landed, c)
			}
		}
		if len(landed) < 2 {
			continue
		}
		late := false
		var who []string
		for _, c := range landed {
			l := c.late(incs[c.c])
			late = late || l
			who = append(who, fmt.Sprintf("worker %d/%d token %d (release: %s%s)", c.w, c.inc, c.tok, c.relRes,
				map[bool]string{true: ", paused while writing", false: ""}[l]))
		}
		if late {
			r.LateWrites++
			r.Notes = append(r.Notes, fmt.Sprintf("late write of a paused holder: both %s wrote over the record of token %d", strings.Join(who, " and "), p))
		} else {
			r.LostUpdates++
			r.Violations = append(r.Violations, fmt.Sprintf("lost update: %s both wrote over the record of token %d", strings.Join(who, " and "), p))
		}
	}
	// The chain that survived.
	onChain := map[uint64]bool{}
	n := int64(0)
	for t := finalTok; t != 0; {
		h := byTok[t]
		if h == nil {
			r.Violations = append(r.Violations, fmt.Sprintf("the record was written with token %d, which no worker logged writing", t))
			break
		}
		if onChain[t] {
			r.Violations = append(r.Violations, fmt.Sprintf("the record's history loops at token %d", t))
			break
		}
		onChain[t] = true
		n++
		t = h.vt
	}
	if n != r.FinalValue && len(r.Violations) == 0 {
		r.Violations = append(r.Violations, fmt.Sprintf("the record's value is %d but %d writes lead to it", r.FinalValue, n))
	}
	for _, h := range holds {
		if h.writeRes == "ok" && !onChain[h.tok] {
			r.Overwritten++
		}
	}
	if r.Overwritten > 0 && r.LateWrites == 0 {
		r.Violations = append(r.Violations, fmt.Sprintf("%d successful updates were overwritten", r.Overwritten))
	}
}

// checkRecovery measures, for each kill or pause of a process holding the
// lock, the time until another process acquired it.
func checkRecovery(r *Report, incs []*incarnation, holds []*hold) {
	acqs := make([]*hold, len(holds))
	copy(acqs, holds)
	sort.Slice(acqs, func(i, j int) bool { return acqs[i].acqRet < acqs[j].acqRet })
	next := func(t int64, c int) *hold {
		i := sort.Search(len(acqs), func(i int) bool { return acqs[i].acqRet > t })
		for ; i < len(acqs); i++ {
			if acqs[i].c != c {
				return acqs[i]
			}
		}
		return nil
	}
	holding := func(in *incarnation, t int64) *hold {
		for _, h := range in.holds {
			if h.acqRet <= t && (h.relRet == 0 || h.relRet > t) {
				return h
			}
		}
		return nil
	}
	bound := r.RecoveryBound.Nanoseconds()
	for _, in := range incs {
		type ev struct {
			t     int64
			pause bool
		}
		var evs []ev
		if in.killed != 0 {
			evs = append(evs, ev{in.killed, false})
		}
		for _, p := range in.pauses {
			evs = append(evs, ev{p[0], true})
		}
		for _, e := range evs {
			h := holding(in, e.t)
			if h == nil {
				continue
			}
			if e.pause {
				r.PausesHolding++
			} else {
				r.KillsHolding++
			}
			n := next(e.t, in.c)
			if n == nil {
				r.Notes = append(r.Notes, fmt.Sprintf("no acquisition after the %s of worker %d/%d at %s (end of run)",
					map[bool]string{true: "pause", false: "kill"}[e.pause], in.w, in.inc, ms(e.t)))
				continue
			}
			d := n.acqRet - e.t
			switch {
			case e.pause:
				r.PauseRecovery = append(r.PauseRecovery, d)
			case n.m == in.m:
				r.TakeoverSame = append(r.TakeoverSame, d)
			default:
				r.TakeoverOther = append(r.TakeoverOther, d)
			}
			if d > bound {
				r.RecoveryMisses++
				r.Violations = append(r.Violations, fmt.Sprintf("recovery: %s of worker %d/%d (token %d) was followed by an acquisition only %v later (bound %v)",
					map[bool]string{true: "pause", false: "kill"}[e.pause], in.w, in.inc, h.tok, time.Duration(d).Round(time.Millisecond), r.RecoveryBound))
			}
		}
	}
}

// checkAimed checks that every fault aimed at a holder (its agent log
// names the token) landed while that holder held the lock with that token:
// after Acquire returned it, before it called Release. A miss is not a
// protocol violation but a chaos run that did not test what it meant to;
// it is noted, and the tests require none.
func checkAimed(r *Report, incs []*incarnation) {
	inHold := func(in *incarnation, tok uint64, t int64) bool {
		for _, h := range in.holds {
			if h.tok == tok {
				return h.acqRet <= t && (h.relCall == 0 || h.relCall > t)
			}
		}
		return false
	}
	for _, in := range incs {
		if in.killTok != 0 {
			r.AimedKills++
			if inHold(in, in.killTok, in.killed) {
				r.AimedKillsHit++
			} else {
				r.Notes = append(r.Notes, fmt.Sprintf("kill aimed at worker %d/%d holding token %d landed outside that hold, at %s",
					in.w, in.inc, in.killTok, ms(in.killed)))
			}
		}
		for i, tok := range in.pauseToks {
			if tok == 0 {
				continue
			}
			r.AimedPauses++
			if inHold(in, tok, in.pauses[i][0]) {
				r.AimedPausesHit++
			} else {
				r.Notes = append(r.Notes, fmt.Sprintf("pause aimed at worker %d/%d holding token %d landed outside that hold, at %s",
					in.w, in.inc, tok, ms(in.pauses[i][0])))
			}
		}
	}
}

// The porcupine model: one lock plus a register that only the holder
// updates. Operations:
//
//	acquire(c, tok)   lock free and tok above every earlier token → held by c
//	release(c)        held by c → free
//	lose(c)           held by c → free (a Release that reported the loss,
//	                  or failed: some time between acquisition and return)
//	crash(c)          c was killed: if c held it, it is free
//	update(c, v)      held by c and the register is v → v+1; an uncertain
//	                  update (cut by a kill or an I/O error) may also not
//	                  have happened; the update of a holder paused while
//	                  writing (the pause log proves it) is a blind write of
//	                  v+1 at any point: the hazard only a fenced store stops
type lmState struct {
	H    int // holder's client number, -1: free
	Last uint64
	V    int64
}

type lmIn struct {
	K    string
	C    int
	Tok  uint64
	V    int64
	Det  bool
	Late bool // the writer was paused while writing: a blind write of V+1
}

func lockModel() porcupine.NondeterministicModel {
	return porcupine.NondeterministicModel{
		Init: func() []interface{} { return []interface{}{lmState{H: -1}} },
		Step: func(state, input, output interface{}) []interface{} {
			s := state.(lmState)
			in := input.(lmIn)
			switch in.K {
			case "acquire":
				if s.H == -1 && in.Tok > s.Last {
					return []interface{}{lmState{H: in.C, Last: in.Tok, V: s.V}}
				}
			case "release", "lose":
				if s.H == in.C {
					return []interface{}{lmState{H: -1, Last: s.Last, V: s.V}}
				}
			case "crash":
				if s.H == in.C {
					s.H = -1
				}
				return []interface{}{s}
			case "update":
				var out []interface{}
				if !in.Det {
					out = append(out, s)
				}
				if in.Late {
					// It read under the lock, then its write landed
					// whenever the pause let it: it overwrites.
					return append(out, lmState{H: s.H, Last: s.Last, V: in.V + 1})
				}
				if s.H == in.C && s.V == in.V {
					out = append(out, lmState{H: s.H, Last: s.Last, V: s.V + 1})
				}
				return out
			}
			return nil
		},
		DescribeOperation: func(input, output interface{}) string {
			in := input.(lmIn)
			switch in.K {
			case "acquire":
				return fmt.Sprintf("acquire → %d", in.Tok)
			case "update":
				if in.Det {
					return fmt.Sprintf("update %d→%d", in.V, in.V+1)
				}
				return fmt.Sprintf("update %d→%d?", in.V, in.V+1)
			}
			return in.K
		},
		DescribeState: func(state interface{}) string {
			s := state.(lmState)
			if s.H < 0 {
				return fmt.Sprintf("free (last %d), value %d", s.Last, s.V)
			}
			return fmt.Sprintf("held by client %d (token %d), value %d", s.H, s.Last, s.V)
		},
	}
}

func history(incs []*incarnation, end int64) []porcupine.Operation {
	inf := end + int64(time.Hour)
	var ops []porcupine.Operation
	add := func(c int, in lmIn, call, ret int64) {
		ops = append(ops, porcupine.Operation{ClientId: c, Input: in, Call: call, Return: ret})
	}
	for _, inc := range incs {
		for _, h := range inc.holds {
			add(inc.c, lmIn{K: "acquire", C: inc.c, Tok: h.tok}, h.acqCall, h.acqRet)
			if h.writeCall != 0 {
				ret := h.writeRet
				if ret == 0 {
					ret = inf
				}
				add(inc.c, lmIn{K: "update", C: inc.c, V: h.v, Det: h.writeRes == "ok", Late: h.late(inc)}, h.readCall, ret)
			}
			switch h.relRes {
			case "ok":
				add(inc.c, lmIn{K: "release", C: inc.c}, h.relCall, h.relRet)
			case "lost":
				add(inc.c, lmIn{K: "lose", C: inc.c}, h.acqRet, h.relRet)
			case "err":
				add(inc.c, lmIn{K: "lose", C: inc.c}, h.acqRet, inf)
			}
		}
		if inc.killed != 0 {
			// The process died between the kill and the reaping: events
			// it logged in that window are real.
			ret := inc.reaped
			if ret < inc.killed {
				ret = inf
			}
			add(inc.c, lmIn{K: "crash", C: inc.c}, inc.frozen(), ret)
		}
	}
	return ops
}

func checkLinearizable(r *Report, dir string, incs []*incarnation, p CheckParams) {
	ops := history(incs, p.End)
	r.PorcupineOps = len(ops)
	nm := lockModel()
	model := nm.ToModel()
	t0 := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, ops, p.PorcupineTimeout)
	r.PorcupineDuration = time.Since(t0)
	r.Porcupine = string(res)
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		path := filepath.Join(dir, "porcupine.html")
		if err := porcupine.VisualizePath(model, info, path); err != nil {
			path = fmt.Sprintf("(writing the view failed: %v)", err)
		}
		r.Violations = append(r.Violations, "porcupine: the history is not linearizable for one lock + holder-only register; see "+path+
			"; the longest linearizable prefix ends with: "+describeStuck(nm, info, ops))
	default:
		r.Violations = append(r.Violations, fmt.Sprintf("porcupine: no verdict within %v on %d operations", p.PorcupineTimeout, len(ops)))
	}
}

// describeStuck names the last operations of porcupine's longest partial
// linearization and the state it reached, where the history stops fitting
// the model.
func describeStuck(nm porcupine.NondeterministicModel, info porcupine.LinearizationInfo, ops []porcupine.Operation) string {
	parts := info.PartialLinearizationsOperations()
	if len(parts) == 0 || len(parts[0]) == 0 {
		return "(none)"
	}
	longest := parts[0][0]
	for _, l := range parts[0] {
		if len(l) > len(longest) {
			longest = l
		}
	}
	states := nm.Init()
	for _, op := range longest {
		var next []interface{}
		for _, st := range states {
			next = append(next, nm.Step(st, op.Input, op.Output)...)
		}
		states = next
	}
	var b strings.Builder
	from := max(len(longest)-4, 0)
	for _, op := range longest[from:] {
		fmt.Fprintf(&b, "[client %d %s at %s..%s] ", op.ClientId, nm.DescribeOperation(op.Input, op.Output), ms(op.Call), ms(op.Return))
	}
	for _, st := range states {
		fmt.Fprintf(&b, "→ state %s; ", nm.DescribeState(st))
	}
	// The operations that had to come next: the earliest returns not in
	// the prefix.
	in := map[porcupine.Operation]bool{}
	for _, op := range longest {
		in[op] = true
	}
	var rest []porcupine.Operation
	for _, op := range ops {
		if !in[op] {
			rest = append(rest, op)
		}
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i].Return < rest[j].Return })
	b.WriteString("next due: ")
	for _, op := range rest[:min(len(rest), 3)] {
		fmt.Fprintf(&b, "[client %d %s at %s..%s] ", op.ClientId, nm.DescribeOperation(op.Input, op.Output), ms(op.Call), ms(op.Return))
	}
	return b.String()
}

func ms(t int64) string { return fmt.Sprintf("t=%.3fs", float64(t)/1e9) }

// Summary returns "p50 / p99 / max" of durations in ns, or "–".
func Summary(d []int64) string {
	if len(d) == 0 {
		return "–"
	}
	s := append([]int64(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return time.Duration(s[max(i, 0)])
	}
	f := func(d time.Duration) string {
		if d < time.Second {
			return fmt.Sprintf("%.0f ms", float64(d)/1e6)
		}
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%s / %s / %s (n=%d)", f(q(0.5)), f(q(0.99)), f(time.Duration(s[len(s)-1])), len(s))
}

// Text renders the report.
func (r *Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos run on %s: %d machines × %d workers, lease %v, %v\n", r.Name, r.Machines, r.Workers, r.Lease, r.Duration.Round(time.Millisecond))
	fmt.Fprintf(&b, "  acquisitions %d (acquire errors %d); updates %d (+%d uncertain); final record value %d\n",
		r.Acquisitions, r.AcquireErrors, r.Updates, r.UncertainUpdates, r.FinalValue)
	fmt.Fprintf(&b, "  injected: %d processes killed (%d holders; %d whole-machine failures), %d pauses (%d of a holder), %d share faults\n",
		r.Kills, r.KillsHolding, r.Downs, r.Pauses, r.PausesHolding, r.Faults)
	fmt.Fprintf(&b, "  aimed at a holder: %d of %d kills (machine failures included) and %d of %d pauses landed inside its hold\n",
		r.AimedKillsHit, r.AimedKills, r.AimedPausesHit, r.AimedPauses)
	fmt.Fprintf(&b, "  holders told they lost the lock: %d at release, %d before writing; writes skipped for a newer token: %d; release errors %d; read errors %d\n",
		r.ReleasedLost, r.SkippedLost, r.SkippedFenced, r.ReleaseErrors, r.ReadErrors)
	fmt.Fprintf(&b, "  overlaps %d, lost updates %d, token-order errors %d, recoveries over %v: %d\n",
		r.Overlaps, r.LostUpdates, r.TokenOrder, r.RecoveryBound, r.RecoveryMisses)
	fmt.Fprintf(&b, "  late writes of holders paused while writing %d, overwriting %d successful updates (no lock can stop these; a fenced store can)\n",
		r.LateWrites, r.Overwritten)
	fmt.Fprintf(&b, "  takeover after kill, same machine p50/p99/max: %s\n", Summary(r.TakeoverSame))
	fmt.Fprintf(&b, "  takeover after kill, other machine p50/p99/max: %s\n", Summary(r.TakeoverOther))
	fmt.Fprintf(&b, "  next acquisition after a holder's pause p50/p99/max: %s\n", Summary(r.PauseRecovery))
	fmt.Fprintf(&b, "  porcupine: %s (%d operations, %v)\n", r.Porcupine, r.PorcupineOps, r.PorcupineDuration.Round(time.Millisecond))
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "  VIOLATION: %s\n", v)
	}
	if len(r.Violations) == 0 {
		b.WriteString("  OK: no violation\n")
	}
	return b.String()
}

func (r *Report) write(dir string) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return errors.Join(
		os.WriteFile(filepath.Join(dir, "report.json"), js, 0o644),
		os.WriteFile(filepath.Join(dir, "report.txt"), []byte(r.Text()), 0o644))
}
