package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"sharelock"
)

// storeEnv is the default of --store.
const storeEnv = "SHARELOCK_STORE"

// etcdBinaryName is the sharelock built with the etcd store (-tags etcd),
// which the plain binary hands etcd:// and etcds:// stores to.
const etcdBinaryName = "sharelock-etcd"

// reexecEnv is set by the plain binary when it hands over to
// sharelock-etcd, so that a sharelock-etcd that is not one (a copy of the
// plain binary) fails instead of handing over to itself for ever. The etcd
// build clears it at start, so the commands it runs never see it.
const reexecEnv = "SHARELOCK_ETCD_HANDOVER"

// openStore opens the store named by an etcd:// or etcds:// URL. It is nil
// in the default build, which does not link the etcd client (its package
// init alone costs a few milliseconds per start): that binary hands such
// URLs over to sharelock-etcd (execEtcd). store_etcd.go (-tags etcd) sets
// it. A bad URL is returned as a usageError.
var openStore func(ctx context.Context, url string) (sharelock.Store, io.Closer, error)

// usageError marks an error that is the user's input (exit 64).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// storeOpenTimeout bounds connecting to an etcd store.
const storeOpenTimeout = 10 * time.Second

// storeFlag adds --store to fs, defaulting to $SHARELOCK_STORE.
func storeFlag(fs *flag.FlagSet) *string {
	return fs.String("store", os.Getenv(storeEnv),
		"where the locks live: empty for the shared folder beside each PATH (the default), or etcd://HOST:2379[,HOST2:2379]/PREFIX (etcds:// for TLS); default $"+storeEnv)
}

// isEtcdURL reports whether url names an etcd store.
func isEtcdURL(url string) bool {
	return strings.HasPrefix(url, "etcd://") || strings.HasPrefix(url, "etcds://")
}

// cmdStore is the store a command works on.
type cmdStore struct {
	url    string
	store  sharelock.Store // nil: the shared folder
	closer io.Closer
}

// etcd reports whether the store is an etcd cluster (rather than the
// shared folder).
func (s *cmdStore) etcd() bool { return s.store != nil }

// opts returns the option selecting the store, if any.
func (s *cmdStore) opts() []sharelock.Option {
	if s.store == nil {
		return nil
	}
	return []sharelock.Option{sharelock.WithStore(s.store)}
}

// close closes the store: for etcd it revokes the lease, so that a lock
// still held through it is free for the others at once.
func (s *cmdStore) close(stderr io.Writer) {
	if s.closer == nil {
		return
	}
	if err := s.closer.Close(); err != nil {
		fmt.Fprintf(stderr, "sharelock: closing the store %s: %v\n", s.url, err)
	}
	s.closer = nil
}

// setupStore opens the store that --store names for the command
// "sharelock NAME ARGS...". It returns the exit code to end with when the
// command cannot go on (or, in the default build given an etcd URL, the
// exit code of sharelock-etcd on Windows: on Unix that binary replaces this
// process and setupStore does not return), or -1 to go on.
func setupStore(name string, args []string, url string, stderr io.Writer) (*cmdStore, int) {
	s := &cmdStore{url: url}
	if url == "" {
		return s, -1
	}
	if !isEtcdURL(url) {
		fmt.Fprintf(stderr, "sharelock %s: unknown store %q (fix: leave --store and $%s empty to use the shared folder beside PATH, or give an etcd cluster as etcd://HOST:2379/PREFIX, or etcds://... for TLS)\n",
			name, url, storeEnv)
		return nil, exitUsage
	}
	if openStore == nil {
		return nil, execEtcd(append([]string{name}, args...), url, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
	defer cancel()
	st, closer, err := openStore(ctx, url)
	if err != nil {
		fmt.Fprintf(stderr, "sharelock: %s\n", errText(err))
		if errors.As(err, new(usageError)) {
			return nil, exitUsage
		}
		return nil, exitError
	}
	s.store, s.closer = st, closer
	return s, -1
}

// execEtcd hands the command over to sharelock-etcd, found next to this
// executable or on PATH: on Unix it replaces this process (same PID, so a
// holder's recorded PID stays right); on Windows it runs it with the same
// arguments and console and returns its exit code. If there is none it
// says what it looked for and how to fix that, and returns exitError.
func execEtcd(args []string, url string, stderr io.Writer) int {
	exe := etcdBinaryName
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	if os.Getenv(reexecEnv) != "" {
		self, _ := os.Executable()
		fmt.Fprintf(stderr, "sharelock: %s was started for the etcd store %s but is built without etcd support (fix: rebuild it with go build -tags etcd -o %s ./cmd/sharelock, or make build)\n",
			self, url, exe)
		return exitError
	}
	var looked []string
	path := ""
	if self, err := os.Executable(); err == nil {
		cand := filepath.Join(filepath.Dir(self), exe)
		looked = append(looked, cand)
		if fi, err := os.Stat(cand); err == nil && !fi.IsDir() {
			path = cand
		}
	}
	if path == "" {
		looked = append(looked, etcdBinaryName+" on PATH")
		if p, err := exec.LookPath(etcdBinaryName); err == nil {
			path = p
		}
	}
	if path == "" {
		fmt.Fprintf(stderr, "sharelock: the store %s is an etcd cluster, and this sharelock does not include the etcd client; it hands etcd stores to %s, but found none (looked for %s) (fix: install %s, built with make build or go build -tags etcd -o %s ./cmd/sharelock, next to sharelock or on PATH)\n",
			url, etcdBinaryName, strings.Join(looked, " and "), exe, exe)
		return exitError
	}
	if err := os.Setenv(reexecEnv, "1"); err != nil {
		fmt.Fprintf(stderr, "sharelock: %v\n", err)
		return exitError
	}
	return execBinary(path, args, stderr)
}

// etcdSolutions are the suggestions shown with a LockedError from an etcd
// store: the shared folder's name folder permissions and a break that
// would watch for a stale holder, neither of which applies.
func etcdSolutions(le *sharelock.LockedError, url string) []string {
	var out []string
	if len(le.Solutions) > 0 {
		out = append(out, le.Solutions[0]) // wait for the holder
	}
	return append(out, fmt.Sprintf("If its program hangs, an administrator can end the hold: sharelock break --store %s --force --reason \"...\" %s (a crashed holder's lock is free by itself once its lease expires)", url, le.Path))
}
