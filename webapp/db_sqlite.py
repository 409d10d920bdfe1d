"""The SQLite-only parts of the library database (webapp/store.py): the start-up check of the
file, read-only opening on a full or read-only disk, the schema migrations and the lock that
serialises a check or rebuild between processes. No Postgres here: see webapp/db_postgres.py.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from . import db_sql
from .schema import MIGRATIONS_TABLE, migrations

log = logging.getLogger("plinth.store")


def open_readonly(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise sqlite3.OperationalError(f"no database at {path}")
    uri = f"file:{quote(str(path))}?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True, timeout=15.0, isolation_level=None)
        con.execute("SELECT 1 FROM models LIMIT 1").fetchall()  # the -shm is made (or not) here
        return con
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            raise
        log.warning("read-only open failed (%s); reading the file as immutable", error)
    return sqlite3.connect(uri + "&immutable=1", uri=True, timeout=15.0, isolation_level=None)


def diagnose(path: Path) -> str | None:
    """None when `path` is a healthy Plinth database, else what is wrong, in a few words."""
    if not path.exists():
        return "missing"
    size = path.stat().st_size
    if size == 0:
        return "empty"
    with open(path, "rb") as fh:
        head = fh.read(100)
    if not head.startswith(b"SQLite format 3\x00"):
        return "not an SQLite file"
    if len(head) < 100:
        return "truncated"
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    if page < 512 or page & (page - 1):
        return "bad header"
    wal = path.with_name(path.name + "-wal")
    pages_valid = head[24:28] == head[92:96]
    if size % page or (pages_valid and not wal.exists() and int.from_bytes(head[28:32], "big") * page > size):
        return "truncated"
    uri = f"file:{quote(str(path))}?mode=ro"
    for suffix in ("", "&immutable=1"):  # immutable: when the -shm cannot be made (full or read-only disk)
        try:
            con = sqlite3.connect(uri + suffix, uri=True, timeout=15.0)
            try:
                rows = con.execute("PRAGMA quick_check").fetchall()
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            finally:
                con.close()
            break
        except sqlite3.OperationalError as error:  # I/O, locked, cannot open: not damage, never move it
            failure = error
        except sqlite3.DatabaseError as error:  # corrupt or not a database
            return f"unreadable ({error})"
    else:
        log.warning("could not check the library database: %s", failure)
        return None
    if rows != [("ok",)]:
        return "failed its integrity check"
    if tables and "models" not in tables:
        return "not a Plinth database"
    return None


def migrate(con: sqlite3.Connection) -> int:
    """Bring a database made by an older Plinth (or an empty file) up to the schema, keeping its
    rows; returns how many steps were recorded as new.

    Every step runs each time, not only the unrecorded ones (each is idempotent and cheap here):
    a file edited by hand or by an older copy of Plinth may lack a column its record claims. One
    write transaction (BEGIN IMMEDIATE), so processes sharing the file (sqlite:///PATH) wait for
    each other instead of adding a column twice."""
    con.execute("BEGIN IMMEDIATE")
    try:
        con.execute(MIGRATIONS_TABLE)
        done = dict(con.execute("SELECT version, name FROM schema_migrations").fetchall())
        recorded = 0
        for step in migrations():
            if step.column is not None:
                table, column, declaration = step.column
                if column not in {r[1] for r in con.execute(f"PRAGMA table_info({table})")}:
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            for script in step.statements:
                for statement in db_sql.statements(script):
                    con.execute(statement)
            if done.get(step.version) != step.name:
                con.execute("INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?) ON CONFLICT "
                            "(version) DO UPDATE SET name = excluded.name, applied = excluded.applied",
                            (step.version, step.name, time.time()))
                recorded += 1
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return recorded


def stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


@contextmanager
def rebuild_lock(lock_file: Path) -> Iterator[None]:
    """Exclusive between processes while one checks or rebuilds (none on a read-only folder)."""
    import fcntl

    try:
        fh = open(lock_file, "a")
    except OSError:
        yield
        return
    try:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
    finally:
        fh.close()
