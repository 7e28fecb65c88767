package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"sharelock"
	"sharelock/etcdstore"
)

// startEtcd starts a one-member etcd on loopback (as internal/etcd's tests
// do) and returns its client address. Without the etcd binary it skips,
// except under CI=true where it fails.
func startEtcd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if bin, err = exec.LookPath("/usr/bin/etcd"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("etcd server binary not found (install the etcd-server package: scripts/deps.sh)")
			}
			t.Skip("etcd server binary not found (install the etcd-server package: scripts/deps.sh)")
		}
	}
	var addrs []string
	var ls []net.Listener
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	client, peer := "http://"+addrs[0], "http://"+addrs[1]
	dir := t.TempDir()
	cmd := exec.Command(bin, "--name", "m0", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "m0="+peer, "--initial-cluster-state", "new",
		"--logger", "zap", "--log-outputs", "stderr", "--log-level", "error")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := hc.Get(client + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return addrs[0]
			}
		}
	}
	t.Fatal("etcd not healthy after 15 s")
	return ""
}

// TestUsage is the package's example, run against a real etcd: a lock taken
// through one store is refused to another, and free for it at once when
// the first store is closed (its lease revoked).
func TestUsage(t *testing.T) {
	url := fmt.Sprintf("etcd://%s/office", startEtcd(t))
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
