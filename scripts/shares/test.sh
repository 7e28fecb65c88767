#!/usr/bin/env bash
# Runs the sharelock protocol tests on real network shares (package
# internal/sharetest: SFTP via sshd+sshfs, with and without client caching,
# SMB via smbd+smbnetfs, and NFSv3 via nfs-ganesha and the rig's FUSE NFS
# client), after installing the tools when run as root.
# Extra arguments go to `go test` (for example -run 'TestShares/smb').
#
#   sudo ./scripts/shares/test.sh
#   sudo CI=true ./scripts/shares/test.sh          # fail instead of skip when tools are missing
#   sudo SHARETEST_STRICT=1 ./scripts/shares/test.sh   # also fail on known, unfixed findings
set -euo pipefail
cd "$(dirname "$0")/../.."
./scripts/deps.sh
exec "${GO:-go}" test -count=1 -v -timeout 6m ./internal/sharetest/ "$@"
