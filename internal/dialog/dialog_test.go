package dialog

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"sharelock/internal/core"
)

// alice is the holder of the README's example.
func alice(since time.Time) *core.Holder {
	return &core.Holder{User: "alice", Host: "FRONTDESK-PC", App: "wems.exe", PID: 4242, Since: since}
}

func TestInUse(t *testing.T) {
	now := time.Date(2026, 11, 27, 14, 30, 0, 0, time.Local)
	since := time.Date(2026, 11, 27, 9, 12, 0, 0, time.Local)
	h := alice(since)
	e := &core.LockedError{Path: "data/wems.db", Holder: h, Token: 7, LastSeen: 3 * time.Second,
		Solutions: core.DefaultSolutions("data/wems.db", h)}
	m := InUse(e, now)
	if m.Title != "Database unavailable" {
		t.Errorf("title %q", m.Title)
	}
	want := "data/wems.db is in use by alice on FRONTDESK-PC (wems.exe) since 09:12.\n\n" +
		"Wait for alice to close it, then try again.\n" +
		"If nobody is using it, an administrator can release it: sharelock break --reason \"...\" data/wems.db\n" +
		"Make sure everyone has write access to the folder that holds it."
	if m.Body != want {
		t.Errorf("body:\n%s\nwant:\n%s", m.Body, want)
	}

	// The solutions come from the error, as given, one a line.
	e.Solutions = []string{"Ask the front desk.", "Call 555-0100."}
	if m := InUse(e, now); !strings.HasSuffix(m.Body, ".\n\nAsk the front desk.\nCall 555-0100.") {
		t.Errorf("own solutions not shown as given:\n%s", m.Body)
	}

	// Held since another day: the date is shown too.
	e.Solutions = nil
	if m := InUse(e, now.Add(24*time.Hour)); !strings.Contains(m.Body, " since 2026-11-27 09:12.\n") {
		t.Errorf("since another day:\n%s", m.Body)
	}

	// Stale: says so.
	e.Stale = true
	if m := InUse(e, now); !strings.Contains(m.Body, "since 09:12. It shows no sign of life, but it could not be taken over in time.\n\n") {
		t.Errorf("stale holder:\n%s", m.Body)
	}
}

func TestInUseUnknownHolder(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name   string
		holder *core.Holder
		head   string
		wait   string
	}{
		{"nil", nil, "data/wems.db is in use by an unknown holder.\n\n", "Wait for the holder to close it"},
		{"no user", &core.Holder{Host: "PC-3"}, "data/wems.db is in use by an unknown user on PC-3.\n\n", "Wait for the holder to close it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// No Solutions in the error: the default ones are shown.
			m := InUse(&core.LockedError{Path: "data/wems.db", Holder: tc.holder}, now)
			if !strings.HasPrefix(m.Body, tc.head) {
				t.Errorf("body:\n%s\nwant it to start with:\n%s", m.Body, tc.head)
			}
			if !strings.Contains(m.Body, tc.wait) || !strings.Contains(m.Body, `sharelock break --reason "..." data/wems.db`) {
				t.Errorf("default solutions missing:\n%s", m.Body)
			}
			if strings.Contains(m.Body, "since") {
				t.Errorf("no start time known, yet the body has one:\n%s", m.Body)
			}
		})
	}
}

func TestLost(t *testing.T) {
	e := &core.LostError{Path: "data/wems.db", Token: 7, Reason: "taken over by bob on PC-3 (token 8)"}
	m := Lost(e, "wems.exe", Stopped, "")
	if m.Title != "Lock lost" {
		t.Errorf("title %q", m.Title)
	}
	want := "Lock lost — data/wems.db (token 7): taken over by bob on PC-3 (token 8).\n\n" +
		"wems.exe was stopped: without the lock it could overwrite someone else's changes.\n\n" +
		"Start it again to take the lock anew. If this keeps happening, check the connection to the shared folder."
	if m.Body != want {
		t.Errorf("body:\n%s\nwant:\n%s", m.Body, want)
	}
	if m := Lost(e, "wems.exe", Signalled, "hangup"); !strings.Contains(m.Body, "\n\nwems.exe was sent the signal \"hangup\" and may still be running without the lock.\n\n") {
		t.Errorf("signalled:\n%s", m.Body)
	}
	if m := Lost(e, "wems.exe", AlreadyEnded, ""); !strings.Contains(m.Body, "\n\nwems.exe had already ended when this was noticed;") {
		t.Errorf("already ended:\n%s", m.Body)
	}
	// A reason that ends in a full stop does not get a second one.
	e2 := &core.LostError{Path: "a.db", Token: 2, Reason: "heartbeat not written for 31s."}
	if m := Lost(e2, "x", Stopped, ""); !strings.HasPrefix(m.Body, "Lock lost — a.db (token 2): heartbeat not written for 31s.\n\n") {
		t.Errorf("reason with a full stop:\n%s", m.Body)
	}
	if m := Lost(nil, "x", Stopped, ""); !strings.HasPrefix(m.Body, "Lock lost.\n\nx was stopped") {
		t.Errorf("no error:\n%s", m.Body)
	}
}

// The helpers get the text as single arguments, never through a shell or
// as markup or script source.
func TestHelperArgs(t *testing.T) {
	m := Message{Title: "Database unavailable", Body: "a <b>bold</b> & $(touch x) `id` \"q\" 'q' \\\nline 2"}
	if got, want := zenityArgs(m), []string{"--error", "--no-markup", "--title", m.Title, "--text", m.Body}; !slices.Equal(got, want) {
		t.Errorf("zenity args %q, want %q", got, want)
	}
	if got, want := kdialogArgs(m), []string{"--title", m.Title, "--error", m.Body}; !slices.Equal(got, want) {
		t.Errorf("kdialog args %q, want %q", got, want)
	}
	a := osascriptArgs(m)
	if n := len(a); n < 2 || a[n-2] != m.Title || a[n-1] != m.Body {
		t.Fatalf("osascript args %q: want the title and body last, as the script's arguments", a)
	}
	for i := 0; i < len(a)-2; i += 2 {
		if a[i] != "-e" || strings.Contains(a[i+1], "bold") {
			t.Errorf("osascript args %q: the script must be -e lines without the text", a)
		}
	}
	script := strings.Join(osascriptScript, "\n")
	for _, s := range []string{"on run argv", "item 1 of argv", "item 2 of argv", "with icon stop", `buttons {"OK"}`} {
		if !strings.Contains(script, s) {
			t.Errorf("osascript script lacks %q:\n%s", s, script)
		}
	}
	// A title osascript could take for an option is made safe.
	if a := osascriptArgs(Message{Title: "-x", Body: "b"}); a[len(a)-2] != "sharelock -x" {
		t.Errorf("osascript title %q", a[len(a)-2])
	}
}

// Without a display (or helper), Show says so at once with ErrUnavailable
// and shows nothing.
func TestShowUnavailable(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		t.Skip("Windows and macOS always have a dialog")
	}
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	start := time.Now()
	if err := Show(context.Background(), Message{Title: "t", Body: "b"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("no display: Show = %v, want ErrUnavailable", err)
	}
	// A display but neither zenity nor kdialog.
	t.Setenv("DISPLAY", ":99")
	t.Setenv("PATH", t.TempDir())
	if err := Show(context.Background(), Message{Title: "t", Body: "b"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("no helper: Show = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Show took %v to find out it cannot show anything", d)
	}
}

// Show runs the helper with the text as its arguments, reports a helper that
// fails, and kills a helper still open when ctx ends. The helper here is a
// stand-in script for zenity that records its arguments; the real zenity is
// tested under Xvfb in cmd/sharelock.
func TestShowRunsHelper(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		t.Skip("Linux and the BSDs: zenity")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	rec := filepath.Join(dir, "args")
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done >\"$REC\"\n" +
		"case \"$ZENITY_MODE\" in fail) echo 'zenity: broken' >&2; exit 3;; hang) exec sleep 30;; killed) kill -INT $$; sleep 5; exit 9;; esac\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "zenity"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("DISPLAY", ":99")
	t.Setenv("REC", rec)
	m := Message{Title: "Database unavailable", Body: "a \"b\" $(c) <d>\nline\x00 2"}

	t.Setenv("ZENITY_MODE", "")
	if err := Show(context.Background(), m); err != nil {
		t.Fatalf("Show: %v", err)
	}
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	want := []string{"--error", "--no-markup", "--title", "Database unavailable", "--text", "a \"b\" $(c) <d>\nline 2"}
	if !slices.Equal(got, want) {
		t.Errorf("zenity got %q, want %q", got, want)
	}

	t.Setenv("ZENITY_MODE", "fail")
	if err := Show(context.Background(), m); err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "zenity: broken") {
		t.Errorf("failing helper: Show = %v, want its error with its stderr", err)
	}

	// Killed by a signal (Ctrl+C reaches it too): closed, not failed.
	t.Setenv("ZENITY_MODE", "killed")
	if err := Show(context.Background(), m); err != nil {
		t.Errorf("helper killed by a signal: Show = %v, want nil", err)
	}

	t.Setenv("ZENITY_MODE", "hang")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := Show(ctx, m); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ctx ended: Show = %v, want the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Show returned %v after ctx ended", d)
	}
}
