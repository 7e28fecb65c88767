// Package storetest is a conformance suite for core.Store implementations:
// every store (the shared folder, etcd) must behave the same to its users.
//
//	func TestConformance(t *testing.T) { storetest.Run(t, factory) }
//
// The factory gives each subtest a fresh lock path and a way to make stores
// that act as different machines and users against the same backend.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"sharelock/internal/core"
)

// Env is what a Factory gives one subtest.
type Env struct {
	// Path is a fresh lock path, not used by any other subtest.
	Path string
	// Store returns a store acting as machine name, with a distinct user,
	// host and machine ID (the user must be "user-"+name), against the
	// same backend as the Env's other stores. Calls with the same name may
	// return the same store.
	Store func(name string) core.Store
}

// Factory makes the Env of one subtest; it registers its cleanups on t.
type Factory func(t *testing.T) Env

// Lease is the lease the suite's requests use: short, so that the suite is
// quick, but long enough for a loaded CI machine.
const Lease = 2 * time.Second

// Req is the suite's request for path.
func Req(path string, wait bool) core.Request {
	return core.Request{Path: path, App: "storetest", Lease: Lease, Heartbeat: 100 * time.Millisecond, Wait: wait}
}

// Run runs the suite as subtests of t.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, Env)
	}{
		{"AcquireReleaseInspect", testAcquireReleaseInspect},
		{"NoWaitRefusalNamesHolder", testNoWait},
		{"WaitUntilReleased", testWaitUntilReleased},
		{"ContextTimeout", testContextTimeout},
		{"TokensIncrease", testTokensIncrease},
		{"FIFO", testFIFO},
		{"ForceBreakFiresLost", testForceBreak},
		{"BreakRefusesLiveHolder", testBreakRefusesLive},
		{"RequestRelease", testRequestRelease},
		{"IdleRelease", testIdleRelease},
		{"History", testHistory},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, f(t))
		})
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustAcquire(t *testing.T, s core.Store, r core.Request) core.Lease {
	t.Helper()
	l, err := s.Acquire(ctxT(t, 20*time.Second), r)
	if err != nil {
		t.Fatalf("acquire %s: %v", r.Path, err)
	}
	t.Cleanup(func() { _ = l.Release() })
	return l
}

func mustRelease(t *testing.T, l core.Lease) {
	t.Helper()
	if err := l.Release(); err != nil {
		t.Fatalf("release: %v", err)
	}
}

func testAcquireReleaseInspect(t *testing.T, e Env) {
	a := e.Store("a")
	ctx := ctxT(t, 20*time.Second)
	info, err := a.Inspect(ctx, e.Path, core.InspectOptions{})
	if err != nil || info.State != core.Free || info.Token != 0 || info.Holder != nil {
		t.Fatalf("fresh lock: %+v, %v", info, err)
	}
	l := mustAcquire(t, a, Req(e.Path, false))
	if l.Token() == 0 {
		t.Fatal("token 0")
	}
	if h := l.Holder(); h == nil || h.User != "user-a" || h.App != "storetest" {
		t.Fatalf("own holder record: %+v", h)
	}
	if err := l.Check(); err != nil {
		t.Fatalf("check: %v", err)
	}
	info, err = e.Store("b").Inspect(ctx, e.Path, core.InspectOptions{})
	if err != nil || info.State != core.Held || info.Token != l.Token() || info.Holder == nil || info.Holder.User != "user-a" {
		t.Fatalf("held lock seen by b: %+v (holder %+v), %v", info, info.Holder, err)
	}
	mustRelease(t, l)
	if err := l.Release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if err := l.Check(); !errors.Is(err, core.ErrNotHeld) {
		t.Fatalf("check after release: %v", err)
	}
	select {
	case <-l.Lost():
		t.Fatal("lost fired on release")
	default:
	}
	info, err = a.Inspect(ctx, e.Path, core.InspectOptions{})
	if err != nil || info.State != core.Free || info.Token < l.Token() {
		t.Fatalf("released lock: %+v, %v", info, err)
	}
}

func testNoWait(t *testing.T, e Env) {
	a, b := e.Store("a"), e.Store("b")
	l := mustAcquire(t, a, Req(e.Path, false))
	start := time.Now()
	_, err := b.Acquire(ctxT(t, 20*time.Second), Req(e.Path, false))
	var le *core.LockedError
	if !errors.Is(err, core.ErrLocked) || !errors.As(err, &le) {
		t.Fatalf("no-wait acquire of a held lock: %v", err)
	}
	if d := time.Since(start); d > Lease {
		t.Errorf("refusal took %v", d)
	}
	if le.Holder == nil || le.Holder.User != "user-a" || le.Token != l.Token() || le.Queued {
		t.Fatalf("refusal: %+v holder %+v", le, le.Holder)
	}
	if !strings.Contains(err.Error(), "user-a") {
		t.Fatalf("refusal does not name the holder: %v", err)
	}
	if err := l.Check(); err != nil {
		t.Fatalf("holder after refusal: %v", err)
	}
}

func testWaitUntilReleased(t *testing.T, e Env) {
	a, b := e.Store("a"), e.Store("b")
	la := mustAcquire(t, a, Req(e.Path, false))
	got := make(chan core.Lease, 1)
	errc := make(chan error, 1)
	go func() {
		l, err := b.Acquire(ctxT(t, 20*time.Second), Req(e.Path, true))
		if err != nil {
			errc <- err
			return
		}
		got <- l
	}()
	select {
	case l := <-got:
		l.Release()
		t.Fatal("waiter got a held lock")
	case err := <-errc:
		t.Fatalf("waiter: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	released := time.Now()
	mustRelease(t, la)
	select {
	case l := <-got:
		t.Logf("handoff after %v", time.Since(released))
		defer l.Release()
		if l.Token() <= la.Token() {
			t.Fatalf("token %d after %d", l.Token(), la.Token())
		}
		if l.Holder().User != "user-b" {
			t.Fatalf("holder %+v", l.Holder())
		}
	case err := <-errc:
		t.Fatalf("waiter: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("waiter did not get the released lock")
	}
}

func testContextTimeout(t *testing.T, e Env) {
	a, b := e.Store("a"), e.Store("b")
	mustAcquire(t, a, Req(e.Path, false))
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.Acquire(ctx, Req(e.Path, true))
	var le *core.LockedError
	if !errors.Is(err, core.ErrLocked) || !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &le) {
		t.Fatalf("acquire with a timeout: %v", err)
	}
	if le.Holder == nil || le.Holder.User != "user-a" {
		t.Fatalf("timeout error names %+v", le.Holder)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("gave up after %v", d)
	}
	// The abandoned waiter leaves no trace in the line.
	info, err := a.Inspect(ctxT(t, 20*time.Second), e.Path, core.InspectOptions{})
	if err != nil || len(info.Waiting) != 0 {
		t.Fatalf("after the timeout: waiting %+v, %v", info.Waiting, err)
	}
}

func testTokensIncrease(t *testing.T, e Env) {
	stores := []core.Store{e.Store("a"), e.Store("b"), e.Store("c")}
	var last uint64
	for i := 0; i < 6; i++ {
		l := mustAcquire(t, stores[i%3], Req(e.Path, true))
		if l.Token() <= last {
			t.Fatalf("round %d: token %d after %d", i, l.Token(), last)
		}
		last = l.Token()
		mustRelease(t, l)
	}
	info, err := stores[0].Inspect(ctxT(t, 20*time.Second), e.Path, core.InspectOptions{})
	if err != nil || info.Token < last {
		t.Fatalf("inspect token %d after last claim %d (%v)", info.Token, last, err)
	}
}

// waitFor polls cond (every 20 ms) for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

func testFIFO(t *testing.T, e Env) {
	h := e.Store("h")
	lh := mustAcquire(t, h, Req(e.Path, false))
	names := []string{"w1", "w2", "w3", "w4"}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	for i, n := range names {
		s := e.Store(n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := s.Acquire(ctxT(t, 30*time.Second), Req(e.Path, true))
			if err != nil {
				t.Errorf("%s: %v", n, err)
				return
			}
			mu.Lock()
			order = append(order, n)
			mu.Unlock()
			time.Sleep(30 * time.Millisecond)
			if err := l.Release(); err != nil {
				t.Errorf("%s release: %v", n, err)
			}
		}()
		// Line up one at a time.
		if !waitFor(10*time.Second, func() bool {
			info, err := h.Inspect(context.Background(), e.Path, core.InspectOptions{})
			return err == nil && len(info.Waiting) == i+1
		}) {
			t.Fatalf("%s did not show up in the line", n)
		}
	}
	info, err := h.Inspect(ctxT(t, 20*time.Second), e.Path, core.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range info.Waiting {
		if w.User != "user-"+names[i] {
			t.Errorf("waiting[%d] = %s, want user-%s", i, w.User, names[i])
		}
	}
	mustRelease(t, lh)
	wg.Wait()
	if fmt.Sprint(order) != fmt.Sprint(names) {
		t.Fatalf("served in order %v, want %v", order, names)
	}
}

func testForceBreak(t *testing.T, e Env) {
	a, b := e.Store("a"), e.Store("b")
	la := mustAcquire(t, a, Req(e.Path, false))
	ctx := ctxT(t, 20*time.Second)
	info, err := b.Break(ctx, e.Path, "storetest says so", true)
	if err != nil {
		t.Fatalf("force break: %v", err)
	}
	if info.Holder == nil || info.Holder.User != "user-a" {
		t.Fatalf("break result names %+v", info.Holder)
	}
	select {
	case <-la.Lost():
	case <-time.After(2 * Lease):
		t.Fatal("the broken holder's Lost did not fire")
	}
	var lost *core.LostError
	if !errors.As(la.Err(), &lost) || !errors.Is(la.Check(), core.ErrLost) || lost.Token != la.Token() {
		t.Fatalf("broken holder: err %v, check %v", la.Err(), la.Check())
	}
	if err := la.Release(); !errors.Is(err, core.ErrLost) {
		t.Fatalf("release after break: %v", err)
	}
	lb := mustAcquire(t, b, Req(e.Path, false))
	if lb.Token() <= la.Token() {
		t.Fatalf("token after break %d <= %d", lb.Token(), la.Token())
	}
	hist, err := b.History(ctx, e.Path)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range hist {
		if ev.Kind == "break" && ev.Broke != nil && ev.Broke.User == "user-a" && ev.Reason == "storetest says so" &&
			ev.Holder != nil && ev.Holder.User == "user-b" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no break event naming breaker, victim and reason in %s", dump(hist))
	}
}

func testBreakRefusesLive(t *testing.T, e Env) {
	a, b := e.Store("a"), e.Store("b")
	la := mustAcquire(t, a, Req(e.Path, false))
	_, err := b.Break(ctxT(t, 4*Lease), e.Path, "should be refused", false)
	if !errors.Is(err, core.ErrLive) {
		t.Fatalf("break without force of a live holder: %v", err)
	}
	if err := la.Check(); err != nil {
		t.Fatalf("holder after refused break: %v", err)
	}
	if _, err := b.Break(ctxT(t, 20*time.Second), e.Path+"-free", "nothing", true); !errors.Is(err, core.ErrNotHeld) {
		t.Fatalf("break of a free lock: %v", err)
	}
}

func testRequestRelease(t *testing.T, e Env) {
	a, b := e.Store("a"), e.Store("b")
	ctx := ctxT(t, 30*time.Second)
	if _, err := b.RequestRelease(ctx, e.Path, "hello"); !errors.Is(err, core.ErrNotHeld) {
		t.Fatalf("request to a free lock: %v", err)
	}
	// Not listening: Notices never called.
	la := mustAcquire(t, a, Req(e.Path, false))
	res, err := b.RequestRelease(ctx, e.Path, "please")
	if err != nil || res.Delivery != core.NotListening || res.Token != la.Token() || res.Holder == nil || res.Holder.User != "user-a" {
		t.Fatalf("request to a holder not listening: %+v, %v", res, err)
	}
	mustRelease(t, la)
	// Listening.
	la = mustAcquire(t, a, Req(e.Path, false))
	notices := la.Notices()
	res, err = b.RequestRelease(ctx, e.Path, "please, I need it")
	if err != nil || res.Delivery != core.Delivered {
		t.Fatalf("request to a listening holder: %+v, %v", res, err)
	}
	select {
	case n := <-notices:
		if n.Kind != core.NoticeRequest || n.Message != "please, I need it" || n.From == nil || n.From.User != "user-b" {
			t.Fatalf("notice %+v from %+v", n, n.From)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notice")
	}
}

func testIdleRelease(t *testing.T, e Env) {
	a, b := e.Store("a"), e.Store("b")
	r := Req(e.Path, false)
	r.IdleLimit, r.IdleGrace = 300*time.Millisecond, 400*time.Millisecond
	la := mustAcquire(t, a, r)
	notices := la.Notices()
	got := make(chan core.Lease, 1)
	errc := make(chan error, 1)
	go func() {
		l, err := b.Acquire(ctxT(t, 30*time.Second), Req(e.Path, true))
		if err != nil {
			errc <- err
			return
		}
		got <- l
	}()
	select {
	case n := <-notices:
		if n.Kind != core.NoticeIdle || n.Waiting != 1 || n.From == nil || n.From.User != "user-b" || n.Deadline.IsZero() {
			t.Fatalf("idle notice %+v from %+v", n, n.From)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no idle notice")
	}
	select {
	case <-la.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("idle holder not released")
	}
	var lost *core.LostError
	if !errors.As(la.Err(), &lost) || !lost.Idle {
		t.Fatalf("idle loss: %v", la.Err())
	}
	select {
	case l := <-got:
		defer l.Release()
	case err := <-errc:
		t.Fatalf("waiter: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("waiter did not get the lock of the idle holder")
	}
}

func testHistory(t *testing.T, e Env) {
	a, b := e.Store("a"), e.Store("b")
	la := mustAcquire(t, a, Req(e.Path, false))
	mustRelease(t, la)
	lb := mustAcquire(t, b, Req(e.Path, false))
	ctx := ctxT(t, 20*time.Second)
	hist, err := a.History(ctx, e.Path)
	if err != nil {
		t.Fatal(err)
	}
	var sawA, sawB bool
	var prev uint64
	for _, ev := range hist {
		if ev.Token <= prev {
			t.Fatalf("history not in token order: %s", dump(hist))
		}
		prev = ev.Token
		if ev.Token == la.Token() && ev.Holder != nil && ev.Holder.User == "user-a" && ev.State == "released" {
			sawA = true
		}
		if ev.Token == lb.Token() && ev.Holder != nil && ev.Holder.User == "user-b" && ev.State == "held" {
			sawB = true
		}
	}
	if !sawA || !sawB {
		t.Fatalf("history lacks a's released claim %d or b's held claim %d: %s", la.Token(), lb.Token(), dump(hist))
	}
	info, err := a.Inspect(ctx, e.Path, core.InspectOptions{History: 5})
	if err != nil || len(info.History) == 0 || info.History[len(info.History)-1].Token != lb.Token() {
		t.Fatalf("inspect history: %s, %v", dump(info.History), err)
	}
}

func dump(ev []core.Event) string {
	var b strings.Builder
	for _, e := range ev {
		fmt.Fprintf(&b, "\n  token %d %s %s by %s", e.Token, e.Kind, e.State, e.Holder.Who())
		if e.Broke != nil {
			fmt.Fprintf(&b, " broke %s", e.Broke.Who())
		}
		if e.Reason != "" {
			fmt.Fprintf(&b, " (%s)", e.Reason)
		}
	}
	return b.String()
}
