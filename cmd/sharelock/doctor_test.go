//go:build unix

package main

// `sharelock doctor` as users run it: the built binary (TestMain in
// cli_test.go), its report, JSON and exit status.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sharelock/internal/sharetest"
)

// doctorJSON mirrors the fields of `doctor --json` the tests read.
type doctorJSON struct {
	Dir     string `json:"dir"`
	OK      bool   `json:"ok"`
	Verdict string `json:"verdict"`
	Error   string `json:"error"`
	FS      struct {
		Kind  string `json:"kind"`
		Cloud string `json:"cloud"`
	} `json:"filesystem"`
	Races struct {
		Mkdir struct {
			Rounds     int `json:"rounds"`
			DoubleWins int `json:"double_wins"`
		} `json:"mkdir"`
	} `json:"races"`
	Checks []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Fix    string `json:"fix"`
	} `json:"checks"`
}

func TestDoctorLocalDisk(t *testing.T) {
	dir := t.TempDir()
	r := runCLI(t, "doctor", dir)
	if r.code != 0 {
		t.Fatalf("doctor on local disk: want exit 0\n%v", r)
	}
	mustContain(t, "doctor's report", r.stdout,
		"sharelock doctor: "+dir,
		"✔ write access",
		"✔ mkdir is atomic: exactly one winner in 50 of 50 races",
		"✔ exclusive create (O_EXCL) is atomic",
		"✔ cloud sync: not inside",
		"✔ lease 40 s (heartbeat every 5.0 s) is safe here",
		"✔ This folder can hold a sharelock lock.")
	if strings.Contains(r.stdout, "✘") || strings.Contains(r.stdout, "⚠") {
		t.Errorf("warnings or failures on local disk:\n%s", r.stdout)
	}

	r = runCLI(t, "doctor", "--json", "--lease", "1m", "--rounds", "7", dir)
	if r.code != 0 {
		t.Fatalf("doctor --json: want exit 0\n%v", r)
	}
	var out doctorJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("doctor --json is not one JSON object: %v\n%v", err, r)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"dir", "ok", "verdict", "lease_ms", "heartbeat_ms", "filesystem", "round_trip", "races",
		"rename", "link", "delete_open", "clock", "visibility", "checks", "duration_ms"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("doctor --json has no %q field (documented in internal/doctor)", k)
		}
	}
	if !out.OK || out.Verdict != "ok" || out.Dir != dir || out.FS.Kind != "local" || out.Races.Mkdir.Rounds != 7 {
		t.Errorf("doctor --json: %+v", out)
	}
	if string(raw["lease_ms"]) != "60000" {
		t.Errorf("lease_ms %s, want 60000 (--lease 1m)", raw["lease_ms"])
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("doctor left %v in %s", ents, dir)
	}
}

func TestDoctorCloudSyncFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Dropbox", "wems")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "doctor", dir)
	if r.code != exitError {
		t.Fatalf("doctor on a Dropbox folder: want exit %d\n%v", exitError, r)
	}
	mustContain(t, "doctor's report", r.stdout,
		"✘ cloud sync: the folder is inside a Dropbox folder",
		"fix: use a folder on the file server itself (an SMB, NFS or SFTP share), not a synced folder",
		"✘ This folder cannot hold a safe lock: 1 problem above.")
	r = runCLI(t, "doctor", "--json", dir)
	var out doctorJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != exitError {
		t.Fatalf("doctor --json on a Dropbox folder: %v\n%v", err, r)
	}
	if out.OK || out.Verdict != "fail" || out.FS.Cloud != "Dropbox" {
		t.Errorf("doctor --json: %+v", out)
	}
}

func TestDoctorBadInput(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "data.db")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(base, "nope")
	for _, c := range []struct {
		arg  string
		want []string
	}{
		{missing, []string{"cannot check " + missing + ": no such folder", "check that the share is mounted"}},
		{file, []string{"cannot check " + file + ": not a folder", "give the folder that holds the file, e.g. " + base}},
	} {
		r := runCLI(t, "doctor", c.arg)
		if r.code != exitError || r.stdout != "" {
			t.Errorf("doctor %s: want exit %d and no report\n%v", c.arg, exitError, r)
		}
		mustContain(t, "stderr", r.stderr, c.want...)
		r = runCLI(t, "doctor", "--json", c.arg)
		var out doctorJSON
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != exitError || out.OK || out.Error == "" {
			t.Errorf("doctor --json %s: want a JSON error and exit %d (%v)\n%v", c.arg, exitError, err, r)
		}
	}
}

func TestDoctorUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"doctor"},
		{"doctor", dir, dir},
		{"doctor", "--lease", "soon", dir},
		{"doctor", "--lease", "1ms", dir},
		{"doctor", "--lease", "48h", dir},
		{"doctor", "--rounds", "0", dir},
		{"doctor", "--no-such-flag", dir},
	} {
		r := runCLI(t, args...)
		if r.code != exitUsage || r.stderr == "" {
			t.Errorf("sharelock %q: want exit %d and a message\n%v", args, exitUsage, r)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a usage error left %v", ents)
	}
	if r := runCLI(t, "help"); !strings.Contains(r.stdout, "sharelock doctor [--json]") {
		t.Errorf("help does not show doctor\n%v", r)
	}
}

// On SMB through smbnetfs, with the second mount as peer: exit 0 (it can
// hold a lock) with the warnings of that client, each with a fix.
func TestDoctorSMB(t *testing.T) {
	sh := sharetest.StartSMB(t)
	r := runCLI(t, "doctor", "--peer", sh.Mounts[1], sh.Mounts[0])
	if r.code != 0 {
		t.Fatalf("doctor on SMB: want exit 0\n%v", r)
	}
	mustContain(t, "doctor's report on SMB", r.stdout,
		"peer (the same folder through another client): "+sh.Mounts[1],
		"✔ filesystem: fuse.smbnetfs",
		"✔ mkdir is atomic: exactly one winner in 50 of 50 races",
		"raced by two clients",
		"⚠ exclusive create (O_EXCL) is",
		"⚠ deleting a file another handle has open fails: EBUSY",
		"⚠ hard links are not supported: EPERM",
		"fix: nothing to change for sharelock (it claims with mkdir, not O_EXCL)",
		"✔ This folder can hold a sharelock lock (3 warnings above).")
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(line, "✘") {
			t.Errorf("failure on SMB: %s", line)
		}
	}
}

// Ctrl+C while doctor waits for sshfs's cached listing (20 s): it stops at
// once with 130 and removes its scratch folder.
func TestDoctorInterrupt(t *testing.T) {
	sh := sharetest.StartSFTP(t, true)
	p := startCLI(t, "doctor", "--peer", sh.Mounts[1], sh.Mounts[0])
	time.Sleep(2 * time.Second)
	t0 := time.Now()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	r := p.wait(30 * time.Second)
	if r.code != exitDoctorInterrupted || !strings.Contains(r.stderr, "interrupted") {
		t.Errorf("doctor after Ctrl+C: want exit %d and a message\n%v", exitDoctorInterrupted, r)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("doctor took %v to stop after Ctrl+C", d)
	}
	ents, err := os.ReadDir(sh.Export)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left in the share after Ctrl+C: %s", e.Name())
	}
}
