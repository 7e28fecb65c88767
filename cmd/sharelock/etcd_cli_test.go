//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEtcdNoSibling: the default binary, given an etcd store and no
// sharelock-etcd beside it or on PATH, fails (exit 1) naming what it looked
// for and how to fix it.
func TestEtcdNoSibling(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(slBin)
	if err != nil {
		t.Fatal(err)
	}
	lone := filepath.Join(dir, "sharelock")
	if err := os.WriteFile(lone, b, 0o755); err != nil {
		t.Fatal(err)
	}
	emptyPath := t.TempDir()
	for _, args := range [][]string{
		{"run", "--store", "etcd://127.0.0.1:2379/t", "db", "--", "true"},
		{"status", "db"}, // the store from $SHARELOCK_STORE
	} {
		cmd := exec.Command(lone, args...)
		cmd.Env = append(os.Environ(), "PATH="+emptyPath, storeEnv+"=etcds://h1,h2/t")
		r := startCmd(t, cmd).wait(10 * time.Second)
		if r.code != exitError {
			t.Fatalf("%v: want exit %d\n%v", args, exitError, r)
		}
		mustContain(t, "stderr", r.stderr, "sharelock-etcd", filepath.Join(dir, "sharelock-etcd"), "on PATH", "fix:", "go build -tags etcd")
		if args[0] == "status" {
			mustContain(t, "stderr", r.stderr, "etcds://h1,h2/t")
		}
	}
	// A store that is neither the folder nor etcd is a usage error.
	r := runCLI(t, "status", "--store", "redis://h/x", "db")
	if r.code != exitUsage {
		t.Fatalf("unknown store: want exit %d\n%v", exitUsage, r)
	}
	mustContain(t, "stderr", r.stderr, `"redis://h/x"`, "fix:")
}

// TestDefaultBuildLinksNoEtcd: the etcd client's package init costs
// milliseconds per start; only the etcd build may link it.
func TestDefaultBuildLinksNoEtcd(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "go.etcd.io/") || strings.HasPrefix(dep, "google.golang.org/grpc") || dep == "sharelock/internal/etcd" || dep == "sharelock/etcdstore" {
			t.Errorf("cmd/sharelock imports %s without -tags etcd", dep)
		}
	}
	out, err = exec.Command("go", "list", "-tags", "etcd", "-deps", ".").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "sharelock/etcdstore\n") {
		t.Errorf("the etcd build does not import sharelock/etcdstore: %v\n%s", err, out)
	}
}
