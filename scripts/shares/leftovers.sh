#!/usr/bin/env bash
# Lists what a crashed share test may have left behind, and with --clean
# removes it: FUSE mounts of the rigs (internal/sharetest) in their private
# directories ${TMPDIR:-/tmp}/sharetest-*, the processes whose command
# line names one of those directories (the rigs' sshd, smbd, ganesha.nfsd,
# sshfs, smbnetfs, NFS client and watchdog), the NFS rig's network
# namespaces (sharetest-*) and every process in them (its rpcbind).
# Normally the rigs clean up after themselves, even
# when the test process dies; this is for when the whole process group was
# killed. Do not run it with --clean while share tests are running.
set -euo pipefail
clean=
if [ "${1-}" = --clean ]; then clean=1; fi
base=${TMPDIR:-/tmp}
base=${base%/}
found=

# Mount points below a rig directory (from mountinfo; \040 is a space).
while read -r m; do
  [ -n "$m" ] || continue
  found=1
  echo "mount: $m"
  if [ -n "$clean" ]; then
    fusermount -u -z "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" || true
  fi
done < <(awk '{print $5}' /proc/self/mountinfo | sed 's/\\040/ /g' | grep -E "^$base/sharetest-[^/]+/" || true)

# Processes started for a rig: their arguments name its directory.
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  [ "$pid" != $$ ] || continue
  cmd=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
  case $cmd in
    *"$base/sharetest-"*)
      found=1
      echo "process $pid: $cmd"
      if [ -n "$clean" ]; then kill "$pid" 2>/dev/null || true; fi
      ;;
  esac
done

# The NFS rig's network namespaces, and what still runs in them.
if [ -d /run/netns ]; then
  for n in /run/netns/sharetest-*; do
    [ -e "$n" ] || continue
    n=${n#/run/netns/}
    found=1
    echo "network namespace: $n"
    for pid in $(ip netns pids "$n" 2>/dev/null); do
      echo "  process $pid: $( { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null)"
      if [ -n "$clean" ]; then kill "$pid" 2>/dev/null || true; fi
    done
    if [ -n "$clean" ]; then ip netns delete "$n" || true; fi
  done
fi

if [ -n "$clean" ]; then
  for d in "$base"/sharetest-*; do
    [ -d "$d" ] || continue
    if ! awk '{print $5}' /proc/self/mountinfo | grep -qF "$d/"; then
      echo "removing $d"
      rm -rf "$d"
    fi
  done
elif [ -z "$found" ]; then
  echo "no leftovers of the share rigs"
fi
