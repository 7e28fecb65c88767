package ident

import (
	"os"
	"strings"
	"testing"

	"sharelock/internal/proc"
)

func TestSelfWindows(t *testing.T) {
	id := Self()
	t.Logf("Self() = %+v", id)
	if !strings.Contains(id.User, `\`) {
		t.Errorf("User = %q, want DOMAIN\\user", id.User)
	}
	if id.MachineID == "" || id.Host == "" || id.PIDNS != "" || !id.ProcOK {
		t.Errorf("Self() = %+v: want MachineID and Host known, PIDNS empty, ProcOK", id)
	}
	st, err := proc.StartTime(os.Getpid())
	if err != nil || id.StartTime != st {
		t.Errorf("StartTime = %d, want %d (%v)", id.StartTime, st, err)
	}
}
