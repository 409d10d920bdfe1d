"""`plinth doctor`: check a data folder and, with --repair, fix what can be fixed safely.

    lines, problems_left = check(data, repair=False)    # report only: nothing is written

Checks, each reported with a count: the database's health (rebuilt from the model folders'
manifests when damaged), model folders without a row (registered again), rows whose folder or
model.glb is gone (the row is removed: that link cannot work), folders nobody can identify (kept,
never deleted; a model folder whose row --repair removes goes to data/lost+found/), stale
temporary folders (.incoming-, .deleted-, staging/), job folders whose job
record is gone (they hold original uploads), and leftover *.tmp files of atomic writes.
Repairs take the data folder's lock (webapp/lock.py), so they never run under a live server.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

from . import library, lock, store

LOST = "lost+found"
STALE_S = 3600.0  # temporary things younger than this may belong to work in progress


def _cache_only() -> bool:
    from .settings import storage_url

    return storage_url() is not None


def _has_glb(data: Path, folder: str) -> bool:
    """With shared storage this data folder is only a cache: a model it lacks is broken only if the storage lacks it too."""
    from . import storage

    rel = f"models/{folder}/model.glb"
    return (data / rel).is_file() or (storage.configured() and storage.exists(data, rel))


def check(data: Path, repair: bool = False, stale_s: float = STALE_S) -> tuple[list[str], int]:
    """Plain report lines and how many problems are left (0: healthy, or everything was repaired)."""
    data = Path(data)
    held = None
    if repair:
        try:
            held = lock.acquire(data, what="doctor")
        except lock.Busy as busy:
            return [f"{busy.message()} (plinth doctor --repair does not change a folder a server is using; "
                    "plinth doctor without --repair only reports)"], 1
    try:
        return _check(data, repair, stale_s)
    finally:
        if held is not None:
            held.release()


def _check(data: Path, repair: bool, stale_s: float) -> tuple[list[str], int]:
    if store.engine() is store.Engine.POSTGRES:
        return _postgres(data)
    lines: list[str] = []
    left = repaired = 0
    now = time.time()

    problem = store.diagnose(store.db_path(data))
    manifests = [f for f in store.model_folders(data) if store.read_manifest(f) is not None]
    if problem == "missing" and not manifests:
        problem = None  # a new, empty data folder
    if problem is not None:
        if repair:
            repaired += 1
            messages = store.open_library(data, force=True)
            lines.append(f"Database: {problem}. Repaired: " + (" ".join(messages) or "a new database was made."))
        else:
            lines.append(f"Database: {problem}. plinth doctor --repair rebuilds it from {len(manifests)} model "
                         f"folder{'s' if len(manifests) != 1 else ''}.")
            left += 1
    rows, job_ids = _rows(data)
    if problem is None or repair:
        lines.append(f"Database: healthy ({len(rows)} model{'s' if len(rows) != 1 else ''}, "
                     f"{len(job_ids)} job record{'s' if len(job_ids) != 1 else ''})."
                     if rows is not None else "Database: could not be read.")
    if rows is None:
        return lines, left + 1

    # model folders without a row, and folders nobody can identify
    known = {row["folder"] for row in rows}
    loose, unknown = [], []
    for folder in store.model_folders(data):
        if folder.name in known:
            continue
        row = store.read_manifest(folder)
        (loose if row is not None and (folder / "model.glb").is_file() else unknown).append(folder)
    if _cache_only():  # shared storage: a local folder without a row is a copy of a model deleted elsewhere
        copies = [f for f in loose + unknown if now - f.stat().st_mtime > stale_s]  # younger: maybe a publish
        loose, unknown = [], []
        if copies:
            if repair:
                repaired += 1
                for folder in copies:
                    shutil.rmtree(folder, ignore_errors=True)
            lines.append(f"Cached copies of models deleted on another machine: {len(copies)} "
                         + ("(deleted)." if repair else "(--repair deletes them; the storage has no such model)."))
            left += 0 if repair else 1
    if loose:
        if repair:
            repaired += 1
            with store.connect(data) as con:
                store.adopt(con, data)
        lines.append(f"Model folders without a database row: {len(loose)} "
                     + ("(registered again; their share links work)." if repair else "(--repair registers them again)."))
        left += 0 if repair else 1
    if unknown:
        names = ", ".join(f.name for f in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        lines.append(f"Folders in models/ that are not a complete model and have no database row: {len(unknown)} "
                     f"({names}). "
                     "Kept, not served: move them out of the data folder if they are not models.")
        left += 1

    # rows whose files are gone
    broken = [row for row in rows if not _has_glb(data, row["folder"])]
    if broken:
        for row in broken:
            lines.append(f"  missing files: {row['name']!r} (share id {row['share_id']})")
        if repair:
            repaired += 1
            with store.connect(data) as con:
                con.executemany("DELETE FROM models WHERE share_id = ?", [(r["share_id"],) for r in broken])
            for row in broken:  # what is left of it (photos, other files) is kept, out of the library
                folder = data / "models" / row["folder"]
                if folder.is_dir():
                    (data / LOST).mkdir(exist_ok=True)
                    os.replace(folder, data / LOST / row["folder"])
        lines.append(f"Models whose folder or model.glb is missing: {len(broken)} "
                     + ("(removed from the library: those links cannot work)." if repair
                        else "(--repair removes them from the library)."))
        left += 0 if repair else 1

    # stale temporary folders and files
    stale = [p for p in _temporaries(data) if now - p.stat().st_mtime > stale_s]
    orphan_jobs = [p for p in _job_folders(data) if p.name not in job_ids and now - p.stat().st_mtime > stale_s]
    tmp_files = [p for p in data.rglob("*.tmp") if p.is_file() and now - p.stat().st_mtime > stale_s]
    for what, found in (("Stale temporary folders (.incoming-, .deleted-, staging/)", stale),
                        ("Job folders whose job record is gone (original uploads)", orphan_jobs),
                        ("Leftover *.tmp files", tmp_files)):
        if not found:
            continue
        if repair:
            repaired += 1
            for path in found:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        lines.append(f"{what}: {len(found)} " + ("(deleted)." if repair else "(--repair deletes them)."))
        left += 0 if repair else 1

    kept = sorted((data / LOST).iterdir()) if (data / LOST).is_dir() else []
    if kept:
        lines.append(f"Kept in {LOST}/: {len(kept)} folder{'s' if len(kept) != 1 else ''} of models whose files "
                     "were missing (delete them when you no longer need them).")
    if left == 0 and not repaired:
        lines.append("Everything is in order.")
    return lines, left


def _postgres(data: Path) -> tuple[list[str], int]:
    """In Postgres mode only whether the database answers: the file checks and repairs compare a
    SQLite file with this folder's models, and here the folder is only this machine's working copy."""
    where = store.where(data)
    note = ("plinth doctor checks and repairs only an SQLite library; back Postgres up with pg_dump "
            "and check it with its own tools.")
    try:
        with store.connect(data) as con:
            models = con.execute("SELECT COUNT(*) FROM models").fetchone()[0]
            jobs = con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    except store.DB_ERRORS as error:
        why = error.message if isinstance(error, store.DatabaseUnavailable) else f"PostgreSQL at {where}: {error}"
        return [f"Database: {why}.", note], 1
    return [f"Database: PostgreSQL at {where} answers ({models} model{'s' if models != 1 else ''}, "
            f"{jobs} job record{'s' if jobs != 1 else ''}).", note], 0


def _rows(data: Path) -> tuple[list[sqlite3.Row] | None, set[str]]:
    if not store.db_path(data).exists():
        return [], set()
    try:
        with store.connect(data, readonly=True) as con:
            rows = con.execute("SELECT * FROM models").fetchall()
            jobs = {r[0] for r in con.execute("SELECT id FROM jobs")}
    except store.DB_ERRORS:
        return None, set()
    return rows, jobs


def _temporaries(data: Path) -> list[Path]:
    models = data / "models"
    found = [p for p in models.iterdir() if p.is_dir() and p.name.startswith(library.TEMP_PREFIXES)] \
        if models.is_dir() else []
    staging = data / "staging"
    return found + (list(staging.iterdir()) if staging.is_dir() else [])


def _job_folders(data: Path) -> list[Path]:
    jobs = data / "jobs"
    return [p for p in jobs.iterdir() if p.is_dir()] if jobs.is_dir() else []
