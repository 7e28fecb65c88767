# sharelock — build and test entry points. `make test` is what CI runs.
GO ?= go
FUZZTIME ?= 20s

.PHONY: all build test deps check unit chaos chaos-long fuzz bench cross wine shares

all: build

# The shipped CLI is static (no cgo): one file that runs on any Linux, and
# each `sharelock run` starts ~0.75 ms faster than a dynamically linked one
# (docs/benchmarks.md). User names then come from /etc/passwd or $USER.
# bin/sharelock-etcd is the same CLI with the etcd store (-tags etcd); it is
# separate because the etcd client's package init (gRPC, protobuf) costs
# ~3-4 ms per start, and bin/sharelock hands etcd:// stores over to it.
build:
	CGO_ENABLED=0 $(GO) build -o bin/sharelock ./cmd/sharelock
	CGO_ENABLED=0 $(GO) build -tags etcd -o bin/sharelock-etcd ./cmd/sharelock
	CGO_ENABLED=0 $(GO) build -o bin/sharelock-fence ./cmd/sharelock-fence

# Everything CI checks. As root it first installs what the suites need.
test: deps check cross wine unit chaos fuzz

# Tools the test suites use: util-linux (unshare: simulated machines in their
# own PID+UTS namespaces; nsenter), fuse3, openssh-server, openssh-client,
# sshfs (the SFTP share), samba, samba-common-bin, smbnetfs (the SMB share),
# nfs-ganesha, nfs-ganesha-vfs, rpcbind, iproute2 (the NFS share: ganesha in a
# private network namespace, mounted by the rig's own FUSE NFSv3 client).
# Installed only when missing and run as root.
deps:
	@./scripts/deps.sh

check:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

# The library and CLI must build for every OS we ship (sharelock-etcd too,
# and bin/sharelock must not link the etcd client).
cross:
	GOOS=windows GOARCH=amd64 $(GO) vet ./...
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...
	$(GO) vet -tags etcd ./cmd/sharelock
	GOOS=windows GOARCH=amd64 $(GO) vet -tags etcd ./cmd/sharelock
	GOOS=darwin GOARCH=arm64 $(GO) vet -tags etcd ./cmd/sharelock
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/sharelock
	GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./cmd/sharelock
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -o /dev/null ./cmd/sharelock
	GOOS=windows GOARCH=amd64 $(GO) build -tags etcd -o /dev/null ./cmd/sharelock
	GOOS=darwin GOARCH=arm64 $(GO) build -tags etcd -o /dev/null ./cmd/sharelock
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -tags etcd -o /dev/null ./cmd/sharelock
	@! $(GO) list -deps ./cmd/sharelock | grep -E 'go.etcd.io|google.golang.org/grpc|sharelock/internal/etcd' || { echo "cmd/sharelock must not import the etcd client (build it with -tags etcd as sharelock-etcd)"; exit 1; }
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/sharelock-fence
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -o /dev/null ./cmd/sharelock-fence

# The Windows tests (cross-compiled, run under wine64 by scripts/wine/): the
# library, the folder protocol, ident, proc and the CLI, including several
# Windows processes on one lock, a killed Windows holder taken over, and the
# job object of `sharelock run`. The private Wine prefix is set up once in
# WINEPREFIX_DIR (about 15 s) and reused. Without Wine it skips with a
# message, and fails when CI=true. (The mixed Linux+Windows test,
# mixed_os_linux_test.go, runs with the Linux tests and uses the same prefix.)
WINEPREFIX_DIR ?= $(HOME)/.cache/sharelock/wine
wine:
	SHARELOCK_WINEPREFIX=$(WINEPREFIX_DIR) GO=$(GO) ./scripts/wine/test.sh . ./internal/folder ./internal/ident ./internal/proc ./cmd/sharelock

# Every package's tests but the chaos runs, which come next on their own (they
# keep both cores busy for minutes; run alongside the timing-sensitive suites
# they would only make those slower).
unit:
	$(GO) test -count=1 -timeout 15m $$($(GO) list ./... | grep -v /internal/chaos)

# The chaos checker (internal/chaos, needs root): 4 simulated machines × 4
# workers on SFTP and NFS (600 acquisitions each, with kills, machine
# failures and pauses aimed at holders; SMB by hand: its smbnetfs mounts
# wedge under this load), local disk, the fault share and etcd; the reports
# are printed (docs/reliability.md).
chaos:
	$(GO) test -count=1 -v -timeout 25m ./internal/chaos/

# The long run of docs/reliability.md: 10,000 acquisitions on the fault share
# with every fault kind (about 8 minutes).
chaos-long:
	$(GO) run ./internal/chaos/cmd/chaos -share faultfs -machines 4 -workers 4 -n 10000 \
		-kills 30 -pauses 10 -downs 10 -faults 40 -seed 1

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseOwner -fuzztime $(FUZZTIME) ./internal/folder

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./

# Only the protocol tests on real shares (internal/sharetest): sshd+sshfs
# (tuned and default caching), smbd+smbnetfs and nfs-ganesha+nfsfuse (NFSv3),
# two mounts each. Root.
shares: deps
	$(GO) test -count=1 -v -timeout 6m ./internal/sharetest/

# sharelock side by side with gofrs/flock, proper-lockfile (npm) and flock(1)
# on tmpfs, ext4 and an SFTP share (root), about 5 minutes; prints the
# markdown table of docs/benchmarks.md (BENCH_PEERS_FLAGS=-quick: a smoke test).
.PHONY: bench-peers
bench-peers:
	CGO_ENABLED=0 $(GO) run ./bench/peers $(BENCH_PEERS_FLAGS)
