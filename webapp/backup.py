"""`plinth backup OUT.tar` and `plinth restore IN.tar`: the whole library in one file.

    count = backup(data, Path("library.tar"))        # safe while a server runs
    count = restore(Path("library.tar"), data, force=False)

The archive holds a consistent snapshot of the database (SQLite's online backup API, so a server
may keep writing), the folders of the models in that snapshot (files, manifests, photos) and a
small plinth-backup.json. Not included: staging/, temporary folders, job uploads (they carry the
merchant's GPS and are only needed while a job runs) and logs.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from pathlib import Path, PurePosixPath

from . import disk, library, lock, store

INFO = "plinth-backup.json"
FORMAT = 1


def backup(data: Path, out: Path) -> int:
    """Write the library to the tar file `out` (atomically); returns the number of models."""
    data, out = Path(data), Path(out)
    if store.engine() is store.Engine.POSTGRES:
        from .settings import storage_url

        files = storage_url() or f"{data / 'models'} and {data / 'shop'}"
        raise library.LibraryError(f"The database is in Postgres ({store.where(data)}): back it up with pg_dump "
                                   f"(pg_dump -Fc -f plinth.dump URL). The model files are in {files}: copy them too.")
    if not store.db_path(data).is_file():
        raise library.LibraryError(f"There is no library to back up in {data} (no {store.DB_NAME}).")
    if out.is_dir():
        raise library.LibraryError(f"{out} is a folder: give the backup a file name, such as library.tar.")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".plinth-backup-", dir=out.parent) as tmp:
            snapshot = Path(tmp) / store.DB_NAME
            _snapshot(data, snapshot)
            with sqlite3.connect(snapshot) as con:
                folders = [r[0] for r in con.execute("SELECT folder FROM models")]
            con.close()
            partial = Path(tmp) / "backup.tar"
            with tarfile.open(partial, "w") as tar:
                info = json.dumps({"format": FORMAT, "created": time.time(), "models": len(folders)}).encode()
                member = tarfile.TarInfo(INFO)
                member.size, member.mtime = len(info), int(time.time())
                tar.addfile(member, io.BytesIO(info))
                tar.add(snapshot, arcname=store.DB_NAME)
                for name in folders:
                    folder = data / "models" / name
                    if folder.is_dir():  # deleted since the snapshot: restore's check drops the row
                        tar.add(folder, arcname=f"models/{name}", filter=_plain_files)
            os.replace(partial, out)
    except OSError as error:
        if disk.is_full(error):
            raise library.LibraryError(f"The disk is full, so the backup {out} could not be written.") from error
        raise library.LibraryError(f"Could not write the backup {out}: {error.strerror or error}.") from error
    return len(folders)


def _snapshot(data: Path, target: Path) -> None:
    try:
        with store.connect(data, readonly=True) as src:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)
            finally:
                dst.close()
    except sqlite3.DatabaseError as error:
        raise library.LibraryError(f"The library database could not be read ({error}). "
                                   "Run plinth doctor --repair first, then back up.") from error


def _plain_files(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return member if member.isfile() or member.isdir() else None  # no links, devices or fifos


def restore(archive: Path, data: Path, force: bool = False) -> int:
    """Unpack a backup into `data`; returns the number of models.

    Refuses a data folder that has anything in it unless `force` (then the old contents are moved
    aside to <data>.before-restore-<time>, never deleted), and refuses while a server uses it.
    """
    archive, data = Path(archive), Path(data)
    if store.engine() is store.Engine.POSTGRES:
        raise library.LibraryError(f"The database is in Postgres ({store.where(data)}): restore it from its pg_dump "
                                   "with pg_restore. plinth restore only restores an SQLite library "
                                   "(unset PLINTH_DATABASE_URL to restore one into a data folder).")
    members = _members(archive)
    data.mkdir(parents=True, exist_ok=True)
    try:
        held = lock.acquire(data, what="restore")
    except lock.Busy as busy:
        raise library.LibraryError(busy.message()) from None
    try:
        present = [p for p in data.iterdir() if p.name not in (lock.LOCK_NAME, f"{store.DB_NAME}.lock")]
        if present and not force:
            raise library.LibraryError(f"The data folder {data} is not empty. Restore into an empty folder "
                                       "(set PLINTH_DATA_DIR), or add --force to move what is there aside.")
        if present:
            aside = data.with_name(f"{data.name}.before-restore-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
            aside.mkdir()
            for path in present:
                os.replace(path, aside / path.name)
            print(f"The old contents of {data} were moved to {aside}.")
        incoming = data / f".restoring-{os.getpid()}"
        incoming.mkdir()
        try:
            with tarfile.open(archive) as tar:
                for member in members:
                    target = incoming / member.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(member) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    os.utime(target, (member.mtime, member.mtime))
            (incoming / INFO).unlink(missing_ok=True)
            for path in incoming.iterdir():
                os.replace(path, data / path.name)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        store.open_library(data, force=True)
        with store.connect(data, readonly=True) as con:
            return con.execute("SELECT COUNT(*) FROM models").fetchone()[0]
    except OSError as error:
        raise library.LibraryError(f"Could not restore into {data}: {error.strerror or error}.") from error
    finally:
        held.release()


def _members(archive: Path) -> list[tarfile.TarInfo]:
    """The archive's regular files, each under a name we expect; anything else refuses the archive."""
    try:
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if not m.isdir()]
    except (OSError, tarfile.TarError) as error:
        raise library.LibraryError(f"{archive} is not a Plinth backup (it could not be read as a tar file).") \
            from error
    names = {m.name for m in members}
    if INFO not in names or store.DB_NAME not in names:
        raise library.LibraryError(f"{archive} is not a Plinth backup (made by plinth backup).")
    for m in members:
        parts = PurePosixPath(m.name).parts
        safe = m.isfile() and ".." not in parts and not m.name.startswith("/") and (
            m.name in (INFO, store.DB_NAME) or (len(parts) >= 3 and parts[0] == "models"))
        if not safe:
            raise library.LibraryError(f"{archive} holds an unexpected entry ({m.name!r}), so it was not restored.")
    return members
