package sqlitefence_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sharelock/sqlitefence"
)

func open(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sqlitefence.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqlitefence.Init(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db
}

func set(ctx context.Context, db *sql.DB, token uint64, k string, v int) error {
	return sqlitefence.Tx(ctx, db, token, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, k, v)
		return err
	})
}

func get(t *testing.T, db *sql.DB, k string) int {
	t.Helper()
	var v int
	if err := db.QueryRow(`SELECT v FROM kv WHERE k = ?`, k).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func recorded(t *testing.T, db *sql.DB) uint64 {
	t.Helper()
	tok, err := sqlitefence.Recorded(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestStaleTokenRejected(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "a.db"))
	if err := set(ctx, db, 7, "x", 70); err != nil {
		t.Fatal(err)
	}
	err := set(ctx, db, 5, "x", 50)
	var se *sqlitefence.StaleTokenError
	if !errors.As(err, &se) || !errors.Is(err, sqlitefence.ErrStaleToken) {
		t.Fatalf("write with token 5 after 7: got %v, want a *StaleTokenError", err)
	}
	if se.Token != 5 || se.Recorded != 7 {
		t.Fatalf("StaleTokenError = %+v, want Token 5, Recorded 7", *se)
	}
	if !strings.Contains(err.Error(), "token 5 rejected") || !strings.Contains(err.Error(), "token 7") {
		t.Fatalf("unclear error: %v", err)
	}
	if v := get(t, db, "x"); v != 70 {
		t.Fatalf("row changed by a stale write: %d", v)
	}
	if tok := recorded(t, db); tok != 7 {
		t.Fatalf("recorded token %d after a stale write, want 7", tok)
	}
	// A later token passes and is recorded.
	if err := set(ctx, db, 9, "x", 90); err != nil || get(t, db, "x") != 90 || recorded(t, db) != 9 {
		t.Fatalf("write with token 9: %v, x=%d, recorded %d", err, get(t, db, "x"), recorded(t, db))
	}
}

func TestEqualTokenAllowed(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "a.db"))
	for i := 1; i <= 5; i++ {
		if err := set(ctx, db, 7, "x", i); err != nil {
			t.Fatalf("write %d with the same token 7: %v", i, err)
		}
	}
	if v, tok := get(t, db, "x"), recorded(t, db); v != 5 || tok != 7 {
		t.Fatalf("x=%d recorded=%d, want 5 and 7", v, tok)
	}
}

// The check and the write are one transaction: a write that fails leaves
// the recorded token as it was, and a stale check leaves no write.
func TestCheckAndWriteOneTransaction(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "a.db"))
	if err := set(ctx, db, 3, "x", 30); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := sqlitefence.Tx(ctx, db, 8, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE kv SET v = 80 WHERE k = 'x'`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	if v, tok := get(t, db, "x"), recorded(t, db); v != 30 || tok != 3 {
		t.Fatalf("after a failed write with token 8: x=%d recorded=%d, want 30 and 3 (token must roll back with the write)", v, tok)
	}
	// A write that fails in SQLite (constraint) rolls the token back too.
	err = sqlitefence.Tx(ctx, db, 8, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ('y', NULL)`)
		return err
	})
	if err == nil || recorded(t, db) != 3 {
		t.Fatalf("constraint failure: err %v, recorded %d, want an error and 3", err, recorded(t, db))
	}
	// Begin without commit: rolled back, nothing recorded.
	tx, err := sqlitefence.Begin(ctx, db, 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE kv SET v = 81 WHERE k = 'x'`); err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	if v, tok := get(t, db, "x"), recorded(t, db); v != 30 || tok != 3 {
		t.Fatalf("after a rolled-back Begin: x=%d recorded=%d", v, tok)
	}
}

// A writer with a lower token that starts while a higher one is in the
// middle of its transaction waits for SQLite's write lock (BEGIN IMMEDIATE +
// busy_timeout), then sees the higher token and is rejected: the check
// cannot slip between another writer's check and its write.
func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	db1 := open(t, path)
	db2 := open(t, path)
	tx, err := sqlitefence.Begin(ctx, db1, 9)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO kv (k, v) VALUES ('x', 9)`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	t0 := time.Now()
	go func() { done <- set(ctx, db2, 8, "x", 8) }()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("token 8 did not wait for the open transaction of token 9: %v", err)
	default:
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if !errors.Is(err, sqlitefence.ErrStaleToken) {
		t.Fatalf("token 8 after token 9 committed: %v, want ErrStaleToken", err)
	}
	if v := get(t, db2, "x"); v != 9 {
		t.Fatalf("x=%d, want 9", v)
	}
	t.Logf("token 8 waited %v for token 9's transaction, then was rejected: %v", time.Since(t0).Round(time.Millisecond), err)
}

type fakeLock struct {
	token  uint64
	checks int
	failAt int
}

func (f *fakeLock) Token() uint64 { return f.token }
func (f *fakeLock) Check() error {
	f.checks++
	if f.checks == f.failAt {
		return errors.New("lock lost")
	}
	return nil
}

func TestTxLockChecksBeforeCommit(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "a.db"))
	l := &fakeLock{token: 4, failAt: 2} // the check before commit fails
	err := sqlitefence.TxLock(ctx, db, l, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ('x', 4)`)
		return err
	})
	if err == nil || err.Error() != "lock lost" || l.checks != 2 {
		t.Fatalf("TxLock: %v after %d checks, want \"lock lost\" after 2", err, l.checks)
	}
	var n int
	db.QueryRow(`SELECT count(*) FROM kv`).Scan(&n)
	if n != 0 || recorded(t, db) != 0 {
		t.Fatalf("a write whose lock check failed was committed (rows %d, recorded %d)", n, recorded(t, db))
	}
	l = &fakeLock{token: 4}
	if err := sqlitefence.TxLock(ctx, db, l, func(tx *sql.Tx) error { return nil }); err != nil || recorded(t, db) != 4 {
		t.Fatalf("TxLock: %v, recorded %d", err, recorded(t, db))
	}
}

func TestSettings(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a dir with spaces?#%")
	path := filepath.Join(dir, "wems.db")
	if err := mkdir(dir); err != nil {
		t.Fatal(err)
	}
	db := open(t, path)
	s, err := sqlitefence.ReadSettings(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	want := sqlitefence.Settings{JournalMode: "delete", BusyTimeout: 10 * time.Second, Synchronous: "full", LockingMode: "normal"}
	if s != want {
		t.Fatalf("settings %v, want %v", s, want)
	}
	if !exists(path) {
		t.Fatalf("database not created at %s (DSN %s)", path, sqlitefence.DSN(path))
	}
	t.Logf("%s: %v", sqlitefence.DSN(path), s)
}

// A database another program left in WAL mode is converted back.
func TestOpenConvertsWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := raw.QueryRow(`PRAGMA journal_mode=WAL`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("setting WAL: %v %q", err, mode)
	}
	raw.Exec(`CREATE TABLE t (x)`)
	raw.Close()
	db := open(t, path)
	s, err := sqlitefence.ReadSettings(context.Background(), db)
	if err != nil || s.JournalMode != "delete" {
		t.Fatalf("after Open of a WAL database: %v %v", s, err)
	}
}

func TestNotInitialized(t *testing.T) {
	db, err := sqlitefence.Open(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = sqlitefence.Begin(context.Background(), db, 1)
	if !errors.Is(err, sqlitefence.ErrNotInitialized) {
		t.Fatalf("Begin on a database without the table: %v", err)
	}
	if _, err := sqlitefence.Recorded(context.Background(), db); !errors.Is(err, sqlitefence.ErrNotInitialized) {
		t.Fatalf("Recorded: %v", err)
	}
	if err := sqlitefence.Init(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	if err := sqlitefence.Tx(context.Background(), db, 12, func(*sql.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// Init again never lowers the token.
	if err := sqlitefence.Init(context.Background(), db); err != nil || recorded(t, db) != 12 {
		t.Fatalf("second Init: %v, recorded %d", err, recorded(t, db))
	}
}

func TestTokenFromEnv(t *testing.T) {
	t.Setenv("SHARELOCK_TOKEN", "42")
	if tok, err := sqlitefence.TokenFromEnv(); err != nil || tok != 42 {
		t.Fatalf("TokenFromEnv = %d, %v", tok, err)
	}
	for _, bad := range []string{"", "0", "-1", "x", "99999999999999999999"} {
		t.Setenv("SHARELOCK_TOKEN", bad)
		if _, err := sqlitefence.TokenFromEnv(); err == nil {
			t.Errorf("SHARELOCK_TOKEN=%q accepted", bad)
		}
	}
}

func mkdir(dir string) error { return os.MkdirAll(dir, 0o755) }

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
