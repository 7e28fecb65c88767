package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"sharelock"
	"sharelock/etcdstore"
	"sharelock/internal/etcdtest"
)

// TestUsage is the package's example, run against a real etcd: a lock taken
// through one store is refused to another, and free for it at once when
// the first store is closed (its lease revoked).
func TestUsage(t *testing.T) {
	url := fmt.Sprintf("etcd://%s/office", etcdtest.Start(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	store, err := etcdstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := sharelock.Acquire(ctx, "payroll/wems.db", sharelock.WithStore(store), sharelock.WithApp("wems"))
	if err != nil {
		t.Fatal(err)
	}

	other, err := etcdstore.Open(ctx, url, etcdstore.WithDialTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = sharelock.TryAcquire(ctx, "payroll/wems.db", sharelock.WithStore(other))
	var le *sharelock.LockedError
	if !errors.As(err, &le) || le.Holder == nil || le.Holder.App != "wems" {
		t.Fatalf("second store: %v, want a *LockedError naming wems", err)
	}
	t.Log(err)

	store.Close() // revokes the lease: the lock is lost and free at once
	<-lock.Lost()
	start := time.Now()
	l2, err := sharelock.Acquire(ctx, "payroll/wems.db", sharelock.WithStore(other))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v after Close", d)
	}
	if l2.Token() <= lock.Token() {
		t.Errorf("token %d after %d", l2.Token(), lock.Token())
	}
	if err := l2.Release(); err != nil {
		t.Fatal(err)
	}

	if _, err := etcdstore.Open(ctx, "etcd://"); err == nil {
		t.Error("etcd:// accepted")
	} else {
		t.Log(err)
	}
}
