// Package sqlitefence makes an SQLite database on a shared folder reject
// writes from a stale holder of its sharelock lock.
//
// sharelock gives one program at a time the lock for data/wems.db, and a
// fencing token that grows with every hold. A holder that is frozen (laptop
// lid closed, VM paused, SIGSTOP) past its lease loses the lock to the next
// program, but when it wakes it may still try to write. The database itself
// must refuse that write; this package makes it do so. The database keeps,
// in the one-row table sharelock_fence, the highest token that has written
// to it. Every write transaction begins by raising that token to the
// writer's own:
//
//	UPDATE sharelock_fence SET token = ? WHERE id = 1 AND token <= ?
//
// in the same transaction as the write, so both commit or neither does. If
// the row is not updated, a later holder has already written: the
// transaction is rolled back and the caller gets a *StaleTokenError
// (errors.Is(err, ErrStaleToken)). The same holder may write as often as it
// likes (equal tokens pass).
//
// In a program that links sharelock:
//
//	lock, err := sharelock.Acquire(ctx, "data/wems.db")
//	...
//	db, err := sqlitefence.Open("data/wems.db") // journal_mode=DELETE, busy_timeout, synchronous=FULL
//	err = sqlitefence.Init(ctx, db)               // once; idempotent
//	err = sqlitefence.TxLock(ctx, db, lock, func(tx *sql.Tx) error {
//		_, err := tx.ExecContext(ctx, "UPDATE employees SET salary = salary * 1.1 WHERE name = ?", name)
//		return err
//	})
//	if errors.Is(err, sqlitefence.ErrStaleToken) || errors.Is(err, sharelock.ErrLost) { /* stop writing */ }
//
// Under "sharelock run PATH -- program", the program reads its token with
// TokenFromEnv and calls Tx. Programs in other languages do the same UPDATE
// themselves (docs/sqlite.md has the Python recipe).
//
// Open uses the pure-Go driver modernc.org/sqlite (driver name "sqlite"),
// so programs stay buildable with CGO_ENABLED=0. Begin, Tx, TxLock, Init
// and Recorded work on any *sql.DB whose driver speaks SQLite.
package sqlitefence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrStaleToken is matched (errors.Is) by every *StaleTokenError.
var ErrStaleToken = errors.New("stale fencing token")

// ErrNotInitialized: the database has no sharelock_fence row (Init was
// never run on it).
var ErrNotInitialized = errors.New("sqlitefence: the database has no sharelock_fence table or row (run sqlitefence.Init or \"sharelock-fence init\" once)")

// StaleTokenError: a write carried a fencing token lower than one the
// database has already recorded, so a later holder of the lock has written
// meanwhile and this writer has lost the lock. Nothing was written.
type StaleTokenError struct {
	Token    uint64 // the token the write carried
	Recorded uint64 // the token recorded in the database
}

func (e *StaleTokenError) Error() string {
	return fmt.Sprintf("stale fencing token: write with token %d rejected, the database has already been written with token %d by a later holder of the lock; this program has lost the lock and must stop writing (nothing was written)", e.Token, e.Recorded)
}

// Is makes errors.Is(err, ErrStaleToken) true.
func (e *StaleTokenError) Is(target error) bool { return target == ErrStaleToken }

// DefaultBusyTimeout is how long a statement waits for SQLite's own file
// lock before failing with "database is locked". Under sharelock only one
// program writes at a time, so waits are short: other readers, or a
// previous holder's transaction finishing.
const DefaultBusyTimeout = 10 * time.Second

// Pragmas are the settings Open applies to every connection, in order.
// See docs/sqlite.md for why each.
var Pragmas = []string{
	"busy_timeout(10000)",  // wait up to 10 s for SQLite's file lock instead of failing at once
	"journal_mode(DELETE)", // rollback journal: works on network filesystems; WAL needs shared memory, which they do not share
	"locking_mode(NORMAL)", // release SQLite's file locks after each transaction (EXCLUSIVE would keep readers out and hide locking failures)
	"synchronous(FULL)",    // fsync the journal and the database at every commit: a commit is on the server before COMMIT returns
}

// DSN returns the modernc.org/sqlite data source name Open uses for path:
// the Pragmas, and BEGIN IMMEDIATE for every transaction.
func DSN(path string) string {
	q := url.Values{}
	for _, p := range Pragmas {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	// An SQLite URI (the driver opens "file:" names with SQLITE_OPEN_URI):
	// forward slashes, %-escapes, an empty authority before absolute
	// paths, "/C:/..." for a Windows drive.
	p := filepath.ToSlash(path)
	if v := filepath.VolumeName(path); len(v) == 2 && v[1] == ':' {
		p = "/" + p
	}
	esc := (&url.URL{Path: p}).EscapedPath()
	if strings.HasPrefix(esc, "/") {
		return "file://" + esc + "?" + q.Encode()
	}
	return "file:" + esc + "?" + q.Encode()
}

// Open opens (creating if needed) the SQLite database at path with the
// settings of Pragmas and BEGIN IMMEDIATE transactions, and checks that the
// database really is in journal mode DELETE (a database left in WAL mode by
// another program is converted back, which needs nobody else to have it
// open). It does not create the fence table: see Init.
func Open(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return nil, err
	}
	s, err := ReadSettings(context.Background(), db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlitefence: opening %s: %w", path, err)
	}
	if s.JournalMode != "delete" {
		db.Close()
		return nil, fmt.Errorf("sqlitefence: %s is in journal mode %q and could not be set to DELETE (is another program holding it open in WAL mode?)", path, s.JournalMode)
	}
	return db, nil
}

// Settings are the SQLite settings in force on a connection.
type Settings struct {
	JournalMode string        // "delete"
	BusyTimeout time.Duration // 10 s
	Synchronous string        // "full"
	LockingMode string        // "normal"
}

func (s Settings) String() string {
	return fmt.Sprintf("journal_mode=%s busy_timeout=%dms synchronous=%s locking_mode=%s",
		s.JournalMode, s.BusyTimeout.Milliseconds(), s.Synchronous, s.LockingMode)
}

// ReadSettings reads the settings in force on one connection of db.
func ReadSettings(ctx context.Context, db *sql.DB) (Settings, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return Settings{}, err
	}
	defer conn.Close()
	var s Settings
	var busy, sync int
	for _, q := range []struct {
		pragma string
		dst    any
	}{
		{"journal_mode", &s.JournalMode},
		{"busy_timeout", &busy},
		{"synchronous", &sync},
		{"locking_mode", &s.LockingMode},
	} {
		if err := conn.QueryRowContext(ctx, "PRAGMA "+q.pragma).Scan(q.dst); err != nil {
			return Settings{}, fmt.Errorf("PRAGMA %s: %w", q.pragma, err)
		}
	}
	s.JournalMode = strings.ToLower(s.JournalMode)
	s.LockingMode = strings.ToLower(s.LockingMode)
	s.BusyTimeout = time.Duration(busy) * time.Millisecond
	s.Synchronous = map[int]string{0: "off", 1: "normal", 2: "full", 3: "extra"}[sync]
	return s, nil
}

// Init creates the table sharelock_fence with its one row (token 0) if the
// database does not have it yet. It is idempotent and never lowers a
// recorded token.
func Init(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS sharelock_fence (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	token INTEGER NOT NULL
)`); err != nil {
		return fmt.Errorf("sqlitefence: creating sharelock_fence: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO sharelock_fence (id, token) VALUES (1, 0)`); err != nil {
		return fmt.Errorf("sqlitefence: creating sharelock_fence: %w", err)
	}
	return tx.Commit()
}

// Recorded returns the highest token that has written to the database.
func Recorded(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (uint64, error) {
	var tok int64
	err := q.QueryRowContext(ctx, `SELECT token FROM sharelock_fence WHERE id = 1`).Scan(&tok)
	if errors.Is(err, sql.ErrNoRows) || (err != nil && strings.Contains(err.Error(), "no such table")) {
		return 0, ErrNotInitialized
	}
	if err != nil {
		return 0, err
	}
	return uint64(tok), nil
}

// Begin starts a write transaction fenced with token: its first statement
// raises the recorded token to token, and fails with a *StaleTokenError
// (the transaction rolled back) if the database has already recorded a
// higher one. Commit the returned transaction to make the writes and the
// token visible together.
//
// Open's connections begin with BEGIN IMMEDIATE; on another *sql.DB the
// fence UPDATE is the transaction's first statement, so SQLite takes its
// write lock there and the check and the writes are atomic all the same.
func Begin(ctx context.Context, db *sql.DB, token uint64) (*sql.Tx, error) {
	if token == 0 || token > 1<<63-1 {
		return nil, fmt.Errorf("sqlitefence: invalid fencing token %d", token)
	}
	if p := dbPath(ctx, db); p != "" {
		dropPageCache(p)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE sharelock_fence SET token = ? WHERE id = 1 AND token <= ?`, int64(token), int64(token))
	if err != nil {
		tx.Rollback()
		if strings.Contains(err.Error(), "no such table") {
			return nil, ErrNotInitialized
		}
		return nil, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	if n == 1 {
		return tx, nil
	}
	rec, err := Recorded(ctx, tx)
	tx.Rollback()
	if err != nil {
		return nil, err
	}
	return nil, &StaleTokenError{Token: token, Recorded: rec}
}

// Tx runs fn in a write transaction fenced with token (see Begin) and
// commits it if fn returns nil; otherwise it rolls back and returns fn's
// error. fn must do all its reads and writes through tx.
func Tx(ctx context.Context, db *sql.DB, token uint64, fn func(*sql.Tx) error) error {
	return run(ctx, db, token, nil, fn)
}

// Locker is what TxLock needs of a lock; *sharelock.Lock has both methods.
type Locker interface {
	Token() uint64
	Check() error
}

// TxLock is Tx with lock's token, and lock.Check() called before the
// transaction begins and again just before it commits: a holder paused in
// the middle of its transaction past its lease then rolls back instead of
// committing (the fence alone cannot catch that case on a share whose
// clients do not share SQLite's file locks, such as two sshfs mounts; see
// docs/sqlite.md).
func TxLock(ctx context.Context, db *sql.DB, lock Locker, fn func(*sql.Tx) error) error {
	if err := lock.Check(); err != nil {
		return err
	}
	return run(ctx, db, lock.Token(), lock.Check, fn)
}

func run(ctx context.Context, db *sql.DB, token uint64, check func() error, fn func(*sql.Tx) error) error {
	tx, err := Begin(ctx, db, token)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// dbPath returns the file of db's main database ("" for an in-memory one or
// on error): a question to SQLite's own catalogue, no file access. Not
// cached per *sql.DB: programs open one per hold (docs/sqlite.md, rule 1),
// and a cache keyed by them would keep every one alive.
func dbPath(ctx context.Context, db *sql.DB) string {
	var file string
	if err := db.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		return ""
	}
	return file
}

// TokenFromEnv returns the fencing token "sharelock run" passes to its
// command in SHARELOCK_TOKEN.
func TokenFromEnv() (uint64, error) {
	v, ok := os.LookupEnv("SHARELOCK_TOKEN")
	if !ok || v == "" {
		return 0, errors.New("sqlitefence: SHARELOCK_TOKEN is not set (run the program under \"sharelock run PATH -- ...\")")
	}
	tok, err := strconv.ParseUint(v, 10, 63)
	if err != nil || tok == 0 {
		return 0, fmt.Errorf("sqlitefence: SHARELOCK_TOKEN=%q is not a fencing token", v)
	}
	return tok, nil
}
