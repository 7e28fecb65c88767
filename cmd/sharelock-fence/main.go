// Command sharelock-fence prepares an SQLite database for fenced writes
// (package sqlitefence) and shows its fence.
//
//	sharelock-fence init DB    create the sharelock_fence table (idempotent), set journal mode DELETE, print the settings
//	sharelock-fence check DB   print the highest fencing token that has written to DB, and the settings
//
// It is a separate command, not a "sharelock fence" subcommand, because
// linking the SQLite driver into sharelock would slow down every
// "sharelock run" by about 0.4 ms (package initialisation and a 55% larger
// binary); see docs/sqlite.md.
//
// Run it while holding the lock (or with nobody using DB): on a share whose
// clients do not share SQLite's file locks, opening the database while
// someone else commits is not safe.
//
//	sharelock run data/wems.db -- sharelock-fence init data/wems.db
//
// Exit codes: 0 ok, 1 error, 64 usage.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"sharelock/sqlitefence"
)

const usage = `usage:
  sharelock-fence init DB    create the sharelock_fence table, set journal mode DELETE, print the settings
  sharelock-fence check DB   print the recorded fencing token and the settings
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || (args[0] != "init" && args[0] != "check") {
		fmt.Fprint(stderr, usage)
		return 64
	}
	ctx := context.Background()
	path := args[1]
	if args[0] == "check" {
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintln(stderr, "sharelock-fence:", err)
			return 1
		}
	}
	db, err := sqlitefence.Open(path)
	if err != nil {
		fmt.Fprintln(stderr, "sharelock-fence:", err)
		return 1
	}
	defer db.Close()
	if args[0] == "init" {
		if err := sqlitefence.Init(ctx, db); err != nil {
			fmt.Fprintln(stderr, "sharelock-fence:", err)
			return 1
		}
	}
	tok, err := sqlitefence.Recorded(ctx, db)
	if err != nil {
		fmt.Fprintln(stderr, "sharelock-fence:", err)
		return 1
	}
	s, err := sqlitefence.ReadSettings(ctx, db)
	if err != nil {
		fmt.Fprintln(stderr, "sharelock-fence:", err)
		return 1
	}
	if args[0] == "init" {
		fmt.Fprintf(stdout, "%s: fence ready (table sharelock_fence)\n", path)
	}
	fmt.Fprintf(stdout, "%s: recorded fencing token %d\n", path, tok)
	fmt.Fprintf(stdout, "settings: %s\n", s)
	return 0
}
