package dashboard

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"sharelock"
)

// BenchmarkList1000 measures one full refresh of a folder holding 1,000
// lock directories (10 subfolders × 100 databases, each lock with one
// released generation): listing the folder and inspecting every lock. The
// goal (issue 5) is under a second on local disk.
func BenchmarkList1000(b *testing.B) {
	dir := b.TempDir()
	ctx := context.Background()
	for i := range 1000 {
		db := filepath.Join(dir, fmt.Sprintf("site%02d", i/100), fmt.Sprintf("db%03d.sqlite", i%100))
		if err := os.MkdirAll(filepath.Dir(db), 0o755); err != nil {
			b.Fatal(err)
		}
		l, err := sharelock.TryAcquire(ctx, db)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		w := NewWatcher(dir, WatcherOptions{})
		w.Refresh(ctx)
		if n := len(w.Snapshot().Locks); n != 1000 {
			b.Fatalf("listed %d locks", n)
		}
	}
}

// BenchmarkListOnly1000 measures listing alone (finding the 1,000 lock
// directories), which the watcher repeats every Relist.
func BenchmarkListOnly1000(b *testing.B) {
	dir := b.TempDir()
	for i := range 1000 {
		if err := os.MkdirAll(filepath.Join(dir, fmt.Sprintf("site%02d", i/100), fmt.Sprintf("db%03d.sqlite.lock", i%100), "00000000000000000001"), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	w := NewWatcher(dir, WatcherOptions{})
	for b.Loop() {
		names, err := w.list(context.Background())
		if err != nil || len(names) != 1000 {
			b.Fatalf("listed %d: %v", len(names), err)
		}
	}
}
