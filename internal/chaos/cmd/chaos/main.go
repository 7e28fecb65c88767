//go:build linux

// Command chaos runs sharelock's chaos checker on one kind of share:
//
//	go run ./internal/chaos/cmd/chaos -share sftp -machines 4 -workers 4 -n 2000 -kills 10 -pauses 5
//
// Shares: local (a directory on local disk), faultfs (a fault-injecting
// FUSE share over a local directory; add -faults N), and the real shares of
// internal/sharetest: sftp, sftp-cache, smb, nfs (started here with one
// client mount per machine, torn down at the end). With -store
// etcd://HOST:PORT[/PREFIX] the workers lock through that etcd store instead
// of the folder store; the shared record stays on the share (use -share
// local: every machine sees the host's directories):
//
//	go run ./internal/chaos/cmd/chaos -store etcd://127.0.0.1:2379/chaos -machines 4 -workers 3 -n 600
//
// It needs root (namespaces, FUSE, private servers). The report
// is printed and written with the logs to -out; the exit status is 1 when
// the check found a violation, 2 when the run could not be done.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"sharelock/internal/chaos"
	"sharelock/internal/faultfs"
	"sharelock/internal/sharetest"
)

func main() {
	chaos.MaybeRole()
	var (
		share    = flag.String("share", "local", "kind of share: local, faultfs, sftp, sftp-cache, smb, nfs")
		store    = flag.String("store", "", "etcd store URL (etcd://HOST:PORT[/PREFIX]) to lock through instead of the folder store; the record stays on -share")
		machines = flag.Int("machines", 4, "simulated machines")
		workers  = flag.Int("workers", 4, "worker processes per machine")
		n        = flag.Int("n", 2000, "acquisitions to reach")
		kills    = flag.Int("kills", 10, "holders to kill with SIGKILL")
		pauses   = flag.Int("pauses", 5, "holders to pause with SIGSTOP past their lease")
		downs    = flag.Int("downs", 3, "times the holder's whole machine fails (all its workers killed, restarted 2 leases later)")
		faults   = flag.Int("faults", 0, "fault episodes on the faultfs share (EIO, ENOSPC, stall, latency in turn)")
		lease    = flag.Duration("lease", 0, "lock lease (default 3s; 30s on sftp-cache)")
		beat     = flag.Duration("heartbeat", 0, "heartbeat (default lease/6)")
		hold     = flag.Duration("hold", 5*time.Millisecond, "extra time each worker holds the lock after its update")
		out      = flag.String("out", "", "directory for logs and report (default: a new temporary directory)")
		seed     = flag.Int64("seed", 0, "random seed (0: from the clock)")
		recheck  = flag.String("recheck", "", "only check the logs of an earlier run in this directory again")
		timeout  = flag.Duration("timeout", 30*time.Minute, "limit for the whole run")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "chaos: unexpected arguments; see -help")
		os.Exit(2)
	}
	if *recheck != "" {
		rep, err := chaos.Recheck(*recheck)
		if rep != nil {
			fmt.Print(rep.Text())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	name := *share
	if *store != "" {
		name = "etcd+" + *share
	}
	os.Exit(run(*share, chaos.Config{
		Name: name, Store: *store, Machines: *machines, Workers: *workers, Acquisitions: *n,
		Kills: *kills, Pauses: *pauses, Downs: *downs, Faults: *faults, Lease: *lease, Beat: *beat, Hold: *hold,
		Out: *out, Seed: *seed, Timeout: *timeout,
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) },
	}))
}

func run(share string, c chaos.Config) int {
	if c.Lease == 0 {
		c.Lease = 3 * time.Second
		if share == sharetest.SFTPCache {
			c.Lease = 30 * time.Second
		}
	}
	if c.Out == "" {
		d, err := os.MkdirTemp("", "sharelock-chaos-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 2
		}
		c.Out = d
	}
	work, err := os.MkdirTemp("", "chaos-"+share+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 2
	}
	switch share {
	case "local":
		c.Mounts = []string{work}
	case "faultfs":
		backing := filepath.Join(work, "backing")
		mnt := filepath.Join(work, "mnt")
		if err := os.MkdirAll(backing, 0o755); err == nil {
			err = os.MkdirAll(mnt, 0o755)
		}
		f, err := faultfs.MountAt(backing, mnt)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 2
		}
		defer f.Unmount()
		c.Fault = f
		c.Mounts = []string{mnt}
	default:
		// One client mount per machine, as far as the rig goes.
		sh, err := sharetest.LaunchN(share, work, min(max(c.Machines, 2), sharetest.MaxMounts))
		if err != nil {
			fmt.Fprintf(os.Stderr, "chaos: starting the %s share: %v\n", share, err)
			return 2
		}
		defer sh.Close()
		c.Mounts = sh.Mounts
	}
	rep, err := chaos.Run(c)
	if rep != nil {
		fmt.Print(rep.Text())
	}
	fmt.Fprintf(os.Stderr, "chaos: logs and report in %s\n", c.Out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if rep != nil && len(rep.Violations) > 0 {
			return 1
		}
		return 2
	}
	return 0
}
