package etcdtest

import (
	"net"
	"net/http"
	"testing"
	"time"
)

func healthy(addr string) bool {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + addr + "/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

func TestStart(t *testing.T) {
	addr := Start(t)
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
		t.Fatalf("address %q, want 127.0.0.1:port", addr)
	}
	if !healthy(addr) {
		t.Fatalf("etcd at %s not healthy", addr)
	}
}

// TestStartCluster: three healthy members; one killed stops answering, and
// the other two keep a quorum.
func TestStartCluster(t *testing.T) {
	c := StartCluster(t, 3)
	if len(c.Addrs()) != 3 {
		t.Fatalf("addresses %v", c.Addrs())
	}
	for _, m := range c.Members {
		if !healthy(m.Addr()) {
			t.Fatalf("member %s at %s not healthy", m.Name, m.Addr())
		}
	}
	c.Members[0].Kill()
	if healthy(c.Members[0].Addr()) {
		t.Fatalf("member %s answers after Kill", c.Members[0].Name)
	}
	c.Members[0].Kill() // again: a no-op
	for _, m := range c.Members[1:] {
		if err := m.waitHealthy(15 * time.Second); err != nil {
			t.Fatalf("member %s after one of three was killed: %v", m.Name, err)
		}
	}
}
