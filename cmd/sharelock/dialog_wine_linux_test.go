package main

// The Windows dialog (MessageBoxW) for real, as far as Wine goes: the
// windows/amd64 sharelock.exe runs under wine64 on an Xvfb display, where
// Wine's user32 draws the message box as an X window.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// wineEnv prepares a private Wine prefix with scripts/wine/setup.sh and
// returns the environment to run Windows programs in it on display. The
// test's end stops the prefix's wineserver.
func wineEnv(t *testing.T, display string) []string {
	t.Helper()
	setup, err := filepath.Abs(filepath.Join("..", "..", "scripts", "wine", "setup.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(setup); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Wine setup script: %v", err)
		}
		t.Skipf("no Wine setup script: %v", err)
	}
	t.Setenv("PATH", os.Getenv("PATH")+string(os.PathListSeparator)+"/usr/lib/wine")
	needTools(t, "wine64", "wineserver", "x86_64-w64-mingw32-gcc")
	prefix := t.TempDir()
	if out, err := exec.Command("bash", setup, prefix).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", setup, prefix, err, out)
	}
	env := append(xEnv(display), "WINEPREFIX="+prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree=;mshtml=")
	t.Cleanup(func() {
		// Ends this prefix's wineserver (and any Wine process left in
		// it) before the prefix is removed.
		k := exec.Command("wineserver", "-k")
		k.Env = env
		_ = k.Run()
	})
	return env
}

// run --dialog of the Windows build against a file in use: MessageBoxW shows
// the message under Wine, sharelock.exe waits for OK, then exits 75.
func TestRunDialogWindowsUnderWine(t *testing.T) {
	display := startXvfb(t)
	env := wineEnv(t, display)
	exe := filepath.Join(t.TempDir(), "sharelock.exe")
	build := exec.Command("go", "build", "-o", exe, ".")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build for windows: %v\n%s", err, out)
	}
	dir := t.TempDir()
	plantAlice(t, dir)

	cmd := exec.Command("wine64", exe, "run", "--dialog", "data/wems.db", "--", "wems.exe")
	cmd.Dir = dir
	cmd.Env = env
	p := startCmd(t, cmd)
	win := waitWindow(t, display, "Database unavailable", p)
	img := screenshot(t, display, win)
	savePNG(t, img, "dialog-wine.png", false)
	time.Sleep(500 * time.Millisecond)
	if p.exited() {
		t.Fatalf("sharelock.exe ended while its dialog was open\n%v", p.res)
	}
	pressOK(t, display, win)
	r := p.wait(30 * time.Second)
	if r.code != exitLocked {
		t.Fatalf("want exit %d after OK\n%v", exitLocked, r)
	}
	mustContain(t, "stderr", strings.ReplaceAll(r.stderr, "\r\n", "\n"), "data/wems.db is in use by alice on FRONTDESK-PC (wems.exe) since 09:12")
	if strings.Contains(r.stderr, "could not show the dialog") {
		t.Errorf("dialog reported as failed:\n%s", r.stderr)
	}
}
