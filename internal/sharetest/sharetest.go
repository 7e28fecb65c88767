// Package sharetest starts real network shares on this machine for tests:
// a private SFTP server (sshd) mounted twice with sshfs, a private SMB
// server (smbd) mounted twice with smbnetfs, or a private NFS server
// (nfs-ganesha, NFSv3) mounted twice with the FUSE NFSv3 client of package
// nfsfuse. The two mounts of one share play two machines that reach the same
// shared folder, each through its own client and its own client-side caches,
// which is what sharelock meets in an office.
//
// Everything runs on 127.0.0.1 on free ports (NFS: in a private network
// namespace that has only its own loopback), with every configuration file,
// key, password, state directory and log under a private temporary directory;
// nothing of the machine's own ssh, Samba or NFS setup is read or changed.
// The rigs need Linux, root, FUSE (/dev/fuse, fusermount) and the Debian
// packages openssh-server, openssh-client, sshfs, samba, samba-common-bin,
// smbnetfs, nfs-ganesha, nfs-ganesha-vfs, rpcbind, iproute2 and util-linux
// (scripts/deps.sh, run by `make test`, installs them as root).
//
// The NFS mounts are served by processes of the executable that imports
// this package (the test binary, say), started again with an environment
// variable that makes its package initialisation run the NFS client instead.
//
// In a test:
//
//	sh := sharetest.StartSFTP(t, false) // or StartSMB(t), StartNFS(t)
//	a := filepath.Join(sh.Mounts[0], "data.db") // as machine A sees it
//	b := filepath.Join(sh.Mounts[1], "data.db") // the same file, as machine B sees it
//
// The share is unmounted and its servers stopped in t.Cleanup. If the test
// process dies without cleaning up (a panic, a timeout, Ctrl-C), a small
// watchdog process it started unmounts the share, stops the servers and
// deletes the network namespace.
//
// Without the tools (or without root) the Start functions skip the test with
// a message naming what is missing; when the environment variable CI is
// "true" they fail it instead, so that CI never silently skips real shares.
//
// For manual experiments, `go run ./internal/sharetest/cmd/sharemount sftp DIR`
// starts one outside of a test.
//
// It is a test rig: no production code imports it.
package sharetest

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Kinds of share, as accepted by Launch and Missing.
const (
	// SFTP: sshd + sshfs, tuned so that no client cache hides a change
	// (dir_cache=no, attr_timeout=0, entry_timeout=0, negative_timeout=0).
	SFTP = "sftp"
	// SFTPCache: sshd + sshfs with sshfs's default caching (attributes and
	// directory listings cached for 20 s), as most people mount it.
	SFTPCache = "sftp-cache"
	// SMB: smbd (SMB2/3) + smbnetfs with kernel caches off.
	SMB = "smb"
	// NFS: nfs-ganesha (NFSv3, VFS FSAL) + the FUSE NFSv3 client of package
	// nfsfuse, which caches nothing (every lookup, stat, read and write is
	// an RPC; writes are FILE_SYNC) and creates O_EXCL files with a
	// GUARDED CREATE.
	NFS = "nfs"
)

// Kinds lists every kind of share.
var Kinds = []string{SFTP, SFTPCache, SMB, NFS}

// Share is a running share, mounted twice.
type Share struct {
	// Name is the kind of share: "sftp", "sftp-cache", "smb" or "nfs".
	Name string
	// Export is the shared directory on the server side (a local directory).
	Export string
	// Mounts are the same shared directory as machine A, machine B (and
	// more machines, when launched with LaunchN) see
	// it, each through its own client mount.
	Mounts []string
	// Dir is the private directory holding everything of this share
	// (configuration, keys, logs, the export and the mount points).
	Dir string

	mu        sync.Mutex
	logs      []logFile
	closers   []func() error // run in reverse order by Close
	closeOnce sync.Once
	closeErr  error
}

type logFile struct{ name, path string }

func (s *Share) String() string {
	return fmt.Sprintf("%s share of %s mounted at %s and %s", s.Name, s.Export, s.Mounts[0], s.Mounts[1])
}

func (s *Share) addLog(name, path string) {
	s.mu.Lock()
	s.logs = append(s.logs, logFile{name, path})
	s.mu.Unlock()
}

func (s *Share) onClose(f func() error) {
	s.mu.Lock()
	s.closers = append(s.closers, f)
	s.mu.Unlock()
}

// Logs returns the end of every daemon log of the share (servers and client
// mounts), labelled, for error messages.
func (s *Share) Logs() string {
	s.mu.Lock()
	logs := append([]logFile(nil), s.logs...)
	s.mu.Unlock()
	var b strings.Builder
	for _, l := range logs {
		data, err := os.ReadFile(l.path)
		if err != nil {
			fmt.Fprintf(&b, "--- %s (%s): %v\n", l.name, l.path, err)
			continue
		}
		const max = 4000
		if len(data) > max {
			data = append([]byte("[...]"), data[len(data)-max:]...)
		}
		fmt.Fprintf(&b, "--- %s (%s):\n%s", l.name, l.path, data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Close unmounts both mounts and stops the servers, in that order. It does
// not remove Dir. It is idempotent.
func (s *Share) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		closers := s.closers
		s.closers = nil
		s.mu.Unlock()
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i](); err != nil {
				errs = append(errs, err)
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// StartSFTP starts a private sshd on 127.0.0.1 exporting a fresh directory
// and mounts it twice with sshfs. With caching false the mounts keep no
// client caches (dir_cache=no, attr_timeout=0, entry_timeout=0,
// negative_timeout=0); with caching true they use sshfs's defaults (20 s
// attribute and directory caches). The share is torn down in t.Cleanup.
func StartSFTP(t testing.TB, caching bool) *Share {
	t.Helper()
	if caching {
		return start(t, SFTPCache)
	}
	return start(t, SFTP)
}

// StartSMB starts a private smbd on 127.0.0.1 exporting a fresh directory
// and mounts it twice with smbnetfs (kernel caches off). The share is torn
// down in t.Cleanup.
func StartSMB(t testing.TB) *Share {
	t.Helper()
	return start(t, SMB)
}

// StartNFS starts a private nfs-ganesha (NFSv3) with its own rpcbind in a
// private network namespace, exporting a fresh directory, and mounts it
// twice with the FUSE NFSv3 client of package nfsfuse (no client caches),
// each mount a separate process with its own connection. The share is torn
// down in t.Cleanup, the network namespace included.
func StartNFS(t testing.TB) *Share {
	t.Helper()
	return start(t, NFS)
}

// Require skips t (or fails it when CI=true) unless shares of the given kind
// can be started here.
func Require(t testing.TB, kind string) {
	t.Helper()
	err := Missing(kind)
	if err == nil {
		return
	}
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("sharetest: skipping %s share test: %v", kind, err)
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("sharetest: %s share test cannot run (CI=true, so this is an error, not a skip): %v", kind, err)
	}
	t.Skipf("sharetest: skipping %s share test: %v", kind, err)
}

// StartN starts a share of the given kind (SFTP, SFTPCache, SMB or NFS)
// with n client mounts, one per simulated machine (see LaunchN). It is torn
// down in t.Cleanup.
func StartN(t testing.TB, kind string, n int) *Share {
	t.Helper()
	return startN(t, kind, n)
}

func start(t testing.TB, kind string) *Share {
	t.Helper()
	return startN(t, kind, 2)
}

func startN(t testing.TB, kind string, n int) *Share {
	t.Helper()
	Require(t, kind)
	dir, err := os.MkdirTemp("", "sharetest-"+kind+"-")
	if err != nil {
		t.Fatalf("sharetest: %v", err)
	}
	s, err := LaunchN(kind, dir, n)
	if err != nil {
		if !stillMounted(dir) {
			os.RemoveAll(dir)
		}
		t.Fatalf("sharetest: starting the %s share: %v", kind, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("sharetest: stopping the %s share: %v\n%s", kind, err, s.Logs())
		}
		if stillMounted(dir) {
			t.Errorf("sharetest: %s is still mounted after Close; not removing it", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("sharetest: removing %s: %v", dir, err)
		}
	})
	return s
}

// errNotLinux is returned on other systems.
var errNotLinux = fmt.Errorf("real-share rigs need Linux (this is %s): %w", runtime.GOOS, errors.ErrUnsupported)
