"""The SQLite database beside the data folder: one file, WAL mode, a short connection per call.

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
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

from pipeline import atomic_write

from .schema import ADDED_COLUMNS, SCHEMA

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

#: Databases this process has checked (open_library), by path.
_READY: set[str] = set()


def db_path(data: Path) -> Path:
    """The SQLite file: data/plinth.sqlite3, or the file $PLINTH_DATABASE_URL names as sqlite:///PATH
    (several processes on one machine, each with its own data folder, sharing one database)."""
    from .settings import database_url

    url = database_url() or ""
    if url.startswith("sqlite://"):
        return Path(url[len("sqlite://"):]).expanduser().resolve()
    return data / DB_NAME


@contextmanager
def connect(data: Path, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection that commits on success; WAL lets the UI read while a job writes progress.

    readonly=True: opened `mode=ro` (falling back to `immutable=1` when SQLite cannot make its
    -shm/-wal files, e.g. on a full or read-only disk); it never writes and never checks or
    rebuilds anything, so it raises sqlite3.Error when the file is missing or damaged.
    """
    path = db_path(data)
    if readonly:
        con = _open_readonly(path)
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


def _open_readonly(path: Path) -> sqlite3.Connection:
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


def register(con: sqlite3.Connection, row: dict[str, Any]) -> bool:
    """Insert a models row unless its share id or folder is already there; True if inserted."""
    cols = (*_ROW_KEYS, "folder", "report")
    cur = con.execute(f"INSERT OR IGNORE INTO models ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                      tuple(row.get(c) if isinstance(row, dict) else row[c] for c in cols))
    return cur.rowcount > 0


def adopt(con: sqlite3.Connection, data: Path) -> int:
    """Register every model folder with a valid manifest and a model.glb but no row; returns how many."""
    from .settings import storage_url

    if storage_url():  # the folder is a cache of the shared storage: a copy without a row was deleted elsewhere
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


def open_library(data: Path, force: bool = False) -> list[str]:
    """Check this data folder's database once per process; repair it; return plain messages.

    Missing, empty, not SQLite, not ours, truncated or failing `PRAGMA quick_check`: a damaged
    file is moved aside (plinth.sqlite3.damaged-<UTC time>, with its -wal/-shm) and a new one is
    built from the model folders' manifests, with the same share ids. A healthy database gets any
    model folder whose row is missing (e.g. an emptied database) registered again, and manifests
    written for rows made before manifests existed. Serialised across processes with a file lock.
    """
    data = Path(data)
    path = db_path(data)
    key = str(path)
    if key in _READY and not force:
        return []
    messages: list[str] = []
    with _rebuild_lock(data):
        problem = diagnose(path)
        if problem in ("missing", "empty") or problem is None:
            if problem is not None:
                for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                    if extra.exists():  # a stale WAL of a vanished file must not replay into the new one
                        extra.rename(extra.with_name(f"{extra.name}.stale-{_stamp()}"))
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
            aside = path.with_name(f"{path.name}.damaged-{_stamp()}")
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


def _prepare(path: Path, data: Path) -> tuple[int, int]:
    """Schema, WAL mode, adopt manifest folders, backfill manifests; returns (adopted, backfilled)."""
    con = sqlite3.connect(path, timeout=15.0, isolation_level=None)
    try:
        con.execute("PRAGMA busy_timeout=15000")
        con.execute("PRAGMA journal_mode=WAL")  # persistent in the file: later connections need not set it
        con.executescript(SCHEMA)
        _add_columns(con)
        con.execute("CREATE UNIQUE INDEX IF NOT EXISTS models_model_id ON models (model_id)")
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


def _fill_owners(con: sqlite3.Connection) -> set[str]:
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
        for share_id in changed:
            row = con.execute("SELECT * FROM models WHERE share_id = ?", (share_id,)).fetchone()
            folder = data / "models" / row["folder"] if row else None
            if folder is not None and folder.is_dir():
                try:
                    write_manifest(folder, dict(row))
                except OSError:  # a full disk: the next start writes it
                    pass
        first = con.execute("SELECT id FROM users WHERE role = 'owner' ORDER BY created LIMIT 1").fetchone()
    if first is not None:  # the shop of a server from before accounts goes to its first owner too
        from . import shop  # shop imports store

        try:
            shop.claim_default(data, first[0])
        except OSError as error:  # the next account change tries again; share pages show plain branding
            log.warning("could not hand the shop settings to the owner account: %s", error)
    return len(changed)


def _add_columns(con: sqlite3.Connection) -> None:
    """Bring a database made by an older Plinth up to the schema (its rows keep their values)."""
    for table, column, declaration in ADDED_COLUMNS:
        have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def column(row, name: str, default: Any) -> Any:
    """`row[name]` of a sqlite3.Row or dict, or `default` when an older database lacks the column
    (read-only connections never upgrade the schema)."""
    return row[name] if name in row.keys() else default


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


@contextmanager
def _rebuild_lock(data: Path) -> Iterator[None]:
    """Exclusive between processes while one checks or rebuilds (none on a read-only folder)."""
    import fcntl

    try:
        fh = open(data / f"{DB_NAME}.lock", "a")
    except OSError:
        yield
        return
    try:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
    finally:
        fh.close()
