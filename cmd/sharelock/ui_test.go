//go:build unix

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestUIUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"ui"}, exitUsage, "exactly one DIR"},
		{[]string{"ui", "--listen", "0.0.0.0:0", dir}, exitUsage, "not loopback"},
		{[]string{"ui", "--listen", ":0", dir}, exitUsage, "not loopback"},
		{[]string{"ui", "--tls-cert", "x.pem", dir}, exitUsage, "--tls-key"},
		{[]string{"ui", filepath.Join(dir, "missing")}, exitError, "not a folder"},
		{[]string{"ui", "--admin-file", filepath.Join(dir, "missing"), dir}, exitError, "admin file"},
		{[]string{"stats"}, exitUsage, "exactly one PATH"},
		{[]string{"stats", "--days", "0", "x"}, exitUsage, "exactly one PATH"},
	} {
		r := runCLI(t, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("sharelock %v: want exit %d and %q, got %v", c.args, c.code, c.msg, r)
		}
	}
}

func TestUIHashPassword(t *testing.T) {
	for _, c := range []struct {
		in, name string
		code     int
	}{
		{"correct horse battery\n", "bob", 0},
		{"short\n", "bob", exitError},
		{"correct horse battery\n", "b:ob", exitUsage},
	} {
		cmd := exec.Command(slBin, "ui", "hash-password", "--name", c.name)
		cmd.Stdin = strings.NewReader(c.in)
		out, err := cmd.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code {
			t.Fatalf("hash-password %q --name %q: exit %d, want %d", c.in, c.name, code, c.code)
		}
		if c.code == 0 && !regexp.MustCompile(`^bob:\$2a\$12\$[./A-Za-z0-9]{53}\n$`).Match(out) {
			t.Fatalf("hash-password printed %q", out)
		}
	}
}

// A read-only dashboard served by the real binary: it says so, and refuses
// every POST.
func TestUIReadOnlyProcess(t *testing.T) {
	dir := t.TempDir()
	if r := runCLI(t, "run", filepath.Join(dir, "a.db"), "--", "true"); r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	ui := startCLI(t, "ui", "--listen", "127.0.0.1:0", dir)
	out := ui.waitOutput("sharelock ui: serving", 30*time.Second)
	if !strings.Contains(out, "read-only") {
		t.Fatalf("banner: %q", out)
	}
	url := regexp.MustCompile(`http://127\.0\.0\.1:\d+/`).FindString(out)
	get := func(path string, v any) {
		t.Helper()
		res, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || json.Unmarshal(raw, v) != nil {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, raw)
		}
	}
	var sess struct {
		ReadOnly bool `json:"read_only"`
	}
	get("api/session", &sess)
	if !sess.ReadOnly {
		t.Fatal("no admin file, yet not read-only")
	}
	var snap struct {
		Locks []struct{ Name, State string } `json:"locks"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for get("api/locks", &snap); len(snap.Locks) == 0 && time.Now().Before(deadline); get("api/locks", &snap) {
		time.Sleep(50 * time.Millisecond)
	}
	if len(snap.Locks) != 1 || snap.Locks[0].Name != "a.db" || snap.Locks[0].State != "free" {
		t.Fatalf("locks: %+v", snap)
	}
	for _, p := range []string{"api/login", "api/release", "api/logout"} {
		res, err := http.Post(url+p, "application/json", strings.NewReader(`{"name":"a.db","reason":"x","force":true}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("POST %s on a read-only dashboard: %d", p, res.StatusCode)
		}
	}
	if err := ui.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := ui.wait(30 * time.Second); r.code != 0 {
		t.Fatalf("ui after SIGTERM: %v", r)
	}
}

func TestStatsCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "s.db")
	for i := 0; i < 3; i++ {
		if r := runCLI(t, "run", db, "--", "true"); r.code != 0 {
			t.Fatalf("run: %v", r)
		}
	}
	r := runCLI(t, "stats", db)
	mustContain(t, "stats", r.stdout, db+": 3 acquisitions in 3 recorded transitions", "hold: median",
		"crashes recovered (takeovers): 0", "forced releases (breaks): 0", "acquisitions per day (last 14 days):")
	if r.code != 0 || strings.Count(r.stdout, "\n    20") != 14 {
		t.Fatalf("stats: %v", r)
	}
	r = runCLI(t, "stats", "--json", "--days", "3", db)
	var out map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil {
		t.Fatalf("stats --json: %v", r)
	}
	for _, k := range []string{"path", "events", "acquisitions", "crashes_recovered", "forced_releases", "known_holds",
		"median_hold_seconds", "longest_hold_seconds", "first", "last", "per_day", "busiest_users"} {
		if _, ok := out[k]; !ok {
			t.Errorf("stats --json lacks %q: %s", k, r.stdout)
		}
	}
	if out["acquisitions"].(float64) != 3 || len(out["per_day"].([]any)) != 3 {
		t.Fatalf("stats --json: %s", r.stdout)
	}
	// A path that cannot be read: exit 1 with the path named.
	if err := os.WriteFile(db+".x.lock", []byte("not a dir"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, "stats", db+".x"); r.code != exitError || !strings.Contains(r.stderr, db+".x") {
		t.Fatalf("stats of an unusable lock: %v", r)
	}
}
