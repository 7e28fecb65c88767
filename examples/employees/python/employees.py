#!/usr/bin/env python3
"""Give an employee a raise, fenced with sharelock's token.

Run it under sharelock, which holds the lock and passes the fencing token:

    sharelock run data/wems.db -- python3 employees.py raise alice 10

The database rejects the write if a later holder of the lock has already
written to it (this program was frozen past its lease, say): exit 76 with a
clear message, nothing written. Same protocol as the Go package sqlitefence,
so Go and Python programs can share one database (docs/sqlite.md).
"""
import os
import sqlite3
import sys


class StaleToken(Exception):
    def __init__(self, token, recorded):
        super().__init__(
            f"stale fencing token: write with token {token} rejected, the database has "
            f"already been written with token {recorded} by a later holder of the lock; "
            f"this program has lost the lock and must stop writing (nothing was written)")
        self.token, self.recorded = token, recorded


def connect(path):
    # autocommit mode (isolation_level=None): we issue BEGIN IMMEDIATE ourselves.
    db = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 10000")
    mode = db.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
    if mode.lower() != "delete":
        raise RuntimeError(f"{path} is in journal mode {mode}, not DELETE")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA locking_mode = NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS sharelock_fence ("
               "id INTEGER PRIMARY KEY CHECK (id = 1), token INTEGER NOT NULL)")
    db.execute("INSERT OR IGNORE INTO sharelock_fence (id, token) VALUES (1, 0)")
    return db


def fenced(db, token, write):
    """Run write(db) in one transaction with the fence check; commit or roll back."""
    db.execute("BEGIN IMMEDIATE")
    try:
        cur = db.execute("UPDATE sharelock_fence SET token = ? WHERE id = 1 AND token <= ?",
                         (token, token))
        if cur.rowcount != 1:
            recorded = db.execute("SELECT token FROM sharelock_fence WHERE id = 1").fetchone()[0]
            raise StaleToken(token, recorded)
        write(db)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def main(argv):
    if len(argv) != 3 or argv[0] != "raise":
        print("usage: employees.py raise NAME PCT", file=sys.stderr)
        return 64
    name, pct = argv[1], float(argv[2])
    token = int(os.environ["SHARELOCK_TOKEN"])  # set by "sharelock run"
    path = os.environ.get("SHARELOCK_PATH", "wems.db")
    db = connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS employees (name TEXT PRIMARY KEY, salary REAL NOT NULL)")

    def write(db):
        cur = db.execute("UPDATE employees SET salary = round(salary * (1 + ?/100.0), 2) "
                         "WHERE name = ?", (pct, name))
        if cur.rowcount == 0:
            raise LookupError(f"no employee named {name!r}")

    try:
        fenced(db, token, write)
    except StaleToken as e:
        print(f"employees.py: {e}", file=sys.stderr)
        return 76
    except LookupError as e:
        print(f"employees.py: {e}", file=sys.stderr)
        return 1
    print(f"{os.path.basename(path)} — held by you via sharelock run (token {token})")
    print(f"raised {name} by {argv[2]}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
