#!/usr/bin/env bash
# test.sh PACKAGE...: runs the Windows tests of the given packages under Wine
# (what `make wine` runs). The prefix is $SHARELOCK_WINEPREFIX (prepared by
# setup.sh if needed); the test binaries run through go_windows_amd64_exec.
# Extra `go test` flags come from $WINE_TEST_FLAGS.
#
# Without Wine (or mingw-w64 for the first setup) it prints why and exits 0,
# unless CI=true: then it fails, so CI never passes without running them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${SHARELOCK_WINEPREFIX:?set SHARELOCK_WINEPREFIX to the Wine prefix to use}"
GO=${GO:-go}

rc=0
"$here/setup.sh" "$SHARELOCK_WINEPREFIX" || rc=$?
if [ "$rc" = 3 ]; then
  if [ "${CI:-}" = true ]; then
    echo "wine: FAIL: Wine is not available but CI=true (run make deps as root)" >&2
    exit 1
  fi
  echo "wine: SKIP: the Windows tests need wine64 and mingw-w64 (make deps as root installs them)" >&2
  exit 0
elif [ "$rc" != 0 ]; then
  echo "wine: FAIL: could not prepare the Wine prefix $SHARELOCK_WINEPREFIX" >&2
  exit 1
fi

export WINEPREFIX=$SHARELOCK_WINEPREFIX WINEDEBUG=-all PATH="$here:$PATH:/usr/lib/wine"
# Quick proof that a Go program runs at all, with a clear message if not.
if ! out=$(GOOS=windows GOARCH=amd64 "$GO" run "$here/probe" 2>&1) || [ "$out" != "sharelock-wine-ok" ]; then
  echo "$out" >&2
  echo "wine: FAIL: a Go program does not run under Wine in $WINEPREFIX" >&2
  exit 1
fi
# Start the prefix's wineserver and its system processes (services.exe,
# explorer.exe, ...) with no standard streams of ours: Wine processes started
# later inherit the Unix stdout of whichever program started them, and a
# `go test` reading a test binary's output would otherwise wait for the last
# Wine process of the prefix to exit. The server stays up for the whole run
# and is stopped at the end.
wineserver -p </dev/null >/dev/null 2>&1 || true
wine64 wineboot </dev/null >/dev/null 2>&1
trap 'wineserver -k >/dev/null 2>&1 || true' EXIT
start=$(date +%s%N)
# shellcheck disable=SC2086
GOOS=windows GOARCH=amd64 "$GO" test -count=1 -timeout 10m ${WINE_TEST_FLAGS:-} "$@"
echo "wine: Windows tests passed under $(wine64 --version) in $(( ($(date +%s%N) - start) / 1000000 )) ms" >&2
