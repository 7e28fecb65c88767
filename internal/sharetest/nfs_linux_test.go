//go:build linux

package sharetest_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"sharelock/internal/sharetest"
)

// TestNFSPrimitives checks, through the two mounts of the NFS share, the
// primitives the protocol builds on and the client's error mapping, and
// measures their latency and the exclusive-create and mkdir races.
func TestNFSPrimitives(t *testing.T) {
	t0 := time.Now()
	sh := sharetest.StartNFS(t)
	t.Logf("%v (started in %v)", sh, time.Since(t0).Round(time.Millisecond))
	a, b := sh.Mounts[0], sh.Mounts[1]

	t.Run("errors", func(t *testing.T) {
		dir := filepath.Join(a, "errors")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		bdir := filepath.Join(b, "errors")
		for _, c := range []struct {
			what string
			err  error
			want syscall.Errno
		}{
			{"mkdir of an existing directory", os.Mkdir(bdir, 0o755), syscall.EEXIST},
			{"O_EXCL create of an existing directory", createExcl(bdir), syscall.EEXIST},
			{"lstat of a missing file", lstat(filepath.Join(bdir, "missing")), syscall.ENOENT},
			{"rmdir of a missing directory", syscall.Rmdir(filepath.Join(bdir, "missing")), syscall.ENOENT},
			{"unlink of a directory", syscall.Unlink(bdir), syscall.EISDIR},
		} {
			if !errors.Is(c.err, c.want) {
				t.Errorf("%s: got %v, want %v", c.what, c.err, c.want)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Rmdir(bdir); !errors.Is(err, syscall.ENOTEMPTY) {
			t.Errorf("rmdir of a non-empty directory: got %v, want ENOTEMPTY", err)
		}
		if err := os.Mkdir(filepath.Join(bdir, "f", "sub"), 0o755); !errors.Is(err, syscall.ENOTDIR) {
			t.Errorf("mkdir below a file: got %v, want ENOTDIR", err)
		}
		if err := syscall.Rmdir(filepath.Join(bdir, "f")); !errors.Is(err, syscall.ENOTDIR) {
			t.Errorf("rmdir of a file: got %v, want ENOTDIR", err)
		}
		// Deleting a file another machine has open works (NFSv3 has no
		// open state); the open file then reads as stale.
		f, err := os.Open(filepath.Join(dir, "f"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := os.Remove(filepath.Join(bdir, "f")); err != nil {
			t.Errorf("removing a file open on the other mount: %v", err)
		}
		if err := syscall.Rmdir(bdir); err != nil {
			t.Errorf("rmdir of the emptied directory: %v", err)
		}
	})

	t.Run("latency", func(t *testing.T) {
		const n = 50
		var create, unlink, read []time.Duration
		for i := range n {
			p := filepath.Join(a, fmt.Sprintf("lat%d", i))
			t0 := time.Now()
			if err := os.WriteFile(p, []byte("owner record\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			create = append(create, time.Since(t0))
			t0 = time.Now()
			if _, err := os.ReadFile(filepath.Join(b, fmt.Sprintf("lat%d", i))); err != nil {
				t.Fatal(err)
			}
			read = append(read, time.Since(t0))
			t0 = time.Now()
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			unlink = append(unlink, time.Since(t0))
		}
		t.Logf("create+write+close %s; other mount open+read %s; unlink %s", stats(create), stats(read), stats(unlink))
	})

	// Two machines race to create the same name, 100 times: exactly one
	// must win every race.
	race := func(t *testing.T, what string, op func(string) error) {
		const rounds = 100
		double, none := 0, 0
		losers := map[string]int{}
		for i := range rounds {
			name := fmt.Sprintf("%s%03d", what, i)
			var wg sync.WaitGroup
			var errs [2]error
			start := make(chan struct{})
			for m, mnt := range []string{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[m] = op(filepath.Join(mnt, name))
				}()
			}
			close(start)
			wg.Wait()
			wins := 0
			for _, err := range errs {
				if err == nil {
					wins++
				} else {
					losers[fmt.Sprint(errors.Unwrap(err))]++
				}
			}
			switch wins {
			case 0:
				none++
			case 2:
				double++
			}
		}
		t.Logf("%s race, two mounts, %d rounds: %d double wins, %d without a winner; the loser got %v", what, rounds, double, none, losers)
		if double+none > 0 {
			t.Errorf("%s is not atomic across the two mounts", what)
		}
	}
	t.Run("excl-race", func(t *testing.T) { race(t, "excl", createExcl) })
	t.Run("mkdir-race", func(t *testing.T) { race(t, "mkdir", func(p string) error { return os.Mkdir(p, 0o755) }) })

	t0 = time.Now()
	if err := sh.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped in %v", time.Since(t0).Round(time.Millisecond))
}

func createExcl(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

func lstat(p string) error {
	_, err := os.Lstat(p)
	return err
}
