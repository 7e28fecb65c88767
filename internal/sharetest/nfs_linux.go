//go:build linux

package sharetest

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"sharelock/internal/nfsfuse"
)

// The NFS rig: nfs-ganesha (NFSv3, VFS FSAL) and its own rpcbind run in a
// private network namespace, with a private tmpfs on /run (their sockets,
// locks and pid files) in a private mount namespace. Each of the two mounts
// is a separate process of this very executable (re-executed with
// nfsClientEnv set; see init) running the FUSE NFSv3 client of package
// nfsfuse inside that network namespace (nsenter --net, which leaves the
// mount namespace alone so that the FUSE mount is visible to everyone).
// Only the namespace's loopback interface exists for them: nothing of theirs
// reaches the machine's network, and nothing else reaches them.

// nfsClientEnv, set to "1" in the environment of a process of a binary that
// imports this package, makes it the FUSE NFS client (nfsClientMain)
// instead of whatever it is.
const nfsClientEnv = "SHARETEST_NFS_CLIENT"

func init() {
	if os.Getenv(nfsClientEnv) == "1" {
		os.Exit(nfsClientMain(os.Args[1:]))
	}
}

// nfsPort is ganesha's NFS port (the namespace has no other users).
const nfsPort = 2049

func launchNFS(sh *Share, r *reaper) error {
	ndir := filepath.Join(sh.Dir, "nfs")
	if err := os.MkdirAll(filepath.Join(ndir, "recovery"), 0o700); err != nil {
		return err
	}
	ns := "sharetest-" + randHex(6)
	// Registered before it exists, so that the watchdog (last in, first
	// out) deletes it after everything that runs in it has stopped.
	r.send("netns " + ns)
	if err := addNetns(ns); err != nil {
		return err
	}
	sh.onClose(func() error { return deleteNetns(ns) })
	nsPath := filepath.Join("/run/netns", ns)

	conf := filepath.Join(ndir, "ganesha.conf")
	logPath := filepath.Join(ndir, "ganesha.log")
	outPath := filepath.Join(ndir, "ganesha.out")
	sh.addLog("ganesha", logPath)
	sh.addLog("ganesha stdout", outPath)
	cfg := fmt.Sprintf(`# sharetest: a private nfs-ganesha for one test share (NFSv3 only)
NFS_CORE_PARAM {
  Protocols = 3;
  NFS_Port = %d;
  Enable_NLM = false;
  Enable_RQUOTA = false;
  Enable_UDP = false;
  # Bind_addr stays unset: the network namespace has only its loopback.
}
NFS_KRB5 { Active_krb5 = false; }
NFSV4 {
  Graceless = true;
  RecoveryBackend = fs;
  RecoveryRoot = "%s";
}
EXPORT {
  Export_Id = 1;
  Path = "%s";
  Pseudo = "/share";
  Protocols = 3;
  Transports = TCP;
  Access_Type = RW;
  Squash = No_Root_Squash;
  SecType = sys;
  Disable_ACL = true;
  # No server-side attribute cache: the rig's tests also look at the export
  # directly.
  Attr_Expiration_Time = 0;
  FSAL { Name = VFS; }
}
LOG { Default_Log_Level = EVENT; }
`, nfsPort, filepath.Join(ndir, "recovery"), sh.Export)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		return err
	}
	tools := map[string]string{}
	for _, t := range []string{"nsenter", "unshare", "rpcbind", "ganesha.nfsd"} {
		p, err := findTool(t)
		if err != nil {
			return err
		}
		tools[t] = p
	}
	// rpcbind and ganesha.nfsd in one process group (the shell becomes
	// ganesha; rpcbind is its child), so that stopping it stops both. The
	// paths are the script's arguments ($1...), never parsed as shell code.
	//
	// The new mount namespace starts with a copy of every mount there is,
	// among them the FUSE mounts of other tests: a copy would keep such a
	// mount's connection open after its owner unmounts it (its daemon would
	// not exit until ganesha does), so the copies are detached at once.
	const script = `set -e
awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i+1) ~ /^fuse/) print $5; break } }' /proc/self/mountinfo |
  sed 's/\\040/ /g; s/\\011/\t/g; s/\\134/\\/g' |
  while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
mount -t tmpfs -o mode=0755,size=16m sharetest-run /run
mkdir -p /run/rpcbind
"$1" -f &
i=0
while [ ! -S /run/rpcbind.sock ]; do
  i=$((i+1))
  if [ $i -gt 500 ]; then echo "sharetest: rpcbind did not start" >&2; exit 1; fi
  sleep 0.01
done
exec "$2" -F -f "$3" -L "$4" -p "$5" -N NIV_EVENT
`
	_, err := startServer(sh, r, serverSpec{
		name: "ganesha", logPath: outPath,
		// Its orderly shutdown takes 1-3 s; it has nothing to save (NFSv3
		// keeps no state, and every write was FILE_SYNC).
		grace: 500 * time.Millisecond,
		setup: func(int) ([]string, string, error) {
			return []string{tools["nsenter"], "--net=" + nsPath, "--",
				tools["unshare"], "--mount", "--propagation", "private", "--",
				"/bin/sh", "-c", script, "sharetest-nfs-server",
				tools["rpcbind"], tools["ganesha.nfsd"], conf, logPath, filepath.Join(ndir, "ganesha.pid"),
			}, loopbackAddr(nfsPort), nil
		},
		dial: func(addr string, timeout time.Duration) (net.Conn, error) {
			return dialInNetns(nsPath, addr, timeout)
		},
	})
	if err != nil {
		return err
	}

	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this executable (it serves the NFS mounts): %w", err)
	}
	env := withEnv(os.Environ(), nfsClientEnv+"=1")
	for i, m := range mountNames(len(sh.Mounts)) {
		mnt := filepath.Join(sh.Dir, m)
		sh.Mounts[i] = mnt
		name := "nfsfuse-" + m[len(m)-1:]
		err := mountFUSE(sh, r, mnt, name, env, tools["nsenter"], "--net="+nsPath, "--",
			exe, "-server", "127.0.0.1", "-export", sh.Export, "-name", name, mnt)
		if err != nil {
			return err
		}
	}
	return nil
}

// nfsClientMain is the FUSE NFS client process: it mounts the export over
// NFSv3 (retrying while the server comes up), serves it at the mount point
// until it is unmounted or told to stop (SIGTERM, SIGINT, SIGHUP: it then
// unmounts), and returns the exit code.
func nfsClientMain(args []string) int {
	log.SetPrefix("nfsfuse: ")
	fl := flag.NewFlagSet("nfsfuse", flag.ContinueOnError)
	server := fl.String("server", "127.0.0.1", "the NFS server (its portmapper names the ports)")
	export := fl.String("export", "", "the exported directory on the server")
	name := fl.String("name", "nfsfuse", "the mount's name in /proc/mounts")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() != 1 || *export == "" {
		log.Printf("usage: %s=1 %s -export DIR [-server HOST] [-name NAME] MOUNTPOINT", nfsClientEnv, os.Args[0])
		return 2
	}
	mnt := fl.Arg(0)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)

	deadline := time.Now().Add(serverReady)
	var c *nfsfuse.Client
	for {
		var err error
		if c, err = nfsfuse.Dial(*server, *export); err == nil {
			break
		}
		if time.Now().After(deadline) {
			log.Printf("giving up after %v: %v", serverReady, err)
			return 1
		}
		select {
		case s := <-sig:
			log.Printf("%v before mounting: %v", s, err)
			return 1
		case <-time.After(50 * time.Millisecond):
		}
	}
	defer func() {
		if err := c.Close(); err != nil {
			log.Print(err)
		}
	}()
	srv, err := nfsfuse.Mount(c, mnt, *name)
	if err != nil {
		log.Print(err)
		return 1
	}
	log.Printf("%s:%s mounted at %s", *server, *export, mnt)
	done := make(chan struct{})
	go func() {
		srv.Wait()
		close(done)
	}()
	select {
	case <-done:
		log.Printf("%s was unmounted", mnt)
	case s := <-sig:
		if !isMounted(mnt) {
			// Unmounted here, but the connection lives on: another mount
			// namespace holds a copy of the mount. Ending this process ends
			// the connection.
			log.Printf("%v: %s is no longer mounted here; exiting", s, mnt)
			return 0
		}
		log.Printf("%v: unmounting %s", s, mnt)
		var err error
		for end := time.Now().Add(stopGrace); ; time.Sleep(50 * time.Millisecond) {
			if err = srv.Unmount(); err == nil || !isMounted(mnt) || time.Now().After(end) {
				break
			}
		}
		if err != nil && isMounted(mnt) {
			log.Printf("unmounting %s: %v; detaching it", mnt, err)
			if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
				log.Printf("detaching %s: %v", mnt, err)
			}
		}
		select {
		case <-done:
		case <-time.After(stopGrace):
			log.Printf("the FUSE server of %s does not stop", mnt)
			return 1
		}
	}
	return 0
}

// ---- network namespaces ----

// addNetns creates the network namespace name (/run/netns/name) with its
// loopback interface up.
func addNetns(name string) error {
	ip, err := findTool("ip")
	if err != nil {
		return err
	}
	if out, err := exec.Command(ip, "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	if out, err := exec.Command(ip, "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return errors.Join(fmt.Errorf("ip -n %s link set lo up: %v: %s", name, err, bytes.TrimSpace(out)), deleteNetns(name))
	}
	return nil
}

// deleteNetns deletes the network namespace name if it exists.
func deleteNetns(name string) error {
	if _, err := os.Stat(filepath.Join("/run/netns", name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	ip, err := findTool("ip")
	if err != nil {
		return err
	}
	if out, err := exec.Command(ip, "netns", "delete", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns delete %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// dialInNetns connects to the TCP address addr inside the network namespace
// nsPath (a socket stays in the namespace it was created in). It switches
// one locked OS thread into the namespace and back; a thread that cannot
// switch back is never reused (it ends with its goroutine).
func dialInNetns(nsPath, addr string, timeout time.Duration) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		c, err, back := func() (net.Conn, error, bool) {
			orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
			if err != nil {
				return nil, err, true
			}
			defer orig.Close()
			target, err := os.Open(nsPath)
			if err != nil {
				return nil, err, true
			}
			defer target.Close()
			if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
				return nil, fmt.Errorf("entering the network namespace %s: %w", nsPath, err), true
			}
			c, err := net.DialTimeout("tcp", addr, timeout)
			if berr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); berr != nil {
				return c, err, false
			}
			return c, err, true
		}()
		if back {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, fmt.Errorf("dialing %s in %s: %w", addr, nsPath, r.err)
	}
	return r.c, nil
}
