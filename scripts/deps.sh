#!/usr/bin/env bash
# Installs what the test suites need, when it is missing. Needs root for
# apt-get; without root it only reports what is missing (suites that need it
# then skip with a message, or fail when CI=true).
set -euo pipefail
need=()
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
else
  echo "deps: missing ${need[*]} (run as root to install them)" >&2
fi
