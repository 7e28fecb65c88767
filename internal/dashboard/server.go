package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"sharelock"
	"sharelock/internal/stats"
)

//go:embed assets
var assetFS embed.FS

// Config configures a Server.
type Config struct {
	// Dir is the shared folder whose locks are shown.
	Dir string
	// Admins may log in and release locks; nil makes the dashboard
	// read-only (no login, every release is refused with 403).
	Admins *Admins
	// TLS marks cookies Secure (set it when serving HTTPS).
	TLS bool
	// Watcher tunes the poller.
	Watcher WatcherOptions
	// StatsDays is how many days the per-day chart covers (default 14).
	StatsDays int
	// HistoryLimit is how many recent events a detail response lists
	// (default 100); statistics use the whole history.
	HistoryLimit int
}

// Server is the dashboard: an http.Handler plus the one Watcher behind it.
type Server struct {
	cfg      Config
	w        *Watcher
	mux      *http.ServeMux
	sessions sessions
	limit    *limiter

	encMu   sync.Mutex
	encVer  uint64
	encBody []byte

	histMu sync.Mutex
	hist   map[string]histEntry
}

type histEntry struct {
	at     time.Time
	events []sharelock.Event
	err    error
}

// Login rate limit: failures per client address per window.
const (
	MaxLoginFailures = 5
	LoginWindow      = 15 * time.Minute
)

// New returns a server for cfg. Call Run to start its watcher.
func New(cfg Config) *Server {
	if cfg.StatsDays <= 0 {
		cfg.StatsDays = 14
	}
	if cfg.HistoryLimit <= 0 {
		cfg.HistoryLimit = 100
	}
	s := &Server{cfg: cfg, w: NewWatcher(cfg.Dir, cfg.Watcher), mux: http.NewServeMux(),
		sessions: sessions{m: map[string]*session{}}, limit: newLimiter(MaxLoginFailures, LoginWindow),
		hist: map[string]histEntry{}}
	static, _ := fs.Sub(assetFS, "assets")
	files := http.FileServerFS(static)
	s.mux.Handle("GET /{$}", files)
	s.mux.Handle("GET /assets/", http.StripPrefix("/assets", files))
	s.mux.HandleFunc("GET /api/session", s.handleSession)
	s.mux.HandleFunc("GET /api/locks", s.handleLocks)
	s.mux.HandleFunc("GET /api/locks/{name...}", s.handleLock)
	s.mux.HandleFunc("GET /api/events", s.handleEvents)
	s.mux.HandleFunc("POST /api/login", s.handleLogin)
	s.mux.HandleFunc("POST /api/logout", s.handleLogout)
	s.mux.HandleFunc("POST /api/release", s.handleRelease)
	return s
}

// Watcher returns the server's watcher.
func (s *Server) Watcher() *Watcher { return s.w }

// Run runs the watcher until ctx ends.
func (s *Server) Run(ctx context.Context) { s.w.Run(ctx) }

// ServeHTTP serves the page, the assets and the API with security headers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if s.cfg.TLS {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r) {
		jsonError(w, http.StatusForbidden, "cross-origin request refused")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// sameOrigin: a browser request carrying an Origin (every POST from a
// page) must come from this server's own origin.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return r.Header.Get("Sec-Fetch-Site") != "cross-site"
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// SessionInfo is the JSON of GET /api/session.
type SessionInfo struct {
	Dir string `json:"dir"`
	// ReadOnly: no administrator is configured; nobody can release.
	ReadOnly bool `json:"read_only"`
	// Admin is the logged-in administrator's name ("" if not logged in).
	Admin string `json:"admin,omitempty"`
	// CSRFToken must be sent as the X-CSRF-Token header with every POST
	// (the session's token once logged in; before that, the login token,
	// also set as a cookie).
	CSRFToken string `json:"csrf_token"`
}

func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	info := SessionInfo{Dir: s.cfg.Dir, ReadOnly: s.cfg.Admins == nil}
	if sess := s.sessions.get(r); sess != nil {
		info.Admin, info.CSRFToken = sess.admin, sess.csrf
	} else if !info.ReadOnly {
		tok := ""
		if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
			tok = c.Value
		} else {
			tok = newToken()
			http.SetCookie(w, s.cookie(csrfCookie, tok, 0))
		}
		info.CSRFToken = tok
	}
	writeJSON(w, http.StatusOK, info)
}

// cookie returns a cookie with the flags every dashboard cookie has:
// HttpOnly, SameSite=Strict, Path=/, Secure when serving TLS. maxAge 0 means
// a browser-session cookie, negative deletes it.
func (s *Server) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.TLS}
}

func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Admins == nil {
		jsonError(w, http.StatusForbidden, "read-only dashboard: no administrator is configured")
		return
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || !tokenEqual(c.Value, r.Header.Get(csrfHeader)) {
		jsonError(w, http.StatusForbidden, "missing or wrong CSRF token")
		return
	}
	key := clientKey(r)
	now := time.Now()
	if ok, wait := s.limit.allow(key, now); !ok {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		jsonError(w, http.StatusTooManyRequests, fmt.Sprintf("too many failed logins; try again in %d min", int(wait.Minutes())+1))
		return
	}
	var req struct{ Name, Password string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		jsonError(w, http.StatusBadRequest, "bad request: want JSON {\"name\", \"password\"}")
		return
	}
	if !s.cfg.Admins.Check(req.Name, req.Password) {
		s.limit.fail(key, now)
		jsonError(w, http.StatusUnauthorized, "wrong name or password")
		return
	}
	s.limit.reset(key)
	s.sessions.drop(r)
	id, sess := s.sessions.create(req.Name)
	http.SetCookie(w, s.cookie(sessionCookie, id, int(SessionTTL/time.Second)))
	writeJSON(w, http.StatusOK, SessionInfo{Dir: s.cfg.Dir, Admin: sess.admin, CSRFToken: sess.csrf})
}

// admin returns the session of a state-changing request: logged in, with
// the session's CSRF token. Otherwise it writes 403 and returns nil.
func (s *Server) admin(w http.ResponseWriter, r *http.Request) *session {
	sess := s.sessions.get(r)
	if sess == nil {
		jsonError(w, http.StatusForbidden, "administrator login required")
		return nil
	}
	if !tokenEqual(sess.csrf, r.Header.Get(csrfHeader)) {
		jsonError(w, http.StatusForbidden, "missing or wrong CSRF token")
		return nil
	}
	return sess
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if s.admin(w, r) == nil {
		return
	}
	s.sessions.drop(r)
	http.SetCookie(w, s.cookie(sessionCookie, "", -1))
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Server) handleLocks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.w.Snapshot())
}

// Detail is the JSON of GET /api/locks/{name}.
type Detail struct {
	Lock Lock `json:"lock"`
	// History lists the newest transitions, newest first.
	History      []sharelock.Event `json:"history"`
	HistoryTotal int               `json:"history_total"`
	HistoryError string            `json:"history_error,omitempty"`
	Stats        stats.Summary     `json:"stats"`
	ServerTime   time.Time         `json:"server_time"`
}

func (s *Server) handleLock(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	l, ok := s.w.Lookup(name)
	if !ok {
		jsonError(w, http.StatusNotFound, fmt.Sprintf("no lock %q in %s", name, s.cfg.Dir))
		return
	}
	events, err := s.history(r.Context(), name)
	d := Detail{Lock: l, HistoryTotal: len(events), ServerTime: time.Now(),
		Stats: stats.Compute(events, s.cfg.StatsDays, time.Now(), time.Local)}
	if err != nil {
		d.HistoryError = err.Error()
	}
	for i := len(events) - 1; i >= 0 && len(d.History) < s.cfg.HistoryLimit; i-- {
		d.History = append(d.History, events[i])
	}
	if d.History == nil {
		d.History = []sharelock.Event{}
	}
	writeJSON(w, http.StatusOK, d)
}

// history reads a lock's history, bounded by the watcher's timeout and
// cached for a second, so that many open detail pages cost one read.
func (s *Server) history(ctx context.Context, name string) ([]sharelock.Event, error) {
	s.histMu.Lock()
	e, ok := s.hist[name]
	s.histMu.Unlock()
	if ok && time.Since(e.at) < time.Second {
		return e.events, e.err
	}
	path, err := s.w.Path(name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.w.opts.Timeout)
	defer cancel()
	var events []sharelock.Event
	err = s.w.io.do(ctx, func() error {
		var err error
		events, err = sharelock.History(ctx, path, s.storeOpts()...)
		return err
	})
	if err != nil {
		err = fmt.Errorf("reading the history of %s: %w", name, err)
	}
	s.histMu.Lock()
	s.hist[name] = histEntry{at: time.Now(), events: events, err: err}
	s.histMu.Unlock()
	return events, err
}

func (s *Server) storeOpts() []sharelock.Option {
	if s.w.opts.Store != nil {
		return []sharelock.Option{sharelock.WithStore(s.w.opts.Store)}
	}
	return nil
}

// snapshotJSON encodes the snapshot once per version for all SSE clients.
func (s *Server) snapshotJSON() []byte {
	snap := s.w.Snapshot()
	s.encMu.Lock()
	defer s.encMu.Unlock()
	if s.encBody == nil || s.encVer != snap.Version {
		b, _ := json.Marshal(snap)
		s.encVer, s.encBody = snap.Version, b
	}
	return s.encBody
}

// handleEvents streams server-sent events: a "snapshot" event (the JSON of
// /api/locks) at once and after every change, and a comment every 15 s.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		jsonError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	ch, stop := s.w.Subscribe()
	defer stop()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	send := func() bool {
		_, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", s.snapshotJSON())
		fl.Flush()
		return err == nil
	}
	if !send() {
		return
	}
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ch:
			if !send() {
				return
			}
		case <-keep.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// ReleaseRequest is the JSON body of POST /api/release.
type ReleaseRequest struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
	// Force releases a holder that still looks alive; without it only a
	// stale hold is released (the server first watches the holder for up
	// to its lease, as `sharelock break` does).
	Force bool `json:"force"`
}

// ReleaseReasonFormat is how the recorded reason names the administrator.
const ReleaseReasonFormat = "released by admin %s via dashboard: %s"

func (s *Server) handleRelease(w http.ResponseWriter, r *http.Request) {
	sess := s.admin(w, r)
	if sess == nil {
		return
	}
	var req ReleaseRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8192)).Decode(&req); err != nil {
		jsonError(w, http.StatusBadRequest, "bad request: want JSON {\"name\", \"reason\", \"force\"}")
		return
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if req.Reason == "" {
		jsonError(w, http.StatusBadRequest, "a reason is required")
		return
	}
	if _, ok := s.w.Lookup(req.Name); !ok {
		jsonError(w, http.StatusNotFound, fmt.Sprintf("no lock %q in %s", req.Name, s.cfg.Dir))
		return
	}
	path, err := s.w.Path(req.Name)
	if err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	reason := fmt.Sprintf(ReleaseReasonFormat, sess.admin, req.Reason)
	info, err := sharelock.Break(ctx, path, reason, req.Force, s.storeOpts()...)
	switch {
	case errors.Is(err, sharelock.ErrNotHeld):
		jsonError(w, http.StatusConflict, "the lock is already free")
		return
	case errors.Is(err, sharelock.ErrLive):
		jsonError(w, http.StatusConflict, "the holder is alive (its heartbeat changed); release with force to end it anyway")
		return
	case err != nil:
		jsonError(w, http.StatusBadGateway, fmt.Sprintf("releasing %s: %v", req.Name, err))
		return
	}
	s.histMu.Lock()
	delete(s.hist, req.Name)
	s.histMu.Unlock()
	s.w.Kick()
	var broke *HolderJSON
	if h := info.Holder; h != nil {
		broke = &HolderJSON{User: h.User, Host: h.Host, PID: h.PID, App: h.App, Since: h.Since}
	}
	writeJSON(w, http.StatusOK, map[string]any{"released": true, "name": req.Name, "token": info.Token,
		"broke": broke, "reason": reason})
}

// CheckListen enforces the binding rule: a loopback address always, any
// other address only when administrators are configured (otherwise anyone
// on the network could watch, and the page could never be protected).
func CheckListen(addr string, adminsConfigured bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if isLoopback(host) || adminsConfigured {
		return nil
	}
	return fmt.Errorf("listen address %q is not loopback: set an admin file (--admin-file) to listen on it", addr)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
