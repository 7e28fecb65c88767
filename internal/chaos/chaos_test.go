//go:build linux

package chaos_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sharelock/internal/chaos"
	"sharelock/internal/etcdtest"
	"sharelock/internal/faultfs"
	"sharelock/internal/nstest"
	"sharelock/internal/sharetest"
)

func TestMain(m *testing.M) {
	chaos.MaybeRole() // this test binary also plays the agents and workers
	os.Exit(m.Run())
}

// run performs a chaos run with its logs in a new directory, kept (and
// named) when the run fails, removed when it passes.
func run(t *testing.T, c chaos.Config) *chaos.Report {
	t.Helper()
	nstest.Require(t)
	out, err := os.MkdirTemp("", "sharelock-chaos-"+c.Name+"-")
	if err != nil {
		t.Fatal(err)
	}
	c.Out = out
	c.Logf = t.Logf
	rep, err := chaos.Run(c)
	if rep != nil {
		t.Logf("\n%s", rep.Text())
	}
	if err != nil {
		t.Fatalf("%v\n(logs kept in %s; `go run ./internal/chaos/cmd/chaos -recheck %s` checks them again)", err, out, out)
	}
	os.RemoveAll(out)
	if rep.Acquisitions < c.Acquisitions {
		t.Fatalf("only %d of %d acquisitions", rep.Acquisitions, c.Acquisitions)
	}
	if rep.Porcupine != "Ok" {
		t.Fatalf("porcupine: %s", rep.Porcupine)
	}
	return rep
}

// requireInjected fails the test unless every planned fault was injected
// and every kill, machine failure and pause landed on a process while it
// held the lock (the checker verifies that from the logs: after its
// Acquire returned, before its Release call, for the token the agent
// named). The agents aim at the next acquisition of a chosen machine's
// workers, who then hold the lock until the fault (see agent), so nothing
// short of all planned is accepted: a chaos run that missed its holders
// proves less than it claims.
func requireInjected(t *testing.T, rep *chaos.Report, c chaos.Config) {
	t.Helper()
	msg := fmt.Sprintf("planned %d kills + %d machine failures, %d pauses, %d faults; aimed at a holder and hit: %d of %d kills (%d machine failures), %d of %d pauses; %d faults",
		c.Kills, c.Downs, c.Pauses, c.Faults, rep.AimedKillsHit, rep.AimedKills, rep.Downs, rep.AimedPausesHit, rep.AimedPauses, rep.Faults)
	t.Log(msg)
	if rep.AimedKills != c.Kills+c.Downs || rep.AimedKillsHit != rep.AimedKills || rep.Downs != c.Downs ||
		rep.AimedPauses != c.Pauses || rep.AimedPausesHit != rep.AimedPauses || rep.Faults != c.Faults {
		t.Fatal(msg)
	}
}

func TestChaosLocal(t *testing.T) {
	c := chaos.Config{Name: "local", Mounts: []string{t.TempDir()}, Machines: 3, Workers: 3,
		Acquisitions: 1500, Kills: 5, Pauses: 2, Downs: 2, Lease: time.Second, Hold: 2 * time.Millisecond}
	rep := run(t, c)
	requireInjected(t, rep, c)
}

// TestChaosEtcd locks through an etcd store (a real one-member etcd on
// loopback) instead of the folder store; the record stays on a local
// directory, which every machine sees (slave mount propagation), and the
// machines share the host's network namespace, so they reach 127.0.0.1.
// A killed or paused holder's lock is free once its etcd lease expires on
// the server (3 s here); tokens are etcd revisions: increasing, not
// consecutive.
func TestChaosEtcd(t *testing.T) {
	nstest.Require(t)
	url := "etcd://" + etcdtest.Start(t) + "/chaos"
	c := chaos.Config{Name: "etcd", Store: url, Mounts: []string{t.TempDir()}, Machines: 4, Workers: 3,
		Acquisitions: 600, Kills: 4, Pauses: 2, Downs: 2, Lease: 3 * time.Second, Hold: 2 * time.Millisecond}
	rep := run(t, c)
	requireInjected(t, rep, c)
}

func TestChaosFaultShare(t *testing.T) {
	nstest.Require(t)
	f := faultfs.Mount(t, t.TempDir())
	c := chaos.Config{Name: "faultfs", Mounts: []string{f.Dir()}, Fault: f, Machines: 2, Workers: 3,
		Acquisitions: 800, Kills: 3, Pauses: 2, Downs: 1, Faults: 8, Lease: 2 * time.Second, Hold: 2 * time.Millisecond}
	rep := run(t, c)
	requireInjected(t, rep, c)
}

// TestChaosShares is the CI-sized run on each real share: 4 machines × 4
// workers, each machine with its own client mount, at least 600
// acquisitions, with kills, machine failures and pauses. Since the wait
// queue, the lock changes hands at (nearly) every acquisition — a real
// handoff between mounts, ~0.1-0.3 s on these shares — where before the
// releaser took it again at once 9 times in 10; 600 keeps the run within a
// few minutes per share (make chaos-long runs 10,000).
func TestChaosShares(t *testing.T) {
	// SMB is left out for now: since the wait queue, a run wedged the
	// driver's smbnetfs mount (readdir EIO, then calls hanging in the
	// kernel) twice in two runs; run it by hand with
	// go run ./internal/chaos/cmd/chaos -share smb (open in issue 6's note).
	for _, kind := range []string{sharetest.SFTP, sharetest.NFS} {
		t.Run(kind, func(t *testing.T) {
			sharetest.Require(t, kind)
			sh := sharetest.StartN(t, kind, 4) // each machine its own client mount
			c := chaos.Config{Name: kind, Mounts: sh.Mounts, Machines: 4, Workers: 4,
				Acquisitions: 600, Kills: 6, Pauses: 3, Downs: 3, Lease: 3 * time.Second, Hold: 2 * time.Millisecond}
			rep := run(t, c)
			requireInjected(t, rep, c)
		})
	}
}

// TestCheckerFindsViolations feeds the checker a made-up history in which
// two workers hold the lock at once and both write the same value: it must
// report the overlap, the lost update and porcupine's verdict.
func TestCheckerFindsViolations(t *testing.T) {
	dir := t.TempDir()
	type ev = map[string]any
	write := func(name string, evs ...ev) { writeEvents(t, dir, name, evs) }
	ms := func(n int) int64 { return int64(n) * int64(time.Millisecond) }
	cycle := func(tok uint64, t0 int, v int64, vt uint64) []ev {
		return []ev{
			{"e": "start", "t": ms(t0), "pid": 5},
			{"e": "acq", "t": ms(t0)},
			{"e": "acq_ok", "t": ms(t0 + 1), "tok": tok},
			{"e": "read", "t": ms(t0 + 2)},
			{"e": "read_ok", "t": ms(t0 + 3), "v": v, "vt": vt},
			{"e": "write", "t": ms(t0 + 4), "v": v + 1},
			{"e": "write_ok", "t": ms(t0 + 10)},
			{"e": "rel", "t": ms(t0 + 11)},
			{"e": "rel_ok", "t": ms(t0 + 12)},
			{"e": "done", "t": ms(t0 + 13)},
		}
	}
	write("worker-000-00.log", cycle(1, 0, 0, 0)...)
	write("worker-001-00.log", cycle(2, 2, 0, 0)...) // acquires while worker 0 holds, reads the same 0
	one := int64(1)
	rep, err := chaos.Check(dir, chaos.CheckParams{Name: "made-up", Lease: time.Second, Machines: 2, Workers: 1,
		Start: 0, End: ms(20), FinalValue: &one, FinalToken: 2})
	if err == nil {
		t.Fatalf("the checker accepted a history with two holders at once:\n%s", rep.Text())
	}
	if rep.Overlaps != 1 || rep.LostUpdates != 1 || rep.Porcupine != "Illegal" {
		t.Fatalf("want 1 overlap, 1 lost update, porcupine Illegal; got:\n%s", rep.Text())
	}
	if _, err := os.Stat(filepath.Join(dir, "porcupine.html")); err != nil {
		t.Errorf("no porcupine view written: %v", err)
	}
	t.Logf("the checker said, as it should:\n%v", err)

	// The same two cycles one after the other are fine.
	dir2 := t.TempDir()
	dir = dir2
	write("worker-000-00.log", cycle(1, 0, 0, 0)...)
	write("worker-001-00.log", cycle(2, 20, 1, 1)...)
	two := int64(2)
	if rep, err := chaos.Check(dir2, chaos.CheckParams{Name: "made-up", Lease: time.Second, Machines: 2, Workers: 1,
		Start: 0, End: ms(40), FinalValue: &two, FinalToken: 2}); err != nil {
		t.Fatalf("a correct history was rejected: %v\n%s", err, rep.Text())
	}
}

// TestCheckerAimedFaults: a fault the agent aimed at a holder counts as a
// hit only when it landed inside that hold (after Acquire returned, before
// Release was called).
func TestCheckerAimedFaults(t *testing.T) {
	dir := t.TempDir()
	ms := func(n int) int64 { return int64(n) * int64(time.Millisecond) }
	write := func(name string, evs ...map[string]any) { writeEvents(t, dir, name, evs) }
	write("worker-000-00.log",
		map[string]any{"e": "start", "t": ms(0), "pid": 5},
		map[string]any{"e": "acq", "t": ms(0)},
		map[string]any{"e": "acq_ok", "t": ms(1), "tok": 1},
		map[string]any{"e": "read", "t": ms(2)},
		map[string]any{"e": "read_ok", "t": ms(3), "v": 0, "vt": 0},
		map[string]any{"e": "write", "t": ms(4), "v": 1},
		map[string]any{"e": "write_ok", "t": ms(5)},
		map[string]any{"e": "rel", "t": ms(100)},
		map[string]any{"e": "rel_ok", "t": ms(101)},
		map[string]any{"e": "acq", "t": ms(102)})
	write("agent-00.log",
		map[string]any{"e": "stop", "t": ms(3), "w": 0, "inc": 0, "pid": 5, "d": ms(50), "tok": 1}, // inside the hold
		map[string]any{"e": "cont", "t": ms(53), "w": 0, "inc": 0, "pid": 5},
		map[string]any{"e": "kill", "t": ms(100), "w": 0, "inc": 0, "pid": 5, "tok": 1}, // at its Release call: a miss
		map[string]any{"e": "reaped", "t": ms(103), "w": 0, "inc": 0, "pid": 5})
	one := int64(1)
	rep, err := chaos.Check(dir, chaos.CheckParams{Name: "made-up", Lease: time.Second, Machines: 1, Workers: 1,
		Start: 0, End: ms(200), FinalValue: &one, FinalToken: 1})
	if err != nil {
		t.Fatalf("%v\n%s", err, rep.Text())
	}
	if rep.AimedPauses != 1 || rep.AimedPausesHit != 1 || rep.AimedKills != 1 || rep.AimedKillsHit != 0 {
		t.Fatalf("want 1 of 1 pauses and 0 of 1 kills hit; got:\n%s", rep.Text())
	}
}

// writeEvents writes a made-up worker log: one JSON event per line.
func writeEvents(t *testing.T, dir, name string, evs []map[string]any) {
	t.Helper()
	var b strings.Builder
	for _, e := range evs {
		js, _ := json.Marshal(e)
		b.Write(js)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
