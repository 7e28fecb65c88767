//go:build unix

package folder

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Regression (review R10): an owner "file" that is a directory or a FIFO is
// unreadable content (taken over after the claim window), never a hang.
func TestOwnerNotARegularFile(t *testing.T) {
	for _, kind := range []string{"dir", "fifo"} {
		t.Run(kind, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "wems.db")
			owner := filepath.Join(LockDir(db), genName(1), ownerName)
			os.MkdirAll(filepath.Dir(owner), 0o777)
			if kind == "dir" {
				os.Mkdir(owner, 0o777)
			} else if err := syscall.Mkfifo(owner, 0o666); err != nil {
				t.Skip(err)
			}
			s := newStore(t, Options{OpTimeout: 2 * time.Second})
			start := time.Now()
			l, err := s.Acquire(context.Background(), req(db))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release()
			if l.Token() != 2 || time.Since(start) > 5*time.Second {
				t.Fatalf("token %d after %v", l.Token(), time.Since(start))
			}
		})
	}
}
