# sharelock — build and test entry points. `make test` is what CI runs.
GO ?= go
FUZZTIME ?= 20s

.PHONY: all build test deps check unit fuzz bench cross shares

all: build

build:
	$(GO) build -o bin/sharelock ./cmd/sharelock

# Everything CI checks. As root it first installs what the suites need.
test: deps check cross unit fuzz

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

# The library and CLI must build for every OS we ship.
cross:
	GOOS=windows GOARCH=amd64 $(GO) vet ./...
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/sharelock
	GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./cmd/sharelock
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -o /dev/null ./cmd/sharelock

unit:
	$(GO) test -count=1 -timeout 15m ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseOwner -fuzztime $(FUZZTIME) ./internal/folder

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./

# Only the protocol tests on real shares (internal/sharetest): sshd+sshfs
# (tuned and default caching), smbd+smbnetfs and nfs-ganesha+nfsfuse (NFSv3),
# two mounts each. Root.
shares: deps
	$(GO) test -count=1 -v -timeout 6m ./internal/sharetest/
