package sharetest_test

// The sharelock protocol on real network shares: two simulated machines
// (distinct identities, each with its own client mount of the same share)
// lock the same file. Local disk is covered by the folder and root packages.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sharelock"
	"sharelock/internal/core"
	"sharelock/internal/folder"
	"sharelock/internal/ident"
	"sharelock/internal/sharetest"
	"sharelock/internal/storetest"
)

// Environment of the helper process (a re-executed test binary) that holds a
// lock until it is killed.
const (
	helperEnv      = "SHARETEST_HELPER" // "hold"
	helperPathEnv  = "SHARETEST_HELPER_PATH"
	helperHostEnv  = "SHARETEST_HELPER_HOST"
	helperLeaseEnv = "SHARETEST_HELPER_LEASE"
	helperBeatEnv  = "SHARETEST_HELPER_BEAT"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "hold" {
		os.Exit(holdMain())
	}
	os.Exit(m.Run())
}

// variant is one kind of share with the lease the protocol needs on it.
type variant struct {
	kind  string
	start func(testing.TB) *sharetest.Share
	lease time.Duration
	beat  time.Duration
	// cached: the client caches attributes and listings (for 20 s), so a
	// lease must exceed that; freshness findings are logged, not asserted.
	cached bool
	// known lists problems found on this share and not fixed yet (issue ->
	// cause): check logs them instead of failing, unless SHARETEST_STRICT=1.
	known map[string]string
}

// Fixed findings (kept as regression checks, no longer listed as known):
// sshfs's cached listing once made acquire loop without sleeping until the
// cache expired (head moved back to the cached maximum); smbnetfs failed an
// O_WRONLY|O_APPEND open (audit.log) with EIO after 4 s and then stalled
// the mount (Append now opens O_RDWR); since the wait queue, SMB handoffs
// fell back to the grace period and single waits reached ~15 s: a waiter
// that got the lock could not remove its ticket (Samba: EBUSY while others
// read it), so everyone deferred to that ticket until its lease ran out
// (now it gets a q/<ticket>.left marker), and a waiter stuck on EIO reading an old
// generation did not follow the lock to newer ones (now it does); smbnetfs
// still answers EIO for its whole share for 3 s (its negative cache) after
// a refused delete, which can still make single waits there reach ~6 s
// (known issue below; setting neg_cache_timeout to 100 ms fixed the waits
// but made smbnetfs restart its server connection all the time, and then
// its mounts wedged in 2 of 3 runs).

var variants = []variant{
	{kind: sharetest.SFTP, start: func(t testing.TB) *sharetest.Share { return sharetest.StartSFTP(t, false) },
		lease: 3 * time.Second, beat: 500 * time.Millisecond},
	{kind: sharetest.SFTPCache, start: func(t testing.TB) *sharetest.Share { return sharetest.StartSFTP(t, true) },
		lease: 30 * time.Second, beat: 3 * time.Second, cached: true},
	{kind: sharetest.SMB, start: sharetest.StartSMB,
		lease: 3 * time.Second, beat: 500 * time.Millisecond,
		known: map[string]string{"slow-handoff": "smbnetfs answers EIO for the whole share for 3 s (its negative " +
			"cache) after Samba refuses a delete of a file another client has open (a ticket being read), " +
			"so waiters on that mount stall and handoffs fall back to the grace period; single waits reach " +
			"~6 s (not a protocol fault: a Windows or cifs client keeps no such cache)",
			"mount-wedge": "an smbnetfs mount stops answering now and then under the contention test (about 1 run " +
				"in 6: a request is never answered, smbnetfs's own bug; a Windows or cifs client has no such " +
				"process); the watchdog aborted the mount after 90 s"}},
	{kind: sharetest.NFS, start: sharetest.StartNFS,
		lease: 3 * time.Second, beat: 500 * time.Millisecond},
}

func TestShares(t *testing.T) {
	for _, v := range variants {
		t.Run(v.kind, func(t *testing.T) {
			t0 := time.Now()
			sh := v.start(t)
			t.Logf("%v (started in %v)", sh, time.Since(t0).Round(time.Millisecond))
			for _, sub := range []struct {
				name string
				f    func(testing.TB, *sharetest.Share, variant)
			}{{"freshness", testFreshness}, {"handoff", testHandoff}, {"contention", testContention},
				{"takeover", testTakeover}, {"break", testBreak}} {
				retry := false
				t.Run(sub.name, func(t *testing.T) {
					logSlowCalls(t) // forget earlier ones
					retry = runWedgeTolerant(t, sh, v, sub.f)
					logSlowCalls(t)
				})
				if retry {
					// The client mount wedged (smbnetfs, a known issue):
					// start the share again and run the subtest once more.
					logs := sh.Logs()
					if err := sh.Close(); err != nil {
						t.Logf("closing the wedged share: %v", err)
					}
					t.Logf("share logs of the wedged share:\n%s", logs)
					sh = v.start(t)
					t.Run(sub.name+"-after-wedge", func(t *testing.T) {
						logSlowCalls(t)
						sub.f(t, sh, v)
						logSlowCalls(t)
					})
				}
			}
			if !v.cached { // the suite's 2 s leases are shorter than the 20 s attribute cache
				t.Run("conformance", func(t *testing.T) { testConformance(t, sh, v) })
			}
			if t.Failed() {
				t.Logf("share logs:\n%s", sh.Logs())
			}
		})
	}
}

// runWedgeTolerant runs f. On a share whose client mounts are known to
// wedge (v.known["mount-wedge"], smbnetfs), if f fails and the watchdog
// found a mount wedged (sh.Wedged), the failures are logged as a known issue
// instead of failing t, and it returns true: the caller starts the share
// again and runs f once more, where any failure counts. SHARETEST_STRICT=1
// makes a wedge fail like anything else.
//
// Only a wedge that begins during this attempt is tolerated, and never a
// safety failure (a message starting with safety: an overlap, a lost update,
// tokens out of order), wedge or not.
func runWedgeTolerant(t *testing.T, sh *sharetest.Share, v variant, f func(testing.TB, *sharetest.Share, variant)) (retry bool) {
	why, tolerated := v.known["mount-wedge"]
	if !tolerated || os.Getenv("SHARETEST_STRICT") == "1" || sh.Wedged() {
		f(t, sh, v)
		return false
	}
	st := &softT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(st, sh, v)
	}()
	<-done
	failures := st.failures()
	if len(failures) == 0 {
		return false
	}
	if !sh.Wedged() && !sh.Answering(5*time.Second) {
		// A mount hangs: the watchdog decides within its 90 s.
		deadline := time.Now().Add(2 * time.Minute)
		for !sh.Wedged() && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
		}
	}
	if !sh.Wedged() || !tolerable(failures) {
		for _, f := range failures {
			t.Error(f)
		}
		return false
	}
	t.Logf("KNOWN ISSUE %q on %s (SHARETEST_STRICT=1 fails on it): %s; the attempt's failures, caused by the aborted mount:\n  %s\nstarting the share again and repeating the subtest",
		"mount-wedge", v.kind, why, strings.Join(failures, "\n  "))
	return true
}

// safety starts the message of every safety failure (see runWedgeTolerant).
const safety = "SAFETY: "

// tolerable reports whether an attempt's failures may be put down to a
// wedged mount: some, and none of them a safety failure.
func tolerable(failures []string) bool {
	return len(failures) > 0 && !slices.ContainsFunc(failures, func(f string) bool { return strings.HasPrefix(f, safety) })
}

// softT is a testing.TB whose failures are recorded, not reported (see
// runWedgeTolerant). Fatal and FailNow end the calling goroutine, which
// must not be the test's own.
type softT struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (s *softT) record(msg string) {
	s.mu.Lock()
	s.errs = append(s.errs, msg)
	s.mu.Unlock()
}

func (s *softT) failures() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errs...)
}

func (s *softT) Error(args ...any)                 { s.record(fmt.Sprint(args...)) }
func (s *softT) Errorf(format string, args ...any) { s.record(fmt.Sprintf(format, args...)) }
func (s *softT) Fail()                             { s.record("failed") }
func (s *softT) Failed() bool                      { return len(s.failures()) > 0 }
func (s *softT) Fatal(args ...any)                 { s.record(fmt.Sprint(args...)); runtime.Goexit() }
func (s *softT) Fatalf(format string, args ...any) {
	s.record(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (s *softT) FailNow() { s.record("failed"); runtime.Goexit() }

// ---- simulated machines ----

// identity is this process's identity disguised as another machine: a
// different host name and machine ID, so that no store can prove another's
// holder dead by its PID and every decision goes through the lease.
func identity(host string) *ident.Identity {
	id := ident.Self()
	id.Host = host
	sum := sha256.Sum256([]byte("sharetest machine " + host))
	id.MachineID = hex.EncodeToString(sum[:16])
	return &id
}

func newStore(host string) *folder.Store {
	return folder.New(folder.Options{Self: identity(host), FS: countingFS{folder.OSFS{}}})
}

// ---- filesystem calls: counts and slow ones ----

// slowCall is the duration from which a filesystem call is reported.
const slowCall = 200 * time.Millisecond

// fsCalls counts the filesystem calls of every store of the test process,
// per operation (every call is a round trip to the file server), and keeps
// the slow ones.
var fsCalls = struct {
	sync.Mutex
	n, fail map[string]int
	slow    []string
}{n: map[string]int{}, fail: map[string]int{}}

type countingFS struct{ fs folder.FS }

func (c countingFS) done(op, name string, t0 time.Time, err error) {
	d := time.Since(t0)
	fsCalls.Lock()
	defer fsCalls.Unlock()
	fsCalls.n[op]++
	if err != nil {
		fsCalls.fail[op]++
	}
	if d >= slowCall {
		fsCalls.slow = append(fsCalls.slow, fmt.Sprintf("%s %s took %v (err %v)", op, name, d.Round(time.Millisecond), err))
	}
}

// callsSince returns the calls made since the snapshot (and a new snapshot).
func callSnapshot() map[string]int {
	fsCalls.Lock()
	defer fsCalls.Unlock()
	m := map[string]int{}
	for k, v := range fsCalls.n {
		m[k] = v
	}
	for k, v := range fsCalls.fail {
		m[k+" failed"] = v
	}
	return m
}

// callsPer returns the calls made since before, divided by per.
func callsPer(before map[string]int, per int) float64 {
	after := callSnapshot()
	total := 0
	for k, n := range after {
		if !strings.HasSuffix(k, " failed") {
			total += n - before[k]
		}
	}
	return float64(total) / float64(max(per, 1))
}

// callDiff renders the calls made since before, divided by per.
func callDiff(before map[string]int, per int) string {
	after := callSnapshot()
	var parts []string
	total := 0
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if d := after[k] - before[k]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f", k, float64(d)/float64(per)))
			if !strings.HasSuffix(k, " failed") {
				total += d
			}
		}
	}
	return fmt.Sprintf("%.1f calls (%s)", float64(total)/float64(per), strings.Join(parts, ", "))
}

// logSlowCalls reports (and forgets) the slow filesystem calls so far.
func logSlowCalls(t testing.TB) {
	fsCalls.Lock()
	slow := fsCalls.slow
	fsCalls.slow = nil
	fsCalls.Unlock()
	if len(slow) > 0 {
		if len(slow) > 10 {
			slow = append(slow[:10], fmt.Sprintf("... and %d more", len(slow)-10))
		}
		t.Logf("slow filesystem calls (>= %v):\n  %s", slowCall, strings.Join(slow, "\n  "))
	}
}

func (c countingFS) Mkdir(name string) error {
	t0 := time.Now()
	err := c.fs.Mkdir(name)
	c.done("mkdir", name, t0, err)
	return err
}

func (c countingFS) ReadFile(name string) ([]byte, error) {
	t0 := time.Now()
	b, err := c.fs.ReadFile(name)
	c.done("read", name, t0, err)
	return b, err
}

func (c countingFS) CreateExcl(name string, data []byte) error {
	t0 := time.Now()
	err := c.fs.CreateExcl(name, data)
	c.done("create", name, t0, err)
	return err
}

func (c countingFS) Overwrite(name string, data []byte) error {
	t0 := time.Now()
	err := c.fs.Overwrite(name, data)
	c.done("overwrite", name, t0, err)
	return err
}

func (c countingFS) Append(name string, data []byte) error {
	t0 := time.Now()
	err := c.fs.Append(name, data)
	c.done("append", name, t0, err)
	return err
}

func (c countingFS) ReadDirNames(name string) ([]string, error) {
	t0 := time.Now()
	n, err := c.fs.ReadDirNames(name)
	c.done("list", name, t0, err)
	return n, err
}

func (c countingFS) Lstat(name string) (fs.FileInfo, error) {
	t0 := time.Now()
	fi, err := c.fs.Lstat(name)
	c.done("lstat", name, t0, err)
	return fi, err
}

func (c countingFS) Remove(name string) error {
	t0 := time.Now()
	err := c.fs.Remove(name)
	c.done("remove", name, t0, err)
	return err
}

func (c countingFS) Rmdir(name string) error {
	t0 := time.Now()
	err := c.fs.Rmdir(name)
	c.done("rmdir", name, t0, err)
	return err
}

func opts(v variant, s sharelock.Store) []sharelock.Option {
	return []sharelock.Option{sharelock.WithStore(s), sharelock.WithApp("sharetest"),
		sharelock.WithLease(v.lease), sharelock.WithHeartbeat(v.beat)}
}

// paths returns rel as machine A and machine B see it, creating its folder.
func paths(t testing.TB, sh *sharetest.Share, rel string) (a, b string) {
	t.Helper()
	a, b = filepath.Join(sh.Mounts[0], rel), filepath.Join(sh.Mounts[1], rel)
	if err := os.MkdirAll(filepath.Dir(a), 0o755); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// ---- (0) what the client caches do to the protocol's primitives ----

// testFreshness measures how soon machine B sees what machine A did, through
// the filesystem calls the protocol makes (folder.OSFS): the content of a
// fixed-length file rewritten in place (the owner file: heartbeats, release),
// the content of a file that grew (an owner file read between its creation
// and its first write; a counter), a new directory by lstat (the successor
// check) and by listing (the head search).
func testFreshness(t testing.TB, sh *sharetest.Share, v variant) {
	const n = 40
	a, b := paths(t, sh, "freshness/x")
	dirA, dirB := filepath.Dir(a), filepath.Dir(b)
	write := func(p string, data []byte, trunc bool) {
		flag := os.O_WRONLY | os.O_CREATE
		if trunc {
			flag |= os.O_TRUNC
		}
		f, err := os.OpenFile(p, flag, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var fsys folder.OSFS
	read := func(p string) []byte {
		got, err := fsys.ReadFile(p) // open + read, as the protocol reads owner files
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	// Fixed length, rewritten in place (like a heartbeat): B read it before.
	fixedStale := 0
	for i := range n {
		want := fmt.Appendf(nil, "beat=%020d\n", i)
		if i == 0 {
			write(a, want, true)
		} else if err := fsys.Overwrite(a, want); err != nil { // as a heartbeat does
			t.Fatal(err)
		}
		if got := read(b); !bytes.Equal(got, want) {
			fixedStale++
			if fixedStale == 1 {
				t.Logf("fixed-length rewrite: B read %q, A wrote %q", got, want)
			}
		}
	}
	// Growing content (a counter 9 -> 10 -> 100...), B having read the
	// shorter version: the length may come from B's attribute cache.
	varTrunc, varOther, goStale, goReads := 0, 0, 0, 0
	var staleFor []time.Duration // how long B kept reading it truncated
	for i := range n {
		short := []byte(strconv.Itoa(i%9+1) + "\n")
		write(a, short, true)
		for deadline := time.Now().Add(30 * time.Second); !bytes.Equal(read(b), short); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("B never read %q", short)
			}
		}
		want := fmt.Appendf(nil, "%d%0*d\n", i%9+1, 1+i%6, 0)
		write(a, want, true)
		written := time.Now()
		got := read(b)
		if i >= 3 {
			// os.ReadFile stats the open file first, which refreshes its
			// length on sshfs (rounds 0-2 time the staleness instead).
			goReads++
			if again, err := os.ReadFile(b); err != nil || !bytes.Equal(again, want) {
				goStale++
			}
		}
		if bytes.Equal(got, want) {
			continue
		}
		if bytes.HasPrefix(want, got) {
			varTrunc++
		} else {
			varOther++
		}
		if varTrunc+varOther == 1 {
			t.Logf("grown file: B read %q right after A wrote %q", got, want)
		}
		if i < 3 {
			for !bytes.Equal(read(b), want) {
				if time.Since(written) > 30*time.Second {
					t.Fatalf("B still reads a stale %q 30 s after A wrote %q", read(b), want)
				}
				time.Sleep(5 * time.Millisecond)
			}
			staleFor = append(staleFor, time.Since(written))
		}
	}
	// A new directory, looked up by B (which looked it up before: absent).
	lstatMissing, listMissing := 0, 0
	for i := range n {
		name := fmt.Sprintf("g%03d", i)
		if _, err := fsys.Lstat(filepath.Join(dirB, name)); err == nil {
			t.Fatalf("%s exists before its mkdir", name)
		}
		if _, err := fsys.ReadDirNames(dirB); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Mkdir(filepath.Join(dirA, name)); err != nil {
			t.Fatal(err)
		}
		if _, err := fsys.Lstat(filepath.Join(dirB, name)); err != nil {
			lstatMissing++
		}
		names, err := fsys.ReadDirNames(dirB)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(names, name) {
			listMissing++
		}
	}
	t.Logf("B right after A (of %d each): fixed-length content stale %d; grown content read truncated %d (for %s; os.ReadFile stale %d of %d), otherwise stale %d; "+
		"new directory: lstat misses it %d, listing misses it %d", n, fixedStale, varTrunc, stats(staleFor), goStale, goReads, varOther, lstatMissing, listMissing)
	if v.cached {
		// Findings, not failures: the protocol must cope (fixed-length owner
		// files, lease > cache time, probing beyond a listing).
		return
	}
	if fixedStale+varTrunc+varOther+lstatMissing+listMissing > 0 {
		t.Errorf("a client without caches served stale data (see the counts above)")
	}
}

// ---- (a) refusal and handoff ----

func testHandoff(t testing.TB, sh *sharetest.Share, v variant) {
	pa, pb := paths(t, sh, "handoff/data.db")
	A, B := newStore("machine-a"), newStore("machine-b")
	ctx, cancel := context.WithTimeout(context.Background(), 2*v.lease+30*time.Second)
	defer cancel()

	t0 := time.Now()
	la, err := sharelock.Acquire(ctx, pa, opts(v, A)...)
	if err != nil {
		t.Fatalf("A acquire: %v", err)
	}
	first := time.Since(t0)
	if la.Token() != 1 {
		t.Errorf("A's token = %d, want 1", la.Token())
	}

	t0 = time.Now()
	lb, err := sharelock.TryAcquire(ctx, pb, opts(v, B)...)
	refusal := time.Since(t0)
	var le *sharelock.LockedError
	if !errors.As(err, &le) {
		if lb != nil {
			lb.Release()
		}
		t.Fatalf("B TryAcquire while A holds: got (%v, %v), want a *LockedError", lb, err)
	}
	if le.Holder == nil || le.Holder.Host != "machine-a" || le.Token != 1 {
		t.Errorf("B's LockedError names %+v (token %d), want machine-a with token 1", le.Holder, le.Token)
	}
	t.Logf("B refused in %v: %v", refusal.Round(time.Microsecond), err)

	// B waits; A releases; B gets it.
	type result struct {
		l   *sharelock.Lock
		err error
		at  time.Time
	}
	got := make(chan result, 1)
	go func() {
		l, err := sharelock.Acquire(ctx, pb, opts(v, B)...)
		got <- result{l, err, time.Now()}
	}()
	time.Sleep(300 * time.Millisecond)
	if err := la.Release(); err != nil {
		t.Fatalf("A release: %v", err)
	}
	released := time.Now()
	r := <-got
	if r.err != nil {
		t.Fatalf("B acquire after A's release: %v", r.err)
	}
	if r.l.Token() != 2 {
		t.Errorf("B's token = %d, want 2", r.l.Token())
	}
	handoff := r.at.Sub(released)
	if err := r.l.Release(); err != nil {
		t.Fatalf("B release: %v", err)
	}

	// Uncontended acquire+release through each mount, alternating.
	const rounds = 10
	var lat [2][]time.Duration
	calls := callSnapshot()
	for i := range 2 * rounds {
		m := i % 2
		s, p := A, pa
		if m == 1 {
			s, p = B, pb
		}
		t0 := time.Now()
		l, err := sharelock.Acquire(ctx, p, opts(v, s)...)
		if err != nil {
			t.Fatalf("uncontended acquire %d through mount %c: %v", i, 'A'+m, err)
		}
		if err := l.Release(); err != nil {
			t.Fatalf("release: %v", err)
		}
		lat[m] = append(lat[m], time.Since(t0))
	}
	perRound := callDiff(calls, 2*rounds)
	t.Logf("%s: first acquire %v; handoff A->B (B waiting) %v; uncontended acquire+release, alternating machines: A %s, B %s; "+
		"filesystem calls per acquire+release: %s",
		v.kind, first.Round(time.Microsecond), handoff.Round(time.Microsecond), stats(lat[0]), stats(lat[1]), perRound)
}

// ---- (b) mutual exclusion under contention ----

type hold struct {
	machine    string
	mount      int
	token      uint64
	start, end time.Time // Acquire returned .. Release called (inside the real hold)
	wait       time.Duration
	read       uint64 // counter value read while holding
}

// thinkMS is how long a machine pauses between its holds in the contention
// test (-think=0 for a tight loop).
var thinkMS = flag.Int("think", 20, "contention test: pause between a machine's holds, in ms")

func testContention(t testing.TB, sh *sharetest.Share, v variant) {
	const perMount, rounds = 4, 25
	think := time.Duration(*thinkMS) * time.Millisecond
	pa, pb := paths(t, sh, "contention/data.db")
	counter := [2]string{filepath.Join(filepath.Dir(pa), "counter"), filepath.Join(filepath.Dir(pb), "counter")}
	// Fixed width: a counter whose length changes is read truncated through
	// a client that caches attributes (see freshness).
	enc := func(n uint64) []byte { return fmt.Appendf(nil, "%020d\n", n) }
	if err := os.WriteFile(counter[0], enc(0), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	var mu sync.Mutex
	var holds []hold
	calls := callSnapshot()
	lag := watchListings(ctx, sh, "contention/data.db.lock")
	var wg sync.WaitGroup
	errs := make(chan error, 2*perMount)
	for m := range 2 {
		path := pa
		if m == 1 {
			path = pb
		}
		for g := range perMount {
			wg.Add(1)
			machine := fmt.Sprintf("m%c%d", 'a'+m, g)
			go func() {
				defer wg.Done()
				s := newStore(machine)
				for i := range rounds {
					t0 := time.Now()
					l, err := sharelock.Acquire(ctx, path, opts(v, s)...)
					if err != nil {
						errs <- fmt.Errorf("%s acquire %d: %w", machine, i, err)
						return
					}
					h := hold{machine: machine, mount: m, token: l.Token(), start: time.Now()}
					h.wait = h.start.Sub(t0)
					err = func() error {
						raw, err := os.ReadFile(counter[m])
						if err != nil {
							return err
						}
						n, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
						if err != nil {
							return fmt.Errorf("counter %q: %w", raw, err)
						}
						h.read = n
						if err := l.Check(); err != nil {
							return err
						}
						f, err := os.OpenFile(counter[m], os.O_WRONLY, 0)
						if err != nil {
							return err
						}
						_, err = f.WriteAt(enc(n+1), 0)
						if cerr := f.Close(); err == nil {
							err = cerr
						}
						return err
					}()
					h.end = time.Now()
					rerr := l.Release()
					mu.Lock()
					holds = append(holds, h)
					mu.Unlock()
					if err != nil {
						errs <- fmt.Errorf("%s hold %d (token %d): %w", machine, i, h.token, err)
						return
					}
					if rerr != nil {
						errs <- fmt.Errorf("%s release %d (token %d): %w", machine, i, h.token, rerr)
						return
					}
					// Think before the next hold: in a tight loop the releaser,
					// who knows the lock is free, wins nearly every time
					// and the machines hardly interleave.
					time.Sleep(think)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	perHold := callDiff(calls, max(len(holds), 1))
	lagged := lag()
	slices.SortFunc(holds, func(x, y hold) int { return x.start.Compare(y.start) })
	want := uint64(2 * perMount * rounds)
	if uint64(len(holds)) != want {
		t.Errorf("%d holds recorded, want %d", len(holds), want)
	}
	overlaps, badReads, again := 0, 0, 0
	var waits, sameGap, crossGap []time.Duration
	for i, h := range holds {
		waits = append(waits, h.wait)
		if h.read != uint64(i) {
			badReads++
			if badReads <= 3 {
				t.Errorf(safety+"hold #%d (%s through mount %c, token %d) read counter %d, want %d (lost update or stale read)",
					i, h.machine, 'A'+h.mount, h.token, h.read, i)
			}
		}
		if i == 0 {
			continue
		}
		p := holds[i-1]
		if h.start.Before(p.end) {
			overlaps++
			if overlaps <= 3 {
				t.Errorf(safety+"OVERLAP: %s (mount %c, token %d) held %s..%s while %s (mount %c, token %d) held %s..%s",
					h.machine, 'A'+h.mount, h.token, h.start.Format("15:04:05.000000"), h.end.Format("15:04:05.000000"),
					p.machine, 'A'+p.mount, p.token, p.start.Format("15:04:05.000000"), p.end.Format("15:04:05.000000"))
			}
		}
		if h.token <= p.token {
			t.Errorf(safety+"token not increasing: hold #%d has token %d after token %d", i, h.token, p.token)
		}
		gap := h.start.Sub(p.end)
		if h.machine == p.machine {
			again++
		}
		if h.mount == p.mount {
			sameGap = append(sameGap, gap)
		} else {
			crossGap = append(crossGap, gap)
		}
	}
	// Liveness: no machine waits long with holds of ~10 ms; waiting costs
	// few filesystem calls.
	if len(waits) > 0 {
		check(t, v, "slow-handoff", slices.Max(waits) < 5*time.Second,
			"a machine waited %v for one acquisition", slices.Max(waits))
	}
	// Since the wait queue every hold is a handoff, and the 7 others poll
	// during it (the front at most every 50 ms, the k-th k times slower):
	// 150-230 calls per hold measured on SFTP; the bound catches a
	// spinning waiter, not the polling itself.
	check(t, v, "slow-handoff", callsPer(calls, len(holds)) < 400,
		"%.0f filesystem calls per hold", callsPer(calls, len(holds)))
	// Final value, as the server and both machines see it.
	for name, p := range map[string]string{"server": filepath.Join(sh.Export, "contention", "counter"),
		"mount A": counter[0], "mount B": counter[1]} {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("reading the counter on %s: %v", name, err)
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64); err != nil || n != want {
			t.Errorf("final counter on %s = %q, want %d", name, raw, want)
		}
	}
	if len(holds) > 1 {
		total := holds[len(holds)-1].end.Sub(holds[0].start)
		t.Logf("%s: %d holds by 8 machines (4 per mount) in %v, %d overlaps, %d bad counter reads, tokens %d..%d; "+
			"pause between holds %v; the releaser re-acquired next %d times; wait per acquire %s; handoff to the same mount %s (%d), to the other mount %s (%d); filesystem calls per hold (waiting included): %s; %s",
			v.kind, len(holds), total.Round(time.Millisecond), overlaps, badReads, holds[0].token, holds[len(holds)-1].token,
			think, again, stats(waits), stats(sameGap), len(sameGap), stats(crossGap), len(crossGap), perHold, lagged)
	}
}

// watchListings samples, until the returned function is called, how far the
// listing of the lock directory rel through each mount lags behind the
// server's, and returns a summary: the protocol finds the head through a
// listing, which a client may serve from its cache.
func watchListings(ctx context.Context, sh *sharetest.Share, rel string) (stop func() string) {
	var fsys folder.OSFS
	head := func(dir string) (uint64, bool) {
		names, err := fsys.ReadDirNames(dir)
		if err != nil {
			return 0, false
		}
		var g uint64
		for _, n := range names {
			if x, err := strconv.ParseUint(n, 10, 64); err == nil && len(n) == 20 && x > g {
				g = x
			}
		}
		return g, true
	}
	type lagRun struct {
		maxGens uint64
		since   time.Time
		longest time.Duration
	}
	var runs [2]lagRun
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			server, ok := head(filepath.Join(sh.Export, rel))
			for m := range 2 {
				g, ok2 := head(filepath.Join(sh.Mounts[m], rel))
				r := &runs[m]
				if !ok || !ok2 || g >= server {
					r.since = time.Time{}
					continue
				}
				r.maxGens = max(r.maxGens, server-g)
				if r.since.IsZero() {
					r.since = time.Now()
				}
				r.longest = max(r.longest, time.Since(r.since))
			}
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() string {
		close(done)
		<-finished
		return fmt.Sprintf("listing behind the server (sampled every 100 ms): mount A by up to %d generations for up to %v, mount B by up to %d for up to %v",
			runs[0].maxGens, runs[0].longest.Round(time.Millisecond), runs[1].maxGens, runs[1].longest.Round(time.Millisecond))
	}
}

// ---- (c) stale takeover after a crash on another machine ----

func testTakeover(t testing.TB, sh *sharetest.Share, v variant) {
	pa, pb := paths(t, sh, "takeover/data.db")
	const crashed = "crashed-a"
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=hold", helperPathEnv+"="+pa, helperHostEnv+"="+crashed,
		helperLeaseEnv+"="+v.lease.String(), helperBeatEnv+"="+v.beat.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
	}()
	var oldToken uint64
	select {
	case l := <-line:
		if _, err := fmt.Sscanf(l, "TOKEN %d", &oldToken); err != nil {
			t.Fatalf("helper said %q (stderr: %s)", l, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the helper did not acquire within 30 s (stderr: %s)", stderr.String())
	}
	B := newStore("machine-b")
	ctx, cancel := context.WithTimeout(context.Background(), 4*v.lease+20*time.Second)
	defer cancel()

	// Alive: B is refused at once.
	time.Sleep(v.beat + v.beat/2) // let it beat at least once
	if l, err := sharelock.TryAcquire(ctx, pb, opts(v, B)...); !errors.Is(err, sharelock.ErrLocked) {
		if l != nil {
			l.Release()
		}
		t.Fatalf("B TryAcquire while the helper holds: got %v, want ErrLocked", err)
	}

	// Crash: SIGKILL, no release, no state=lost.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	tKill := time.Now()
	l, err := sharelock.Acquire(ctx, pb, opts(v, B)...)
	took := time.Since(tKill)
	if err != nil {
		t.Fatalf("B acquire after the holder's crash: %v (after %v)", err, took)
	}
	defer l.Release()
	if l.Token() <= oldToken {
		t.Errorf("token after takeover %d, want > %d", l.Token(), oldToken)
	}
	if took < v.lease {
		t.Errorf("took over after %v, before a whole lease (%v): the holder was not proven dead", took, v.lease)
	}
	if took > 3*v.lease {
		t.Errorf("took over after %v, more than 3 leases (%v)", took, v.lease)
	}
	info, err := sharelock.Inspect(ctx, pb, sharelock.WithStore(B), sharelock.WithHistory(1))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(info.History); n == 0 || info.History[n-1].Kind != "takeover" ||
		info.History[n-1].Broke == nil || info.History[n-1].Broke.Host != crashed {
		t.Errorf("history after takeover: %+v, want a takeover of %s", info.History, crashed)
	}
	t.Logf("%s: takeover after SIGKILL of the holder on the other mount: %v (lease %v, heartbeat %v); token %d -> %d",
		v.kind, took.Round(time.Millisecond), v.lease, v.beat, oldToken, l.Token())
}

// holdMain is the helper process: it acquires the lock as another machine,
// says its token, and holds until it is killed (at most 5 minutes).
func holdMain() int {
	lease, err1 := time.ParseDuration(os.Getenv(helperLeaseEnv))
	beat, err2 := time.ParseDuration(os.Getenv(helperBeatEnv))
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	s := newStore(os.Getenv(helperHostEnv))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := sharelock.Acquire(ctx, os.Getenv(helperPathEnv), sharelock.WithStore(s), sharelock.WithApp("sharetest-helper"),
		sharelock.WithLease(lease), sharelock.WithHeartbeat(beat))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	fmt.Printf("TOKEN %d\n", l.Token())
	select {
	case <-l.Lost():
		fmt.Fprintln(os.Stderr, "helper: lost:", l.Err())
		return 1
	case <-time.After(5 * time.Minute):
		return 3
	}
}

// ---- (d) forced break through the other mount ----

func testBreak(t testing.TB, sh *sharetest.Share, v variant) {
	pa, pb := paths(t, sh, "break/data.db")
	A, B := newStore("machine-a"), newStore("machine-b")
	ctx, cancel := context.WithTimeout(context.Background(), 2*v.lease+30*time.Second)
	defer cancel()
	la, err := sharelock.Acquire(ctx, pa, opts(v, A)...)
	if err != nil {
		t.Fatal(err)
	}
	defer la.Release()
	// A bystander on machine B (the breaker's machine) holds another lock:
	// breaking one lock must not disturb it.
	_, pother := paths(t, sh, "break/other.db")
	bystander, err := sharelock.Acquire(ctx, pother, opts(v, newStore("machine-b"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer bystander.Release()
	lostAt := make(chan time.Time, 1)
	go func() {
		select {
		case <-la.Lost():
			lostAt <- time.Now()
		case <-ctx.Done():
		}
	}()
	time.Sleep(v.beat / 2)

	const reason = "sharetest: forced break"
	t0 := time.Now()
	info, err := sharelock.Break(ctx, pb, reason, true, sharelock.WithStore(B))
	if err != nil {
		t.Fatalf("B break: %v", err)
	}
	broke := time.Now()
	if info.Token != la.Token()+1 || info.Holder == nil || info.Holder.Host != "machine-a" {
		t.Errorf("break result token %d holder %+v, want token %d breaking machine-a", info.Token, info.Holder, la.Token()+1)
	}
	var lost time.Time
	select {
	case lost = <-lostAt:
	case <-time.After(v.lease):
		t.Fatalf("A did not learn it lost the lock within a lease (%v) of the break", v.lease)
	}
	learned := max(lost.Sub(broke), 0)
	if limit := 4*v.beat + time.Second; learned > limit {
		t.Errorf("A learned of the break %v after it, more than 4 heartbeats + 1 s (%v)", learned, limit)
	}
	if err := la.Err(); !errors.Is(err, sharelock.ErrLost) {
		t.Errorf("A's Err() = %v, want ErrLost", err)
	}
	if err := la.Check(); err == nil {
		t.Errorf("A's Check() = nil after the break")
	}
	if err := la.Release(); !errors.Is(err, sharelock.ErrLost) {
		t.Errorf("A's Release() = %v, want ErrLost", err)
	}
	st, err := sharelock.Inspect(ctx, pa, sharelock.WithStore(A))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != sharelock.Free || st.Token != info.Token {
		t.Errorf("after the break A inspects %s token %d, want free token %d", st.State, st.Token, info.Token)
	}

	// Side effects: the audit line, the time the break took, the bystander.
	audit, err := os.ReadFile(filepath.Join(sh.Export, "break", "data.db.lock", "audit.log"))
	check(t, v, "append", err == nil && bytes.Contains(audit, []byte(reason)),
		"the break's audit line is missing from audit.log on the server (read: %v)", err)
	took := broke.Sub(t0)
	check(t, v, "append", took < time.Second, "the break took %v", took)
	time.Sleep(max(2*v.beat+time.Second-time.Since(broke), 0)) // spans an SMB outage, should the Append regression return
	check(t, v, "append", bystander.Check() == nil,
		"a bystander holding another lock through the breaker's mount lost it: %v", bystander.Check())
	t.Logf("%s: forced break through mount B took %v; holder on mount A learned %v after the break returned (%v after it began; heartbeat %v): %v",
		v.kind, took.Round(time.Microsecond), learned.Round(time.Millisecond), lost.Sub(t0).Round(time.Millisecond), v.beat, la.Err())
}

// check reports a liveness or side-effect problem (never a safety one: those
// always fail). Problems a variant lists as known are logged as findings
// unless SHARETEST_STRICT=1.
func check(t testing.TB, v variant, issue string, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if why, known := v.known[issue]; known && os.Getenv("SHARETEST_STRICT") != "1" {
		t.Logf("KNOWN ISSUE %q on %s (SHARETEST_STRICT=1 fails on it): %s; cause: %s", issue, v.kind, msg, why)
		return
	}
	t.Errorf("%s", msg)
}

// ---- figures ----

// stats renders "p50 X p90 Y max Z".
func stats(d []time.Duration) string {
	if len(d) == 0 {
		return "(none)"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[int(p*float64(len(s)-1)+0.5)] }
	r := func(x time.Duration) time.Duration {
		if x > 100*time.Millisecond {
			return x.Round(time.Millisecond)
		}
		return x.Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %v p90 %v max %v", r(q(0.5)), r(q(0.9)), r(s[len(s)-1]))
}

// testConformance runs the store conformance suite (internal/storetest) on
// the share, every store on the first mount, each acting as its own machine.
func testConformance(t *testing.T, sh *sharetest.Share, v variant) {
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) storetest.Env {
		var mu sync.Mutex
		stores := map[string]*folder.Store{}
		return storetest.Env{
			Path: filepath.Join(sh.Mounts[0], fmt.Sprintf("conformance-%d.db", n.Add(1))),
			Store: func(name string) core.Store {
				mu.Lock()
				defer mu.Unlock()
				if s, ok := stores[name]; ok {
					return s
				}
				id := identity(name)
				id.User = "user-" + name
				id.PID = 2000 + len(stores)
				s := folder.New(folder.Options{Self: id, FS: countingFS{folder.OSFS{}}})
				stores[name] = s
				return s
			},
		}
	})
}

// TestWedgeTolerance: a subtest that fails on a share the watchdog found
// wedged during it is logged as the known issue and repeated, not failed;
// Fatal ends only the attempt; a clean attempt is not repeated; a share
// wedged before the attempt, or a safety failure, is never tolerated.
func TestWedgeTolerance(t *testing.T) {
	if os.Getenv("SHARETEST_STRICT") == "1" {
		t.Skip("SHARETEST_STRICT=1: wedges fail like anything else")
	}
	dir := t.TempDir()
	sh := &sharetest.Share{Name: "fake", Dir: dir, Mounts: []string{dir}}
	v := variant{kind: "fake", known: map[string]string{"mount-wedge": "a test"}}
	ran := false
	if runWedgeTolerant(t, sh, v, func(tb testing.TB, _ *sharetest.Share, _ variant) { ran = true }) || !ran {
		t.Fatalf("a clean attempt: retry, or not run (ran %v)", ran)
	}
	after := false
	retry := runWedgeTolerant(t, sh, v, func(tb testing.TB, _ *sharetest.Share, _ variant) {
		// The watchdog aborts a mount during the attempt.
		if err := os.WriteFile(filepath.Join(dir, "wedged.log"), []byte("wedged\n"), 0o644); err != nil {
			tb.Fatal(err)
		}
		tb.Errorf("a call failed: transport endpoint is not connected")
		tb.Fatal("giving up")
		after = true
	})
	if !retry || after {
		t.Fatalf("a failed attempt on a share wedged during it: retry %v, ran past Fatal %v", retry, after)
	}
	if t.Failed() {
		t.Fatal("the wedged attempt's failures failed the test")
	}
	// Wedged before: runs on t itself, and a clean run is not repeated.
	if runWedgeTolerant(t, sh, v, func(testing.TB, *sharetest.Share, variant) {}) {
		t.Fatal("retry after a clean attempt on a share wedged before it")
	}
	for _, c := range []struct {
		failures []string
		want     bool
	}{
		{[]string{"a call failed"}, true},
		{[]string{"a call failed", safety + "OVERLAP: ..."}, false},
		{nil, false},
	} {
		if got := tolerable(c.failures); got != c.want {
			t.Errorf("tolerable(%q) = %v, want %v", c.failures, got, c.want)
		}
	}
}
