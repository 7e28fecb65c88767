#!/usr/bin/env bash
# Installs what the test suites need, when it is missing. Needs root for
# apt-get; without root it only reports what is missing (suites that need it
# then skip with a message, or fail when CI=true).
#
#   util-linux          unshare: simulated machines in their own PID+UTS namespaces
#   fuse3               fusermount: the real-share rigs (internal/sharetest) mount with FUSE
#   openssh-server      sshd: the private SFTP server of the SFTP rig
#   openssh-client      ssh, ssh-keygen: used by sshfs, and to make the rig's keys
#   sshfs               the SFTP client mounts
#   samba               smbd: the private SMB server of the SMB rig
#   samba-common-bin    smbpasswd
#   smbnetfs            the SMB client mounts (this kernel has no CIFS client)
#   nfs-ganesha         ganesha.nfsd: the private NFSv3 server of the NFS rig (the
#                       client is the rig's own FUSE NFS client: this kernel has none)
#   nfs-ganesha-vfs     ganesha's VFS FSAL (exports a local directory)
#   rpcbind             the NFS server's private portmapper
#   iproute2            ip netns: the NFS server runs in a private network namespace
#   wine64              runs the Windows test binaries (make wine, scripts/wine/)
#   gcc-mingw-w64-x86-64-win32
#                       builds the stub bcryptprimitives.dll that Go programs need
#                       under Wine 8 (scripts/wine/setup.sh)
#   xvfb                Xvfb: a private X server for the run --dialog tests
#   zenity              the Linux dialog that run --dialog shows (tested for real)
#   xdotool             finds the dialog's window and presses OK in the tests
#   x11-apps            xwd: screenshots the dialog (docs/dialog-linux.png)
#   fonts-dejavu-core   a font, so that the dialog's text is drawn legibly
#   tmux                a real terminal for the run --wait progress-line tests
#   chromium            headless browser for the dashboard tests (sharelock ui,
#                       driven by chromedp) and docs/dashboard-*.png
#   nodejs, npm         proper-lockfile, the npm peer of the side-by-side benchmark
#                       (bench/peers: make bench-peers)
#   etcd-server         etcd: the internal/etcd tests start private single-node and
#                       3-member clusters on loopback ports (the package's own
#                       service is not started: see policy-rc.d below)
#   etcd-client         etcdctl: to look at a test cluster's keys by hand
set -euo pipefail

# have NAME: NAME is a program on PATH or in an sbin directory (a non-login
# root shell may lack /usr/sbin on PATH).
have() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

need=()
add() { case " ${need[*]-} " in *" $1 "*) ;; *) need+=("$1") ;; esac; }
have unshare || add util-linux
have nsenter || add util-linux
have fusermount || have fusermount3 || add fuse3
have sshd || add openssh-server
have ssh || add openssh-client
have ssh-keygen || add openssh-client
have sshfs || add sshfs
have smbd || add samba
have smbpasswd || add samba-common-bin
have smbnetfs || add smbnetfs
have ganesha.nfsd || add nfs-ganesha
compgen -G '/usr/lib/*/ganesha/libfsalvfs.so' >/dev/null || add nfs-ganesha-vfs
have rpcbind || add rpcbind
have ip || add iproute2
have wine64 || [ -x /usr/lib/wine/wine64 ] || add wine64
have x86_64-w64-mingw32-gcc || add gcc-mingw-w64-x86-64-win32
have Xvfb || add xvfb
have zenity || add zenity
have xdotool || add xdotool
have xwd || add x11-apps
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || add fonts-dejavu-core
have tmux || add tmux
have chromium || add chromium
have node || add nodejs
have npm || add npm
have etcd || add etcd-server
have etcdctl || add etcd-client
have ps || add procps

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing ${need[*]} (run as root to install them)" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
echo "deps: installing ${need[*]}" >&2

# The rigs run private servers on free ports (and in a private network
# namespace); do not let the packages start the system's sshd/smbd/nmbd,
# nfs-ganesha or rpcbind (policy-rc.d is honoured by invoke-rc.d and
# deb-systemd-invoke). Only when no policy is in place already, and removed
# again afterwards. The rigs neither use nor stop a system service that runs
# anyway.
policy=/usr/sbin/policy-rc.d
ours=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# scripts/deps.sh: no service starts while installing test tools\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  ours=1
fi
log=$(mktemp)
cleanup() {
  if [ -n "$ours" ]; then rm -f "$policy"; fi
  rm -f "$log"
}
trap cleanup EXIT

# Quiet unless it fails.
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "deps: installing ${need[*]} failed" >&2
  exit 1
fi
