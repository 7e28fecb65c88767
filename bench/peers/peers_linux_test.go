//go:build linux

package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// unavailable skips the test, or fails it when CI=true (CI never skips).
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format+" (CI=true: failing instead of skipping)", args...)
	}
	t.Skipf(format, args...)
}

// TestQuickRun builds the driver and runs it in -quick mode on tmpfs: every
// tool must have produced every figure (no timing goals are checked here,
// only that the numbers exist and that no holds overlapped).
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the quick peer run takes about 20 s")
	}
	for _, tool := range []string{"node", "npm", "flock"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "%s is not installed (scripts/deps.sh installs nodejs, npm and util-linux): %v", tool, err)
		}
	}
	args := []string{"-quick", "-fs", "tmpfs"}
	roundTrips := os.Geteuid() == 0
	if _, err := os.Stat("/dev/fuse"); err != nil {
		roundTrips = false
	}
	if !roundTrips {
		if os.Getenv("CI") == "true" {
			t.Fatalf("counting round trips needs root and /dev/fuse (CI=true: failing instead of skipping them)")
		}
		t.Logf("not root or no /dev/fuse: running without the round-trip count")
		args = append(args, "-roundtrips=false")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the driver: %v", err)
	}
	src, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "peers")
	if out, err := exec.Command(goCmd, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build of the driver: %v\n%s", err, out)
	}
	jsonPath := filepath.Join(tmp, "report.json")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "-json", jsonPath)...)
	cmd.Env = append(os.Environ(), "SHARELOCK_PEERS_SRC="+src, "GO="+goCmd)
	out, err := cmd.CombinedOutput()
	t.Logf("driver output:\n%s", out)
	if err != nil {
		t.Fatalf("driver: %v", err)
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("report: %v", err)
	}
	if len(rep.Errors) > 0 {
		t.Errorf("errors in the report: %q", rep.Errors)
	}
	if len(rep.FS) != 1 || rep.FS[0].Name != fsTmpfs {
		t.Fatalf("want one filesystem, tmpfs; got %+v", rep.FS)
	}
	fs := rep.FS[0]
	for _, tool := range allTools {
		if fs.CycleUS[tool] <= 0 {
			t.Errorf("%s: no uncontended cycle time", tool)
		}
		c := fs.Handoff[tool]
		switch {
		case c == nil:
			t.Errorf("%s: no contention figures", tool)
		case c.Holds < 2 || len(c.PerContender) != 8 || c.Jain <= 0 || c.HandoffP50MS <= 0 || c.HandoffP99MS <= 0 || c.WorstWaitMS <= 0:
			t.Errorf("%s: incomplete contention figures: %+v", tool, *c)
		case c.Overlaps != 0:
			t.Errorf("%s: %d overlapping holds", tool, c.Overlaps)
		}
		if v := fs.Takeover[tool]; len(v) == 0 || v[0] <= 0 {
			t.Errorf("%s: no crash takeover time: %v", tool, v)
		}
	}
	if fs.Run == nil || fs.Run.SharelockMS <= 0 || fs.Run.Flock1MS <= 0 {
		t.Errorf("no sharelock run / flock(1) cycle: %+v", fs.Run)
	}
	if roundTrips {
		got := map[string]bool{}
		for _, rt := range rep.RoundTrips {
			if rt.Acquire <= 0 || rt.Release <= 0 || rt.First <= 0 {
				t.Errorf("%s: incomplete round trips: %+v", rt.Tool, *rt)
			}
			got[rt.Tool] = true
		}
		for _, tool := range allTools {
			if !got[tool] {
				t.Errorf("%s: no round-trip count", tool)
			}
		}
	}
}
