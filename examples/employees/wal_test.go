package main_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"sharelock/internal/sharetest"
	"sharelock/sqlitefence"
)

// TestJournalModeOnSFTP: two clients (two sshfs mounts of one share, each
// its own client with its own page cache) take turns writing one database,
// as sharelock holders do. Variants:
//
//   - delete: journal mode DELETE, each turn opens the database and closes
//     it (what sqlitefence users must do): must work.
//   - delete-kept-open: the same, but each client keeps its connection open
//     across turns: the client reads its own stale cached copy and
//     overwrites the other's write (recorded, not asserted).
//   - wal: journal mode WAL, reopened each turn (recorded, not asserted).
//
// docs/sqlite.md quotes the results.
func TestJournalModeOnSFTP(t *testing.T) {
	sh := sharetest.StartSFTP(t, false)
	for _, v := range []struct {
		name, mode string
		reopen     bool
	}{{"delete", "delete", true}, {"delete-kept-open", "delete", false}, {"wal", "wal", true}} {
		paths := []string{filepath.Join(sh.Mounts[0], v.name+".db"), filepath.Join(sh.Mounts[1], v.name+".db")}
		open := func(p string) (*sql.DB, error) {
			if v.mode == "delete" {
				return sqlitefence.Open(p)
			}
			return sql.Open("sqlite", "file:"+p+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
		}
		kept := map[int]*sql.DB{}
		with := func(c int, fn func(*sql.DB) error) error {
			db := kept[c]
			if db == nil {
				var err error
				if db, err = open(paths[c]); err != nil {
					return err
				}
				if v.reopen {
					defer db.Close()
				} else {
					kept[c] = db
					t.Cleanup(func() { db.Close() })
				}
			}
			return fn(db)
		}
		var log []string
		ok := true
		// Turns: client c inserts row i, then checks it sees i rows.
		for i, c := range []int{0, 1, 0, 1, 0} {
			n := -1
			err := with(c, func(db *sql.DB) error {
				if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS t (x INTEGER)`); err != nil {
					return err
				}
				if _, err := db.Exec(`INSERT INTO t VALUES (?)`, i+1); err != nil {
					return err
				}
				return db.QueryRow(`SELECT count(*) FROM t`).Scan(&n)
			})
			log = append(log, fmt.Sprintf("client %c inserts row %d, sees %d rows (%v)", 'A'+c, i+1, n, err))
			ok = ok && err == nil && n == i+1
		}
		var check string
		errC := with(1, func(db *sql.DB) error { return db.QueryRow(`PRAGMA integrity_check`).Scan(&check) })
		ok = ok && errC == nil && check == "ok"
		t.Logf("%s: %v; integrity_check %s %v => works: %v", v.name, log, check, errC, ok)
		if v.name == "delete" && !ok {
			t.Errorf("journal mode DELETE, reopened at each turn, did not work across two sshfs mounts")
		}
	}
}
