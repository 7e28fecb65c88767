package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sharelock"
)

// hashFor hashes pw once per test binary (bcrypt cost 12 is slow on purpose).
var testHash = func() string {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		panic(err)
	}
	return h
}()

func TestAdminsCheck(t *testing.T) {
	a, err := ParseAdmins([]byte("# admins\nalice:" + testHash + "\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !a.Check("alice", "correct horse battery") {
		t.Fatal("right password refused")
	}
	for _, c := range [][2]string{{"alice", "wrong"}, {"alice", ""}, {"bob", "correct horse battery"}, {"", ""}} {
		if a.Check(c[0], c[1]) {
			t.Fatalf("Check(%q, %q) accepted", c[0], c[1])
		}
	}
	var none *Admins
	if none.Check("alice", "correct horse battery") {
		t.Fatal("nil Admins accepted a login")
	}
	for _, bad := range []string{"alice:plaintext\n", "nocolon\n", "", "# only a comment\n", ":" + testHash} {
		if _, err := ParseAdmins([]byte(bad)); err == nil {
			t.Fatalf("ParseAdmins(%q) accepted", bad)
		}
	}
	if _, err := HashPassword("short"); err == nil {
		t.Fatal("a 5-character password was hashed")
	}
}

func TestReadAdminsRefusesWritableFile(t *testing.T) {
	if os.PathSeparator == '\\' {
		t.Skip("no Unix permission bits on Windows")
	}
	p := filepath.Join(t.TempDir(), "admins")
	if err := os.WriteFile(p, []byte("alice:"+testHash+"\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAdmins(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-writable admin file: %v", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAdmins(p); err != nil {
		t.Fatal(err)
	}
}

func TestCheckListen(t *testing.T) {
	for _, c := range []struct {
		addr   string
		admins bool
		ok     bool
	}{
		{"127.0.0.1:8377", false, true},
		{"[::1]:0", false, true},
		{"localhost:8377", false, true},
		{"0.0.0.0:8377", false, false},
		{":8377", false, false},
		{"192.0.2.7:8377", false, false},
		{"0.0.0.0:8377", true, true},
		{"nonsense", true, false},
	} {
		if err := CheckListen(c.addr, c.admins); (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, %v) = %v", c.addr, c.admins, err)
		}
	}
}

// testServer serves a folder holding one lock, with alice as admin.
type testServer struct {
	*httptest.Server
	s    *Server
	dir  string
	db   string
	jar  http.CookieJar
	c    *http.Client
	csrf string
}

func newTestServer(t *testing.T, admins bool, tlsOn bool) *testServer {
	t.Helper()
	dir := t.TempDir()
	db := filepath.Join(dir, "data", "wems.db")
	if err := os.MkdirAll(filepath.Dir(db), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := sharelock.TryAcquire(context.Background(), db, sharelock.WithApp("wems"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Release() })
	cfg := Config{Dir: dir, TLS: tlsOn, Watcher: WatcherOptions{Poll: 50 * time.Millisecond}}
	if admins {
		a, err := ParseAdmins([]byte("alice:" + testHash))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Admins = a
	}
	s := New(cfg)
	s.Watcher().Refresh(context.Background())
	var hs *httptest.Server
	if tlsOn {
		hs = httptest.NewTLSServer(s)
	} else {
		hs = httptest.NewServer(s)
	}
	t.Cleanup(hs.Close)
	jar, _ := cookiejar.New(nil)
	c := hs.Client()
	c.Jar = jar
	return &testServer{Server: hs, s: s, dir: dir, db: db, jar: jar, c: c}
}

func (ts *testServer) do(t *testing.T, method, path, csrf, body string, hdr ...string) (int, map[string]any, *http.Response) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if csrf != "" {
		req.Header.Set(csrfHeader, csrf)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := ts.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return res.StatusCode, m, res
}

func cookieNamed(res *http.Response, name string) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func checkFlags(t *testing.T, c *http.Cookie, secure bool) {
	t.Helper()
	if c == nil {
		t.Fatal("cookie not set")
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure != secure || c.Path != "/" {
		t.Fatalf("cookie %s flags: HttpOnly=%v SameSite=%v Secure=%v Path=%q", c.Name, c.HttpOnly, c.SameSite, c.Secure, c.Path)
	}
}

// login performs the page's login: GET /api/session for the CSRF token,
// POST /api/login with it.
func (ts *testServer) login(t *testing.T, tlsOn bool) {
	t.Helper()
	code, m, res := ts.do(t, "GET", "/api/session", "", "")
	if code != 200 || m["read_only"] != false {
		t.Fatalf("session: %d %v", code, m)
	}
	if c := cookieNamed(res, csrfCookie); c != nil {
		checkFlags(t, c, tlsOn)
	}
	pre := m["csrf_token"].(string)
	code, m, res = ts.do(t, "POST", "/api/login", pre, `{"name":"alice","password":"correct horse battery"}`)
	if code != 200 || m["admin"] != "alice" {
		t.Fatalf("login: %d %v", code, m)
	}
	checkFlags(t, cookieNamed(res, sessionCookie), tlsOn)
	ts.csrf = m["csrf_token"].(string)
	if ts.csrf == pre {
		t.Fatal("the session's CSRF token is the pre-login one")
	}
}

func TestLoginCSRFAndCookies(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tlsOn), func(t *testing.T) {
			ts := newTestServer(t, true, tlsOn)
			// Login without the CSRF token (or with a wrong one) is refused.
			_, _, res := ts.do(t, "GET", "/api/session", "", "")
			checkFlags(t, cookieNamed(res, csrfCookie), tlsOn)
			if code, m, _ := ts.do(t, "POST", "/api/login", "", `{"name":"alice","password":"correct horse battery"}`); code != 403 {
				t.Fatalf("login without CSRF: %d %v", code, m)
			}
			if code, _, _ := ts.do(t, "POST", "/api/login", "forged-token-forged-token-forged-token", `{"name":"alice","password":"correct horse battery"}`); code != 403 {
				t.Fatalf("login with a wrong CSRF token: %d", code)
			}
			ts.login(t, tlsOn)
			code, m, _ := ts.do(t, "GET", "/api/session", "", "")
			if code != 200 || m["admin"] != "alice" || m["csrf_token"] != ts.csrf {
				t.Fatalf("session after login: %d %v", code, m)
			}
		})
	}
}

func TestReleaseNeedsAdminAndCSRF(t *testing.T) {
	ts := newTestServer(t, true, false)
	body := `{"name":"data/wems.db","reason":"test","force":true}`
	// Not logged in: 403 whatever the token.
	if code, m, _ := ts.do(t, "POST", "/api/release", "", body); code != 403 || !strings.Contains(fmt.Sprint(m["error"]), "login") {
		t.Fatalf("release without login: %d %v", code, m)
	}
	ts.login(t, false)
	for _, c := range []struct{ name, csrf string }{{"no token", ""}, {"wrong token", ts.csrf[:len(ts.csrf)-2] + "xx"}} {
		if code, m, _ := ts.do(t, "POST", "/api/release", c.csrf, body); code != 403 || !strings.Contains(fmt.Sprint(m["error"]), "CSRF") {
			t.Fatalf("release with %s: %d %v", c.name, code, m)
		}
	}
	// Cross-origin (a forged form on another site) is refused even with the token.
	if code, _, _ := ts.do(t, "POST", "/api/release", ts.csrf, body, "Origin", "http://evil.example"); code != 403 {
		t.Fatalf("cross-origin release: %d", code)
	}
	if info, _ := sharelock.Inspect(context.Background(), ts.db); info.State != sharelock.Held {
		t.Fatalf("refused requests changed the lock: %+v", info)
	}
	if code, m, _ := ts.do(t, "POST", "/api/release", ts.csrf, `{"name":"data/wems.db","reason":"  ","force":true}`); code != 400 {
		t.Fatalf("release without reason: %d %v", code, m)
	}
	if code, m, _ := ts.do(t, "POST", "/api/release", ts.csrf, `{"name":"../etc","reason":"x","force":true}`); code != 404 {
		t.Fatalf("release of an unknown lock: %d %v", code, m)
	}
	code, m, _ := ts.do(t, "POST", "/api/release", ts.csrf, body)
	if code != 200 || m["released"] != true {
		t.Fatalf("release: %d %v", code, m)
	}
	info, err := sharelock.Inspect(context.Background(), ts.db)
	if err != nil || info.State != sharelock.Free {
		t.Fatalf("after release: %+v %v", info, err)
	}
	events, err := sharelock.History(context.Background(), ts.db)
	if err != nil || len(events) == 0 {
		t.Fatalf("history: %v %v", events, err)
	}
	last := events[len(events)-1]
	if last.Kind != "break" || last.Reason != "released by admin alice via dashboard: test" || last.Broke == nil || last.Broke.App != "wems" {
		t.Fatalf("break event: %+v", last)
	}
	// Logged out: the session no longer releases.
	if code, _, _ := ts.do(t, "POST", "/api/logout", ts.csrf, ""); code != 200 {
		t.Fatalf("logout: %d", code)
	}
	if code, _, _ := ts.do(t, "POST", "/api/release", ts.csrf, body); code != 403 {
		t.Fatalf("release after logout: %d", code)
	}
}

func TestLoginRateLimit(t *testing.T) {
	ts := newTestServer(t, true, false)
	_, m, _ := ts.do(t, "GET", "/api/session", "", "")
	tok := m["csrf_token"].(string)
	for i := 0; i < MaxLoginFailures; i++ {
		if code, _, _ := ts.do(t, "POST", "/api/login", tok, `{"name":"alice","password":"guess"}`); code != 401 {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	// Now even the right password is refused until the window passes.
	code, m, res := ts.do(t, "POST", "/api/login", tok, `{"name":"alice","password":"correct horse battery"}`)
	if code != 429 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("after %d failures: %d %v", MaxLoginFailures, code, m)
	}
	l := newLimiter(2, time.Minute)
	now := time.Now()
	l.fail("a", now)
	l.fail("a", now)
	if ok, _ := l.allow("a", now); ok {
		t.Fatal("limiter allowed a third try")
	}
	if ok, _ := l.allow("b", now); !ok {
		t.Fatal("limiter blocked another client")
	}
	if ok, _ := l.allow("a", now.Add(time.Minute)); !ok {
		t.Fatal("limiter still blocks after the window")
	}
}

func TestReadOnly(t *testing.T) {
	ts := newTestServer(t, false, false)
	code, m, res := ts.do(t, "GET", "/api/session", "", "")
	if code != 200 || m["read_only"] != true || m["csrf_token"] != "" || cookieNamed(res, csrfCookie) != nil {
		t.Fatalf("read-only session: %d %v", code, m)
	}
	if code, _, _ := ts.do(t, "POST", "/api/login", "x", `{"name":"alice","password":"correct horse battery"}`); code != 403 {
		t.Fatalf("login on a read-only dashboard: %d", code)
	}
	if code, _, _ := ts.do(t, "POST", "/api/release", "x", `{"name":"data/wems.db","reason":"x","force":true}`); code != 403 {
		t.Fatalf("release on a read-only dashboard: %d", code)
	}
}

func TestAPI(t *testing.T) {
	ts := newTestServer(t, false, false)
	code, m, res := ts.do(t, "GET", "/api/locks", "", "")
	if code != 200 || res.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("locks: %d %v", code, res.Header)
	}
	locks := m["locks"].([]any)
	if len(locks) != 1 {
		t.Fatalf("locks: %v", m)
	}
	l := locks[0].(map[string]any)
	if l["name"] != "data/wems.db" || l["state"] != "held" || l["holder"].(map[string]any)["app"] != "wems" {
		t.Fatalf("lock: %v", l)
	}
	code, m, _ = ts.do(t, "GET", "/api/locks/data/wems.db", "", "")
	if code != 200 || m["lock"].(map[string]any)["token"].(float64) != 1 || m["history_total"].(float64) != 1 ||
		m["stats"].(map[string]any)["acquisitions"].(float64) != 1 {
		t.Fatalf("detail: %d %v", code, m)
	}
	if code, _, _ := ts.do(t, "GET", "/api/locks/data/nothing.db", "", ""); code != 404 {
		t.Fatalf("unknown lock: %d", code)
	}
	for _, p := range []string{"/", "/assets/app.js", "/assets/style.css"} {
		if code, _, _ := ts.do(t, "GET", p, "", ""); code != 200 {
			t.Fatalf("GET %s: %d", p, code)
		}
	}
	// Server-sent events: the first event is the snapshot.
	req, _ := http.NewRequest("GET", ts.URL+"/api/events", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := ts.c.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf := make([]byte, 64)
	n, _ := io.ReadFull(res.Body, buf)
	if res.Header.Get("Content-Type") != "text/event-stream" || !strings.HasPrefix(string(buf[:n]), "event: snapshot\ndata: {") {
		t.Fatalf("events: %q %q", res.Header.Get("Content-Type"), buf[:n])
	}
}

func TestListFindsNestedLocksOnly(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"a.db", "x/b.db", "x/y/c.db", "x/y/z/too-deep.db", ".hidden/d.db"} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		l, err := sharelock.TryAcquire(context.Background(), full)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
	}
	// A regular file named like a lock directory, and a plain folder.
	if err := os.WriteFile(filepath.Join(dir, "notalock.lock"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w := NewWatcher(dir, WatcherOptions{})
	names, err := w.list(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, ","); got != "a.db,x/b.db,x/y/c.db" {
		t.Fatalf("listed %q", got)
	}
	if _, err := w.Path("../outside"); err == nil {
		t.Fatal("Path accepted a name outside the folder")
	}
}

func TestWatcherSeesChanges(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "w.db")
	w := NewWatcher(dir, WatcherOptions{})
	ch, stop := w.Subscribe()
	defer stop()
	ctx := context.Background()
	l, err := sharelock.TryAcquire(ctx, db, sharelock.WithLease(400*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	w.Refresh(ctx)
	<-ch
	if got, _ := w.Lookup("w.db"); got.State != "held" || got.Token != 1 || got.Holder == nil || got.Holder.LeaseSeconds != 0.4 {
		t.Fatalf("held: %+v", got)
	}
	// A live holder keeps beating: however long we watch, it stays held.
	for i := 0; i < 8; i++ {
		time.Sleep(100 * time.Millisecond)
		w.Refresh(ctx)
		if got, _ := w.Lookup("w.db"); got.State != "held" {
			t.Fatalf("a live holder was judged %s after %d ms", got.State, (i+1)*100)
		}
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	w.Refresh(ctx)
	<-ch
	if got, _ := w.Lookup("w.db"); got.State != "free" || got.Holder != nil {
		t.Fatalf("released: %+v", got)
	}
}

// plantHolder writes generation 1 of db's lock as a holder on another
// machine would (docs/protocol.md), and never beats again: a silent holder.
func plantHolder(t *testing.T, db string, lease time.Duration) {
	t.Helper()
	gen := filepath.Join(db+".lock", fmt.Sprintf("%020d", 1))
	if err := os.MkdirAll(gen, 0o755); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	rec := map[string]any{
		"token": 1, "kind": "acquire", "user": "alice", "host": "FRONTDESK-PC", "app": "wems.exe", "pid": 4242,
		"machine_id": "0123456789abcdef0123456789abcdef", "boot_id": "fedcba98-7654-3210-fedc-ba9876543210",
		"since": at.UTC().Format(time.RFC3339Nano), "lease_ms": lease.Milliseconds(), "heartbeat_ms": lease.Milliseconds() / 8,
		"nonce": "00112233445566778899aabb",
	}
	body, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	owner := fmt.Sprintf("sharelock-owner 1\nstate=%-8s beat=%020d at=%020d\n%s\n", "held", 7, at.UnixMilli(), body)
	if err := os.WriteFile(filepath.Join(gen, "owner"), []byte(owner), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A holder whose owner file does not change for its whole lease, as seen
// by the watcher's own clock, is shown stale; not before.
func TestWatcherJudgesSilentHolderStale(t *testing.T) {
	dir := t.TempDir()
	lease := 300 * time.Millisecond
	plantHolder(t, filepath.Join(dir, "remote.db"), lease)
	w := NewWatcher(dir, WatcherOptions{})
	ctx := context.Background()
	start := time.Now()
	w.Refresh(ctx)
	got, _ := w.Lookup("remote.db")
	if got.State != "held" || got.Holder == nil || got.Holder.Host != "FRONTDESK-PC" {
		t.Fatalf("first look: %+v", got)
	}
	for got.State == "held" {
		if time.Since(start) > 30*lease {
			t.Fatalf("a silent holder still held after %v", time.Since(start))
		}
		time.Sleep(lease / 6)
		w.Refresh(ctx)
		got, _ = w.Lookup("remote.db")
	}
	if got.State != "stale" || got.StaleReason != "no heartbeat for a whole lease" {
		t.Fatalf("silent holder: %+v", got)
	}
	if el := time.Since(start); el < lease {
		t.Fatalf("judged stale after %v, before a whole lease (%v)", el, lease)
	}
}
