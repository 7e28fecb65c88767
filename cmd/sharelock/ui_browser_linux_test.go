package main

// Browser tests of `sharelock ui`: the real CLI binary serves a real folder,
// real `sharelock run` processes take and release locks, and a real headless
// Chromium (driven by chromedp) looks at the page and clicks it. They write
// the screenshots docs/dashboard-main.png and docs/dashboard-detail.png when
// SHARELOCK_UPDATE_SCREENSHOTS=1 (to a temporary folder otherwise).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"sharelock"
	"sharelock/internal/faultfs"
)

// chromium returns the browser's path; without one the test is skipped
// (failed when CI=true: CI installs it through scripts/deps.sh).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (scripts/deps.sh installs it)")
	}
	t.Skip("chromium is not installed (apt-get install chromium, or scripts/deps.sh as root)")
	return ""
}

// browser starts a fresh headless Chromium (its own profile) and returns a
// tab context. A browser that cannot start fails the test when CI=true.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 860),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium does not start: %v", err)
		}
		t.Skipf("chromium does not start: %v", err)
	}
	return ctx
}

// page is a Chromium tab on the dashboard.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

func (p *page) eval(js string, out any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("browser: evaluating %s: %v", js, err)
	}
	if out != nil {
		if err := json.Unmarshal(v, out); err != nil {
			p.t.Fatalf("browser: %s returned %s: %v", js, v, err)
		}
	}
}

// waitJS waits up to d for the JavaScript expression to be true and
// returns how long it took.
func (p *page) waitJS(what, js string, d time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	for {
		var ok bool
		p.eval("!!("+js+")", &ok)
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > d {
			var body string
			p.eval(`document.getElementById("main").innerText`, &body)
			p.t.Fatalf("page never showed %s within %v (%s)\npage text:\n%s", what, d, js, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func rowState(name string) string {
	return fmt.Sprintf(`(document.querySelector('tr.lock-row[data-name=%q]')||{dataset:{}}).dataset.state`, name)
}

func rowText(name string) string {
	return fmt.Sprintf(`(document.querySelector('tr.lock-row[data-name=%q]')||{innerText:""}).innerText`, name)
}

// screenshot saves a full-page PNG in a temporary folder, or as docs/NAME
// when toDocs and SHARELOCK_UPDATE_SCREENSHOTS=1.
func (p *page) screenshot(name string, toDocs bool) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		p.t.Fatalf("screenshot %s is not a PNG", name)
	}
	dir := p.t.TempDir()
	if toDocs && os.Getenv("SHARELOCK_UPDATE_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "..", "docs")
	}
	out := filepath.Join(dir, name)
	if err := os.WriteFile(out, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s (%d bytes)", out, len(png))
}

// holdUntil starts `sharelock run` holding db until the file stop exists.
func holdUntil(t *testing.T, db, app, stop string, extra ...string) *bgProc {
	t.Helper()
	args := append([]string{"run"}, extra...)
	args = append(args, "--app", app, db, "--", "sh", "-c", fmt.Sprintf("while [ ! -e %q ]; do sleep 0.05; done", stop))
	return startCLI(t, args...)
}

// The whole dashboard in a real browser: live states from real `sharelock
// run` processes (held within 2 s, free after release, stale after SIGSTOP
// past the lease), the read-only and non-admin views, forged and CSRF-less
// POSTs refused, an admin login and release recorded on disk, statistics.
func TestUIBrowser(t *testing.T) {
	ctx := browser(t)
	dir := t.TempDir()
	for _, sub := range []string{"accounting", "warehouse", "reports"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(dir, "warehouse", "wems.db")
	const name = "warehouse/wems.db"

	// History for the statistics: plain holds, and a crash taken over.
	for i := 0; i < 4; i++ {
		if r := runCLI(t, "run", "--app", "wems.exe", db, "--", "sleep", "0.2"); r.code != 0 {
			t.Fatalf("run: %v", r)
		}
	}
	crash := holdUntil(t, db, "wems.exe", filepath.Join(dir, "never"))
	waitHeld(t, db, crash)
	if err := syscall.Kill(crash.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crash.wait(time.Minute)
	if r := runCLI(t, "run", "--app", "wems.exe", db, "--", "true"); r.code != 0 { // takes the dead holder's lock over
		t.Fatalf("run after the crash: %v", r)
	}
	forced := holdUntil(t, db, "wems.exe", filepath.Join(dir, "never"))
	waitHeld(t, db, forced)
	if r := runCLI(t, "break", "--force", "--reason", "nightly backup needs the file", db); r.code != 0 {
		t.Fatalf("break: %v", r)
	}
	if r := forced.wait(time.Minute); r.code != exitLost {
		t.Fatalf("broken holder: %v", r)
	}
	for _, p := range []string{"accounting/ledger.mdb", "reports/q3-sales.xlsx", "reports/budget.sqlite"} {
		if r := runCLI(t, "run", "--app", "excel.exe", filepath.Join(dir, p), "--", "true"); r.code != 0 {
			t.Fatalf("run: %v", r)
		}
	}

	// Admin file made with the real helper.
	hp := exec.Command(slBin, "ui", "hash-password", "--name", "alice")
	hp.Stdin = strings.NewReader("correct horse battery\n")
	line, err := hp.Output()
	if err != nil || !strings.HasPrefix(string(line), "alice:$2") {
		t.Fatalf("hash-password: %q %v", line, err)
	}
	adminFile := filepath.Join(t.TempDir(), "admins")
	if err := os.WriteFile(adminFile, line, 0o600); err != nil {
		t.Fatal(err)
	}

	ui := startCLI(t, "ui", "--listen", "127.0.0.1:0", "--admin-file", adminFile, dir)
	out := ui.waitOutput("sharelock ui: serving", 30*time.Second)
	url := regexp.MustCompile(`http://127\.0\.0\.1:\d+/`).FindString(out)
	if url == "" {
		t.Fatalf("no URL in %q", out)
	}
	p := &page{t: t, ctx: ctx}
	p.do(chromedp.Navigate(url))
	p.waitJS("the lock list", rowState(name)+` === "free"`, 10*time.Second)
	p.waitJS("the login button", `document.getElementById("login-btn")`, 5*time.Second)

	// Taken by `sharelock run`: shown held (with holder and app) within 2 s
	// of the lock being taken.
	stop1 := filepath.Join(dir, "stop1")
	h1 := holdUntil(t, db, "wems.exe", stop1)
	waitHeld(t, db, h1)
	took := p.waitJS("the lock held", rowState(name)+` === "held" && /wems\.exe/.test(`+rowText(name)+`)`, 2*time.Second)
	t.Logf("page showed the lock held %v after `sharelock status` did", took.Round(time.Millisecond))
	var txt string
	p.eval(rowText(name), &txt)
	if user := h1Holder(t, db); !strings.Contains(txt, user) {
		t.Fatalf("row %q does not name the holder %q", txt, user)
	}
	// Someone waits in line: the list counts them, the detail view names
	// them.
	waiter := startCLI(t, "run", "--wait", "60s", "--app", "report.exe", db, "--", "true")
	p.waitJS("the waiter counted", `/1 waiting/.test(`+rowText(name)+`)`, 5*time.Second)
	p.do(chromedp.Navigate(url + "#/lock/" + name))
	p.waitJS("the waiter named", `/on .*\(report\.exe\).*waiting since/.test((document.getElementById("waiting")||{}).innerText||"")`, 5*time.Second)
	p.do(chromedp.Navigate(url + "#/"))
	// Released: the waiter takes it, then it is shown free.
	if err := os.WriteFile(stop1, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := h1.wait(time.Minute); r.code != 0 {
		t.Fatalf("holder: %v", r)
	}
	if r := waiter.wait(time.Minute); r.code != 0 {
		t.Fatalf("waiter: %v", r)
	}
	p.waitJS("the lock free after release", rowState(name)+` === "free"`, 2*time.Second)

	// Non-admin: no release button anywhere, and forged POSTs get 403.
	stop2 := filepath.Join(dir, "stop2")
	h2 := holdUntil(t, db, "wems.exe", stop2, "--lease", "2s")
	waitHeld(t, db, h2)
	other := holdUntil(t, filepath.Join(dir, "accounting", "ledger.mdb"), "msaccess.exe", filepath.Join(dir, "stop-other"))
	waitHeld(t, filepath.Join(dir, "accounting", "ledger.mdb"), other)
	p.waitJS("the lock held again", rowState(name)+` === "held"`, 5*time.Second)
	var n int
	p.eval(`document.querySelectorAll(".release-btn, #release-btn").length`, &n)
	if n != 0 {
		t.Fatalf("a non-admin sees %d release buttons", n)
	}
	var status int
	p.eval(`fetch("/api/release", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({name: "`+name+`", reason: "forged", force: true})}).then(r => r.status)`, &status)
	if status != http.StatusForbidden {
		t.Fatalf("forged POST from a non-admin page: %d, want 403", status)
	}
	res, err := http.Post(url+"api/release", "application/json", strings.NewReader(`{"name":"`+name+`","reason":"forged","force":true}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("forged POST without a session: %d, want 403", res.StatusCode)
	}

	// Frozen past its lease: shown stale.
	if err := syscall.Kill(h2.pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(h2.pid(), syscall.SIGCONT)
	p.waitJS("the frozen holder stale", rowState(name)+` === "stale" && /not seen for/.test(`+rowText(name)+`)`, 15*time.Second)

	// Admin login.
	p.do(chromedp.Click(chromedp.ID("login-btn")),
		chromedp.SendKeys(chromedp.ID("login-name"), "alice"),
		chromedp.SendKeys(chromedp.ID("login-password"), "correct horse battery"),
		chromedp.Click(chromedp.ID("login-submit")))
	p.waitJS("the admin logged in", `(document.getElementById("admin-name")||{}).innerText === "admin: alice"`, 10*time.Second)
	p.waitJS("release buttons for the admin", `document.querySelectorAll(".release-btn").length === 2`, 5*time.Second)

	// CSRF: the admin's own session without (or with a wrong) token fails.
	for _, hdr := range []string{`{}`, `{"X-CSRF-Token": "not-the-token"}`} {
		p.eval(`fetch("/api/release", {method: "POST", headers: Object.assign({"Content-Type": "application/json"}, `+hdr+`),
			body: JSON.stringify({name: "`+name+`", reason: "csrf", force: true})}).then(r => r.status)`, &status)
		if status != http.StatusForbidden {
			t.Fatalf("admin POST with CSRF header %s: %d, want 403", hdr, status)
		}
	}
	if info, err := sharelock.Inspect(context.Background(), db); err != nil || info.State == sharelock.Free {
		t.Fatalf("a refused POST changed the lock: %+v %v", info, err)
	}
	p.screenshot("dashboard-main.png", true)

	// Release from the detail view, with a reason and confirmation.
	p.do(chromedp.Click(chromedp.CSS(`tr.lock-row[data-name="` + name + `"] td.name`)))
	p.waitJS("the detail view", `(document.getElementById("detail-name")||{}).innerText === "`+name+`" && document.getElementById("stats")`, 10*time.Second)
	p.waitJS("the history and statistics", `/Crashes recovered\s*1/i.test(document.getElementById("stats").innerText) && /Forced releases\s*1/i.test(document.getElementById("stats").innerText) && /taken over/.test(document.getElementById("history").innerText) && document.getElementById("release-btn")`, 10*time.Second)
	p.eval(`(window.scrollTo(0, 0), true)`, nil)
	p.screenshot("dashboard-detail.png", true)
	p.do(chromedp.Click(chromedp.ID("release-btn")),
		chromedp.SendKeys(chromedp.ID("release-reason"), "FRONTDESK froze"))
	p.do(chromedp.Click(chromedp.ID("release-submit")))
	p.waitJS("the confirmation demanded", `/confirm/i.test(document.getElementById("release-msg").innerText)`, 5*time.Second)
	p.do(chromedp.Click(chromedp.ID("release-confirm")), chromedp.Click(chromedp.ID("release-submit")))
	p.waitJS("the lock free after the admin's release",
		`!document.getElementById("release-msg") && document.querySelector(".title-row .badge").dataset.state === "free"`, 30*time.Second)
	p.waitJS("the break in the history", `/released by admin alice via dashboard: FRONTDESK froze/.test(document.getElementById("history").innerText)`, 10*time.Second)
	p.waitJS("the statistics updated", `/Forced releases\s*2/i.test(document.getElementById("stats").innerText) && /broken by admin/.test(document.getElementById("history").innerText)`, 10*time.Second)

	// On disk: free, a break event naming the admin and the broken holder,
	// and the audit log line.
	info, err := sharelock.Inspect(context.Background(), db)
	if err != nil || info.State != sharelock.Free {
		t.Fatalf("after release: %+v %v", info, err)
	}
	events, err := sharelock.History(context.Background(), db)
	if err != nil || len(events) == 0 {
		t.Fatalf("history: %v %v", events, err)
	}
	last := events[len(events)-1]
	if last.Kind != "break" || last.Reason != "released by admin alice via dashboard: FRONTDESK froze" ||
		last.Broke == nil || last.Broke.PID != h2.pid() {
		t.Fatalf("break event: %+v (holder pid %d)", last, h2.pid())
	}
	audit, err := os.ReadFile(filepath.Join(db+".lock", "audit.log"))
	if err != nil || !strings.Contains(string(audit), "released by admin alice via dashboard: FRONTDESK froze") {
		t.Fatalf("audit.log: %q %v", audit, err)
	}
	// The frozen holder wakes up and learns it lost the lock.
	if err := syscall.Kill(h2.pid(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if r := h2.wait(time.Minute); r.code != exitLost {
		t.Fatalf("woken holder: %v (want exit %d)", r, exitLost)
	}
	if err := os.WriteFile(filepath.Join(dir, "stop-other"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	other.wait(time.Minute)

	// `sharelock stats` agrees with the page.
	var st struct {
		Acquisitions     int `json:"acquisitions"`
		CrashesRecovered int `json:"crashes_recovered"`
		ForcedReleases   int `json:"forced_releases"`
	}
	r := runCLI(t, "stats", "--json", db)
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
		t.Fatalf("stats: %v", r)
	}
	if st.Acquisitions != 10 || st.CrashesRecovered != 1 || st.ForcedReleases != 2 {
		t.Fatalf("stats: %+v\n%s", st, r.stdout)
	}
	// Without an admin file the page says it is read-only and offers no login.
	ro := startCLI(t, "ui", "--listen", "127.0.0.1:0", dir)
	roURL := regexp.MustCompile(`http://127\.0\.0\.1:\d+/`).FindString(ro.waitOutput("sharelock ui: serving", 30*time.Second))
	p.do(chromedp.Navigate(roURL))
	p.waitJS("the read-only notice", `!document.getElementById("readonly-banner").hidden && /Read-only/.test(document.getElementById("readonly-banner").innerText) && document.getElementById("readonly-tag") && !document.getElementById("login-btn")`, 10*time.Second)
	p.waitJS("the list", rowState(name)+` === "free"`, 10*time.Second)
	p.eval(`document.querySelectorAll(".release-btn, #release-btn").length`, &n)
	if n != 0 {
		t.Fatalf("a read-only page shows %d release buttons", n)
	}
	for _, proc := range []*bgProc{ro, ui} {
		if err := proc.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Fatal(err)
		}
	}
	if r := ro.wait(30 * time.Second); r.code != 0 {
		t.Fatalf("read-only ui after SIGTERM: %v", r)
	}
	if err := ui.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	if r := ui.wait(30 * time.Second); r.code != 0 {
		t.Fatalf("ui after SIGTERM: %v", r)
	}
}

// h1Holder returns the user recorded as holding db.
func h1Holder(t *testing.T, db string) string {
	t.Helper()
	info, err := sharelock.Inspect(context.Background(), db)
	if err != nil || info.Holder == nil {
		t.Fatalf("inspect: %+v %v", info, err)
	}
	return info.Holder.User
}

// A share that stops answering: the page says "Share unreachable since …"
// instead of hanging, keeps the last known state, and recovers when the
// share answers again. The share is a fault-injecting FUSE mount
// (internal/faultfs; needs root, fails when CI=true without it).
func TestUIBrowserUnreachableShare(t *testing.T) {
	ctx := browser(t)
	backing := t.TempDir()
	db := filepath.Join(backing, "wems.db")
	if r := runCLI(t, "run", db, "--", "true"); r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	f := faultfs.Mount(t, backing)
	ui := startCLI(t, "ui", "--listen", "127.0.0.1:0", "--timeout", "500ms", f.Dir())
	url := regexp.MustCompile(`http://127\.0\.0\.1:\d+/`).FindString(ui.waitOutput("sharelock ui: serving", 30*time.Second))
	p := &page{t: t, ctx: ctx}
	p.do(chromedp.Navigate(url))
	p.waitJS("the lock", rowState("wems.db")+` === "free"`, 10*time.Second)
	banner := `document.getElementById("unreachable-banner")`

	f.Hang()
	p.waitJS("the unreachable notice", `!`+banner+`.hidden && /Share unreachable since \d/.test(`+banner+`.innerText)`, 30*time.Second)
	p.waitJS("the last known state", rowState("wems.db")+` === "free"`, time.Second)
	p.screenshot("dashboard-unreachable.png", false)

	f.Unhang()
	p.waitJS("the notice gone after recovery", banner+`.hidden`, 30*time.Second)
	if err := ui.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := ui.wait(30 * time.Second); r.code != 0 {
		t.Fatalf("ui after SIGTERM: %v", r)
	}
}
