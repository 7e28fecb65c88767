// Command employees is a tiny multi-user "employee records" program: the
// worked example of sqlitefence. Several people run it against one SQLite
// file on a shared folder; sharelock lets one of them write at a time and
// sqlitefence makes the database itself reject a write from a holder that
// lost the lock (frozen past its lease, say) after someone else wrote.
//
//	employees [flags] add NAME [SALARY]
//	employees [flags] raise NAME PCT
//	employees [flags] list
//	employees [flags] status
//	employees [flags] loop -n N [-id ID] [-think D]   (test mode: N increments of a counter record)
//
// Flags: -db PATH (default $SHARELOCK_PATH or wems.db), -lease D, -wait D,
// -no-check (write with the fence alone, without Lock.Check before commit),
// -hold (after taking the lock, wait for a line on stdin before writing:
// for tests that freeze the holder).
//
// It takes the lock itself with the sharelock library, or, when run under
// "sharelock run PATH -- employees ...", uses the token that command passes
// in SHARELOCK_TOKEN. Either way every write goes through sqlitefence.
//
// Exit codes: 0 ok, 1 error, 64 usage, 75 in use by someone else, 76 the
// lock was lost or the write was rejected as stale.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"sharelock"
	"sharelock/sqlitefence"
)

const (
	exitUsage  = 64
	exitLocked = 75
	exitLost   = 76
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

type app struct {
	dbPath  string
	lease   time.Duration
	wait    time.Duration
	noCheck bool
	hold    bool
	stdin   *bufio.Reader
	stdout  io.Writer
	stderr  io.Writer
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("employees", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("SHARELOCK_PATH")
	if def == "" {
		def = "wems.db"
	}
	a := &app{stdin: bufio.NewReader(stdin), stdout: stdout, stderr: stderr}
	fs.StringVar(&a.dbPath, "db", def, "the database `PATH`")
	fs.DurationVar(&a.lease, "lease", 0, "lock lease (default: sharelock's)")
	fs.DurationVar(&a.wait, "wait", 0, "wait this long for the lock if someone else has it")
	fs.BoolVar(&a.noCheck, "no-check", false, "do not call Lock.Check before commit (the fence alone protects the database)")
	fs.BoolVar(&a.hold, "hold", false, "after taking the lock, wait for a line on stdin before writing (tests)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	args = fs.Args()
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: employees [flags] add NAME [SALARY] | raise NAME PCT | list | status | loop -n N")
		return exitUsage
	}
	ctx := context.Background()
	var err error
	switch cmd, rest := args[0], args[1:]; {
	case cmd == "add" && (len(rest) == 1 || len(rest) == 2):
		salary := 30000.0
		if len(rest) == 2 {
			if salary, err = strconv.ParseFloat(rest[1], 64); err != nil {
				return usage(stderr, "SALARY must be a number")
			}
		}
		err = a.write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO employees (name, salary) VALUES (?, ?)`, rest[0], salary)
			return err
		}, fmt.Sprintf("added %s", rest[0]))
	case cmd == "raise" && len(rest) == 2:
		pct, perr := strconv.ParseFloat(rest[1], 64)
		if perr != nil {
			return usage(stderr, "PCT must be a number")
		}
		err = a.write(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `UPDATE employees SET salary = round(salary * (1 + ?/100.0), 2) WHERE name = ?`, pct, rest[0])
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("no employee named %q", rest[0])
			}
			return nil
		}, fmt.Sprintf("raised %s by %s%%", rest[0], rest[1]))
	case cmd == "list" && len(rest) == 0:
		err = a.list(ctx)
	case cmd == "status" && len(rest) == 0:
		err = a.status(ctx)
	case cmd == "loop":
		lf := flag.NewFlagSet("loop", flag.ContinueOnError)
		lf.SetOutput(stderr)
		n := lf.Int("n", 10, "increments")
		id := lf.String("id", strconv.Itoa(os.Getpid()), "worker id (in the increments table)")
		think := lf.Duration("think", 0, "time spent holding the lock before each write (simulated work)")
		if lf.Parse(rest) != nil || lf.NArg() != 0 {
			return exitUsage
		}
		err = a.loop(ctx, *n, *id, *think)
	default:
		return usage(stderr, "unknown command or wrong arguments: "+strings.Join(args, " "))
	}
	return exitCode(stderr, err)
}

func usage(stderr io.Writer, msg string) int {
	fmt.Fprintln(stderr, "employees:", msg)
	return exitUsage
}

func exitCode(stderr io.Writer, err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, sharelock.ErrLocked):
		fmt.Fprintln(stderr, "employees:", err)
		return exitLocked
	case errors.Is(err, sqlitefence.ErrStaleToken), errors.Is(err, sharelock.ErrLost):
		fmt.Fprintln(stderr, "employees:", err)
		return exitLost
	default:
		fmt.Fprintln(stderr, "employees:", err)
		return 1
	}
}

func (a *app) name() string { return filepath.Base(a.dbPath) }

func (a *app) opts() []sharelock.Option {
	o := []sharelock.Option{sharelock.WithApp("employees")}
	if a.lease > 0 {
		o = append(o, sharelock.WithLease(a.lease), sharelock.WithHeartbeat(a.lease/4))
	}
	return o
}

// session is one hold of the lock: our own (library) or sharelock run's.
type session struct {
	lock  *sharelock.Lock // nil under sharelock run
	token uint64
}

func (s *session) release() {
	if s.lock != nil {
		s.lock.Release()
	}
}

// acquire takes the lock (or adopts sharelock run's) and prints the status line.
func (a *app) acquire(ctx context.Context) (*session, error) {
	if tok, err := sqlitefence.TokenFromEnv(); err == nil {
		fmt.Fprintf(a.stdout, "%s — held by you via sharelock run (token %d)\n", a.name(), tok)
		return &session{token: tok}, nil
	}
	var lock *sharelock.Lock
	var err error
	if a.wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, a.wait)
		lock, err = sharelock.Acquire(wctx, a.dbPath, a.opts()...)
		cancel()
	} else {
		lock, err = sharelock.TryAcquire(ctx, a.dbPath, a.opts()...)
	}
	if err != nil {
		var le *sharelock.LockedError
		if errors.As(err, &le) && le.Holder != nil {
			fmt.Fprintf(a.stdout, "%s — in use by %s since %s\n", a.name(), le.Holder.Who(), le.Holder.Since.Format("15:04"))
		}
		return nil, err
	}
	fmt.Fprintf(a.stdout, "%s — held by you (token %d)\n", a.name(), lock.Token())
	return &session{lock: lock, token: lock.Token()}, nil
}

// fenced runs fn in a transaction fenced with the session's token, checking
// the lock before commit when we hold it ourselves (unless -no-check).
func (a *app) fenced(ctx context.Context, db *sql.DB, s *session, fn func(*sql.Tx) error) error {
	if s.lock != nil && !a.noCheck {
		return sqlitefence.TxLock(ctx, db, s.lock, fn)
	}
	return sqlitefence.Tx(ctx, db, s.token, fn)
}

func (a *app) open(ctx context.Context) (*sql.DB, error) {
	db, err := sqlitefence.Open(a.dbPath)
	if err != nil {
		return nil, err
	}
	if err := sqlitefence.Init(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

const schema = `
CREATE TABLE IF NOT EXISTS employees (name TEXT PRIMARY KEY, salary REAL NOT NULL);
CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT OR IGNORE INTO counter (id, value) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS increments (worker TEXT NOT NULL, seq INTEGER NOT NULL, token INTEGER NOT NULL,
	old INTEGER NOT NULL, new INTEGER NOT NULL, PRIMARY KEY (worker, seq));
`

func (a *app) write(ctx context.Context, fn func(*sql.Tx) error, done string) error {
	s, err := a.acquire(ctx)
	if err != nil {
		return err
	}
	defer s.release()
	db, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if a.hold {
		fmt.Fprintln(a.stdout, "holding; press Enter to write")
		a.stdin.ReadString('\n')
	}
	if err := a.fenced(ctx, db, s, fn); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, done)
	return nil
}

// list reads under the lock too: on a share whose clients do not share
// SQLite's file locks (sshfs), a reader that opens the database while the
// holder commits takes the holder's journal for a crashed writer's and rolls
// it back (docs/sqlite.md).
func (a *app) list(ctx context.Context) error {
	s, err := a.acquire(ctx)
	if err != nil {
		return err
	}
	defer s.release()
	db, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT name, salary FROM employees ORDER BY name`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var salary float64
		if err := rows.Scan(&name, &salary); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%-20s %12.2f\n", name, salary)
	}
	return rows.Err()
}

// status prints who has the database, without taking it.
func (a *app) status(ctx context.Context) error {
	if tok, err := sqlitefence.TokenFromEnv(); err == nil {
		fmt.Fprintf(a.stdout, "%s — held by you via sharelock run (token %d)\n", a.name(), tok)
		return nil
	}
	info, err := sharelock.Inspect(ctx, a.dbPath, a.opts()...)
	if err != nil {
		return err
	}
	if info.State == sharelock.Free || info.Holder == nil {
		fmt.Fprintf(a.stdout, "%s — free\n", a.name())
		return nil
	}
	fmt.Fprintf(a.stdout, "%s — in use by %s since %s\n", a.name(), info.Holder.Who(), info.Holder.Since.Format("15:04"))
	return nil
}

// loop increments the counter record n times, taking the lock for each
// increment, and prints one line per outcome for the test driver:
//
//	ok WORKER SEQ TOKEN OLD NEW    (committed)
//	stale WORKER SEQ TOKEN RECORDED (rejected by the fence)
//	lost WORKER SEQ TOKEN          (Lock.Check failed before commit)
//	tx WORKER SEQ                  (the fence UPDATE passed: the transaction's writes begin)
//	txend WORKER SEQ               (the transaction has ended, committed or not)
//
// The tx/txend lines let the chaos test see, when it freezes a worker,
// whether the worker was past the fence inside its transaction (see
// docs/sqlite.md, rule 5: on a share whose clients do not share SQLite's
// locks, nothing in the database can stop a writer frozen there).
func (a *app) loop(ctx context.Context, n int, id string, think time.Duration) error {
	if a.wait == 0 {
		a.wait = time.Hour
	}
	out := a.stdout
	a.stdout = io.Discard // no status lines per increment
	for seq := 0; seq < n; {
		s, err := a.acquire(ctx)
		if err != nil {
			return err
		}
		// Open the database after taking the lock and close it before
		// releasing it: a client that keeps the file open may keep reading
		// its own stale cached copy of it (sshfs does; docs/sqlite.md).
		db, err := a.open(ctx)
		if err != nil {
			s.release()
			return err
		}
		time.Sleep(think)
		var old, nw int64
		err = a.fenced(ctx, db, s, func(tx *sql.Tx) error {
			fmt.Fprintf(out, "tx %s %d\n", id, seq)
			if err := tx.QueryRowContext(ctx, `SELECT value FROM counter WHERE id = 1`).Scan(&old); err != nil {
				return err
			}
			nw = old + 1
			if _, err := tx.ExecContext(ctx, `UPDATE counter SET value = ? WHERE id = 1`, nw); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO increments (worker, seq, token, old, new) VALUES (?, ?, ?, ?, ?)`,
				id, seq, int64(s.token), old, nw)
			return err
		})
		fmt.Fprintf(out, "txend %s %d\n", id, seq)
		db.Close()
		s.release()
		var se *sqlitefence.StaleTokenError
		switch {
		case err == nil:
			fmt.Fprintf(out, "ok %s %d %d %d %d\n", id, seq, s.token, old, nw)
			seq++
		case errors.As(err, &se):
			fmt.Fprintf(out, "stale %s %d %d %d\n", id, seq, se.Token, se.Recorded)
			fmt.Fprintln(a.stderr, "employees:", err)
		case errors.Is(err, sharelock.ErrLost):
			fmt.Fprintf(out, "lost %s %d %d\n", id, seq, s.token)
		default:
			return err
		}
	}
	return nil
}
