package main

// The --dialog tests run the real zenity on a real X server (Xvfb), find its
// window with xdotool, take a screenshot with xwd, and close the dialog with
// the Return key as a user would press OK.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startXvfb starts a private X server and returns its display (":N"). The
// test's end stops it.
func startXvfb(t *testing.T) string {
	t.Helper()
	needTools(t, "Xvfb", "zenity", "xdotool", "xwd")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// -displayfd: Xvfb picks a free display and writes its number to fd 3.
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1024x768x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Xvfb: %v", err)
	}
	w.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
		r.Close()
	}()
	select {
	case n := <-line:
		if n == "" {
			t.Fatal("Xvfb did not report a display")
		}
		return ":" + n
	case <-time.After(20 * time.Second):
		t.Fatal("Xvfb did not start within 20 s")
		return ""
	}
}

// xEnv is the environment for programs on display: X11 only, no Wayland,
// and no session bus for GTK to wait for.
func xEnv(display string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DISPLAY=") && !strings.HasPrefix(kv, "WAYLAND_DISPLAY=") {
			env = append(env, kv)
		}
	}
	return append(env, "DISPLAY="+display, "NO_AT_BRIDGE=1")
}

// xdotool runs xdotool on display and returns its output.
func xdotool(display string, args ...string) (string, error) {
	cmd := exec.Command("xdotool", args...)
	cmd.Env = xEnv(display)
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// waitWindow waits until a visible window titled title shows on display and
// returns its id. It fails the test if proc ends first.
func waitWindow(t *testing.T, display, title string, proc *bgProc) string {
	t.Helper()
	const limit = 60 * time.Second
	deadline := time.Now().Add(limit)
	for {
		if out, err := xdotool(display, "search", "--onlyvisible", "--name", "^"+title+"$"); err == nil && out != "" {
			return strings.Fields(out)[0]
		}
		if proc.exited() {
			t.Fatalf("sharelock ended without showing a %q window\n%v", title, proc.res)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q window on %s after %v\nstderr:\n%s", title, display, limit, proc.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// screenshot returns the window's pixels, once they look drawn (see
// inked); it retries for a few seconds while GTK paints.
func screenshot(t *testing.T, display, win string) *image.RGBA {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cmd := exec.Command("xwd", "-silent", "-id", win)
		cmd.Env = xEnv(display)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("xwd: %v", err)
		}
		img, err := decodeXWD(out)
		if err != nil {
			t.Fatalf("xwd output: %v", err)
		}
		sd, dark := inked(img)
		if sd > 20 && dark > 0.002 && dark < 0.4 {
			return img
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dialog looks blank: luminance deviation %.1f, dark pixels %.2f%%", sd, 100*dark)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// inked measures whether an image has something drawn on it: the standard
// deviation of its luminance (0 for a plain rectangle) and the share of
// dark pixels (text).
func inked(img *image.RGBA) (sd, dark float64) {
	b := img.Bounds()
	var n, sum, sum2, nDark float64
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := img.RGBAAt(x, y)
			l := 0.299*float64(c.R) + 0.587*float64(c.G) + 0.114*float64(c.B)
			n++
			sum += l
			sum2 += l * l
			if l < 100 {
				nDark++
			}
		}
	}
	if n == 0 {
		return 0, 0
	}
	mean := sum / n
	return math.Sqrt(math.Max(sum2/n-mean*mean, 0)), nDark / n
}

// decodeXWD decodes an X Window Dump (as xwd writes it) of a TrueColor
// window with 32 bits per pixel, the format of Xvfb's 24-bit screens.
func decodeXWD(b []byte) (*image.RGBA, error) {
	const hdrLen = 25 * 4
	if len(b) < hdrLen {
		return nil, fmt.Errorf("short XWD file (%d bytes)", len(b))
	}
	h := make([]uint32, 25)
	for i := range h {
		h[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	headerSize, version, width, height := h[0], h[1], int(h[4]), int(h[5])
	byteOrder, bpp, bytesPerLine := h[7], h[11], int(h[12])
	rmask, gmask, bmask, ncolors := h[14], h[15], h[16], h[19]
	if version != 7 {
		return nil, fmt.Errorf("XWD version %d, want 7", version)
	}
	if bpp != 32 {
		return nil, fmt.Errorf("XWD with %d bits per pixel, want 32", bpp)
	}
	off := int(headerSize) + int(ncolors)*12
	if off > len(b) || len(b)-off < bytesPerLine*height || bytesPerLine < 4*width {
		return nil, fmt.Errorf("XWD %dx%d: %d bytes of pixels, want %d", width, height, len(b)-off, bytesPerLine*height)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if byteOrder == 1 {
		order = binary.BigEndian
	}
	channel := func(p, mask uint32) uint8 {
		if mask == 0 {
			return 0
		}
		shift := 0
		for mask&1 == 0 {
			mask >>= 1
			shift++
		}
		return uint8((p >> shift) & mask * 255 / mask)
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for y := 0; y < height; y++ {
		row := b[off+y*bytesPerLine:]
		for x := 0; x < width; x++ {
			p := order.Uint32(row[4*x:])
			img.SetRGBA(x, y, color.RGBA{channel(p, rmask), channel(p, gmask), channel(p, bmask), 255})
		}
	}
	return img, nil
}

// savePNG writes img as name to a temporary directory, or, for a
// checkedIn screenshot and with SHARELOCK_UPDATE_SCREENSHOTS=1, to docs/
// (to refresh the one the README shows). It returns the path.
func savePNG(t *testing.T, img image.Image, name string, checkedIn bool) string {
	t.Helper()
	dir := t.TempDir()
	if checkedIn && os.Getenv("SHARELOCK_UPDATE_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "..", "docs")
	}
	path := filepath.Join(dir, name)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// plantAlice writes the lock of dir/data/wems.db as held by alice on
// FRONTDESK-PC running wems.exe since 09:12 today (a record another machine
// would have written; see plantHolder), alive as far as anyone can tell.
func plantAlice(t *testing.T, dir string) {
	t.Helper()
	db := filepath.Join(dir, "data", "wems.db")
	gen := filepath.Join(db+".lock", fmt.Sprintf("%020d", 1))
	if err := os.MkdirAll(gen, 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	since := time.Date(now.Year(), now.Month(), now.Day(), 9, 12, 0, 0, time.Local)
	rec := map[string]any{
		"token": 1, "kind": "acquire", "user": "alice", "host": "FRONTDESK-PC", "app": "wems.exe", "pid": 4242,
		"machine_id": "0123456789abcdef0123456789abcdef", "boot_id": "fedcba98-7654-3210-fedc-ba9876543210",
		"since": since.UTC().Format(time.RFC3339Nano), "lease_ms": 40000, "heartbeat_ms": 5000,
		"nonce": "00112233445566778899aabb",
	}
	body, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	owner := fmt.Sprintf("sharelock-owner 1\nstate=%-8s beat=%020d at=%020d\n%s\n", "held", 7, now.UnixMilli(), body)
	if err := os.WriteFile(filepath.Join(gen, "owner"), []byte(owner), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pressOK presses Return in the dialog, as a user pressing OK.
func pressOK(t *testing.T, display, win string) {
	t.Helper()
	if out, err := xdotool(display, "windowfocus", "--sync", win, "key", "Return"); err != nil {
		t.Fatalf("xdotool key Return: %v %s", err, out)
	}
}

// run --dialog against a file in use: the zenity error dialog shows who has
// it and what to do, sharelock waits until it is closed, then exits 75.
func TestRunDialogInUse(t *testing.T) {
	display := startXvfb(t)
	dir := t.TempDir()
	plantAlice(t, dir)

	cmd := exec.Command(slBin, "run", "--dialog", "data/wems.db", "--", "wems.exe")
	cmd.Dir = dir
	cmd.Env = xEnv(display)
	p := startCmd(t, cmd)
	win := waitWindow(t, display, "Database unavailable", p)
	img := screenshot(t, display, win)
	if b := img.Bounds(); b.Dx() < 200 || b.Dy() < 80 {
		t.Errorf("dialog window is only %dx%d", b.Dx(), b.Dy())
	}
	savePNG(t, img, "dialog-linux.png", true)

	// The message is on stderr as well, in full, and sharelock waits for OK.
	time.Sleep(500 * time.Millisecond)
	if p.exited() {
		t.Fatalf("sharelock ended while its dialog was open\n%v", p.res)
	}
	mustContain(t, "stderr", p.stderr.String(), "data/wems.db is in use by alice on FRONTDESK-PC (wems.exe) since 09:12", "sharelock break")

	pressOK(t, display, win)
	r := p.wait(15 * time.Second)
	if r.code != exitLocked {
		t.Fatalf("want exit %d after OK\n%v", exitLocked, r)
	}
	if strings.Contains(r.stderr, "could not show the dialog") {
		t.Errorf("dialog reported as failed:\n%s", r.stderr)
	}
	if out, _ := xdotool(display, "search", "--name", "^Database unavailable$"); out != "" {
		t.Errorf("the dialog window is still there after OK: %s", out)
	}
}

// A signal while the in-use dialog is open closes it and ends sharelock
// promptly, still with exit 75: the dialog never keeps it running.
func TestRunDialogClosedBySignal(t *testing.T) {
	display := startXvfb(t)
	dir := t.TempDir()
	plantAlice(t, dir)
	cmd := exec.Command(slBin, "run", "--dialog", "data/wems.db", "--", "wems.exe")
	cmd.Dir = dir
	cmd.Env = xEnv(display)
	p := startCmd(t, cmd)
	waitWindow(t, display, "Database unavailable", p)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := p.wait(10 * time.Second)
	if r.code != exitLocked {
		t.Fatalf("want exit %d\n%v", exitLocked, r)
	}
	if r.elapsed > 8*time.Second {
		t.Errorf("sharelock took %v to end", r.elapsed)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := xdotool(display, "search", "--name", "^Database unavailable$")
		if out == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dialog is still open 5 s after sharelock ended: window %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run --dialog when the lock is lost: the command is stopped at once, not
// after the dialog; the dialog says why; sharelock exits 76 after OK.
func TestRunDialogLost(t *testing.T) {
	display := startXvfb(t)
	db := newDB(t)
	cmd := exec.Command(slBin, "run", "--dialog", "--lease", "2s", db, "--", "sh", "-c", "echo $$; exec sleep 60")
	cmd.Env = xEnv(display)
	p := startCmd(t, cmd)
	childPID := atoiT(t, strings.TrimSpace(p.waitOutput("\n", 10*time.Second)))
	waitHeld(t, db, p)

	if br := runCLI(t, "break", "--force", "--reason", "test", db); br.code != 0 {
		t.Fatalf("break --force\n%v", br)
	}
	win := waitWindow(t, display, "Lock lost", p)
	// The child was stopped without waiting for the dialog.
	deadline := time.Now().Add(5 * time.Second)
	for alive(childPID) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d still runs 5 s after the loss, with the dialog open", childPID)
		}
		time.Sleep(50 * time.Millisecond)
	}
	img := screenshot(t, display, win)
	savePNG(t, img, "dialog-linux-lost.png", false)
	if p.exited() {
		t.Fatalf("sharelock ended while its dialog was open\n%v", p.res)
	}
	pressOK(t, display, win)
	r := p.wait(15 * time.Second)
	if r.code != exitLost {
		t.Fatalf("want exit %d after OK\n%v", exitLost, r)
	}
	mustContain(t, "stderr", r.stderr, "lost", "taken over", "stopping sh")
}

// Without a display, --dialog keeps to stderr, says nothing about the
// dialog and does not wait.
func TestRunDialogWithoutDisplay(t *testing.T) {
	dir := t.TempDir()
	plantAlice(t, dir)
	cmd := exec.Command(slBin, "run", "--dialog", "data/wems.db", "--", "wems.exe")
	cmd.Dir = dir
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DISPLAY=") && !strings.HasPrefix(kv, "WAYLAND_DISPLAY=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	r := startCmd(t, cmd).wait(20 * time.Second)
	if r.code != exitLocked {
		t.Fatalf("want exit %d\n%v", exitLocked, r)
	}
	mustContain(t, "stderr", r.stderr, "is in use by alice on FRONTDESK-PC")
	if strings.Contains(r.stderr, "dialog") {
		t.Errorf("stderr mentions the dialog:\n%s", r.stderr)
	}
}
