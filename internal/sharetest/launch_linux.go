//go:build linux

package sharetest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Timeouts of the rig.
const (
	serverReady = 15 * time.Second // a server accepts connections
	mountReady  = 30 * time.Second // a file written through mount A is read through mount B
	stopGrace   = 5 * time.Second  // a daemon exits after SIGTERM
	// fuseExitGrace: a FUSE daemon exits by itself after its unmount.
	fuseExitGrace = time.Second
)

// tool names a program the rigs run and the Debian package that has it.
type tool struct{ name, pkg string }

var (
	fuseTools = []tool{{"fusermount", "fuse3"}}
	sftpTools = []tool{{"sshd", "openssh-server"}, {"ssh", "openssh-client"}, {"ssh-keygen", "openssh-client"}, {"sshfs", "sshfs"}}
	smbTools  = []tool{{"smbd", "samba"}, {"smbpasswd", "samba-common-bin"}, {"smbnetfs", "smbnetfs"}}
	nfsTools  = []tool{{"ganesha.nfsd", "nfs-ganesha"}, {ganeshaVFS, "nfs-ganesha-vfs"}, {"rpcbind", "rpcbind"},
		{"ip", "iproute2"}, {"nsenter", "util-linux"}, {"unshare", "util-linux"}}
)

// ganeshaVFS is the VFS FSAL of nfs-ganesha (a library, not a program: a
// tool whose name starts with "/" is a glob of its path).
const ganeshaVFS = "/usr/lib/*/ganesha/libfsalvfs.so"

// findTool returns the absolute path of a program: from PATH, else from the
// sbin directories a non-login root shell may lack. fusermount may be
// installed as fusermount3 only.
func findTool(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		if m, _ := filepath.Glob(name); len(m) > 0 {
			return m[0], nil
		}
		return "", fmt.Errorf("%s not found", name)
	}
	names := []string{name}
	if name == "fusermount" {
		names = append(names, "fusermount3")
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			if abs, err := filepath.Abs(p); err == nil {
				return abs, nil
			}
		}
		for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
			p := filepath.Join(d, n)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

func toolsFor(kind string) ([]tool, error) {
	switch kind {
	case SFTP, SFTPCache:
		return append(append([]tool{}, fuseTools...), sftpTools...), nil
	case SMB:
		return append(append([]tool{}, fuseTools...), smbTools...), nil
	case NFS:
		return append(append([]tool{}, fuseTools...), nfsTools...), nil
	}
	return nil, fmt.Errorf("unknown kind of share %q (want one of %s)", kind, strings.Join(Kinds, ", "))
}

// Missing reports what is missing to start shares of kind here, or nil. The
// message names the missing programs, their Debian packages, and `make test`
// (which installs them when run as root).
func Missing(kind string) error {
	tools, err := toolsFor(kind)
	if err != nil {
		return err
	}
	var missing, pkgs []string
	for _, t := range tools {
		if _, err := findTool(t.name); err != nil {
			missing = append(missing, t.name)
			if !contains(pkgs, t.pkg) {
				pkgs = append(pkgs, t.pkg)
			}
		}
	}
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("%s not installed (Debian packages: %s)",
			strings.Join(missing, ", "), strings.Join(pkgs, " ")))
	}
	if os.Geteuid() != 0 {
		problems = append(problems, "not running as root (the rigs run private servers and FUSE mounts as root)")
	}
	if fi, err := os.Stat("/dev/fuse"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		problems = append(problems, "no /dev/fuse (FUSE is not available in this kernel or container)")
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; ") +
		"; run `make test` as root (scripts/deps.sh installs the packages) or `sudo ./scripts/deps.sh`")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Launch starts a share of the given kind (SFTP, SFTPCache, SMB or NFS) with all
// its files under dir (created if needed; it should be empty and its path
// short, since Samba puts Unix sockets there). It returns once a file
// written through mount A is read back through mount B. Stop it with Close;
// on error everything started so far is stopped again.
func Launch(kind, dir string) (sh *Share, err error) {
	return LaunchN(kind, dir, 2)
}

// MaxMounts is the most client mounts LaunchN makes of one share.
const MaxMounts = 16

// mountNames names n mount points: mnt-a, mnt-b, ...
func mountNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = "mnt-" + string(rune('a'+i))
	}
	return names
}

// LaunchN is Launch with n client mounts (2 ≤ n ≤ MaxMounts) instead of
// two, each its own client process with its own connection and caches:
// one per simulated machine.
func LaunchN(kind, dir string, n int) (sh *Share, err error) {
	if n < 2 || n > MaxMounts {
		return nil, fmt.Errorf("sharetest: %d mounts asked; want 2 to %d", n, MaxMounts)
	}
	if err := Missing(kind); err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(dir, ",:\n\"\\") {
		// Paths go into comma-separated mount options and config files.
		return nil, fmt.Errorf("the rig directory %q must not contain , : \" \\ or newlines", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sh = &Share{Name: kind, Dir: dir, Export: filepath.Join(dir, "export"), Mounts: make([]string, n)}
	if err := os.MkdirAll(sh.Export, 0o777); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			logs := sh.Logs()
			if cerr := sh.Close(); cerr != nil {
				err = fmt.Errorf("%w (and stopping it: %v)", err, cerr)
			}
			if logs != "" {
				err = fmt.Errorf("%w\n%s", err, logs)
			}
			sh = nil
		}
	}()
	r, err := startReaper(dir)
	if err != nil {
		return sh, err
	}
	sh.onClose(r.disarm)
	switch kind {
	case SFTP, SFTPCache:
		err = launchSFTP(sh, r, kind == SFTPCache)
	case SMB:
		err = launchSMB(sh, r)
	case NFS:
		err = launchNFS(sh, r)
	}
	if err != nil {
		return sh, err
	}
	if err := probe(sh); err != nil {
		return sh, err
	}
	return sh, nil
}

// ---- SFTP ----

func launchSFTP(sh *Share, r *reaper, caching bool) error {
	sdir := filepath.Join(sh.Dir, "ssh")
	if err := os.MkdirAll(sdir, 0o700); err != nil {
		return err
	}
	// sshd's privilege separation directory (compiled in).
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return fmt.Errorf("creating /run/sshd: %w", err)
	}
	keygen, _ := findTool("ssh-keygen")
	hostKey := filepath.Join(sdir, "host_ed25519")
	clientKey := filepath.Join(sdir, "client_ed25519")
	for _, k := range []string{hostKey, clientKey} {
		if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "sharetest", "-f", k).CombinedOutput(); err != nil {
			return fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		return err
	}
	authKeys := filepath.Join(sdir, "authorized_keys")
	if err := os.WriteFile(authKeys, pub, 0o600); err != nil {
		return err
	}
	login, err := loginName()
	if err != nil {
		return err
	}
	sshd, _ := findTool("sshd")
	conf := filepath.Join(sdir, "sshd_config") // absolute: sshd re-executes itself with it
	logPath := filepath.Join(sdir, "sshd.log")
	sh.addLog("sshd", logPath)
	var port int
	_, err = startServer(sh, r, serverSpec{
		name: "sshd", logPath: logPath, banner: "SSH-", retries: 2,
		setup: func(attempt int) ([]string, string, error) {
			var err error
			if port, err = freePort(); err != nil {
				return nil, "", err
			}
			cfg := fmt.Sprintf(`# sharetest: a private sshd for one test share
Port %d
ListenAddress 127.0.0.1
AddressFamily inet
HostKey %s
AuthorizedKeysFile %s
PidFile %s
AllowUsers %s
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
MaxStartups 100
MaxSessions 100
LogLevel INFO
Subsystem sftp internal-sftp
`, port, hostKey, authKeys, filepath.Join(sdir, "sshd.pid"), login)
			if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
				return nil, "", err
			}
			return []string{sshd, "-D", "-f", conf, "-E", logPath}, loopbackAddr(port), nil
		},
	})
	if err != nil {
		return err
	}

	sshfs, _ := findTool("sshfs")
	opts := []string{
		"port=" + strconv.Itoa(port),
		"IdentityFile=" + clientKey, "IdentitiesOnly=yes",
		"StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null",
		"BatchMode=yes", "LogLevel=ERROR",
		"ServerAliveInterval=5", "ServerAliveCountMax=3",
	}
	if !caching {
		opts = append(opts, "dir_cache=no", "attr_timeout=0", "entry_timeout=0", "negative_timeout=0")
	}
	for i, m := range mountNames(len(sh.Mounts)) {
		mnt := filepath.Join(sh.Dir, m)
		sh.Mounts[i] = mnt
		err := mountFUSE(sh, r, mnt, "sshfs-"+m[len(m)-1:], nil,
			sshfs, "-f", "-F", "/dev/null", login+"@127.0.0.1:"+sh.Export, mnt, "-o", strings.Join(opts, ","))
		if err != nil {
			return err
		}
	}
	return nil
}

// ---- SMB ----

func launchSMB(sh *Share, r *reaper) error {
	sdir := filepath.Join(sh.Dir, "smb")
	state := filepath.Join(sdir, "state")
	dirs := map[string]string{}
	for _, n := range []string{"lock", "state", "cache", "private", "pid", "ncalrpc", "binddns", "usershares"} {
		dirs[n] = filepath.Join(state, n)
		if err := os.MkdirAll(dirs[n], 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(dirs["private"], 0o700); err != nil {
		return err
	}
	login, err := loginName()
	if err != nil {
		return err
	}
	password := randHex(12)
	conf := filepath.Join(sdir, "smb.conf")
	logPath := filepath.Join(sdir, "smbd.log")
	sh.addLog("smbd", logPath)
	sh.addLog("smbd stdout", filepath.Join(sdir, "smbd.out"))
	smbd, _ := findTool("smbd")
	smbpasswd, _ := findTool("smbpasswd")
	var port int
	_, err = startServer(sh, r, serverSpec{
		name: "smbd", logPath: filepath.Join(sdir, "smbd.out"), retries: 2,
		setup: func(attempt int) ([]string, string, error) {
			var err error
			if port, err = freePort(); err != nil {
				return nil, "", err
			}
			cfg := fmt.Sprintf(`# sharetest: a private smbd for one test share
[global]
  server role = standalone server
  workgroup = SHARETEST
  netbios name = SHARETEST
  smb ports = %d
  interfaces = lo
  bind interfaces only = yes
  disable netbios = yes
  server min protocol = SMB2_10
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  lock directory = %s
  state directory = %s
  cache directory = %s
  private dir = %s
  pid directory = %s
  ncalrpc dir = %s
  binddns dir = %s
  usershare path = %s
  passdb backend = tdbsam:%s
  log file = %s
  max log size = 0
  log level = 1
  map to guest = never
  unix password sync = no
  obey pam restrictions = no

[share]
  path = %s
  read only = no
  guest ok = no
  valid users = %s
  create mask = 0644
  directory mask = 0755
`, port, dirs["lock"], dirs["state"], dirs["cache"], dirs["private"], dirs["pid"], dirs["ncalrpc"],
				dirs["binddns"], dirs["usershares"], filepath.Join(dirs["private"], "passdb.tdb"), logPath,
				sh.Export, login)
			if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
				return nil, "", err
			}
			if attempt == 0 {
				cmd := exec.Command(smbpasswd, "-c", conf, "-s", "-a", login)
				cmd.Stdin = strings.NewReader(password + "\n" + password + "\n")
				if out, err := cmd.CombinedOutput(); err != nil {
					return nil, "", fmt.Errorf("smbpasswd -a %s: %v: %s", login, err, out)
				}
			}
			return []string{smbd, "--foreground", "--no-process-group", "-s", conf}, loopbackAddr(port), nil
		},
	})
	if err != nil {
		return err
	}

	smbnetfs, _ := findTool("smbnetfs")
	for i, m := range mountNames(len(sh.Mounts)) {
		// smbnetfs reads $HOME/.smb/smbnetfs.conf and libsmbclient reads
		// $HOME/.smb/smb.conf: give each mount a private HOME.
		home := filepath.Join(sdir, "home-"+m[len(m)-1:])
		dotsmb := filepath.Join(home, ".smb")
		if err := os.MkdirAll(dotsmb, 0o700); err != nil {
			return err
		}
		auth := fmt.Sprintf("auth \"127.0.0.1\" \"%s\" \"%s\"\n", login, password)
		if err := os.WriteFile(filepath.Join(dotsmb, "smbnetfs.conf"), []byte(auth), 0o600); err != nil {
			return err
		}
		// libsmbclient keeps caches (gencache.tdb) in the Samba
		// directories: keep them private too.
		cstate := filepath.Join(home, "samba")
		if err := os.MkdirAll(cstate, 0o700); err != nil {
			return err
		}
		client := fmt.Sprintf("[global]\n  client min protocol = SMB2_10\n  client max protocol = SMB3\n"+
			"  lock directory = %[1]s\n  state directory = %[1]s\n  cache directory = %[1]s\n"+
			"  private dir = %[1]s\n  pid directory = %[1]s\n  ncalrpc dir = %[1]s\n", cstate)
		if err := os.WriteFile(filepath.Join(dotsmb, "smb.conf"), []byte(client), 0o600); err != nil {
			return err
		}
		mnt := filepath.Join(sh.Dir, m)
		sh.Mounts[i] = filepath.Join(mnt, fmt.Sprintf("127.0.0.1:%d", port), "share")
		env := withEnv(os.Environ(), "HOME="+home)
		err := mountFUSE(sh, r, mnt, "smbnetfs-"+m[len(m)-1:], env, smbnetfs, mnt, "-f",
			"-o", "smb_query_browsers=false,attr_timeout=0,entry_timeout=0,negative_timeout=0")
		if err != nil {
			return err
		}
	}
	return nil
}

// ---- FUSE mounts ----

// mountFUSE runs a FUSE file system in the foreground (argv), waits until mnt
// is mounted, and registers its unmount.
func mountFUSE(sh *Share, r *reaper, mnt, name string, env []string, argv ...string) error {
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(sh.Dir, name+".log")
	sh.addLog(name, logPath)
	d, err := startDaemon(r, name, logPath, env, argv...)
	if err != nil {
		return err
	}
	r.send("mnt " + mnt) // after the daemon: the watchdog handles lines last-in first-out
	um := func() error { return unmount(mnt, d) }
	deadline := time.Now().Add(serverReady)
	for !isMounted(mnt) {
		if d.exited() {
			_ = um()
			return fmt.Errorf("%s exited before mounting %s: %v", name, mnt, d.waitErr)
		}
		if time.Now().After(deadline) {
			_ = um()
			return fmt.Errorf("%s did not mount %s within %v", name, mnt, serverReady)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop := make(chan struct{})
	go watchMount(sh, mnt, stop)
	sh.onClose(func() error {
		close(stop)
		return um()
	})
	return nil
}

// unmount unmounts mnt (lazily if it is busy) and waits for its daemon d to
// exit, stopping it if it does not.
func unmount(mnt string, d *daemon) error {
	var errs []error
	if isMounted(mnt) {
		fusermount, _ := findTool("fusermount")
		out, err := exec.Command(fusermount, "-u", mnt).CombinedOutput()
		if err != nil {
			// Busy (a file still open) or a dead daemon: detach it.
			out2, err2 := exec.Command("umount", "-l", mnt).CombinedOutput()
			if err2 != nil {
				errs = append(errs, fmt.Errorf("unmounting %s: fusermount -u: %v: %s; umount -l: %v: %s",
					mnt, err, bytes.TrimSpace(out), err2, bytes.TrimSpace(out2)))
			}
		}
	}
	// The daemon normally exits as soon as its mount is gone. It does not
	// while a copy of the mount lives on in another mount namespace (any
	// unshare --mount of another test started while it was mounted keeps
	// the FUSE connection open): then it is stopped.
	select {
	case <-d.done:
	case <-time.After(fuseExitGrace):
	}
	if err := d.stop(); err != nil {
		errs = append(errs, err)
	}
	if isMounted(mnt) {
		errs = append(errs, fmt.Errorf("%s is still mounted", mnt))
	}
	return errors.Join(errs...)
}

// isMounted reports whether path is a mount point, from /proc/self/mountinfo.
func isMounted(path string) bool {
	for _, m := range mountPoints() {
		if m == path {
			return true
		}
	}
	return false
}

// stillMounted reports whether anything is mounted at or below dir.
func stillMounted(dir string) bool {
	for _, m := range mountPoints() {
		if m == dir || strings.HasPrefix(m, dir+"/") {
			return true
		}
	}
	return false
}

func mountPoints() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			out = append(out, unescapeMount(fields[4]))
		}
	}
	return out
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// probe waits until a file written through mount A reads back through
// mount B, then removes it.
func probe(sh *Share) error {
	name := ".sharetest-probe-" + randHex(6)
	want := []byte("sharetest probe " + randHex(8) + "\n")
	a, b := filepath.Join(sh.Mounts[0], name), filepath.Join(sh.Mounts[1], name)
	deadline := time.Now().Add(mountReady)
	var last error
	for time.Now().Before(deadline) {
		err := bounded(time.Until(deadline), func() error {
			if err := os.WriteFile(a, want, 0o644); err != nil {
				return fmt.Errorf("writing %s: %w", a, err)
			}
			got, err := os.ReadFile(b)
			if err != nil {
				return fmt.Errorf("reading %s: %w", b, err)
			}
			if !bytes.Equal(got, want) {
				return fmt.Errorf("reading %s: got %q, want %q", b, got, want)
			}
			return nil
		})
		if err == nil {
			// Samba refuses to delete a file another client still has
			// open (EBUSY): mount B's close reaches the server a moment
			// after its read returned (FUSE sends the release
			// asynchronously). Retry for a while.
			err := bounded(stopGrace, func() error {
				var err error
				for try := 0; try < 20; try++ {
					if err = os.Remove(a); !errors.Is(err, syscall.EBUSY) {
						return err
					}
					time.Sleep(50 * time.Millisecond)
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("removing the probe %s: %w", a, err)
			}
			return nil
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the share did not answer within %v (a file written through mount A must read back through mount B): %v", mountReady, last)
}

// bounded runs f, giving up after d (a call on a hung FUSE mount may never
// return; it is left behind and returns when the mount goes away).
func bounded(d time.Duration, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("no answer within %v", d)
	}
}

// ---- daemons ----

// daemon is a server or FUSE process we started, in its own process group
// (its PID is the group's ID), so that stopping it also stops the children it
// forked, and a Ctrl-C in the terminal does not kill it before its mount is
// gone.
type daemon struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	grace   time.Duration // SIGTERM to SIGKILL; 0 means stopGrace
}

func startDaemon(r *reaper, name, logPath string, env []string, argv ...string) (*daemon, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	d := &daemon{name: name, cmd: cmd, done: make(chan struct{})}
	r.send("pid " + strconv.Itoa(cmd.Process.Pid))
	go func() {
		d.waitErr = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop ends the daemon's process group: SIGTERM, then SIGKILL after a grace
// period (d.grace, or stopGrace if that is 0). It is idempotent.
func (d *daemon) stop() error {
	pgid := d.cmd.Process.Pid
	if !d.exited() {
		grace := d.grace
		if grace == 0 {
			grace = stopGrace
		}
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			select {
			case <-d.done:
			case <-time.After(stopGrace):
				return fmt.Errorf("%s (pid %d) does not exit, even after SIGKILL", d.name, pgid)
			}
		}
	}
	// Children the leader left behind in its group (ESRCH if none).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

// serverSpec says how to start a server daemon and how to tell that it
// serves.
type serverSpec struct {
	name    string
	logPath string   // the daemon's standard output and error
	env     []string // nil: this process's environment
	// setup prepares attempt number attempt (0, 1, ...): it picks the
	// port, writes the configuration, and returns the command line and the
	// TCP address (host:port) the daemon serves on once it is ready.
	setup func(attempt int) (argv []string, addr string, err error)
	// dial connects to addr; nil means net.DialTimeout in this process's
	// network namespace.
	dial func(addr string, timeout time.Duration) (net.Conn, error)
	// banner, if set, is what the server must greet a connection with.
	banner string
	// retries is how many more attempts (each on a new setup) to make when
	// the daemon exits before serving, which usually means that another
	// process took its port between freePort and its start.
	retries int
	// grace is how long stopping it waits after SIGTERM before SIGKILL
	// (0: stopGrace).
	grace time.Duration
}

// startServer starts the daemon that spec describes, waits until it serves,
// and registers its stop with sh. On error nothing of it is left running.
func startServer(sh *Share, r *reaper, spec serverSpec) (*daemon, error) {
	for attempt := 0; ; attempt++ {
		argv, addr, err := spec.setup(attempt)
		if err != nil {
			return nil, err
		}
		d, err := startDaemon(r, spec.name, spec.logPath, spec.env, argv...)
		if err != nil {
			return nil, err
		}
		d.grace = spec.grace
		err = d.waitListening(addr, spec.dial, spec.banner)
		if err == nil {
			sh.onClose(d.stop)
			return d, nil
		}
		early := d.exited()
		_ = d.stop()
		if attempt >= spec.retries || !early {
			return nil, err
		}
		// Probably lost the port to someone else: try another.
	}
}

// waitListening waits until the daemon accepts TCP connections on addr
// (through dial, if not nil) and, if banner is set, greets with it.
func (d *daemon) waitListening(addr string, dial func(string, time.Duration) (net.Conn, error), banner string) error {
	if dial == nil {
		dial = func(addr string, timeout time.Duration) (net.Conn, error) {
			return net.DialTimeout("tcp", addr, timeout)
		}
	}
	deadline := time.Now().Add(serverReady)
	var last error
	for time.Now().Before(deadline) {
		if d.exited() {
			return fmt.Errorf("%s exited before listening on %s: %v", d.name, addr, d.waitErr)
		}
		c, err := dial(addr, time.Second)
		if err == nil {
			if banner == "" {
				c.Close()
				return nil
			}
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, len(banner))
			_, err = io.ReadFull(c, buf)
			c.Close()
			if err == nil && string(buf) == banner {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("unexpected greeting %q", buf)
			}
		}
		last = err
		time.Sleep(30 * time.Millisecond)
	}
	return fmt.Errorf("%s does not listen on %s after %v: %v", d.name, addr, serverReady, last)
}

// ---- watchdog ----

// reaper is a tiny shell process that cleans up after the test process if it
// dies without calling Close (test timeout, panic, Ctrl-C, SIGKILL): it
// reads "pid N", "mnt PATH" and "netns NAME" lines on its standard input;
// at end of input without a final "ok" line it lazily unmounts every mount,
// kills every process group and deletes every network namespace, last
// registered first. It runs in its own process group so
// that a Ctrl-C in the terminal does not reach it.
type reaper struct {
	mu  sync.Mutex
	w   io.WriteCloser
	cmd *exec.Cmd
}

const reaperScript = `nl='
'
list=
while IFS= read -r line; do
  case $line in
    ok) exit 0 ;;
    *) list="$line$nl$list" ;;
  esac
done
printf '%s' "$list" | while IFS= read -r line; do
  case $line in
    "mnt "*) m=${line#mnt }; fusermount -u -z "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null ;;
    "pid "*) p=${line#pid }; kill -s TERM -- "-$p" 2>/dev/null; sleep 0.2; kill -s KILL -- "-$p" 2>/dev/null ;;
    "netns "*) n=${line#netns }; ip netns delete "$n" 2>/dev/null || /usr/sbin/ip netns delete "$n" 2>/dev/null || /sbin/ip netns delete "$n" 2>/dev/null ;;
  esac
done
exit 0
`

func startReaper(dir string) (*reaper, error) {
	cmd := exec.Command("/bin/sh", "-c", reaperScript, "sharetest-watchdog", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the watchdog: %w", err)
	}
	return &reaper{w: w, cmd: cmd}, nil
}

func (r *reaper) send(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w != nil {
		_, _ = io.WriteString(r.w, line+"\n")
	}
}

// disarm tells the watchdog that everything was cleaned up, and waits for it.
func (r *reaper) disarm() error {
	r.mu.Lock()
	w := r.w
	r.w = nil
	r.mu.Unlock()
	if w == nil {
		return nil
	}
	_, _ = io.WriteString(w, "ok\n")
	w.Close()
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(stopGrace):
		_ = r.cmd.Process.Kill()
		<-done
	}
	return nil
}

// ---- small helpers ----

// loopbackAddr is 127.0.0.1:port.
func loopbackAddr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func loginName() (string, error) {
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("who am I: %w", err)
	}
	return u.Username, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// withEnv returns env with kv's variable set to kv's value.
func withEnv(env []string, kv string) []string {
	key := kv[:strings.IndexByte(kv, '=')+1]
	out := make([]string, 0, len(env)+1)
	for _, e := range env {
		if !strings.HasPrefix(e, key) {
			out = append(out, e)
		}
	}
	return append(out, kv)
}
