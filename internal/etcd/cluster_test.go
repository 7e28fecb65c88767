package etcd

import (
	"context"
	"strings"
	"testing"
	"time"

	"sharelock/internal/etcdtest"
)

// The tests run the real etcd server on loopback ports, with data in a
// temporary directory (internal/etcdtest). Without the binary they skip,
// except under CI=true where they fail.

// cluster is a set of etcd members started by a test.
type cluster struct {
	*etcdtest.Cluster
}

// member is one etcd server process of a cluster.
type member struct {
	name string
	m    *etcdtest.Member
}

// kill stops the member by its PID (SIGKILL) and waits for it to exit.
func (m member) kill() { m.m.Kill() }

// etcdBinary finds the etcd server binary, or skips (fails under CI=true).
func etcdBinary(tb testing.TB) string {
	tb.Helper()
	return etcdtest.Binary(tb)
}

// freePorts returns n distinct free loopback ports.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	return etcdtest.FreePorts(tb, n)
}

// startCluster starts an n-member etcd cluster on loopback and waits until
// it serves. It is stopped (by PID) when tb ends.
func startCluster(tb testing.TB, n int) *cluster {
	tb.Helper()
	return &cluster{etcdtest.StartCluster(tb, n)}
}

// url returns the store URL of the cluster's members (host:port list).
func (c *cluster) url(prefix string) string {
	return "etcd://" + strings.Join(c.Addrs(), ",") + prefix
}

// leader returns the member that leads the cluster now.
func (c *cluster) leader(tb testing.TB, s *Store) member {
	tb.Helper()
	for try := 0; try < 50; try++ {
		for _, m := range c.Members {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := s.Client().Status(ctx, m.Addr())
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return member{m.Name, m}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatal("no etcd leader found")
	return member{}
}
