#!/usr/bin/env bash
# setup.sh PREFIX: prepares a private Wine prefix in PREFIX (created if
# missing) in which Go programs for windows/amd64 run:
#   - wine64 wineboot --init (about 7 s, once per prefix);
#   - a stub bcryptprimitives.dll exporting ProcessPrng (Go >= 1.22 programs
#     die under Wine 8 without it), built with mingw-w64 from
#     bcryptprimitives.c and copied into PREFIX/drive_c/windows/system32.
# A prefix that is already set up is reused (it is checked, not rebuilt);
# concurrent runs on one prefix wait for each other (flock).
# Exits 3 when Wine or mingw-w64 is missing, 1 on any other failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix=${1:?usage: setup.sh PREFIX}
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
export WINEPREFIX=$prefix WINEARCH=win64 WINEDEBUG=-all
# No Mono or Gecko installer dialogs: the tests need neither.
export WINEDLLOVERRIDES="mscoree=;mshtml="
PATH="$PATH:/usr/lib/wine"

for tool in wine64 wineserver x86_64-w64-mingw32-gcc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "wine setup: $tool not found (install wine64 and gcc-mingw-w64-x86-64-win32: make deps as root)" >&2
    exit 3
  fi
done

# One setup at a time per prefix (make wine and the mixed-OS test may share
# one); the lock is released when this script exits.
exec 9>"$prefix/.sharelock-setup.lock"
flock 9

dll=$prefix/drive_c/windows/system32/bcryptprimitives.dll
if [ -f "$prefix/.sharelock-ready" ] && [ -f "$dll" ]; then
  exit 0
fi

start=$(date +%s%N)
if [ ! -f "$prefix/system.reg" ]; then
  if ! wine64 wineboot --init >"$prefix/wineboot.log" 2>&1; then
    cat "$prefix/wineboot.log" >&2
    echo "wine setup: wineboot --init failed in $prefix" >&2
    exit 1
  fi
  # wineboot returns before the registry is flushed to disk.
  wineserver -w
fi
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
x86_64-w64-mingw32-gcc -shared -O2 -s -o "$build/bcryptprimitives.dll" \
  "$here/bcryptprimitives.c" "$here/bcryptprimitives.def" -ladvapi32
cp "$build/bcryptprimitives.dll" "$dll"
touch "$prefix/.sharelock-ready"
echo "wine setup: prefix $prefix ready in $(( ($(date +%s%N) - start) / 1000000 )) ms" >&2
