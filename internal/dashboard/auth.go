package dashboard

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Admins is the set of administrators allowed to release locks: user names
// with bcrypt password hashes, read from an htpasswd-style file (one
// "name:hash" line each; '#' starts a comment). `sharelock ui hash-password`
// prints such a line; `htpasswd -nB name` does too.
type Admins struct {
	hashes map[string][]byte
}

// ReadAdmins reads an admin file. It refuses hashes that are not bcrypt and
// (on Unix) a file that others may write: the hashes guard the release
// button.
func ReadAdmins(path string) (*Admins, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("admin file: %w", err)
	}
	if err := checkAdminPerm(path, fi); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("admin file: %w", err)
	}
	a, err := ParseAdmins(data)
	if err != nil {
		return nil, fmt.Errorf("admin file %s: %w", path, err)
	}
	return a, nil
}

// ParseAdmins parses the content of an admin file.
func ParseAdmins(data []byte) (*Admins, error) {
	a := &Admins{hashes: map[string][]byte{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("line %d: want NAME:BCRYPT-HASH", n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("line %d (%s): not a bcrypt hash: %w", n, name, err)
		}
		a.hashes[name] = []byte(hash)
	}
	if len(a.hashes) == 0 {
		return nil, errors.New("no administrator in it")
	}
	return a, nil
}

// HashPassword returns the bcrypt hash of password (cost 12) for an admin file.
func HashPassword(password string) (string, error) {
	if len(password) < 8 {
		return "", errors.New("the password must have at least 8 characters")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), 12)
	if err != nil {
		return "", fmt.Errorf("hashing the password: %w", err)
	}
	return string(h), nil
}

// dummyHash makes a check of an unknown name cost as much as a known one.
// It is made on first use: every sharelock command links this package, and
// a cost-12 hash takes a quarter of a second.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("sharelock-dummy-password"), 12)
	return h
})

// Check reports whether password is name's. It takes the same time for an
// unknown name as for a wrong password.
func (a *Admins) Check(name, password string) bool {
	if a == nil {
		return false
	}
	h, ok := a.hashes[name]
	if !ok {
		h = dummyHash()
	}
	err := bcrypt.CompareHashAndPassword(h, []byte(password))
	return ok && err == nil
}

// Cookie names.
const (
	sessionCookie = "sharelock_session"
	csrfCookie    = "sharelock_csrf" // pre-login CSRF token (double submit)
	csrfHeader    = "X-CSRF-Token"
)

// SessionTTL is how long an admin session lasts.
const SessionTTL = 8 * time.Hour

type session struct {
	admin   string
	csrf    string
	expires time.Time
}

// sessions holds admin sessions in memory (a restart logs everyone out).
type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) create(admin string) (id string, sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for k, v := range s.m {
		if now.After(v.expires) {
			delete(s.m, k)
		}
	}
	id = newToken()
	sess = &session{admin: admin, csrf: newToken(), expires: now.Add(SessionTTL)}
	s.m[id] = sess
	return id, sess
}

// get returns the live session of r, or nil.
func (s *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.m[c.Value]
	if sess == nil || time.Now().After(sess.expires) {
		return nil
	}
	return sess
}

func (s *sessions) drop(r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.mu.Lock()
		delete(s.m, c.Value)
		s.mu.Unlock()
	}
}

// tokenEqual compares two secrets in constant time (empty never matches).
func tokenEqual(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// limiter limits failed logins per client address: after MaxFailures
// failures within Window, further attempts are refused until the window of
// the oldest failure has passed.
type limiter struct {
	mu       sync.Mutex
	failures map[string][]time.Time
	max      int
	window   time.Duration
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{failures: map[string][]time.Time{}, max: max, window: window}
}

// allow reports whether key may try now, and if not, how long to wait.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.failures[key]
	for len(f) > 0 && now.Sub(f[0]) >= l.window {
		f = f[1:]
	}
	l.failures[key] = f
	if len(f) >= l.max {
		return false, l.window - now.Sub(f[0])
	}
	return true, 0
}

func (l *limiter) fail(key string, now time.Time) {
	l.mu.Lock()
	l.failures[key] = append(l.failures[key], now)
	l.mu.Unlock()
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	delete(l.failures, key)
	l.mu.Unlock()
}
