package sharetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// wedgeAfter is how long a client mount may leave a probe unanswered before
// the watchdog calls it wedged. smbnetfs sometimes never answers a request
// again under heavy load (its per-server worker waits for a reply that never
// comes); every later call on the mount then hangs in the kernel, and a
// test binary with a thread stuck there cannot even exit at its timeout.
var wedgeAfter = 90 * time.Second // a variable for the test

// fuseConnections is where the kernel's fusectl filesystem lists FUSE
// connections; writing to <id>/abort fails every pending and later request
// of that connection (ECONNABORTED for pending ones, ENOTCONN later).
const fuseConnections = "/sys/fs/fuse/connections"

// watchMount probes the client mount mnt every 2 s (a lookup in the shared
// directory, which needs the server) until stop is closed. If a probe is
// not answered within wedgeAfter, it aborts the mount's FUSE connection, so
// that the test fails with errors (ECONNABORTED, ENOTCONN) instead of
// hanging, and says so
// on stderr and in the share's log.
func watchMount(sh *Share, mnt string, stop <-chan struct{}) {
	var st syscall.Stat_t
	if err := syscall.Stat(mnt, &st); err != nil {
		return
	}
	conn := unix.Minor(st.Dev)
	probe := filepath.Join(mnt, probeName)
	for _, m := range sh.Mounts {
		if m != "" && strings.HasPrefix(m, mnt) {
			probe = filepath.Join(m, probeName)
		}
	}
	for {
		select {
		case <-stop:
			return
		case <-time.After(2 * time.Second):
		}
		done := make(chan struct{})
		go func() {
			_, _ = os.Lstat(probe)
			close(done)
		}()
		select {
		case <-done:
			continue
		case <-stop:
			return
		case <-time.After(wedgeAfter):
		}
		err := abortFUSE(conn)
		msg := fmt.Sprintf("sharetest: the client mount %s is wedged (a lookup unanswered for %v): aborted its FUSE connection %d (%v); calls on it now fail (ECONNABORTED, ENOTCONN)",
			mnt, wedgeAfter, conn, err)
		fmt.Fprintln(os.Stderr, msg)
		log := filepath.Join(sh.Dir, wedgedLog)
		sh.addLog("watchdog", log)
		_ = os.WriteFile(log, []byte(msg+"\n"), 0o644)
		return
	}
}

// Answering reports whether a lookup in each client mount of the share (the
// watchdog's probe) is answered within d.
func (s *Share) Answering(d time.Duration) bool {
	done := make(chan struct{}, len(s.Mounts))
	for _, m := range s.Mounts {
		go func() {
			_, _ = os.Lstat(filepath.Join(m, probeName))
			done <- struct{}{}
		}()
	}
	timeout := time.After(d)
	for range s.Mounts {
		select {
		case <-done:
		case <-timeout:
			return false
		}
	}
	return true
}

// probeName is the (absent) file whose lookup probes a mount.
const probeName = ".sharetest-alive"

// wedgedLog, in the share's directory, is written when the watchdog has
// aborted a wedged client mount.
const wedgedLog = "wedged.log"

// Wedged reports whether the watchdog found one of the share's client
// mounts wedged and aborted it (its calls now fail): the share must be
// started again before it is used.
func (s *Share) Wedged() bool {
	_, err := os.Stat(filepath.Join(s.Dir, wedgedLog))
	return err == nil
}

// abortFUSE aborts FUSE connection conn, mounting fusectl first if needed.
func abortFUSE(conn uint32) error {
	ctl := filepath.Join(fuseConnections, fmt.Sprint(conn), "abort")
	if _, err := os.Stat(ctl); err != nil {
		if err := unix.Mount("fusectl", fuseConnections, "fusectl", 0, ""); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mounting fusectl on %s: %w", fuseConnections, err)
		}
	}
	return os.WriteFile(ctl, []byte("1"), 0o200)
}
