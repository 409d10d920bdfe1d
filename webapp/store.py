"""The library database: by default SQLite beside the data folder (one file, WAL mode, a short
connection per call); PostgreSQL when $PLINTH_DATABASE_URL says so.

Tables:
* models: published models. `share_id` is the public, unguessable id; `folder` is the private
  folder name under data/models/ (random too, and never shown).
* jobs: queued, running and finished reconstructions, with live progress.
* users, sessions: merchant accounts and their sign-ins (webapp/accounts.py); login_attempts and
  invites: the sign-in lockout and invite links (webapp/signin.py).
* api_tokens, api_secrets, api_webhooks: the HTTP API's tokens, webhook secrets and pending calls (webapp/api/).
(The tables themselves are defined in webapp/schema.py.)

The database is never the only truth: every model folder carries a `manifest.json` with its row
(written before the row exists). The first connection of each process runs `open_library`, which
checks the file and rebuilds it from the manifests when it is missing, empty, not SQLite, not ours
or damaged (the damaged file is moved aside, never deleted). Reads (`connect(readonly=True)`)
never write: no pragma, no schema, so share links keep working on a full or read-only disk.

With $PLINTH_DATABASE_URL=postgresql://... the same tables live in PostgreSQL instead
(webapp/db_postgres.py): `connect` yields a pooled connection with the sqlite3 surface the code
uses, the schema comes from the same migrations (webapp/schema.py), and the SQLite-only parts
(the file check, the rebuild from manifests, registering folders found without a row) are off:
Postgres is the one truth and each machine's data folder only a working copy. `DB_ERRORS` is
what `except` catches for "the database failed" in either mode.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any, Iterator

from pipeline import PlinthError, atomic_write

from . import db_sqlite
from .db_sqlite import diagnose

log = logging.getLogger("plinth.store")

DB_NAME = "plinth.sqlite3"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
#: manifest key -> models column; `folder` is the manifest's own folder, `report` is report.json.
#: (Manifests written before `published_anyway` existed lack it: read as 0, which only matters for
#: a model whose report says "failed", and such a model is private unless the merchant said otherwise.)
#: `deleted_at` (in the Trash since, unix time) is absent from older manifests: read as None, not in the Trash.
_ROW_KEYS = ("share_id", "name", "placement", "created", "width_m", "height_m", "depth_m", "glb_bytes",
             "triangles", "kind", "job_id", "published_anyway", "adjustment", "background",
             "deleted_at", "product_url", "expires", "owner", "model_id")

#: Databases this process has checked (open_library), by path (SQLite) or URL (Postgres).
_READY: set[str] = set()


class DatabaseUnavailable(PlinthError):
    """The configured database cannot be used: a URL Plinth does not know, a server that does not
    answer or refuses us. The message names the URL without its password."""

    def __init__(self, message: str):
        super().__init__("database", message)


#: `except DB_ERRORS:` catches "the database failed" in either mode. psycopg.Error joins it when
#: Postgres is first used (so the embedded default never imports psycopg); read it as
#: `store.DB_ERRORS` at the `except`, never copy it with `from .store import`.
DB_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, DatabaseUnavailable)


class Engine(str, Enum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


def engine() -> Engine:
    """Which database $PLINTH_DATABASE_URL names (SQLite when unset); DatabaseUnavailable for one we do not know."""
    from .settings import database_url

    url = database_url()
    if url is None or url.startswith("sqlite://"):
        return Engine.SQLITE
    if url.startswith(("postgresql://", "postgres://")):
        return Engine.POSTGRES
    from urllib.parse import urlsplit

    scheme = urlsplit(url).scheme or url.split(":", 1)[0]
    raise DatabaseUnavailable(f"PLINTH_DATABASE_URL starts with {scheme!r}, which Plinth cannot use: give "
                              "postgresql://USER:PASSWORD@HOST:5432/DATABASE or sqlite:///PATH, or unset it.")


def _postgres_url() -> str:
    """The Postgres URL, with psycopg.Error added to DB_ERRORS before anything can raise one."""
    global DB_ERRORS
    import psycopg

    from .settings import database_url

    if psycopg.Error not in DB_ERRORS:
        DB_ERRORS = (*DB_ERRORS, psycopg.Error)
    return database_url() or ""


def where(data: Path) -> str:
    """The database in words for messages: the SQLite file, or the Postgres URL without its password."""
    if engine() is Engine.POSTGRES:
        from .db_postgres import redact

        return redact(_postgres_url())
    return str(db_path(data))


def db_path(data: Path) -> Path:
    """The SQLite file: data/plinth.sqlite3, or the file $PLINTH_DATABASE_URL names as sqlite:///PATH
    (several processes on one machine, each with its own data folder, sharing one database)."""
    from .settings import database_url

    url = database_url() or ""
    if url.startswith("sqlite://"):
        return Path(url[len("sqlite://"):]).expanduser().resolve()
    return data / DB_NAME


@contextmanager
def connect(data: Path, readonly: bool = False) -> Iterator[Any]:
    """A connection that commits on success; WAL lets the UI read while a job writes progress.

    readonly=True: opened `mode=ro` (falling back to `immutable=1` when SQLite cannot make its
    -shm/-wal files, e.g. on a full or read-only disk); it never writes and never checks or
    rebuilds anything, so it raises sqlite3.Error when the file is missing or damaged.

    Postgres: a pooled connection in autocommit (webapp/db_postgres.Connection) whatever
    `readonly`; the schema is brought up to date before the first one of this process.
    """
    if engine() is Engine.POSTGRES:
        url = _postgres_url()
        if url not in _READY:
            open_library(data)
        from . import db_postgres

        with db_postgres.connect(url) as con:
            yield con
        return
    path = db_path(data)
    if readonly:
        con = db_sqlite.open_readonly(path)
    else:
        if str(path) not in _READY or not path.exists():  # also a file deleted under a running server
            open_library(data, force=True)
        con = sqlite3.connect(path, timeout=15.0, isolation_level=None)
    con.row_factory = sqlite3.Row
    try:
        con.execute("PRAGMA busy_timeout=15000")
        yield con
    finally:
        con.close()


# ---------------------------------------------------------------- manifests


def write_manifest(folder: Path, row: dict[str, Any]) -> Path:
    """Write `folder`/manifest.json atomically from a models row (dict of column -> value)."""
    body = {"format": MANIFEST_FORMAT, **{key: row.get(key) for key in _ROW_KEYS}}
    body["dimensions_m"] = [body["width_m"], body["height_m"], body["depth_m"]]
    return atomic_write(folder / MANIFEST, json.dumps(body, indent=1))


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The models row a folder's manifest describes (report from report.json), or None if absent or invalid."""
    try:
        body = json.loads((folder / MANIFEST).read_text())
        row = {key: body.get(key) for key in _ROW_KEYS}
        if not isinstance(row["share_id"], str) or not 16 <= len(row["share_id"]) <= 64:
            return None
        for key in ("width_m", "height_m", "depth_m", "created"):
            row[key] = float(row[key])
        row["glb_bytes"], row["triangles"] = int(row["glb_bytes"] or 0), int(row["triangles"] or 0)
        row["name"], row["kind"] = str(row["name"] or "My product"), str(row["kind"] or "")
        row["placement"] = row["placement"] if row["placement"] in ("floor", "wall") else "floor"
        row["published_anyway"] = 1 if row["published_anyway"] is True or row["published_anyway"] == 1 else 0
        row["adjustment"] = row["adjustment"] if isinstance(row["adjustment"], str) else ""  # older: absent
        row["background"] = row["background"] if isinstance(row["background"], str) else ""
        row["deleted_at"] = None if row["deleted_at"] is None else float(row["deleted_at"])
        # Manifests written before these existed lack them: no product page, no expiry.
        row["product_url"] = row["product_url"] if isinstance(row["product_url"], str) else ""
        row["expires"] = float(row["expires"]) if isinstance(row["expires"], (int, float)) else None
        # Made before accounts: nobody's yet (the first owner account takes them), and no model id
        # yet (_prepare gives it one and writes it back).
        row["owner"] = row["owner"] if isinstance(row["owner"], str) else ""
        row["model_id"] = row["model_id"] if isinstance(row["model_id"], str) and len(row["model_id"]) >= 16 else None
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    try:
        row["report"] = json.dumps(json.loads((folder / "report.json").read_text()))
    except (OSError, ValueError):
        row["report"] = "{}"
    row["folder"] = folder.name
    return row


def model_folders(data: Path) -> list[Path]:
    """Published model folders (not the hidden .incoming-/.deleted- ones)."""
    models = data / "models"
    if not models.is_dir():
        return []
    return sorted(p for p in models.iterdir() if p.is_dir() and not p.name.startswith("."))


def register(con, row: dict[str, Any]) -> bool:
    """Insert a models row unless its share id or folder is already there; True if inserted."""
    cols = (*_ROW_KEYS, "folder", "report")
    cur = con.execute(f"INSERT INTO models ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                      "ON CONFLICT DO NOTHING", tuple(row.get(c) if isinstance(row, dict) else row[c] for c in cols))
    return cur.rowcount > 0


def adopt(con, data: Path) -> int:
    """Register every model folder with a valid manifest and a model.glb but no row; returns how many.

    Never in Postgres or with shared storage: there the data folder is one machine's working copy
    (a cache), and a folder it still holds of a model deleted elsewhere must not bring that model back."""
    from .settings import storage_url

    if engine() is Engine.POSTGRES or storage_url():
        return 0
    known = {r[0] for r in con.execute("SELECT folder FROM models")}
    adopted = 0
    for folder in model_folders(data):
        if folder.name in known or not (folder / "model.glb").is_file():
            continue
        row = read_manifest(folder)
        if row is not None and register(con, row):
            adopted += 1
    return adopted


# ---------------------------------------------------------------- the start-up check


def open_library(data: Path, force: bool = False) -> list[str]:
    """Check this data folder's database once per process; repair it; return plain messages.

    Missing, empty, not SQLite, not ours, truncated or failing `PRAGMA quick_check`: a damaged
    file is moved aside (plinth.sqlite3.damaged-<UTC time>, with its -wal/-shm) and a new one is
    built from the model folders' manifests, with the same share ids. A healthy database gets any
    model folder whose row is missing (e.g. an emptied database) registered again, and manifests
    written for rows made before manifests existed. Serialised across processes with a file lock.
    """
    data = Path(data)
    if engine() is Engine.POSTGRES:
        return _open_postgres(data, force)
    path = db_path(data)
    key = str(path)
    if key in _READY and not force:
        return []
    messages: list[str] = []
    with db_sqlite.rebuild_lock(data / f"{DB_NAME}.lock"):
        problem = diagnose(path)
        if problem in ("missing", "empty") or problem is None:
            if problem is not None:
                for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                    if extra.exists():  # a stale WAL of a vanished file must not replay into the new one
                        extra.rename(extra.with_name(f"{extra.name}.stale-{db_sqlite.stamp()}"))
            added, backfilled = _prepare(path, data)
            if problem is not None and added:
                messages.append(f"The library database was {problem}; a new one was made from {added} model "
                                f"folder{'s' if added != 1 else ''} (every share link is kept).")
            elif added:
                messages.append(f"{added} model folder{'s' if added != 1 else ''} had no database row "
                                "and {} registered again (share links kept).".format("was" if added == 1 else "were"))
            if backfilled:
                log.info("wrote manifests for %d older model folders", backfilled)
        else:
            aside = path.with_name(f"{path.name}.damaged-{db_sqlite.stamp()}")
            path.rename(aside)
            for suffix in ("-wal", "-shm"):
                extra = path.with_name(path.name + suffix)
                if extra.exists():
                    extra.rename(aside.with_name(aside.name + suffix))
            added, _ = _prepare(path, data)
            messages.append(f"The library database was damaged ({problem}); it was moved to {aside.name} and "
                            f"rebuilt from {added} model folder{'s' if added != 1 else ''} (every share link "
                            "is kept; the history of past jobs was lost).")
    _READY.add(key)
    for message in messages:
        log.warning("%s", message)
    return messages


def _open_postgres(data: Path, force: bool) -> list[str]:
    """Postgres: the migrations and the owner rule once per process (no file check, no rebuild)."""
    url = _postgres_url()
    if url in _READY and not force:
        return []
    from . import db_postgres

    db_postgres.migrate(url)  # DatabaseUnavailable when it cannot
    try:
        with db_postgres.connect(url) as con:
            _write_manifests(con, data, _fill_owners(con))
    except DB_ERRORS as error:
        raise DatabaseUnavailable(f"the database {db_postgres.redact(url)} cannot be used: {error}") from error
    _READY.add(url)
    return []


def _prepare(path: Path, data: Path) -> tuple[int, int]:
    """Schema, WAL mode, adopt manifest folders, backfill manifests; returns (adopted, backfilled)."""
    con = sqlite3.connect(path, timeout=15.0, isolation_level=None)
    try:
        con.execute("PRAGMA busy_timeout=15000")
        con.execute("PRAGMA journal_mode=WAL")  # persistent in the file: later connections need not set it
        db_sqlite.migrate(con)
        con.row_factory = sqlite3.Row
        adopted = adopt(con, data)
        stale = _fill_owners(con)
        backfilled = 0
        for row in con.execute("SELECT * FROM models").fetchall():
            folder = data / "models" / row["folder"]
            if folder.is_dir() and (row["share_id"] in stale or not (folder / MANIFEST).exists()):
                try:
                    write_manifest(folder, dict(row))
                    backfilled += 1
                except OSError:  # full or read-only disk: try again next start
                    break
    finally:
        con.close()
    return adopted, backfilled


def _fill_owners(con) -> set[str]:
    """Give every model made before issue 15 a merchant-side id, and everything made before any
    account existed (owner '') to the first owner account once there is one. Returns the share
    ids whose manifests must be written again."""
    import secrets

    changed = set()
    for row in con.execute("SELECT share_id FROM models WHERE model_id IS NULL OR model_id = ''").fetchall():
        con.execute("UPDATE models SET model_id = ? WHERE share_id = ?", (secrets.token_urlsafe(16), row[0]))
        changed.add(row[0])
    owner = con.execute("SELECT id FROM users WHERE role = 'owner' ORDER BY created LIMIT 1").fetchone()
    if owner is not None:
        # Also models of an account that no longer exists (removed, or lost with a rebuilt database).
        orphan = "owner NOT IN (SELECT id FROM users)"
        changed |= {r[0] for r in con.execute(f"SELECT share_id FROM models WHERE {orphan}").fetchall()}
        con.execute(f"UPDATE models SET owner = ? WHERE {orphan}", (owner[0],))
        con.execute(f"UPDATE jobs SET owner = ? WHERE {orphan}", (owner[0],))
    return changed


def claim_orphans(data: Path) -> int:
    """Run the owner rule of `_fill_owners` now (after an account is made or removed) and write
    the changed models' manifests; returns how many models changed hands or got an id."""
    with connect(data) as con:
        changed = _fill_owners(con)
        _write_manifests(con, data, changed)
        first = con.execute("SELECT id FROM users WHERE role = 'owner' ORDER BY created LIMIT 1").fetchone()
    if first is not None:  # the shop of a server from before accounts goes to its first owner too
        from . import shop  # shop imports store

        try:
            shop.claim_default(data, first[0])
        except OSError as error:  # the next account change tries again; share pages show plain branding
            log.warning("could not hand the shop settings to the owner account: %s", error)
    return len(changed)


def _write_manifests(con, data: Path, share_ids: set[str]) -> None:
    """Write the manifests of these models again (those whose folder is in this data folder)."""
    for share_id in share_ids:
        row = con.execute("SELECT * FROM models WHERE share_id = ?", (share_id,)).fetchone()
        folder = data / "models" / row["folder"] if row else None
        if folder is not None and folder.is_dir():
            try:
                write_manifest(folder, dict(row))
            except OSError:  # a full disk: the next start writes it
                pass


def column(row, name: str, default: Any) -> Any:
    """`row[name]` of a sqlite3.Row or dict, or `default` when an older database lacks the column
    (read-only connections never upgrade the schema)."""
    return row[name] if name in row.keys() else default
