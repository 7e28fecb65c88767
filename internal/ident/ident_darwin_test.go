package ident

import "testing"

func TestParseIOPlatformUUID(t *testing.T) {
	out := []byte(`+-o Mac14,2  <class IOPlatformExpertDevice, id 0x100000223, registered, matched, active, busy 0 (3 ms), retain 36>
    {
      "IOPlatformSerialNumber" = "ABCDEF123456"
      "IOPlatformUUID" = "5B1D6E2A-0C4F-5C3E-9A7B-1234567890AB"
      "IOPolledInterface" = "AppleARMWatchdogTimerHibernateHandler is not serializable"
    }
`)
	if got, want := parseIOPlatformUUID(out), "5B1D6E2A-0C4F-5C3E-9A7B-1234567890AB"; got != want {
		t.Errorf("parseIOPlatformUUID = %q, want %q", got, want)
	}
	if got := parseIOPlatformUUID([]byte(`"IOPlatformSerialNumber" = "X"`)); got != "" {
		t.Errorf("parseIOPlatformUUID without the key = %q, want \"\"", got)
	}
}

func TestSelfDarwin(t *testing.T) {
	id := Self()
	t.Logf("Self() = %+v", id)
	if id.MachineID == "" || id.BootID == "" || id.StartTime == 0 || !id.ProcOK {
		t.Errorf("Self() = %+v: MachineID, BootID, StartTime and ProcOK should all be known on macOS", id)
	}
	if !id.SameProcessSpace(id) {
		t.Error("SameProcessSpace is not reflexive")
	}
}
