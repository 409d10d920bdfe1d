"""PostgreSQL behind `store.connect` when $PLINTH_DATABASE_URL is postgresql://... (psycopg 3).

Imported only in that mode (psycopg stays out of the embedded default). One connection pool
per process and URL, made again in a forked child (a parent's connections are never used, nor
closed, from a child: closing would end the parent's sessions). Connections are in autocommit,
as the SQLite ones are (isolation_level=None), so every statement commits on its own.

`Connection` gives the code the sqlite3 surface it uses: `execute(sql, params)` with SQLite-style
SQL (`?` and `:name` placeholders, webapp/db_sql.py), `executemany`, cursors with `fetchone`,
`fetchall`, iteration and `rowcount`, rows usable as row["col"], row[0], dict(row), row.keys().

`migrate(url)` applies webapp/schema.py's migrations once, under an advisory lock, so two
processes starting at once cannot both apply them.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool

from . import db_sql, schema
from .store import DatabaseUnavailable

log = logging.getLogger("plinth.store")

#: Connections per process: the web server's request threads share them; a wait past
#: POOL_WAIT_S raises psycopg_pool.PoolTimeout (a psycopg.OperationalError).
POOL_MAX = 10
POOL_WAIT_S = 5.0
CONNECT_TIMEOUT_S = 5
#: pg_advisory_xact_lock key of the schema migrations (any fixed 64-bit number; "plinth" in ASCII).
MIGRATION_LOCK = 0x706C696E7468


def redact(url: str) -> str:
    """The URL with its password (in the address or a password= parameter) replaced by ***."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.partition(':')[0]}:***@{host}"
        query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(parts.query)], safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "(a malformed URL)"


# ---------------------------------------------------------------- rows, cursors, connections


class Row:
    """A result row as sqlite3.Row is: by column name (any case), by position, keys(), dict(row)."""

    __slots__ = ("_index", "_keys", "_values")

    def __init__(self, keys: tuple[str, ...], index: dict[str, int], values: Sequence[Any]):
        self._keys, self._index, self._values = keys, index, tuple(values)

    def __getitem__(self, key: int | slice | str) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._index[key.lower()]]
            except KeyError:
                raise IndexError(f"No item with that key: {key!r}") from None  # what sqlite3.Row raises
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._keys)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Row) and self._keys == other._keys and self._values == other._values

    def __hash__(self) -> int:
        return hash((self._keys, self._values))

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._keys, self._values))!r})"


def _row_factory(cursor: psycopg.Cursor):
    if cursor.description is None:
        return tuple
    keys = tuple(column.name for column in cursor.description)
    index = {}
    for i, key in enumerate(keys):
        index.setdefault(key.lower(), i)  # the first of two same-named columns, as sqlite3.Row

    def make(values: Sequence[Any]) -> Row:
        return Row(keys, index, values)

    return make


class Cursor:
    """A finished statement's results (all fetched already: the connection may go back to the pool)."""

    def __init__(self, cursor: psycopg.Cursor):
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def description(self):
        return self._cursor.description

    def fetchone(self) -> Row | None:
        return self._cursor.fetchone() if self._cursor.description is not None else None

    def fetchall(self) -> list[Row]:
        return self._cursor.fetchall() if self._cursor.description is not None else []

    def fetchmany(self, size: int = 1) -> list[Row]:
        return self._cursor.fetchmany(size) if self._cursor.description is not None else []

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


def _value(value: Any) -> Any:
    """sqlite3 stores True as 1: so do we (the columns are integers, Postgres would refuse a boolean).
    Postgres text cannot hold U+0000 at all (SQLite can): it is dropped, so a stray NUL in a name
    the merchant typed is not a server error."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "")
    return value


def _params(params: Any) -> Any:
    if isinstance(params, Mapping):
        return {k: _value(v) for k, v in params.items()}
    return tuple(_value(v) for v in params)


class Connection:
    """The sqlite3-like face of one pooled psycopg connection (autocommit)."""

    engine = "postgres"

    def __init__(self, connection: psycopg.Connection):
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Cursor:
        query, count = db_sql.to_postgres(sql)
        cursor = self._connection.cursor()
        if count == 0 and not params:
            cursor.execute(sql)  # no parameters: psycopg sends the text as it is (no % escaping)
        else:
            cursor.execute(query, _params(params))
        return Cursor(cursor)

    def executemany(self, sql: str, seq: Iterable[Sequence[Any] | Mapping[str, Any]]) -> Cursor:
        query, _ = db_sql.to_postgres(sql)
        cursor = self._connection.cursor()
        cursor.executemany(query, [_params(p) for p in seq])
        return Cursor(cursor)

    def close(self) -> None:
        """Nothing: the connection goes back to the pool when `store.connect` ends."""


# ---------------------------------------------------------------- the pool


_pools: dict[tuple[int, str], ConnectionPool] = {}
_guard = threading.Lock()


def _after_fork() -> None:
    global _guard
    _guard = threading.Lock()  # a lock held by another thread at the fork would never be released here
    _pools.clear()  # the parent's pools: dropped, not closed (psycopg never ends a session from a child)


os.register_at_fork(after_in_child=_after_fork)


def pool(url: str) -> ConnectionPool:
    """This process's pool for `url` (made on first use, and again in a forked child)."""
    key = (os.getpid(), url)
    found = _pools.get(key)
    if found is not None:
        return found
    with _guard:
        found = _pools.get(key)
        if found is None:
            for stale in [k for k in _pools if k[0] != key[0]]:
                _pools.pop(stale)  # a fork register_at_fork did not see (never closed: see _after_fork)
            found = ConnectionPool(
                url, min_size=1, max_size=POOL_MAX, timeout=POOL_WAIT_S, name="plinth", open=True,
                check=ConnectionPool.check_connection,  # a server restart must not fail the next request
                kwargs={"autocommit": True, "row_factory": _row_factory, "connect_timeout": CONNECT_TIMEOUT_S})
            _pools[key] = found
    return found


@contextmanager
def connect(url: str) -> Iterator[Connection]:
    with pool(url).connection() as connection:
        yield Connection(connection)


def close_pools() -> None:
    """Close this process's pools (tests, and the end of the process)."""
    pid = os.getpid()
    with _guard:
        for key in [k for k in _pools if k[0] == pid]:
            _pools.pop(key).close()


atexit.register(close_pools)


# ---------------------------------------------------------------- migrations


def _reason(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def migrate(url: str) -> int:
    """Bring the database at `url` up to webapp/schema.py; returns how many steps ran (0: it was).

    Raises DatabaseUnavailable, with the URL minus its password, when it cannot be reached or set up.
    """
    steps = schema.migrations()
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as con:
            done = _applied(con)
            if all(done.get(m.version) == m.name for m in steps):
                return 0  # the common start: one read, no lock
            with con.transaction():
                con.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                con.execute(db_sql.postgres_ddl(schema.MIGRATIONS_TABLE))
                done = _applied(con)  # again, under the lock: another process may just have applied them
                ran = 0
                for step in steps:
                    if done.get(step.version) == step.name:
                        continue
                    _apply(con, step)
                    ran += 1
            if ran:
                log.info("database %s: applied %d schema migration(s)", redact(url), ran)
            return ran
    except psycopg.Error as error:
        raise DatabaseUnavailable(f"the database {redact(url)} cannot be used: {_reason(error)}") from error


def _applied(con: psycopg.Connection) -> dict[int, str]:
    if con.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None:
        return {}
    return dict(con.execute("SELECT version, name FROM schema_migrations").fetchall())


def _apply(con: psycopg.Connection, step: schema.Migration) -> None:
    if step.column is not None:
        table, column, declaration = step.column
        con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {db_sql.postgres_ddl(declaration)}")
    for script in step.statements:
        for statement in db_sql.statements(db_sql.postgres_ddl(script)):
            con.execute(statement)
    con.execute("INSERT INTO schema_migrations (version, name, applied) VALUES (%s, %s, %s) ON CONFLICT (version) "
                "DO UPDATE SET name = EXCLUDED.name, applied = EXCLUDED.applied", (step.version, step.name, time.time()))
