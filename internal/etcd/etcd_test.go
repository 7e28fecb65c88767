package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"sharelock/internal/core"
	"sharelock/internal/ident"
	"sharelock/internal/storetest"
)

// machine is an identity acting as another machine.
func machine(name string, pid int) ident.Identity {
	id := ident.Self()
	id.Host = name
	id.MachineID = "machine-" + name
	id.User = "user-" + name
	id.PID = pid
	return id
}

func openT(tb testing.TB, url string, opts ...Option) *Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, url, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

var pathSeq atomic.Int64

func TestConformance(t *testing.T) {
	c := startCluster(t, 1)
	url := c.url("/conformance")
	storetest.Run(t, func(t *testing.T) storetest.Env {
		var mu sync.Mutex
		stores := map[string]*Store{}
		return storetest.Env{
			Path: fmt.Sprintf("data/%s-%d/wems.db", t.Name(), pathSeq.Add(1)),
			Store: func(name string) core.Store {
				mu.Lock()
				defer mu.Unlock()
				if s, ok := stores[name]; ok {
					return s
				}
				s := openT(t, url, WithIdentity(machine(name, 1000+len(stores))))
				stores[name] = s
				return s
			},
		}
	})
}

func TestParseURL(t *testing.T) {
	good := []struct {
		in   string
		eps  string
		pfx  string
		tls  bool
		user string
	}{
		{"etcd://127.0.0.1:2379/office", "127.0.0.1:2379", "/office", false, ""},
		{"etcd://h1,h2:1234,[::1]:5/a/b/", "h1:2379,h2:1234,[::1]:5", "/a/b", false, ""},
		{"etcd://h1", "h1:2379", DefaultPrefix, false, ""},
		{"etcds://h1:2379/p?ca=/ca.pem&cert=/c.pem&key=/k.pem&user=bob", "h1:2379", "/p", true, "bob"},
	}
	for _, g := range good {
		c, err := ParseURL(g.in)
		if err != nil {
			t.Errorf("%s: %v", g.in, err)
			continue
		}
		if strings.Join(c.Endpoints, ",") != g.eps || c.Prefix != g.pfx || c.TLS != g.tls || c.User != g.user {
			t.Errorf("%s: %+v", g.in, c)
		}
	}
	for _, bad := range []string{"", "http://h:2379", "etcd://", "etcd:///p", "etcd://h:notaport/p", "etcd://a,,b/p",
		"etcd://u:pw@h/p", "etcd://h/p?ca=x", "etcds://h/p?cert=c", "etcd://h/p?color=red"} {
		_, err := ParseURL(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("%q: error does not name the URL and the fix: %v", bad, err)
		}
	}
}

func TestOpenUnreachable(t *testing.T) {
	port := freePorts(t, 1)[0]
	u := fmt.Sprintf("etcd://127.0.0.1:%d/x", port)
	start := time.Now()
	_, err := Open(context.Background(), u, WithDialTimeout(500*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), u) {
		t.Fatalf("open of a closed port: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
	t.Log(err)
}

// TestEncodeWith: entry.encodeWith writes exactly what encoding/json
// writes.
func TestEncodeWith(t *testing.T) {
	since := time.Date(2026, 11, 27, 9, 12, 3, 456789000, time.UTC)
	holders := []core.Holder{
		{},
		{User: "alice", Host: "FRONTDESK-PC", PID: 42, App: "wems.exe", Since: since, MachineID: "m", BootID: "b", PIDNS: "pid:[1]", StartTime: 7},
		{User: "Zoë \"<b>&\u2028\x01\xff", Host: "h\tx", App: "a", Since: since.In(time.FixedZone("X", 3600))},
	}
	texts := []string{"", "plain text", "quote \" backslash \\ <html> & ünïcode \u2028 \x7f \x00 \xfe", "data/wems.db"}
	ats := []time.Time{{}, since, since.Add(time.Nanosecond)}
	n := 0
	for _, h := range holders {
		hj, err := json.Marshal(&h)
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range texts {
			for _, at := range ats {
				for _, e := range []entry{
					{Holder: h, At: at},
					{Holder: h, LeaseMS: 10000, Kind: kindAcquire, State: stHeld, Reason: text, At: at, Path: text, Nonce: "0123abcd"},
					{Holder: h, LeaseMS: -1, State: text, Nonce: text, At: at},
					{Holder: h, Kind: kindBreak, Broke: &holders[1], BrokeToken: 9, Reason: text, At: at},
				} {
					n++
					if got, want := e.encodeWith(hj), e.encode(); got != want {
						t.Errorf("encodeWith:\n%s\nencoding/json:\n%s", got, want)
					}
				}
			}
		}
	}
	t.Logf("%d entries", n)
}

func TestTTLRounding(t *testing.T) {
	for _, c := range []struct {
		lease time.Duration
		ttl   int64
	}{{time.Millisecond, 2}, {2 * time.Second, 2}, {2001 * time.Millisecond, 3}, {40 * time.Second, 40}} {
		if got := ttlOf(c.lease); got != c.ttl {
			t.Errorf("ttlOf(%v) = %d, want %d", c.lease, got, c.ttl)
		}
	}
}

// TestHolderCrashLeaseExpires: a holder whose client stops renewing (its
// store is abandoned without revoking) loses the lock within the TTL; its
// Lost fires before a waiter gets it, and the history says "lost".
func TestHolderStopsRenewing(t *testing.T) {
	c := startCluster(t, 1)
	a := openT(t, c.url("/crash"), WithIdentity(machine("a", 1)))
	b := openT(t, c.url("/crash"), WithIdentity(machine("b", 2)))
	ctx := context.Background()
	la, err := a.Acquire(ctx, storetest.Req("db", false))
	if err != nil {
		t.Fatal(err)
	}
	ha := la.(*hold)
	ha.sess.cancel() // stop the keep-alive, as a frozen or cut-off client would
	start := time.Now()
	lb, err := b.Acquire(ctx, storetest.Req("db", true))
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Release()
	got := time.Since(start)
	select {
	case <-la.Lost():
	default:
		t.Fatal("b got the lock before a's Lost fired")
	}
	t.Logf("waiter got the lock %v after the holder stopped renewing; holder's loss: %v", got, la.Err())
	hist, err := b.History(ctx, "db")
	if err != nil || len(hist) < 2 || hist[0].State != stLost {
		t.Fatalf("history %+v, %v", hist, err)
	}
}

// safety records, per holder, the time it acquired and the last time its
// own view (Check) said it still held the lock; the intervals of different
// claims must not overlap.
type safety struct {
	mu     sync.Mutex
	claims []claimSpan
}

type claimSpan struct {
	who        string
	token      uint64
	start, end time.Time
}

func (s *safety) add(c claimSpan) {
	s.mu.Lock()
	s.claims = append(s.claims, c)
	s.mu.Unlock()
}

func (s *safety) overlaps() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for i, a := range s.claims {
		for _, b := range s.claims[i+1:] {
			if a.start.Before(b.end) && b.start.Before(a.end) {
				out = append(out, fmt.Sprintf("%s token %d [%v] and %s token %d [%v]", a.who, a.token,
					a.end.Sub(a.start), b.who, b.token, b.end.Sub(b.start)))
			}
		}
	}
	return out
}

// holdWhileSafe keeps l until it is lost or until stop, polling Check; it
// returns the claim's span: from acquisition to the last Check that passed
// (measured before the call).
func holdWhileSafe(who string, l core.Lease, acquired time.Time, stop <-chan struct{}) claimSpan {
	span := claimSpan{who: who, token: l.Token(), start: acquired, end: acquired}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		before := time.Now()
		if l.Check() != nil {
			return span
		}
		span.end = before
		select {
		case <-stop:
			span.end = time.Now()
			_ = l.Release()
			return span
		case <-l.Lost():
			return span
		case <-tick.C:
		}
	}
}

// TestLeaderKilledWhileHeld kills the leader of a 3-member cluster while a
// lock is held and another client waits: the holder keeps the lock or its
// Lost fires, and the waiter never holds it while the holder's own view says
// it does.
func TestLeaderKilledWhileHeld(t *testing.T) {
	c := startCluster(t, 3)
	url := c.url("/leader")
	a := openT(t, url, WithIdentity(machine("a", 1)))
	b := openT(t, url, WithIdentity(machine("b", 2)))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := storetest.Req("db", true)
	req.Lease = 3 * time.Second
	la, err := a.Acquire(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var sf safety
	lostAt := make(chan time.Time, 1)
	go func() { <-la.Lost(); lostAt <- time.Now() }()
	stopA := make(chan struct{})
	aDone := make(chan claimSpan, 1)
	go func() { aDone <- holdWhileSafe("a", la, time.Now(), stopA) }()
	bDone := make(chan claimSpan, 1)
	go func() {
		lb, err := b.Acquire(ctx, req)
		if err != nil {
			t.Errorf("b: %v", err)
			bDone <- claimSpan{}
			return
		}
		acquired := time.Now()
		stop := make(chan struct{})
		time.AfterFunc(500*time.Millisecond, func() { close(stop) })
		bDone <- holdWhileSafe("b", lb, acquired, stop)
	}()
	time.Sleep(300 * time.Millisecond)
	ldr := c.leader(t, a)
	t.Logf("killing leader %s", ldr.name)
	killed := time.Now()
	ldr.kill()
	// Hold through the election and a few TTLs.
	time.Sleep(2 * req.Lease)
	select {
	case at := <-lostAt:
		t.Logf("holder lost the lock %v after the kill: %v", at.Sub(killed).Round(time.Millisecond), la.Err())
	default:
		t.Logf("holder kept the lock through the leader change")
	}
	close(stopA)
	sf.add(<-aDone)
	select {
	case sb := <-bDone:
		sf.add(sb)
	case <-time.After(30 * time.Second):
		t.Fatal("b never got the lock")
	}
	if o := sf.overlaps(); len(o) > 0 {
		t.Fatalf("two holders at once: %v", o)
	}
}

// TestContendersNoOverlap: four clients contend for one lock on a
// 3-member cluster for a few seconds, the leader is killed halfway; no two
// of them ever hold it at once by their own view.
func TestContendersNoOverlap(t *testing.T) {
	c := startCluster(t, 3)
	url := c.url("/contend")
	var stores []*Store
	for i := 0; i < 4; i++ {
		stores = append(stores, openT(t, url, WithIdentity(machine(fmt.Sprintf("c%d", i), i+1))))
	}
	var sf safety
	var inside, overlaps, rounds atomic.Int64
	deadline := time.Now().Add(4 * time.Second)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := storetest.Req("db", true)
			for time.Now().Before(deadline) {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				l, err := s.Acquire(ctx, req)
				cancel()
				if err != nil {
					continue // e.g. no leader for a moment
				}
				acquired := time.Now()
				if l.Check() == nil {
					if inside.Add(1) != 1 {
						overlaps.Add(1)
					}
					time.Sleep(2 * time.Millisecond)
					inside.Add(-1)
					end := time.Now()
					if l.Check() == nil {
						sf.add(claimSpan{who: fmt.Sprint("c", i), token: l.Token(), start: acquired, end: end})
					}
				}
				rounds.Add(1)
				_ = l.Release()
			}
		}()
	}
	time.Sleep(2 * time.Second)
	ldr := c.leader(t, stores[0])
	t.Logf("killing leader %s", ldr.name)
	ldr.kill()
	wg.Wait()
	t.Logf("%d claims, %d overlaps", rounds.Load(), overlaps.Load())
	if overlaps.Load() != 0 {
		t.Fatalf("%d overlaps", overlaps.Load())
	}
	if o := sf.overlaps(); len(o) > 0 {
		t.Fatalf("overlapping claims: %v", o)
	}
	if rounds.Load() < 10 {
		t.Fatalf("only %d claims", rounds.Load())
	}
}

// TestBreakAudit: a break is recorded in the store-wide audit log too.
func TestBreakAudit(t *testing.T) {
	c := startCluster(t, 1)
	a := openT(t, c.url("/audit"), WithIdentity(machine("a", 1)))
	b := openT(t, c.url("/audit"), WithIdentity(machine("b", 2)))
	ctx := context.Background()
	la, err := a.Acquire(ctx, storetest.Req("db", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Break(ctx, "db", "stuck over the weekend", true); err != nil {
		t.Fatal(err)
	}
	<-la.Lost()
	if !strings.Contains(la.Err().Error(), "broken by user-b on b") || !strings.Contains(la.Err().Error(), "stuck over the weekend") {
		t.Fatalf("loss reason: %v", la.Err())
	}
	ev, err := b.Audit(ctx)
	if err != nil || len(ev) != 1 || ev[0].Broke.User != "user-a" || ev[0].Holder.User != "user-b" {
		t.Fatalf("audit %+v, %v", ev, err)
	}
}

// TestCloseReleases: closing a store revokes its lease: its locks are
// released for others at once, and their Lost fires.
func TestCloseReleases(t *testing.T) {
	c := startCluster(t, 1)
	ctx := context.Background()
	a, err := Open(ctx, c.url("/close"), WithIdentity(machine("a", 1)))
	if err != nil {
		t.Fatal(err)
	}
	b := openT(t, c.url("/close"), WithIdentity(machine("b", 2)))
	la, err := a.Acquire(ctx, storetest.Req("db", false))
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	select {
	case <-la.Lost():
	case <-time.After(time.Second):
		t.Fatal("Lost did not fire on Close")
	}
	start := time.Now()
	lb, err := b.Acquire(ctx, storetest.Req("db", true))
	if err != nil {
		t.Fatal(err)
	}
	lb.Release()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("waited %v after close", d)
	}
	if !errors.Is(la.Release(), core.ErrLost) {
		t.Fatal("release after close")
	}
}

// TestDeferredWatch: a hold acquired at once starts the lock's watch only
// after watchDelay, from the revision after its claim; a break, a release
// request and a waiter in that window still reach it, with the break's
// reason: through a watch it starts itself, and through one that another
// claim of the same store started after it (it then reads its state again).
func TestDeferredWatch(t *testing.T) {
	c := startCluster(t, 1)
	a := openT(t, c.url("/deferred"), WithIdentity(machine("a", 1)))
	b := openT(t, c.url("/deferred"), WithIdentity(machine("b", 2)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	broken := func(t *testing.T, la core.Lease) {
		t.Helper()
		select {
		case <-la.Lost():
		case <-time.After(5 * time.Second):
			t.Fatal("the broken holder's Lost did not fire")
		}
		if !strings.Contains(la.Err().Error(), "broken by user-b on b") || !strings.Contains(la.Err().Error(), "in the window") {
			t.Fatalf("loss reason: %v", la.Err())
		}
	}

	t.Run("own watch", func(t *testing.T) {
		la, err := a.Acquire(ctx, storetest.Req("own", false))
		if err != nil {
			t.Fatal(err)
		}
		h := la.(*hold)
		h.inMu.Lock()
		subscribed := h.in != nil
		h.inMu.Unlock()
		if subscribed {
			t.Fatal("a hold acquired at once subscribed at once")
		}
		if _, err := b.Break(ctx, "own", "in the window", true); err != nil {
			t.Fatal(err)
		}
		broken(t, la)
	})

	t.Run("watch started after the claim", func(t *testing.T) {
		la, err := a.Acquire(ctx, storetest.Req("joined", false))
		if err != nil {
			t.Fatal(err)
		}
		// A waiter of the same store starts the lock's watch from after
		// its own claim, past la's.
		got := make(chan error, 1)
		go func() {
			lw, err := a.Acquire(ctx, storetest.Req("joined", true))
			if err == nil {
				err = lw.Release()
			}
			got <- err
		}()
		for {
			info, err := b.Inspect(ctx, "joined", core.InspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(info.Waiting) == 1 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if _, err := b.Break(ctx, "joined", "in the window", true); err != nil {
			t.Fatal(err)
		}
		broken(t, la)
		if err := <-got; err != nil {
			t.Fatalf("waiter: %v", err)
		}
	})

	t.Run("request and waiter", func(t *testing.T) {
		req := storetest.Req("idle", false)
		req.IdleLimit, req.IdleGrace = time.Millisecond, time.Hour
		la, err := a.Acquire(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		defer la.Release()
		notices := la.Notices()
		res, err := b.RequestRelease(ctx, "idle", "please")
		if err != nil || res.Delivery != core.Delivered {
			t.Fatalf("request: %+v, %v", res, err)
		}
		kinds := map[core.NoticeKind]bool{}
		go func() {
			wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			_, _ = b.Acquire(wctx, storetest.Req("idle", true))
		}()
		for !kinds[core.NoticeRequest] || !kinds[core.NoticeIdle] {
			select {
			case n := <-notices:
				kinds[n.Kind] = true
				if n.Kind == core.NoticeIdle && (n.Waiting != 1 || n.From == nil || n.From.User != "user-b") {
					t.Fatalf("idle notice %+v", n)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("notices seen: %v", kinds)
			}
		}
	})
}

// TestKeyReuse: a store reuses the name of a q/ key it released for its
// next claim of the lock; tokens still increase, the history tells each
// claim apart, and a break marks the right event.
func TestKeyReuse(t *testing.T) {
	c := startCluster(t, 1)
	a := openT(t, c.url("/reuse"), WithIdentity(machine("a", 1)))
	b := openT(t, c.url("/reuse"), WithIdentity(machine("b", 2)))
	ctx := context.Background()
	var prev uint64
	var keys []string
	for i := 0; i < 3; i++ {
		l, err := a.Acquire(ctx, storetest.Req("db", false))
		if err != nil {
			t.Fatal(err)
		}
		if l.Token() <= prev {
			t.Fatalf("token %d after %d", l.Token(), prev)
		}
		prev = l.Token()
		keys = append(keys, l.(*hold).qkey)
		if i < 2 {
			if err := l.Release(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		hist, err := b.History(ctx, "db")
		if err != nil || len(hist) != 3 || hist[0].State != stReleased || hist[1].State != stReleased || hist[2].State != stHeld ||
			hist[2].Token != l.Token() {
			t.Fatalf("history %+v, %v", hist, err)
		}
		if _, err := b.Break(ctx, "db", "reuse test", true); err != nil {
			t.Fatal(err)
		}
		<-l.Lost()
		hist, err = b.History(ctx, "db")
		if err != nil || len(hist) != 4 || hist[1].State != stReleased || hist[2].State != stBroken || hist[3].Kind != kindBreak {
			t.Fatalf("history after break %+v, %v", hist, err)
		}
	}
	if keys[0] != keys[1] || keys[1] != keys[2] {
		t.Fatalf("q/ keys not reused: %v", keys)
	}
	// A broken claim does not give its name back.
	l, err := a.Acquire(ctx, storetest.Req("db", false))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if l.(*hold).qkey == keys[2] {
		t.Fatal("the name of a broken claim was reused")
	}
}

// TestHistoryTrimmed: the history keeps the newest events whatever the
// revisions of the releases (a pattern of writes that made every token
// odd once kept it from ever being trimmed).
func TestHistoryTrimmed(t *testing.T) {
	c := startCluster(t, 1)
	a := openT(t, c.url("/trim"), WithIdentity(machine("a", 1)))
	ctx := context.Background()
	old := trimOneIn
	trimOneIn = 4
	defer func() { trimOneIn = old }()
	for i := 0; i < keepHistory+100; i++ {
		l, err := a.Acquire(ctx, storetest.Req("db", false))
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
		// One other write, so that our claims' tokens step by 3.
		if _, err := a.Client().Put(ctx, a.Prefix()+"/other", "x"); err != nil {
			t.Fatal(err)
		}
	}
	base := a.lockBase("db")
	for try := 0; ; try++ {
		r, err := a.Client().Get(ctx, historyPrefix(base), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if r.Count <= keepHistory+32 {
			break
		}
		if try == 50 {
			t.Fatalf("%d history events kept", r.Count)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Benchmarks: uncontended acquire+release, ours against etcd's own
// concurrency.Mutex with a Session, on one shared server.
var (
	benchOnce    sync.Once
	benchCluster *cluster
	benchTB      = &tbStub{}
)

func benchServer(b *testing.B) *cluster {
	etcdBinary(b)
	benchOnce.Do(func() { benchCluster = startCluster(benchTB, 1) })
	if benchCluster == nil {
		b.Skip("no etcd server")
	}
	return benchCluster
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range benchTB.cleanups {
		f()
	}
	os.Exit(code)
}

func BenchmarkEtcdAcquireRelease(b *testing.B) {
	c := benchServer(b)
	s := openT(b, c.url("/bench"))
	ctx := context.Background()
	req := storetest.Req("bench-ours", false)
	// Warm up: the lease (once per store and TTL) and connections.
	l, err := s.Acquire(ctx, req)
	if err != nil {
		b.Fatal(err)
	}
	l.Release()
	b.ResetTimer()
	for b.Loop() {
		l, err := s.Acquire(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConcurrencyMutex(b *testing.B) {
	c := benchServer(b)
	s := openT(b, c.url("/bench"))
	cli := s.Client()
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(2))
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	m := concurrency.NewMutex(sess, "/bench/etcd-mutex")
	ctx := context.Background()
	if err := m.Lock(ctx); err != nil {
		b.Fatal(err)
	}
	m.Unlock(ctx)
	b.ResetTimer()
	for b.Loop() {
		if err := m.Lock(ctx); err != nil {
			b.Fatal(err)
		}
		if err := m.Unlock(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// tbStub lets the shared benchmark server outlive one benchmark; it is
// stopped in TestMain.
type tbStub struct {
	testing.TB
	cleanups []func()
}

func (t *tbStub) Helper()                    {}
func (t *tbStub) Cleanup(f func())           { t.cleanups = append(t.cleanups, f) }
func (t *tbStub) Failed() bool               { return false }
func (t *tbStub) Fatal(args ...any)          { panic(fmt.Sprint(args...)) }
func (t *tbStub) Fatalf(f string, a ...any)  { panic(fmt.Sprintf(f, a...)) }
func (t *tbStub) Skip(args ...any)           { panic(fmt.Sprint(args...)) }
func (t *tbStub) Logf(f string, args ...any) {}

// BenchmarkVersusMutex alternates one uncontended acquire+release of ours
// with one Lock+Unlock of etcd's concurrency.Mutex, on the same server, so
// that the noise of a busy machine hits both alike; it reports each one's
// mean and their ratio.
func BenchmarkVersusMutex(b *testing.B) {
	c := benchServer(b)
	s := openT(b, c.url("/bench"))
	ctx := context.Background()
	req := storetest.Req("bench-vs", false)
	sess, err := concurrency.NewSession(s.Client(), concurrency.WithTTL(2))
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	m := concurrency.NewMutex(sess, "/bench/vs-mutex")
	var ours, theirs time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		l, err := s.Acquire(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := m.Lock(ctx); err != nil {
			b.Fatal(err)
		}
		if err := m.Unlock(ctx); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if n > 0 { // the first round pays for the lease and connections
			ours += t1.Sub(t0)
			theirs += t2.Sub(t1)
		}
		n++
	}
	if n > 1 {
		b.ReportMetric(float64(ours.Nanoseconds())/float64(n-1), "ours-ns/op")
		b.ReportMetric(float64(theirs.Nanoseconds())/float64(n-1), "mutex-ns/op")
		b.ReportMetric(float64(ours)/float64(theirs), "ratio")
	}
}
