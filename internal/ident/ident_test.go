package ident

import "testing"

func TestSameProcessSpaceRules(t *testing.T) {
	base := Identity{
		MachineID: "3d1219c7c4c5404aaa1f6d2a48adfda4",
		BootID:    "f4b896c2-056b-4856-8510-db1b26df0fd8",
		PIDNS:     "pid:[4026531836]",
		PID:       100,
		StartTime: 5,
		ProcOK:    true,
	}
	other := base
	other.PID, other.StartTime, other.User, other.Host = 200, 7, "bob", "elsewhere"
	if !base.SameProcessSpace(other) {
		t.Fatal("identities differing only in process and display fields are not the same space")
	}
	for name, mutate := range map[string]func(a, b *Identity){
		"our ProcOK false":      func(a, b *Identity) { a.ProcOK = false },
		"machine differs":       func(a, b *Identity) { b.MachineID = "00000000000000000000000000000000" },
		"machine unknown":       func(a, b *Identity) { a.MachineID, b.MachineID = "", "" },
		"boot differs":          func(a, b *Identity) { b.BootID = "another-boot" },
		"boot unknown":          func(a, b *Identity) { a.BootID, b.BootID = "", "" },
		"pid namespace differs": func(a, b *Identity) { b.PIDNS = "pid:[4026532301]" },
		"time namespace differs": func(a, b *Identity) {
			b.PIDNS = "pid:[4026531836]+time:[4026532461]"
		},
	} {
		a, b := base, other
		mutate(&a, &b)
		if a.SameProcessSpace(b) {
			t.Errorf("%s: SameProcessSpace = true, want false", name)
		}
	}
	// Only our own ProcOK matters: the other side's was about its /proc.
	b := other
	b.ProcOK = false
	if !base.SameProcessSpace(b) {
		t.Error("the other side's ProcOK changed the answer")
	}
	// An unknown PID namespace on both sides: only where the OS has none.
	a, b := base, other
	a.PIDNS, b.PIDNS = "", ""
	if got := a.SameProcessSpace(b); got != !pidnsRequired {
		t.Errorf("empty PIDNS on both sides: SameProcessSpace = %v, want %v", got, !pidnsRequired)
	}
}
