// Command sharemount starts one real test share (see package sharetest) for
// manual experiments, prints where its two mounts are, and tears it down on
// Ctrl-C (or SIGTERM).
//
//	go run ./internal/sharetest/cmd/sharemount sftp /tmp/share
//	go run ./internal/sharetest/cmd/sharemount -keep smb /tmp/share
//	go run ./internal/sharetest/cmd/sharemount nfs /tmp/share
//
// KIND is sftp (sshfs without client caches), sftp-cache (sshfs with its
// default 20 s caches), smb (smbnetfs) or nfs (nfs-ganesha, NFSv3, in a
// private network namespace, mounted by two processes of this command
// serving the FUSE NFS client of package nfsfuse). DIR must be empty or not exist; it
// holds the servers' configuration and logs, the exported directory and the
// two mount points, and is removed on exit unless -keep is given. Needs Linux
// and root (run scripts/deps.sh as root to install the tools).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"sharelock/internal/sharetest"
)

func main() {
	keep := flag.Bool("keep", false, "keep DIR (the exported files, configuration and logs) on exit")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: sharemount [-keep] %s DIR\n", strings.Join(sharetest.Kinds, "|"))
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	kind, dir := flag.Arg(0), flag.Arg(1)
	if err := run(kind, dir, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "sharemount:", err)
		os.Exit(1)
	}
}

func run(kind, dir string, keep bool) error {
	if err := sharetest.Missing(kind); err != nil {
		return err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty (sharemount removes its directory on exit)", dir)
	}
	// Catch the signals before starting anything, so that none can kill us
	// between the start and the wait.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	sh, err := sharetest.Launch(kind, dir)
	if err != nil {
		return err
	}
	fmt.Printf("%s share running (Ctrl-C to stop)\n", kind)
	fmt.Printf("  export (server side): %s\n", sh.Export)
	fmt.Printf("  machine A mount:      %s\n", sh.Mounts[0])
	fmt.Printf("  machine B mount:      %s\n", sh.Mounts[1])
	fmt.Printf("  logs and config:      %s\n", sh.Dir)
	s := <-sig
	fmt.Printf("\n%v: stopping\n", s)
	if err := sh.Close(); err != nil {
		return fmt.Errorf("stopping: %w\n%s", err, sh.Logs())
	}
	if !keep {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	return nil
}
