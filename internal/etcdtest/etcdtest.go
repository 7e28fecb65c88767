// Package etcdtest runs real etcd servers for tests: the etcd binary of
// the etcd-server package (installed by scripts/deps.sh), listening on
// 127.0.0.1 only, with its data and log in a temporary directory.
//
// The contract:
//   - Binary finds the server: $SHARELOCK_ETCD if set, else etcd on PATH,
//     /usr/bin/etcd or /usr/sbin/etcd. Without it the test is skipped,
//     except under CI=true, where it fails.
//   - Start runs a one-member etcd and returns its client address
//     (127.0.0.1:port) once it answers /health; StartCluster does the same
//     for n members. Both give up (Fatal) after 15 s per member, or as soon
//     as a member exits.
//   - Each server is killed (SIGKILL, by its own PID) when the test ends,
//     and, started through internal/proc, also when the test binary dies
//     without running its cleanups (Linux: Pdeathsig; Windows: a job
//     object).
//   - Ports come from FreePorts: listened on and closed again, so another
//     process could in principle take one before etcd does.
//
// StartCluster uses only the methods of testing.TB that a stand-in for one
// may implement (Helper, Cleanup, Failed, Fatal, Fatalf, Skip, Logf): no
// TempDir, so that a server shared by benchmarks can outlive one of them.
package etcdtest

import (
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

	"sharelock/internal/proc"
)

const notFound = "etcd server binary not found (install the etcd-server package: scripts/deps.sh)"

// Binary returns the path of the etcd server binary, or skips the test
// (fails it under CI=true).
func Binary(tb testing.TB) string {
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
		tb.Fatal(notFound)
	}
	tb.Skip(notFound)
	return ""
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1.
func FreePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
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

// Member is one etcd server process.
type Member struct {
	Name      string
	ClientURL string // http://127.0.0.1:port
	PeerURL   string
	DataDir   string
	LogPath   string // its stdout and stderr (zap, level warn)

	cmd    *exec.Cmd
	child  *proc.Child   // killed with the test binary, whatever ends it
	exited chan struct{} // closed once the process has been reaped (and its log closed)
}

// Addr returns the member's client address, 127.0.0.1:port.
func (m *Member) Addr() string { return strings.TrimPrefix(m.ClientURL, "http://") }

// Kill kills the member by its PID (SIGKILL) and waits for it to exit.
func (m *Member) Kill() {
	if m.exited == nil {
		return // never started
	}
	select {
	case <-m.exited:
		return
	default:
	}
	_ = m.child.Signal(os.Kill)
	<-m.exited
}

// Cluster is a set of etcd members started together.
type Cluster struct {
	Members []*Member
	Dir     string // the members' data directories and logs
}

// Addrs returns the members' client addresses (127.0.0.1:port).
func (c *Cluster) Addrs() []string {
	var addrs []string
	for _, m := range c.Members {
		addrs = append(addrs, m.Addr())
	}
	return addrs
}

// Stop kills every member (see Member.Kill).
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, m := range c.Members {
		wg.Go(m.Kill)
	}
	wg.Wait()
}

// Start starts a one-member etcd with its data in tb.TempDir, waits until
// it is healthy and returns its client address (127.0.0.1:port). It is
// killed when tb ends; if tb failed, its log is shown first.
func Start(tb testing.TB) string {
	tb.Helper()
	bin := Binary(tb)
	c := newCluster(tb, 1, tb.TempDir())
	m := c.Members[0]
	tb.Cleanup(func() {
		c.Stop()
		if tb.Failed() {
			if b, err := os.ReadFile(m.LogPath); err == nil && len(b) > 0 {
				tb.Logf("etcd's log:\n%s", b)
			}
		}
	})
	c.start(tb, bin)
	return m.Addr()
}

// StartCluster starts an n-member etcd cluster, waits until every member
// is healthy and returns it. Data and logs go to a new directory under
// os.TempDir. The members are killed when tb ends; the directory is then
// removed, or kept and named if tb failed.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	bin := Binary(tb)
	dir, err := os.MkdirTemp("", "sharelock-etcd-")
	if err != nil {
		tb.Fatal(err)
	}
	c := newCluster(tb, n, dir)
	tb.Cleanup(func() {
		c.Stop()
		if !tb.Failed() {
			os.RemoveAll(dir)
		} else {
			tb.Logf("etcd data and logs kept in %s", dir)
		}
	})
	c.start(tb, bin)
	return c
}

// newCluster lays out n members on free loopback ports, their data and
// logs in dir.
func newCluster(tb testing.TB, n int, dir string) *Cluster {
	tb.Helper()
	c := &Cluster{Dir: dir}
	ports := FreePorts(tb, 2*n)
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		c.Members = append(c.Members, &Member{Name: name,
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			DataDir:   filepath.Join(dir, name),
			LogPath:   filepath.Join(dir, name+".log"),
		})
	}
	return c
}

// start starts every member, then waits until each is healthy (a member of
// a larger cluster is not before a quorum of them runs).
func (c *Cluster) start(tb testing.TB, bin string) {
	tb.Helper()
	var initial []string
	for _, m := range c.Members {
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	for _, m := range c.Members {
		if err := m.start(bin, strings.Join(initial, ",")); err != nil {
			tb.Fatal(err)
		}
	}
	for _, m := range c.Members {
		if err := m.waitHealthy(15 * time.Second); err != nil {
			tb.Fatalf("etcd member %s at %s: %v (log %s)", m.Name, m.ClientURL, err, m.LogPath)
		}
	}
}

func (m *Member) start(bin, initial string) error {
	logf, err := os.Create(m.LogPath)
	if err != nil {
		return err
	}
	m.cmd = exec.Command(bin,
		"--name", m.Name,
		"--data-dir", m.DataDir,
		"--listen-client-urls", m.ClientURL,
		"--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL,
		"--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", initial,
		"--initial-cluster-state", "new",
		"--initial-cluster-token", "sharelock-test",
		"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
	)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	child, err := proc.Start(m.cmd)
	if err != nil {
		logf.Close()
		return fmt.Errorf("start etcd: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		<-child.Done()
		logf.Close()
		close(exited)
	}()
	m.child, m.exited = child, exited
	return nil
}

func (m *Member) waitHealthy(d time.Duration) error {
	end := time.Now().Add(d)
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	for time.Now().Before(end) {
		select {
		case <-m.exited:
			return fmt.Errorf("exited early")
		default:
		}
		resp, err := hc.Get(m.ClientURL + "/health")
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
