//go:build linux

package chaos_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sharelock/internal/chaos"
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

// requireInjected fails the test when fewer faults than planned hit a
// holder: a chaos run that injected nothing proves nothing.
func requireInjected(t *testing.T, rep *chaos.Report, c chaos.Config) {
	t.Helper()
	if rep.KillsHolding < c.Kills+c.Downs || rep.PausesHolding < c.Pauses || rep.Faults < c.Faults {
		t.Fatalf("planned %d kills + %d machine failures, %d pauses, %d faults; injected %d kills of a holder, %d pauses of a holder, %d faults",
			c.Kills, c.Downs, c.Pauses, c.Faults, rep.KillsHolding, rep.PausesHolding, rep.Faults)
	}
}

func TestChaosLocal(t *testing.T) {
	c := chaos.Config{Name: "local", Mounts: []string{t.TempDir()}, Machines: 3, Workers: 3,
		Acquisitions: 1500, Kills: 5, Pauses: 2, Downs: 2, Lease: time.Second, Hold: 2 * time.Millisecond}
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
// workers, each machine with its own client mount, at least 800
// acquisitions, with kills, machine failures and pauses. Since the wait
// queue, the lock changes hands at (nearly) every acquisition — a real
// handoff between mounts, ~0.1-0.3 s on these shares — where before the
// releaser took it again at once 9 times in 10; 800 keeps the run within a
// few minutes per share (make chaos-long runs 10,000).
func TestChaosShares(t *testing.T) {
	for _, kind := range []string{sharetest.SFTP, sharetest.SMB, sharetest.NFS} {
		t.Run(kind, func(t *testing.T) {
			sharetest.Require(t, kind)
			sh := sharetest.StartN(t, kind, 4) // each machine its own client mount
			c := chaos.Config{Name: kind, Mounts: sh.Mounts, Machines: 4, Workers: 4,
				Acquisitions: 800, Kills: 6, Pauses: 3, Downs: 3, Lease: 3 * time.Second, Hold: 2 * time.Millisecond}
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
	type ev map[string]any
	write := func(name string, evs ...ev) {
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
