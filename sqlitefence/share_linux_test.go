package sqlitefence_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"sharelock/internal/sharetest"
	"sharelock/sqlitefence"
)

// TestFenceSeesOtherClientsWrites: two sshfs mounts of one SFTP share are
// two clients with their own page caches. Client A keeps its database open
// (a holder frozen between opening the database and writing, say) while
// client B writes with a higher token; A's next fenced write must then be
// refused. Without Begin dropping the client's cached pages of the file,
// A's SQLite read its own stale copy, the fence row included, and the
// stale write went through (a lost update in examples/employees' chaos
// test).
func TestFenceSeesOtherClientsWrites(t *testing.T) {
	sh := sharetest.StartSFTP(t, false)
	ctx := context.Background()
	pa, pb := filepath.Join(sh.Mounts[0], "w.db"), filepath.Join(sh.Mounts[1], "w.db")
	a, err := sqlitefence.Open(pa)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := sqlitefence.Init(ctx, a); err != nil {
		t.Fatal(err)
	}
	write := func(db *sql.DB, token uint64) error {
		return sqlitefence.Tx(ctx, db, token, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS t (token INTEGER)`)
			if err == nil {
				_, err = tx.ExecContext(ctx, `INSERT INTO t VALUES (?)`, int64(token))
			}
			return err
		})
	}
	if err := write(a, 1); err != nil {
		t.Fatal(err)
	}
	for round, tokens := range [][2]uint64{{5, 3}, {9, 7}} {
		b, err := sqlitefence.Open(pb)
		if err != nil {
			t.Fatal(err)
		}
		if err := write(b, tokens[0]); err != nil {
			t.Fatal(err)
		}
		b.Close()
		err = write(a, tokens[1])
		var se *sqlitefence.StaleTokenError
		if !errors.As(err, &se) || se.Recorded != tokens[0] {
			t.Fatalf("round %d: client A's write with token %d after client B's with %d: %v, want a stale-token error (recorded %d)", round, tokens[1], tokens[0], err, tokens[0])
		}
	}
	var n int
	if err := a.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("rows seen by A: %d %v, want 3", n, err)
	}
}
