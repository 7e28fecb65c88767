package doctor_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sharelock/internal/doctor"
)

// run runs doctor on dir and logs the text report.
func run(t *testing.T, dir string, o doctor.Options) *doctor.Report {
	t.Helper()
	r, err := doctor.Run(context.Background(), dir, o)
	if err != nil {
		t.Fatalf("doctor.Run(%s): %v", dir, err)
	}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	t.Logf("report (%.0f ms):\n%s", r.DurationMS, b.String())
	return r
}

// wantStatus fails t unless check id has status want.
func wantStatus(t *testing.T, r *doctor.Report, id string, want doctor.Status) *doctor.Check {
	t.Helper()
	c := r.Check(id)
	if c == nil {
		t.Fatalf("no %q check in the report", id)
	}
	if c.Status != want {
		t.Errorf("check %s: status %s, want %s (%s; %s)", id, c.Status, want, c.Title, c.Detail)
	}
	if (c.Status == doctor.Warn || c.Status == doctor.Fail) && c.Fix == "" {
		t.Errorf("check %s is %s without a fix", id, c.Status)
	}
	return c
}

// snapshot records every entry below dir with its content and mtime.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if p != dir { // doctor's scratch folder comes and goes in dir
			v += " " + fi.ModTime().String()
		}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		m[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLocalDisk(t *testing.T) {
	dir := t.TempDir()
	// The user's things, which doctor must leave alone.
	if err := os.WriteFile(filepath.Join(dir, "data.db"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data.db.lock", "00000000000000000001"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, ".sharelock-doctor-0123456789ab"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	r := run(t, dir, doctor.Options{})
	if !r.OK || r.Verdict != doctor.OK {
		t.Errorf("local disk: ok=%v verdict=%s, want ok (no warnings)", r.OK, r.Verdict)
	}
	for _, id := range []string{"access", "filesystem", "cloud", "mkdir", "excl", "rename", "link", "delete-open", "round-trip", "clock", "lease"} {
		wantStatus(t, r, id, doctor.OK)
	}
	if r.FS.Kind != "local" || r.FS.Remote {
		t.Errorf("filesystem %+v: want local", r.FS)
	}
	if !r.Races.Mkdir.Atomic() || r.Races.Mkdir.Rounds != doctor.DefaultRounds || r.Races.Mkdir.LoserErrors["EEXIST"] != doctor.DefaultRounds {
		t.Errorf("mkdir race %+v: want %d rounds, each lost with EEXIST", r.Races.Mkdir, doctor.DefaultRounds)
	}
	if r.Link.NLink != 2 {
		t.Errorf("nlink %d after one link, want 2", r.Link.NLink)
	}
	if r.RoundTrip.MedianMS <= 0 || r.RoundTrip.MaxMS < r.RoundTrip.MedianMS {
		t.Errorf("round trip %+v", r.RoundTrip)
	}
	if off := r.Clock.OffsetMS; off > 1000 || off < -1000 {
		t.Errorf("local disk clock offset %v ms: the server is this machine", off)
	}
	if r.ScratchLeft != "" {
		t.Errorf("scratch left: %s", r.ScratchLeft)
	}
	after := snapshot(t, dir)
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s changed: %q -> %q", p, v, after[p])
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s left behind", p)
		}
	}
}

func TestShortLeaseOnLocalDisk(t *testing.T) {
	// 8 ms (the minimum) leaves a 1 ms heartbeat: a round trip on local
	// disk is far below, so even this is safe; the report says why.
	r := run(t, t.TempDir(), doctor.Options{Lease: doctor.MinLease, Rounds: 5})
	c := r.Check("lease")
	if c == nil || !strings.Contains(c.Detail, "heartbeat 1.0 ms") {
		t.Errorf("lease check %+v: want the 1 ms heartbeat in the sum", c)
	}
	if _, err := doctor.Run(context.Background(), t.TempDir(), doctor.Options{Lease: time.Millisecond}); err == nil {
		t.Errorf("a 1 ms lease was accepted")
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "data.db")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, want string
	}{
		{filepath.Join(dir, "missing"), "no such folder"},
		{file, "not a folder"},
	} {
		_, err := doctor.Run(context.Background(), c.path, doctor.Options{})
		var ie *doctor.InputError
		if !errors.As(err, &ie) {
			t.Errorf("%s: got %v, want an *InputError", c.path, err)
			continue
		}
		if ie.Path != c.path || ie.Fix == "" || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %+v: want the path, %q and a fix", c.path, ie, c.want)
		}
	}
	// A peer that is another folder.
	_, err := doctor.Run(context.Background(), dir, doctor.Options{Peer: t.TempDir(), VisibilityWait: 300 * time.Millisecond})
	var ie *doctor.InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "does not show the folder") {
		t.Errorf("unrelated peer: got %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("entries left in %s: %v", dir, ents)
	}
}

func TestCloudSyncFolders(t *testing.T) {
	base := t.TempDir()
	mk := func(parts ...string) string {
		p := filepath.Join(append([]string{base}, parts...)...)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	marked := mk("home", "alice", "Company Files", "db")
	if err := os.WriteFile(filepath.Join(base, "home", "alice", "Company Files", ".dropbox"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	nc := mk("nc", "shared")
	if err := os.WriteFile(filepath.Join(base, "nc", "._sync_4f2a9c.db"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A folder named .dropbox is not Dropbox's marker file.
	notMarker := mk("plain", "sub")
	mk("plain", ".dropbox")
	for _, c := range []struct {
		dir, service string
	}{
		{mk("Dropbox", "wems"), "Dropbox"},
		{mk("Dropbox (Acme)", "wems"), "Dropbox"},
		{mk("OneDrive - Acme Corp", "Documents"), "OneDrive"},
		{mk("Google Drive", "My Drive", "x"), "Google Drive"},
		{mk("Library", "Mobile Documents", "com~apple~CloudDocs"), "iCloud Drive"},
		{mk("Nextcloud"), "Nextcloud"},
		{marked, "Dropbox"},
		{nc, "Nextcloud/ownCloud"},
		{mk("dropboxes", "x"), ""},
		{notMarker, ""},
	} {
		t.Run(strings.TrimPrefix(c.dir, base), func(t *testing.T) {
			r := run(t, c.dir, doctor.Options{Rounds: 3})
			if r.FS.Cloud != c.service {
				t.Fatalf("cloud %q (%s), want %q", r.FS.Cloud, r.FS.CloudEvidence, c.service)
			}
			if c.service == "" {
				wantStatus(t, r, "cloud", doctor.OK)
				if !r.OK {
					t.Errorf("not a cloud folder, yet not ok")
				}
				return
			}
			cc := wantStatus(t, r, "cloud", doctor.Fail)
			if r.OK || r.Verdict != doctor.Fail {
				t.Errorf("cloud folder: ok=%v verdict=%s, want fail", r.OK, r.Verdict)
			}
			if !strings.Contains(cc.Fix, "not a synced folder") {
				t.Errorf("fix %q", cc.Fix)
			}
		})
	}
}

func TestCanceled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := doctor.Run(ctx, dir, doctor.Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: got %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a canceled run left %v", ents)
	}
}
