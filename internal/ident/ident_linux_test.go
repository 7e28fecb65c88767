package ident

import (
	"os"
	"strings"
	"sync"
	"testing"

	"sharelock/internal/proc"
)

func TestSelfLinux(t *testing.T) {
	id := Self()
	t.Logf("Self() = %+v", id)
	if id.User == "" {
		t.Error("User is empty")
	}
	if id.Host == "" {
		t.Error("Host is empty")
	}
	if _, err := os.Stat("/etc/machine-id"); err == nil {
		if id.MachineID == "" {
			t.Error("MachineID is empty although /etc/machine-id exists")
		}
	} else {
		t.Logf("/etc/machine-id absent (%v): MachineID %q not checked", err, id.MachineID)
	}
	if id.MachineID != "" && !isMachineID(id.MachineID) {
		t.Errorf("MachineID %q is not 32 hex digits", id.MachineID)
	}
	if want := strings.TrimSpace(readTrimmed("/proc/sys/kernel/random/boot_id")); id.BootID == "" || id.BootID != want {
		t.Errorf("BootID = %q, want %q", id.BootID, want)
	}
	if !strings.HasPrefix(id.PIDNS, "pid:[") {
		t.Errorf("PIDNS = %q, want pid:[...]", id.PIDNS)
	}
	if id.PID != os.Getpid() {
		t.Errorf("PID = %d, want %d", id.PID, os.Getpid())
	}
	st, err := proc.StartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if id.StartTime == 0 || id.StartTime != st {
		t.Errorf("StartTime = %d, want proc.StartTime(os.Getpid()) = %d", id.StartTime, st)
	}
	if !id.ProcOK {
		t.Error("ProcOK = false with /proc mounted for our PID namespace")
	}
	if got := proc.Check(id.PID, id.StartTime); got != proc.Alive {
		t.Errorf("proc.Check(Self) = %v, want alive", got)
	}
}

func TestSelfCachedAndConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	ids := make([]Identity, 8)
	for i := range ids {
		wg.Go(func() { ids[i] = Self() })
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("Self() differs between calls: %+v vs %+v", id, ids[0])
		}
	}
}

func TestSameProcessSpaceSelf(t *testing.T) {
	id := Self()
	if !id.SameProcessSpace(id) {
		t.Fatalf("SameProcessSpace is not reflexive for %+v", id)
	}
	other := id
	other.PIDNS = "pid:[1]"
	if id.SameProcessSpace(other) {
		t.Error("SameProcessSpace = true with a different PIDNS")
	}
	other.PIDNS = ""
	if id.SameProcessSpace(other) {
		t.Error("SameProcessSpace = true with an unknown PIDNS on the other side")
	}
}

func TestIsMachineID(t *testing.T) {
	for s, want := range map[string]bool{
		"3d1219c7c4c5404aaa1f6d2a48adfda4":  true,
		"":                                  false,
		"uninitialized":                     false,
		"3D1219C7C4C5404AAA1F6D2A48ADFDA4":  false,
		"3d1219c7c4c5404aaa1f6d2a48adfda":   false,
		"3d1219c7c4c5404aaa1f6d2a48adfda4a": false,
		"3d1219c7-4c5404aaa1f6d2a48adfda4":  false,
	} {
		if got := isMachineID(s); got != want {
			t.Errorf("isMachineID(%q) = %v, want %v", s, got, want)
		}
	}
}
