package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sharelock"
	"sharelock/internal/faultfs"
)

// A share that stops answering: the watcher reports "unreachable since"
// within its timeout instead of hanging, the API keeps answering with the
// last known state, and everything recovers when the share answers again.
func TestUnreachableShare(t *testing.T) {
	backing := t.TempDir()
	db := filepath.Join(backing, "data", "wems.db")
	if err := os.MkdirAll(filepath.Dir(db), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := sharelock.TryAcquire(context.Background(), db, sharelock.WithApp("wems"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	f := faultfs.Mount(t, backing)
	s := New(Config{Dir: f.Dir(), Watcher: WatcherOptions{Timeout: 300 * time.Millisecond, Relist: time.Hour}})
	w := s.Watcher()
	ctx := context.Background()
	w.Refresh(ctx)
	snap := w.Snapshot()
	if snap.UnreachableSince != nil || len(snap.Locks) != 1 || snap.Locks[0].State != "held" {
		t.Fatalf("before the stall: %+v", snap)
	}

	f.Hang()
	done := make(chan struct{})
	go func() { w.Refresh(ctx); w.Refresh(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		f.Unhang()
		t.Fatal("Refresh hung with the share")
	}
	snap = w.Snapshot()
	if snap.UnreachableSince == nil || snap.UnreachableError == "" {
		t.Fatalf("during the stall: %+v", snap)
	}
	if len(snap.Locks) != 1 || snap.Locks[0].State != "held" || snap.Locks[0].Holder == nil || snap.Locks[0].Error == "" {
		t.Fatalf("last known state not kept: %+v", snap.Locks)
	}
	// The HTTP API answers during the stall.
	hs := httptest.NewServer(s)
	defer hs.Close()
	res, err := hs.Client().Get(hs.URL + "/api/locks")
	if err != nil {
		t.Fatal(err)
	}
	var got Snapshot
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if err := json.Unmarshal(raw, &got); err != nil || got.UnreachableSince == nil {
		t.Fatalf("API during the stall: %v %s", err, raw)
	}

	f.Unhang()
	// Hung calls return now; the next polls see the share again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		w.Refresh(ctx)
		snap = w.Snapshot()
		if snap.UnreachableSince == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never recovered: %+v", snap)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(snap.Locks) != 1 || snap.Locks[0].State != "held" || snap.Locks[0].Error != "" {
		t.Fatalf("after recovery: %+v", snap.Locks)
	}
}
