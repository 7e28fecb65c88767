package sharelock_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sharelock"
	"sharelock/internal/folder"
	"sharelock/internal/ident"
	"sharelock/internal/nstest"
	"sharelock/internal/proc"
)

// benchDir returns a fresh directory for a benchmark's lock: under
// $SHARELOCK_BENCH_DIR if set (to measure a network share), else under the
// test's temporary directory. It logs the filesystem type once per
// benchmark, since results differ greatly between tmpfs, a local disk and a
// share.
func benchDir(b *testing.B) string {
	b.Helper()
	var dir string
	if base := os.Getenv("SHARELOCK_BENCH_DIR"); base != "" {
		d, err := os.MkdirTemp(base, "sharelock-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	} else {
		dir = b.TempDir()
	}
	benchLogOnce.Do(b.Name(), func() {
		b.Logf("lock directory on %s (%s); set SHARELOCK_BENCH_DIR to measure another folder", nstest.FSType(dir), filepath.Dir(dir))
	})
	return dir
}

// onceByName runs a function once per name.
type onceByName struct {
	mu   sync.Mutex
	done map[string]bool
}

func (o *onceByName) Do(name string, f func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done[name] {
		return
	}
	if o.done == nil {
		o.done = map[string]bool{}
	}
	o.done[name] = true
	f()
}

var benchLogOnce onceByName

// BenchmarkAcquireRelease: one uncontended acquire and release.
func BenchmarkAcquireRelease(b *testing.B) {
	path := filepath.Join(benchDir(b), "wems.db")
	store := folder.New(folder.Options{})
	ctx := context.Background()
	for b.Loop() {
		l, err := sharelock.Acquire(ctx, path, sharelock.WithStore(store))
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTryAcquireHeld: one refused TryAcquire of a lock held by another
// machine.
func BenchmarkTryAcquireHeld(b *testing.B) {
	path := filepath.Join(benchDir(b), "wems.db")
	other := ident.Self()
	other.Host, other.MachineID = "other-host", "bench-other-machine"
	holder, err := sharelock.TryAcquire(context.Background(), path, sharelock.WithStore(folder.New(folder.Options{Self: &other})))
	if err != nil {
		b.Fatal(err)
	}
	defer holder.Release()
	store := folder.New(folder.Options{})
	for b.Loop() {
		_, err := sharelock.TryAcquire(context.Background(), path, sharelock.WithStore(store))
		if !errors.Is(err, sharelock.ErrLocked) {
			b.Fatalf("TryAcquire of a held lock: %v", err)
		}
	}
}

// BenchmarkHandoff8: 8 simulated processes of this machine (each its own
// store and identity) contend for one lock, each holding it 1 ms per
// acquisition. One op is one acquisition. Reported:
//
//   - handoff-p50-ms, handoff-p99-ms: from the moment a holder starts its
//     Release to the next holder's Acquire returning;
//   - worst-wait-ms: the longest a single Acquire waited;
//   - same-holder-frac: fraction of handoffs in which the releaser itself
//     got the lock again (1 means one process starves the others).
func BenchmarkHandoff8(b *testing.B) {
	const workers = 8
	const holdFor = time.Millisecond
	path := filepath.Join(benchDir(b), "wems.db")
	self := ident.Self()
	fakePIDs := map[int]bool{}
	stores := make([]sharelock.Store, workers)
	for i := range stores {
		id := self
		id.PID = 1<<22 + 1 + i // not a real process: Liveness below says alive
		id.StartTime = uint64(1 + i)
		fakePIDs[id.PID] = true
		stores[i] = folder.New(folder.Options{Self: &id, Liveness: func(pid int, start uint64) proc.Liveness {
			if fakePIDs[pid] {
				return proc.Alive
			}
			return proc.Check(pid, start)
		}})
	}
	type rec struct {
		worker            int
		want, got, before time.Time // Acquire called, Acquire returned, Release called
	}
	recs := make([][]rec, workers)
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				want := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				l, err := sharelock.Acquire(ctx, path, sharelock.WithStore(stores[i]), sharelock.WithLease(10*time.Second))
				cancel()
				if err != nil {
					b.Error(err)
					return
				}
				got := time.Now()
				time.Sleep(holdFor)
				before := time.Now()
				if err := l.Release(); err != nil {
					b.Error(err)
					return
				}
				recs[i] = append(recs[i], rec{i, want, got, before})
			}
		})
	}
	wg.Wait()
	b.StopTimer()

	var all []rec
	for _, r := range recs {
		all = append(all, r...)
	}
	if len(all) < 2 {
		return
	}
	slices.SortFunc(all, func(x, y rec) int { return x.got.Compare(y.got) })
	var handoffs []time.Duration
	var worst time.Duration
	same := 0
	for i, r := range all {
		worst = max(worst, r.got.Sub(r.want))
		if i == 0 {
			continue
		}
		p := all[i-1]
		if r.got.Before(p.before) {
			b.Errorf("holds overlap: worker %d acquired at %v, before worker %d released at %v", r.worker, r.got, p.worker, p.before)
		}
		handoffs = append(handoffs, r.got.Sub(p.before))
		if r.worker == p.worker {
			same++
		}
	}
	slices.Sort(handoffs)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	q := func(f float64) time.Duration { return handoffs[int(f*float64(len(handoffs)-1))] }
	b.ReportMetric(ms(q(0.50)), "handoff-p50-ms")
	b.ReportMetric(ms(q(0.99)), "handoff-p99-ms")
	b.ReportMetric(ms(worst), "worst-wait-ms")
	b.ReportMetric(float64(same)/float64(len(handoffs)), "same-holder-frac")
}
