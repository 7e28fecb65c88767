package etcd

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests run the real etcd server (Debian package etcd-server, installed
// by scripts/deps.sh) on loopback ports, with data in a temporary directory.
// Without the binary they skip, except under CI=true where they fail.

// member is one etcd server process.
type member struct {
	name       string
	clientURL  string
	peerURL    string
	dataDir    string
	cmd        *exec.Cmd
	exited     chan struct{}
	stderrPath string
}

// cluster is a set of etcd members started by a test.
type cluster struct {
	members []*member
}

// etcdBinary finds the etcd server binary, or skips (fails under CI=true).
func etcdBinary(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{os.Getenv("SHARELOCK_ETCD"), "etcd", "/usr/bin/etcd", "/usr/sbin/etcd"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal("etcd server binary not found (install the etcd-server package: scripts/deps.sh)")
	}
	tb.Skip("etcd server binary not found (install the etcd-server package: scripts/deps.sh)")
	return ""
}

// freePorts returns n distinct free loopback ports.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ls []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// startCluster starts an n-member etcd cluster on loopback and waits until
// it serves. It is stopped (by PID) when tb ends.
func startCluster(tb testing.TB, n int) *cluster {
	tb.Helper()
	bin := etcdBinary(tb)
	dir, err := os.MkdirTemp("", "sharelock-etcd-")
	if err != nil {
		tb.Fatal(err)
	}
	c := &cluster{}
	ports := freePorts(tb, 2*n)
	var initial []string
	for i := 0; i < n; i++ {
		m := &member{name: fmt.Sprintf("m%d", i),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
		m.dataDir = filepath.Join(dir, m.name)
		m.stderrPath = filepath.Join(dir, m.name+".log")
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	tb.Cleanup(func() {
		c.stop()
		if !tb.Failed() {
			os.RemoveAll(dir)
		} else {
			tb.Logf("etcd data and logs kept in %s", dir)
		}
	})
	for _, m := range c.members {
		if err := m.start(bin, strings.Join(initial, ",")); err != nil {
			tb.Fatal(err)
		}
	}
	for _, m := range c.members {
		if err := m.waitHealthy(15 * time.Second); err != nil {
			tb.Fatalf("etcd member %s: %v (log %s)", m.name, err, m.stderrPath)
		}
	}
	return c
}

func (m *member) start(bin, initial string) error {
	logf, err := os.Create(m.stderrPath)
	if err != nil {
		return err
	}
	m.cmd = exec.Command(bin,
		"--name", m.name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.clientURL,
		"--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL,
		"--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", initial,
		"--initial-cluster-state", "new",
		"--initial-cluster-token", "sharelock-test",
		"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
	)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	dieWithParent(m.cmd)
	if err := m.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start etcd: %w", err)
	}
	m.exited = make(chan struct{})
	go func() {
		_ = m.cmd.Wait()
		logf.Close()
		close(m.exited)
	}()
	return nil
}

func (m *member) waitHealthy(d time.Duration) error {
	end := time.Now().Add(d)
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	for time.Now().Before(end) {
		select {
		case <-m.exited:
			return fmt.Errorf("exited early")
		default:
		}
		resp, err := hc.Get(m.clientURL + "/health")
		if err == nil {
			ok := resp.StatusCode == 200
			resp.Body.Close()
			if ok {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not healthy after %v", d)
}

// kill stops the member by its PID (SIGKILL) and waits for it to exit.
func (m *member) kill() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	select {
	case <-m.exited:
		return
	default:
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
}

func (c *cluster) stop() {
	var wg sync.WaitGroup
	for _, m := range c.members {
		wg.Add(1)
		go func() { defer wg.Done(); m.kill() }()
	}
	wg.Wait()
}

// url returns the store URL of the cluster's members (host:port list).
func (c *cluster) url(prefix string) string {
	var hosts []string
	for _, m := range c.members {
		hosts = append(hosts, strings.TrimPrefix(m.clientURL, "http://"))
	}
	return "etcd://" + strings.Join(hosts, ",") + prefix
}

// leader returns the member that leads the cluster now.
func (c *cluster) leader(tb testing.TB, s *Store) *member {
	tb.Helper()
	for try := 0; try < 50; try++ {
		for _, m := range c.members {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := s.Client().Status(ctx, strings.TrimPrefix(m.clientURL, "http://"))
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return m
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatal("no etcd leader found")
	return nil
}
