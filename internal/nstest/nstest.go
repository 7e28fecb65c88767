// Package nstest helps tests run helper processes as simulated machines:
// each in its own Linux PID, UTS and mount namespace (unshare --pid --uts
// --mount-proc), with its own host name, sharing the real machine's
// filesystem, machine ID and boot ID. Two such "machines" cannot judge each
// other's processes by PID, which is what sharelock's same-machine liveness
// check must respect.
//
// It is for tests only.
package nstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
)

// Available reports whether simulated machines can be started here: Linux,
// root, and unshare(1) on PATH. The error says what is missing.
func Available() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("PID and UTS namespaces need Linux (this is %s)", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return errors.New("creating PID, UTS and mount namespaces needs root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return errors.New("unshare(1) is not on PATH (Debian package util-linux; `make deps` installs it)")
	}
	return nil
}

// Require skips t unless simulated machines are available. When the
// environment variable CI is "true", a missing prerequisite on Linux fails
// the test instead: CI must not silently skip the namespace tests.
func Require(t testing.TB) {
	t.Helper()
	err := Available()
	if err == nil {
		return
	}
	if runtime.GOOS == "linux" && os.Getenv("CI") == "true" {
		t.Fatalf("namespace test cannot run (CI=true, so this is an error, not a skip): %v", err)
	}
	t.Skipf("skipping namespace test: %v", err)
}

// Command returns a command that runs name with args on a simulated machine
// called host: in new PID, UTS and mount namespaces (with /proc remounted
// for the new PID namespace), after setting the host name.
//
// If firstPID is 0, name runs as PID 1 of its namespace. Otherwise it runs
// as a child of the namespace's init, with PID firstPID (set through
// /proc/sys/kernel/ns_last_pid); firstPID must be at least 2.
//
// The namespace's init is killed when the returned command (unshare) dies,
// even by SIGKILL, and with it every process of the namespace. Standard
// input, output and error reach name unchanged; the caller may set Env, Dir
// and the standard streams on the returned command as usual.
func Command(host string, firstPID int, name string, args ...string) *exec.Cmd {
	script := `h=$1; shift; hostname "$h" || exit 97; exec "$@"`
	if firstPID > 0 {
		// No command may fork between the write and the helper's start;
		// "exit $?" keeps the shell from exec'ing the helper as PID 1.
		script = `h=$1; p=$2; shift 2; hostname "$h" || exit 97; ` +
			`echo "$p" > /proc/sys/kernel/ns_last_pid || exit 98; "$@"; exit $?`
	}
	// --propagation slave: mounts and unmounts made outside after the
	// start still reach the namespace (a private copy would keep FUSE
	// mounts of other tests alive after they are unmounted).
	argv := []string{"--uts", "--pid", "--fork", "--mount-proc", "--propagation", "slave", "--kill-child",
		"sh", "-c", script, "nstest", host}
	if firstPID > 0 {
		argv = append(argv, strconv.Itoa(firstPID-1))
	}
	argv = append(argv, name)
	argv = append(argv, args...)
	return exec.Command("unshare", argv...)
}
