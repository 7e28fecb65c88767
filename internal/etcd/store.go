// Package etcd is the etcd store: the same locks as the shared-folder store
// (internal/folder), kept in an etcd cluster instead of a folder.
//
// # Keys
//
// Every lock lives under one key prefix (the URL's path, default
// /sharelock) and its escaped lock name N (url.PathEscape of the path the
// caller passes, so a name never contains "/"):
//
//	<prefix>/l/<N>/q/<slot>               one per holder or waiter (the line)
//	<prefix>/l/<N>/h/<nonce>              one history event per acquisition or break
//	<prefix>/l/<N>/r/<token>/<nonce>      a release request to the claim <token>
//	<prefix>/l/<N>/r/<token>/<nonce>.seen the holder's answer to it
//	<prefix>/audit/<nonce>                who broke whose lock, and why
//
// # How the lock maps to etcd
//
//   - The line (q/): each acquisition puts its own key, attached to its
//     session lease, and the key with the lowest create revision holds the
//     lock, as in etcd's concurrency.Mutex. Waiters are served first come,
//     first served in create-revision order. A waiter does not poll: the
//     watch on the lock's keys tells it when every key ahead of it is gone.
//     Unlike concurrency.Mutex, whose waiters each watch their predecessor,
//     a store keeps one watch per lock (watch.go), shared by its holds and
//     waiters of that lock and kept open for 30 s after last use: it also
//     carries what a holder must see (its key deleted, release requests,
//     waiters for idle release). Each client sees every change of the lock
//     it waits for; with the line lengths of an office that is cheaper than
//     a watch per acquisition (one watch per acquisition made uncontended
//     acquire+release ~20 % slower). A hold acquired at once while the
//     watch is not running starts it only after 50 ms, from the revision
//     after its claim (nothing is missed, only seen up to 50 ms later), so
//     that short uncontended holds cost no watch at all (watch.go).
//   - The fencing token is the create revision of the holder's q/ key. A
//     later holder's key was created after an earlier holder's (the holder
//     is always the oldest key), so tokens strictly increase.
//   - The value of a q/ key is the holder record (user, host, PID, app,
//     since, machine and boot IDs), so others can say "in use by alice on
//     PC-1", and the acquisition's nonce, which names its history event.
//     The key's own name (slot) is random, and a store reuses the name of a
//     key its Release deleted for its next claim of the same lock (see
//     takeSlot: etcd keeps deleted keys until it compacts, and the line's
//     reads step over them).
//   - Leases: one etcd lease (a "session", as concurrency.Session) per
//     store and TTL, shared by all the locks held through that store with
//     the same TTL, and kept alive by the client. The TTL is the request's
//     lease rounded up to whole seconds, at least 2 s (etcd's own minimum
//     with its default 1 s election timeout is 1.5 s, rounded up).
//   - Lost: a hold is lost when its q/ key is deleted (broken, or the lease
//     expired) or replaced, when the lease's keep-alive ends, or when no
//     keep-alive answer came for three quarters of the TTL (counted on this
//     machine's monotonic clock, which counts suspend; Check fails at once
//     after a pause).
//   - Stale: there is none. A q/ key exists only while its lease is kept
//     alive, and the cluster deletes it when the lease expires; so a key
//     that is there belongs to a live client (or one that died less than a
//     TTL ago, which nobody can tell apart). Inspect reports Free or Held.
//   - Break deletes the holder's q/ key (only if it is still the same
//     claim) and in the same transaction records the break: the broken
//     holder's history event is marked "broken", a "break" event naming
//     the breaker, the broken holder and the reason is added to the history,
//     and an audit key is written. It does not revoke the holder's lease: the
//     lease may carry that client's other locks. Without force it refuses
//     any holder (ErrLive): see above.
//   - History (h/): each acquisition writes its event in the same
//     transaction as its q/ key, so the event's create revision is the
//     token; release marks it released, a break marks it broken. An event
//     still "held" without a q/ key of that create revision ended without
//     release (the holder crashed or lost its lease) and is reported
//     "lost". The newest 256 events are kept (one release in 32, at
//     random, deletes the older ones).
//   - Release requests (r/): the requester puts a request key under the
//     holder's token, on a short lease of its own; the holder sees it through
//     its watch, answers with a .seen key on the same lease (delivered or
//     not-listening) and hands a Notice to its program. Both expire with the
//     requester's lease (60 s).
//   - Idle release (Request.IdleLimit) works as in the folder store; the
//     holder knows who waits from its watch, without extra reads.
//
// Round trips: an uncontended Acquire is one transaction (plus, once per
// store and TTL, a lease grant), Release is one transaction; a waiter that
// becomes the holder adds one (it marks its history event held). A held
// lock has no goroutine of its own: the lock's watch goroutine, the
// session's keep-alive goroutine and (with an idle limit) a timer drive it.
//
// A waiter whose lease ends while it waits (the cluster lost its leader for
// longer than about three quarters of the TTL) joins the line again, at its
// end; leases of a few seconds can be lost across a leader election (one
// was, in about half the runs of TestLeaderKilledWhileHeld with a 3 s
// lease): use the default 10 s or more in production.
package etcd

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"sharelock/internal/clock"
	"sharelock/internal/core"
	"sharelock/internal/ident"
)

// Defaults.
const (
	// DefaultLease is the lease (etcd lease TTL) when a request sets none:
	// how long a crashed holder keeps the lock. Keep-alives are cheap, so it
	// is shorter than the folder store's.
	DefaultLease = 10 * time.Second
	// DefaultIdleGrace is the grace period when IdleLimit is set without one.
	DefaultIdleGrace = time.Minute
	// DefaultRequestWait bounds how long RequestRelease waits for the
	// holder's answer (the holder answers as soon as its watch delivers).
	DefaultRequestWait = 5 * time.Second
	// DefaultPort is used for an endpoint given without a port.
	DefaultPort = "2379"
	// DefaultPrefix is the key prefix when the URL has no path.
	DefaultPrefix = "/sharelock"

	minTTL        = 2 // seconds
	maxLease      = 24 * time.Hour
	keepHistory   = 256
	noticeBuffer  = 16
	requestTTL    = 60 // seconds: the lease of a release request
	maxMessage    = 1000
	opTimeout     = 10 * time.Second
	defaultDialTO = 5 * time.Second
)

// Option configures Open.
type Option func(*options)

type options struct {
	caFile, certFile, keyFile string
	user, password            string
	self                      *ident.Identity
	clock                     core.Clock
	dialTimeout               time.Duration
	requestWait               time.Duration
	logger                    *zap.Logger
}

// WithTLS sets the files for a TLS connection (etcds://): caFile verifies
// the servers (empty: the system's roots); certFile and keyFile, if given,
// authenticate this client. The URL's query parameters ca=, cert= and key=
// do the same.
func WithTLS(caFile, certFile, keyFile string) Option {
	return func(o *options) { o.caFile, o.certFile, o.keyFile = caFile, certFile, keyFile }
}

// WithAuth sets the etcd user name and password (etcd's own
// authentication, as clientv3.Config.Username/Password).
func WithAuth(user, password string) Option {
	return func(o *options) { o.user, o.password = user, password }
}

// WithIdentity sets who this store acts as (default ident.Self()); tests use
// it to act as several machines.
func WithIdentity(id ident.Identity) Option { return func(o *options) { o.self = &id } }

// WithClock sets the clock (default clock.System).
func WithClock(c core.Clock) Option { return func(o *options) { o.clock = c } }

// WithDialTimeout bounds connecting to the cluster in Open (default 5 s).
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

// WithRequestWait sets how long RequestRelease waits for the holder's
// answer (default 5 s; ctx bounds it too).
func WithRequestWait(d time.Duration) Option { return func(o *options) { o.requestWait = d } }

// Store is the etcd store. It is safe for concurrent use. Close it when
// done: Close revokes its leases, which releases every lock still held
// through it.
type Store struct {
	cli    *clientv3.Client
	url    string
	prefix string
	self   ident.Identity
	clock  core.Clock
	o      options

	anchorCtx  context.Context
	anchorStop context.CancelFunc

	mu       sync.Mutex
	sessions map[int64]*session
	watches  map[string]*lockWatch
	slots    map[string][]string // per lock base: released q/ key names (takeSlot)
	closed   bool
}

// Config is what ParseURL finds in a store URL.
type Config struct {
	Endpoints []string // host:port, one per member
	TLS       bool     // etcds://
	Prefix    string   // key prefix, without a trailing slash
	CAFile    string
	CertFile  string
	KeyFile   string
	User      string
	// PasswordFile is a file holding the password (its first line).
	PasswordFile string
}

// ParseURL parses "etcd://host1:2379,host2:2379/prefix" (etcds:// for TLS).
// The port defaults to 2379 and the prefix to /sharelock. Query parameters:
// ca, cert, key (TLS files), user and password-file.
func ParseURL(raw string) (Config, error) {
	var c Config
	bad := func(why, fix string) (Config, error) {
		return c, fmt.Errorf("sharelock: bad etcd store URL %q: %s (fix: %s)", raw, why, fix)
	}
	const example = "write it like etcd://host1:2379,host2:2379/prefix, or etcds://... for TLS"
	rest, ok := strings.CutPrefix(raw, "etcd://")
	if !ok {
		rest, ok = strings.CutPrefix(raw, "etcds://")
		c.TLS = true
	}
	if !ok {
		return bad("it does not start with etcd:// or etcds://", example)
	}
	rest, query, _ := strings.Cut(rest, "?")
	hosts, path, _ := strings.Cut(rest, "/")
	if strings.Contains(hosts, "@") {
		return bad("user names and passwords do not go in the host part", "use ?user=NAME&password-file=FILE, or the library's WithAuth")
	}
	if hosts == "" {
		return bad("no endpoint", example)
	}
	for _, h := range strings.Split(hosts, ",") {
		if h == "" {
			return bad("an empty endpoint between commas", example)
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			if strings.Contains(err.Error(), "missing port") {
				host, port, err = h, DefaultPort, nil
				if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
					host = host[1 : len(host)-1]
				}
			} else {
				return bad(fmt.Sprintf("endpoint %q: %v", h, err), example)
			}
		}
		if host == "" || strings.ContainsAny(host, " /\\") {
			return bad(fmt.Sprintf("endpoint %q has no valid host", h), example)
		}
		if p, err := net.LookupPort("tcp", port); err != nil || p <= 0 {
			return bad(fmt.Sprintf("endpoint %q has a bad port", h), example)
		}
		c.Endpoints = append(c.Endpoints, net.JoinHostPort(host, port))
	}
	path = strings.Trim(path, "/")
	if path == "" {
		c.Prefix = DefaultPrefix
	} else {
		p, err := url.PathUnescape(path)
		if err != nil {
			return bad("the prefix is not properly escaped", "escape % as %25 in the prefix")
		}
		c.Prefix = "/" + p
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return bad("bad query: "+err.Error(), "write options as ?ca=FILE&cert=FILE&key=FILE&user=NAME&password-file=FILE")
		}
		for k, v := range q {
			val := v[len(v)-1]
			switch k {
			case "ca":
				c.CAFile = val
			case "cert":
				c.CertFile = val
			case "key":
				c.KeyFile = val
			case "user":
				c.User = val
			case "password-file":
				c.PasswordFile = val
			default:
				return bad(fmt.Sprintf("unknown option %q", k), "the options are ca, cert, key, user and password-file")
			}
		}
	}
	if !c.TLS && (c.CAFile != "" || c.CertFile != "" || c.KeyFile != "") {
		return bad("TLS files given for a plain etcd:// URL", "use etcds:// for TLS")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return bad("cert and key must be given together", "pass both ?cert=FILE&key=FILE, or neither")
	}
	return c, nil
}

// Open connects to the etcd cluster named by url (see ParseURL). It checks
// that the cluster answers (bounded by ctx and the dial timeout).
func Open(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.caFile != "" || o.certFile != "" || o.keyFile != "" {
		if !cfg.TLS {
			return nil, fmt.Errorf("sharelock: etcd store %q: TLS files given for a plain etcd:// URL (fix: use etcds://)", rawURL)
		}
		cfg.CAFile, cfg.CertFile, cfg.KeyFile = o.caFile, o.certFile, o.keyFile
	}
	if o.user == "" && cfg.User != "" {
		o.user = cfg.User
		if cfg.PasswordFile != "" {
			b, err := readPasswordFile(cfg.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("sharelock: etcd store %q: reading the password file: %w (fix: check ?password-file=)", rawURL, err)
			}
			o.password = b
		}
	}
	if o.dialTimeout <= 0 {
		o.dialTimeout = defaultDialTO
	}
	if o.requestWait <= 0 {
		o.requestWait = DefaultRequestWait
	}
	if o.clock == nil {
		o.clock = clock.System{}
	}
	self := ident.Self()
	if o.self != nil {
		self = *o.self
	}
	cc := clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: o.dialTimeout,
		Username:    o.user,
		Password:    o.password,
		Logger:      o.logger,
		// Notice a dead member quickly and move to another one.
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
	}
	if cc.Logger == nil {
		cc.Logger = zap.NewNop()
	}
	if cfg.TLS {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("sharelock: etcd store %q: %w (fix: check the ca, cert and key files)", rawURL, err)
		}
		cc.TLS = tc
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("sharelock: etcd store %q: %w", rawURL, err)
	}
	// One read to make sure the cluster answers (and authentication works).
	cctx, cancel := context.WithTimeout(ctx, o.dialTimeout)
	_, err = cli.Get(cctx, cfg.Prefix+"/", clientv3.WithCountOnly(), clientv3.WithPrefix())
	cancel()
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("sharelock: etcd store %q does not answer: %w (fix: check that etcd runs at %s and that this machine can reach it)",
			rawURL, err, strings.Join(cfg.Endpoints, ", "))
	}
	s := &Store{cli: cli, url: rawURL, prefix: cfg.Prefix, self: self, clock: o.clock, o: o,
		sessions: map[int64]*session{}, watches: map[string]*lockWatch{}, slots: map[string][]string{}}
	s.anchorCtx, s.anchorStop = context.WithCancel(clientv3.WithRequireLeader(context.Background()))
	go s.anchor()
	return s, nil
}

// anchor keeps one idle watch open for the store's life. The client closes
// a gRPC watch stream when its last watch ends and opens a new one for the
// next watch; without the anchor every acquisition would pay for that (it
// made an uncontended acquire+release 1.8× slower than etcd's Mutex).
func (s *Store) anchor() {
	for {
		for range s.cli.Watch(s.anchorCtx, s.prefix+"/anchor") {
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-s.anchorCtx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Client returns the store's etcd client (for tests and tools).
func (s *Store) Client() *clientv3.Client { return s.cli }

// Prefix returns the store's key prefix.
func (s *Store) Prefix() string { return s.prefix }

// Close revokes the store's leases (releasing every lock still held
// through it: their Lost fires) and closes the connection.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.anchorStop()
	s.mu.Unlock()
	s.closeWatches()
	s.mu.Lock()
	sess := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sess = append(sess, ss)
	}
	s.mu.Unlock()
	for _, ss := range sess {
		ss.close()
	}
	return s.cli.Close()
}

func readPasswordFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}

func tlsConfig(c Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate found in %s", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Key layout helpers.
func (s *Store) lockBase(path string) string { return s.prefix + "/l/" + url.PathEscape(path) + "/" }
func queuePrefix(base string) string         { return base + "q/" }
func historyPrefix(base string) string       { return base + "h/" }
func requestPrefix(base string, token uint64) string {
	return fmt.Sprintf("%sr/%d/", base, token)
}
func (s *Store) auditKey(nonce string) string { return s.prefix + "/audit/" + nonce }

// Reuse of q/ key names. etcd keeps a deleted key in its index until the
// cluster compacts, and every claim's check that the line is empty (and
// every read of the line) steps over the deleted keys in it: a new name
// per acquisition made each acquisition slower than the one before until
// the next compaction (about 6 % more per 1,000 acquisitions of the lock
// since, with etcd 3.4). So a store reuses the name of a q/ key that its
// own Release deleted for its next claim of the same lock, as
// concurrency.Mutex reuses its session's key; names are never shared
// between stores, and a claim that was lost or failed does not give its name
// back. A reused key gets a new create revision (the token) each time.
const (
	maxSlotsPerLock = 4    // names kept per lock: claims of it at once through this store
	maxSlotLocks    = 1024 // locks with kept names
)

// takeSlot returns a q/ key name for a claim of the lock at base: one this
// store released, or a new one.
func (s *Store) takeSlot(base string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.slots[base]
	if len(l) == 0 {
		return newNonce()
	}
	n := l[len(l)-1]
	if len(l) == 1 {
		delete(s.slots, base)
	} else {
		s.slots[base] = l[:len(l)-1]
	}
	return n
}

// putSlot gives back the name of a q/ key that this store's release
// deleted.
func (s *Store) putSlot(base, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.slots[base]
	if len(l) >= maxSlotsPerLock || (!ok && len(s.slots) >= maxSlotLocks) {
		return
	}
	s.slots[base] = append(l, name)
}

func newNonce() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Store) mono() time.Duration { return s.clock.Mono() }
func (s *Store) wallNow() time.Time  { return s.clock.Wall() }

func (s *Store) holderRecord(app string, lease time.Duration) core.Holder {
	if app == "" {
		app = defaultApp()
	}
	return core.Holder{User: s.self.User, Host: s.self.Host, PID: s.self.PID, App: app,
		Since:     s.wallNow().UTC(),
		MachineID: s.self.MachineID, BootID: s.self.BootID, PIDNS: s.self.PIDNS, StartTime: s.self.StartTime,
		Lease: lease}
}

// ttlOf rounds a lease up to whole seconds, at least minTTL.
func ttlOf(lease time.Duration) int64 {
	ttl := int64((lease + time.Second - 1) / time.Second)
	return max(ttl, minTTL)
}

// lostAfter: a holder declares its hold lost when no keep-alive answer came
// for three quarters of the TTL, before the cluster can expire the lease.
func lostAfter(ttl int64) time.Duration {
	d := time.Duration(ttl) * time.Second
	return d - d/4
}

// session is one etcd lease kept alive for the store, shared by the locks
// held with the same TTL (as concurrency.Session).
type session struct {
	s      *Store
	ttl    int64
	id     clientv3.LeaseID
	cancel context.CancelFunc

	mu     sync.Mutex
	lastOK time.Duration // mono time of the last keep-alive answer (or the grant's start)
	done   chan struct{}
	why    string
	holds  map[*hold]struct{} // told when the session ends
}

func (ss *session) register(h *hold) {
	ss.mu.Lock()
	if !ss.isDoneLocked() {
		ss.holds[h] = struct{}{}
		ss.mu.Unlock()
		return
	}
	why := ss.why
	ss.mu.Unlock()
	h.sessionEnded(why)
}

func (ss *session) unregister(h *hold) {
	ss.mu.Lock()
	delete(ss.holds, h)
	ss.mu.Unlock()
}

func (ss *session) isDoneLocked() bool {
	select {
	case <-ss.done:
		return true
	default:
		return false
	}
}

func (ss *session) last() time.Duration {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.lastOK
}

func (ss *session) isDone() bool {
	select {
	case <-ss.done:
		return true
	default:
		return false
	}
}

func (ss *session) end(why string) {
	ss.mu.Lock()
	if ss.isDoneLocked() {
		ss.mu.Unlock()
		return
	}
	ss.why = why
	close(ss.done)
	holds := ss.holds
	ss.holds = nil
	ss.mu.Unlock()
	for h := range holds {
		h.sessionEnded(why)
	}
}

func (ss *session) reason() string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.why
}

func (ss *session) close() {
	ss.end("the store was closed")
	ss.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, _ = ss.s.cli.Revoke(ctx, ss.id)
	cancel()
}

// session returns a live lease for ttl, granting one if needed.
func (s *Store) session(ctx context.Context, ttl int64) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("sharelock: the etcd store is closed")
	}
	if ss := s.sessions[ttl]; ss != nil && !ss.isDone() {
		return ss, nil
	}
	start := s.mono()
	resp, err := s.cli.Grant(ctx, ttl)
	if err != nil {
		return nil, s.wrap("grant a lease", err)
	}
	kctx, cancel := context.WithCancel(context.Background())
	ch, err := s.cli.KeepAlive(kctx, resp.ID)
	if err != nil {
		cancel()
		return nil, s.wrap("keep a lease alive", err)
	}
	ss := &session{s: s, ttl: ttl, id: resp.ID, cancel: cancel, lastOK: start, done: make(chan struct{}), holds: map[*hold]struct{}{}}
	s.sessions[ttl] = ss
	go ss.keepAlive(ch)
	return ss, nil
}

// keepAlive records the keep-alive answers and ends the session when the
// client gives up or no answer came for lostAfter(ttl).
func (ss *session) keepAlive(ch <-chan *clientv3.LeaseKeepAliveResponse) {
	limit := lostAfter(ss.ttl)
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		select {
		case r, ok := <-ch:
			if !ok {
				ss.end("the lease could not be kept alive (expired or revoked)")
				ss.cancel()
				return
			}
			if r.TTL <= 0 {
				continue
			}
			now := ss.s.mono()
			ss.mu.Lock()
			ss.lastOK = now
			ss.mu.Unlock()
			t.Reset(limit)
		case <-t.C:
			if gap := ss.s.mono() - ss.last(); gap >= limit {
				ss.end(fmt.Sprintf("no keep-alive answer from etcd for %v (limit %v)", gap.Round(time.Millisecond), limit))
				ss.cancel()
				// Best effort: if the cluster is reachable again, free our
				// keys now rather than when the lease expires.
				ctx, cancel := context.WithTimeout(context.Background(), lostAfter(ss.ttl))
				_, _ = ss.s.cli.Revoke(ctx, ss.id)
				cancel()
				return
			} else {
				t.Reset(limit - gap)
			}
		case <-ss.done:
			return
		}
	}
}

func (s *Store) wrap(op string, err error) error {
	return fmt.Errorf("sharelock: etcd %s at %s: %w", op, s.url, err)
}

func defaultApp() string { return filepath.Base(os.Args[0]) }
