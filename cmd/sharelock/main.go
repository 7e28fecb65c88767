// Command sharelock gives one program at a time exclusive use of a file on a
// shared folder.
//
//	sharelock run [--store URL] [--wait DURATION] [--lease DURATION] [--app NAME] [--on-lost stop|signal:NAME] [--dialog] [--idle-release DURATION [--idle-grace DURATION]] PATH -- COMMAND [ARGS...]
//	sharelock status [--store URL] [--json] [--observe DURATION] PATH...
//	sharelock break [--store URL] --reason TEXT [--force] PATH
//	sharelock request [--store URL] [--message TEXT] [--json] [--timeout DURATION] PATH
//	sharelock doctor [--json] [--lease DURATION] [--peer DIR] [--rounds N] DIR
//	sharelock ui [--listen ADDR] [--admin-file FILE] [--tls-cert FILE --tls-key FILE] DIR
//	sharelock ui hash-password [--name NAME]
//	sharelock stats [--store URL] [--json] [--days N] PATH
//
// --store URL (default $SHARELOCK_STORE) keeps the locks in an etcd cluster
// (etcd://HOST:2379,.../PREFIX, etcds:// for TLS) instead of the shared
// folder. This binary does not link the etcd client (it would slow every
// start): given an etcd URL it hands over to sharelock-etcd (this command
// built with -tags etcd), found next to it or on PATH, by exec on Unix (same
// PID) or as a child on Windows; exit 1 if there is none.
//
// Exit codes: 0 success (run: the command's own status, 128+N if signal N
// ended it), 64 usage error, 75 the file is in use by someone else, 76 the
// lock was lost while the command ran, 126/127 the command could not be
// started (not executable / not found), 1 any other error.
package main

import (
	"fmt"
	"io"
	"os"
)

const (
	exitUsage  = 64
	exitLocked = 75 // EX_TEMPFAIL: try again later
	exitLost   = 76
	exitError  = 1
)

const usage = `sharelock: exclusive use of a file on a shared folder

Usage:
  sharelock run [--store URL] [--wait DURATION] [--lease DURATION] [--app NAME] [--on-lost stop|signal:NAME] [--dialog] [--idle-release DURATION [--idle-grace DURATION]] PATH -- COMMAND [ARGS...]
      Hold the lock for PATH while COMMAND runs. Without --wait, fail at once
      (exit 75) if someone else holds it; with it, wait in line. COMMAND gets
      SHARELOCK_TOKEN (the fencing token) and SHARELOCK_PATH in its
      environment. --wait on a terminal shows who it waits for. --dialog
      also shows "in use", "lock lost" and release requests in a native
      dialog, for programs started from a desktop. --idle-release (opt-in):
      when COMMAND has been idle that long (no CPU use, PATH unchanged) while
      someone waits, warn, and after --idle-grace (default 2m) stop it and
      release the lock (exit 76).
  sharelock status [--store URL] [--json] [--observe DURATION] PATH...
      Show who holds each lock. --observe watches a remote holder's heartbeat
      for up to DURATION to tell a live holder from a stale one.
  sharelock break [--store URL] --reason TEXT [--force] PATH
      End a stale hold (one whose heartbeat stopped for a whole lease, or
      whose process is gone on this machine). --force also ends a live one.
  sharelock request [--store URL] [--message TEXT] [--json] [--timeout DURATION] PATH
      Ask the holder of PATH to release it; "sharelock run" shows the
      request to its user. Exit 0 if it was shown (or the lock was released
      meanwhile), 1 if not (no answer, or the holder does not take requests).
  sharelock doctor [--json] [--lease DURATION] [--peer DIR] [--rounds N] DIR
      Check whether DIR can hold a safe lock (atomic mkdir, cloud sync, round
      trip, clock, caches vs the lease); exit 1 if it cannot. --peer is the
      same folder through a second mount, to race and measure two clients.
  sharelock ui [--listen ADDR] [--admin-file FILE] [--tls-cert FILE --tls-key FILE] DIR
      Serve a live dashboard of every lock under DIR (default address
      127.0.0.1:8377). With --admin-file (NAME:BCRYPT-HASH lines, made by
      "sharelock ui hash-password --name NAME"), administrators can log in
      and release locks; without it the page is read-only and must stay on
      loopback.
  sharelock stats [--store URL] [--json] [--days N] PATH
      Acquisitions per day, median and longest hold, crashes recovered,
      forced releases and busiest users, from the lock's history.

Stores: by default each lock lives in the shared folder beside PATH.
  --store URL (default $SHARELOCK_STORE) keeps run, status, break, request
  and stats locks in an etcd cluster instead: etcd://HOST:2379[,HOST:2379]/PREFIX,
  etcds://... for TLS (?ca=FILE&cert=FILE&key=FILE&user=NAME&password-file=FILE).
  PATH is then a logical name, used exactly as given: every machine must
  spell it the same way. There is no stale state, break needs --force for a
  live holder, and the default lease is 10s. This needs sharelock-etcd next
  to sharelock or on PATH (exit 1 naming what it looked for if missing).

Exit codes: 0 ok (run: COMMAND's status), 64 usage, 75 in use, 76 lock lost
while COMMAND ran, 126/127 COMMAND not executable/not found, 1 other errors.
`

func main() {
	exitAfterCommand = true
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

func cli(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "status":
		return cmdStatus(args[1:], stdout, stderr)
	case "break":
		return cmdBreak(args[1:], stdout, stderr)
	case "request":
		return cmdRequest(args[1:], stdout, stderr)
	case "doctor":
		return cmdDoctor(args[1:], stdout, stderr)
	case "ui":
		return cmdUI(args[1:], stdout, stderr)
	case "stats":
		return cmdStats(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "sharelock: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}
